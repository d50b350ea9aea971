"""``flowtools sample``, ``info`` and ``sql``: generate a scenario, say what a SOURCE holds,
and query it with DuckDB SQL."""

from __future__ import annotations

import argparse
import json
import sys

from flowtools import output
from flowtools.cli.parser import (
    EXIT_OK,
    AddCommand,
    format_option,
    load,
    load_inventory,
    load_ip_ranges,
    source_options,
)

EXAMPLES = {
    "sample": "flowtools sample /tmp/flows --seed 1 --hours 6",
    "info": "flowtools info data/samples --start 2026-11-20T00:00Z --end 2026-11-20T06:00Z",
    "sql": "flowtools sql data/samples \"SELECT action, count(*) AS n FROM flows GROUP BY ALL\"",
}


def cmd_sample(args: argparse.Namespace) -> int:
    from flowtools import sample

    summary = sample.generate(args.out, seed=args.seed, hours=args.hours, scale=args.scale, fmt=args.format)
    print(f"wrote {summary}", file=sys.stderr)
    print(args.out)
    return EXIT_OK


def cmd_info(args: argparse.Namespace) -> int:
    from flowtools.flows import describe

    info = describe(load(args))
    if args.format == "json":
        json.dump(info, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return EXIT_OK
    out = sys.stdout
    out.write(f"source    {info['source']}\nwindow    {info['window']}\n")
    from flowtools.read.report import selection_text

    out.write(f"files     {info['files_read']} read, {info['files_skipped']} skipped, "
              f"{selection_text(info)} ({info['files_found']} found)\n")
    out.write(f"records   {info['records']} ({info['lines_skipped']} line(s) skipped)\n")
    first, last = info["first_record"], info["last_record"]
    out.write(f"time      {f'{first} .. {last}' if first and last else '- (no records)'}\n")
    out.write(f"accounts  {', '.join(info['accounts']) or '-'}\nregions   {', '.join(info['regions']) or '-'}\n")
    out.write(f"layouts   {', '.join(info['layouts']) or '-'}\n")
    if info.get("transfer"):
        out.write(f"fetched   {info['transfer']['summary']}\n")
    out.write("\nflow logs\n")
    rows = [
        {"flow_log_id": d["flow_log_id"] or "-", "account": d["account_id"] or "-", "region": d["region"] or "-",
         "files": d["files"], "records": d["records"], "type": ",".join(d["file_types"]),
         "layout": ",".join(d["layouts"]), "fields": " | ".join(d["formats"])}
        for d in info["flow_logs"]
    ]
    output.write_table(rows, ["flow_log_id", "account", "region", "files", "records", "type", "layout", "fields"],
                       out, more="use --format json")
    if info["issues"]:
        out.write("\nproblems\n")
        for i in info["issues"]:
            status = "skipped: " if i["skipped"] else ""
            lines = "" if i["skipped"] else " ({} line(s) skipped)".format(i["lines_skipped"])
            out.write(f"  {i['file']}: {status}{i['reason']}{lines}\n")
    return EXIT_OK


def cmd_sql(args: argparse.Namespace) -> int:
    import duckdb

    from flowtools.errors import QueryError

    inventory = load_inventory(args.inventory)  # before the load: a bad file fails fast
    ip_ranges = load_ip_ranges(args.ip_ranges)
    flows = load(args)
    if inventory is not None or ip_ranges is not None:  # the view 'enriched', lazy like 'flows'
        from flowtools import enrich

        base = flows.frame if flows.engine == "duckdb" else flows.sql("SELECT * FROM flows")  # same connection
        enrich(base, inventory=inventory, ip_ranges=ip_ranges).create_view("enriched")
    relation = flows.sql(args.query)  # several statements run in order; the last one's result
    if relation is None:  # CREATE, DROP, COPY ... TO (a count row in some DuckDB versions: printed)
        print("flowtools sql: statement executed (no result rows)", file=sys.stderr)
        if args.format == "json":
            output.write_json([], sys.stdout)
        return EXIT_OK
    try:
        df = output.relation_frame(relation)
    except duckdb.Error as e:  # errors found while running it (a bad cast), not when planning
        raise QueryError(f"SQL error: {e}") from None
    output.write_frame(df, args.format, sys.stdout)
    return EXIT_OK


def register(add: AddCommand) -> None:
    """Add ``sample``, ``info`` and ``sql``."""
    p = add("sample", cmd_sample, "Write a generated scenario (flow logs, inventory, ip-ranges, ground truth).")
    p.add_argument("out", metavar="OUT", help="folder to write into")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--hours", type=int, default=24, help="hours of logs (default 24)")
    p.add_argument("--scale", type=float, default=1.0, help="traffic volume multiplier (default 1.0)")
    p.add_argument("--format", choices=("text", "parquet"), default="text", help="file format (default text)")

    p = add("info", cmd_info, "What is there: files, flow logs and formats, accounts, regions, records, problems.")
    source_options(p)
    format_option(p, choices=("table", "json"))  # one report, not rows: no CSV

    p = add("sql", cmd_sql, "Run DuckDB SQL over the view 'flows' (and 'enriched' with --inventory/--ip-ranges).")
    source_options(p)
    p.add_argument("--inventory", metavar="PATH",
                   help="folder of AWS CLI describe-* JSON files: adds the view 'enriched' (flows with resource "
                        "names, types and owners of both ends)")
    p.add_argument("--ip-ranges", metavar="PATH", help="AWS ip-ranges.json: adds the view 'enriched' (with the AWS "
                   "service and region of both ends)")
    p.add_argument("query", metavar="QUERY",
                   help="SQL over the view 'flows'; several statements separated by ';' run in order and the "
                        "last one's result is printed. A statement without result rows (CREATE, DROP, COPY ... TO) "
                        "prints nothing ('[]' with --format json) and says so on stderr")
    format_option(p)
