"""The ``flowtools`` command line: a thin shell over the library.

Results go to stdout; warnings and the one-line summary always go to stderr, so
``--format json`` output stays clean. Exit codes: 0 success (warnings allowed), 1 a data
or AWS error, 2 a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence

from flowtools import output
from flowtools.errors import FlowtoolsError, UsageError

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: exit 2 with the usage line
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _source_options(p: argparse.ArgumentParser, *, engine: bool = True) -> None:
    p.add_argument("source", metavar="SOURCE", help="local folder or file, s3://bucket/prefix, or cwlogs://LOG_GROUP")
    g = p.add_argument_group("window and selection")
    g.add_argument("--start", metavar="T", help="window start: ISO 8601 (2026-11-20T10:00Z), a date, or relative (-6h)")
    g.add_argument("--end", metavar="T", help="window end (exclusive), same forms as --start")
    g.add_argument("--all", action="store_true", help="read an s3:// or cwlogs:// SOURCE without a window")
    g.add_argument("--accounts", metavar="A,...", help="only these account ids")
    g.add_argument("--regions", metavar="R,...", help="only these regions")
    g.add_argument("--log-format", metavar="FORMAT",
                   help="field list for files without a header line (AWS syntax '${version} ...' or bare names)")
    g.add_argument("--strict", action="store_true", help="any bad file or line is an error (exit 1)")
    g = p.add_argument_group("s3:// and cwlogs:// SOURCEs")
    g.add_argument("--profile", metavar="P", help="AWS profile (default: boto3's standard chain: environment, "
                   "AWS_PROFILE, SSO, instance role; AWS_ENDPOINT_URL is honoured)")
    g.add_argument("--s3-mode", choices=("auto", "cache", "stream"), default="auto",
                   help="cache: download the window's objects in parallel to the local cache and read them there; "
                        "stream: read s3:// directly; auto (default): cache when they fit its budget")
    if engine:
        g.add_argument("--engine", choices=("duckdb", "polars"), default="duckdb", help="engine (default duckdb)")


def _format_option(p: argparse.ArgumentParser, default: str = "table") -> None:
    p.add_argument("--format", choices=output.FORMATS, default=default, help=f"output format (default {default})")


def _load(args, engine: str | None = None):
    from flowtools.flows import load

    flows = load(
        args.source, start=args.start, end=args.end, engine=engine or getattr(args, "engine", "duckdb"),
        strict=args.strict, all=args.all, accounts=args.accounts, regions=args.regions,
        log_format=args.log_format, profile=args.profile, s3_mode=args.s3_mode,
    )
    for line in flows.report.warning_lines():
        print(line, file=sys.stderr)
    print(flows.report.summary_line(), file=sys.stderr)
    return flows


# -- commands ----------------------------------------------------------------------------

def cmd_sample(args) -> int:
    from flowtools import sample

    summary = sample.generate(args.out, seed=args.seed, hours=args.hours, scale=args.scale, fmt=args.format)
    print(f"wrote {summary}", file=sys.stderr)
    print(args.out)
    return EXIT_OK


def cmd_info(args) -> int:
    from flowtools.flows import describe

    info = describe(_load(args))
    if args.format == "json":
        json.dump(info, sys.stdout, indent=2, ensure_ascii=False)
        sys.stdout.write("\n")
        return EXIT_OK
    out = sys.stdout
    out.write(f"source    {info['source']}\nwindow    {info['window']}\n")
    out.write(f"files     {info['files_read']} read, {info['files_skipped']} skipped, "
              f"{info['files_pruned']} outside the window ({info['files_found']} found)\n")
    out.write(f"records   {info['records']} ({info['lines_skipped']} line(s) skipped)\n")
    out.write(f"time      {info['first_record']} .. {info['last_record']}\n")
    out.write(f"accounts  {', '.join(info['accounts']) or '-'}\nregions   {', '.join(info['regions']) or '-'}\n")
    out.write(f"layouts   {', '.join(info['layouts']) or '-'}\n")
    if info.get("transfer"):
        out.write(f"fetched   {info['transfer']['summary']}\n")
    out.write("\nflow logs\n")
    rows = [
        {"flow_log_id": d["flow_log_id"], "account": d["account_id"], "region": d["region"],
         "files": d["files"], "records": d["records"], "type": ",".join(d["file_types"]),
         "layout": ",".join(d["layouts"]), "fields": " | ".join(d["formats"])}
        for d in info["flow_logs"]
    ]
    output.write_rows(rows, ["flow_log_id", "account", "region", "files", "records", "type", "layout", "fields"],
                      "table", out)
    if info["issues"]:
        out.write("\nproblems\n")
        for i in info["issues"]:
            status = "skipped: " if i["skipped"] else ""
            lines = "" if i["skipped"] else " ({} line(s) skipped)".format(i["lines_skipped"])
            out.write(f"  {i['file']}: {status}{i['reason']}{lines}\n")
    return EXIT_OK


def cmd_sql(args) -> int:
    flows = _load(args)
    df = flows.sql(args.query).pl()
    output.write_frame(df, args.format, sys.stdout)
    return EXIT_OK


def _ip_ranges(path):
    """``--ip-ranges PATH`` loaded (errors name the file); None without the option."""
    if not path:
        return None
    from flowtools.enrichment.ip_ranges import IpRanges

    return IpRanges.load(path)


def cmd_exposure(args) -> int:
    from flowtools.analyses.exposure import findings_records, internet_exposure
    from flowtools.enrichment.inventory import Inventory

    inventory = Inventory.load(args.inventory) if args.inventory else None
    ip_ranges = _ip_ranges(args.ip_ranges)
    if args.include_configured and (inventory is None or inventory.security_groups.height == 0):
        print("warning: --include-configured needs security groups in --inventory "
              "(<account>-<region>-describe-security-groups.json); none given", file=sys.stderr)
    flows = _load(args)
    frame = internet_exposure(flows, inventory=inventory, method=args.method,
                              include_configured=args.include_configured, ip_ranges=ip_ranges)
    rows = findings_records(frame)
    cols = output.columns_of(rows) or _EXPOSURE_COLUMNS
    if args.format == "table":
        output.write_table(rows, [c for c in _EXPOSURE_TABLE if c in cols], sys.stdout, max_cell=22)
    else:
        output.write_rows(rows, cols, args.format, sys.stdout)
    return EXIT_OK


_EXPOSURE_COLUMNS = [
    "account_id", "region", "vpc_id", "interface_id", "instance_id", "resource_name", "interface_type",
    "local_ip", "port", "port_to", "protocol", "status", "sg_open", "peers", "connections", "bytes_in",
    "bytes_out", "first_seen", "last_seen", "confidence", "evidence", "sample_peers",
]
#: The table for people: what, where, how sure; columns that do not fit the terminal are
#: dropped from the right (the footer says so).
_EXPOSURE_TABLE = ["status", "interface_id", "resource_name", "protocol", "port", "peers", "confidence",
                   "connections", "sg_open", "local_ip"]


def cmd_inventory(args) -> int:
    from flowtools.enrichment.collect import collect_inventory

    summary = collect_inventory(args.out_dir, profile=args.profile, regions=args.regions,
                                role_arns=args.role_arn or (), external_id=args.external_id,
                                include_caller=args.include_caller)
    for warning in summary.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for line in summary.lines():
        print(line, file=sys.stderr)
    print(args.out_dir)
    return EXIT_OK


def cmd_ip_ranges(args) -> int:
    from flowtools.enrichment import ip_ranges

    if args.action == "update":
        ranges = ip_ranges.update(url=args.url or ip_ranges.DEFAULT_URL, dest=args.dest)
    else:
        ranges = ip_ranges.IpRanges.load(args.dest) if args.dest else ip_ranges.IpRanges.cached()
    counts = ranges.counts()
    print(f"file        {ranges.source}\nsyncToken   {ranges.sync_token}\ncreateDate  {ranges.create_date}\n"
          f"prefixes    {counts['ipv4']} IPv4, {counts['ipv6']} IPv6; {len(ranges.services())} services")
    return EXIT_OK


def cmd_fetch(args) -> int:
    from flowtools.sources.s3 import fetch

    summary = fetch(args.source, args.dest, start=args.start, end=args.end, all=args.all, accounts=args.accounts,
                    regions=args.regions, profile=args.profile)
    print(summary.line(), file=sys.stderr)
    print(args.dest)
    return EXIT_OK


def cmd_cache(args) -> int:
    from flowtools.sources.cache import ObjectCache

    cache = ObjectCache()
    if args.action == "clear":
        rep = cache.clear()
        from flowtools.sources.cache import human_size

        print(f"cache cleared: {rep.files} file(s), {human_size(rep.bytes)} removed from {rep.root}", file=sys.stderr)
        return EXIT_OK
    rep = cache.report()
    if args.format == "json":
        json.dump(rep.__dict__, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(rep.lines()) + "\n")
    return EXIT_OK


def cmd_report(args) -> int:
    from flowtools.enrichment.ip_ranges import IpRangesError
    from flowtools.errors import InventoryError, SourceError
    from flowtools.report.render import notebook_path, report
    from flowtools.window import Window, iso

    # Checked here, before a kernel starts: bad times, a missing file, an unbounded remote read.
    window = Window.parse(args.start, args.end)  # relative times are fixed now, not when the cell runs
    remote = "://" in args.source
    if remote and window.is_open and not args.all:
        raise UsageError(f"{args.source}: a remote SOURCE needs --start/--end (or --all to read everything)")
    notebook = notebook_path(args.notebook)

    def local(path, error, what):  # the notebook runs in the report's folder: local paths become absolute
        if path is None or "://" in str(path):
            return path
        if not os.path.exists(path):
            raise error(f"{path}: {what} not found")
        return os.path.abspath(path)

    load_options = {k: v for k, v in (("all", args.all), ("accounts", args.accounts), ("regions", args.regions),
                                      ("log_format", args.log_format), ("profile", args.profile),
                                      ("s3_mode", args.s3_mode if args.s3_mode != "auto" else None)) if v}
    parameters = {"source": local(args.source, SourceError, "SOURCE"),
                  "start": iso(window.start) if window.start else None, "end": iso(window.end) if window.end else None,
                  "inventory": local(args.inventory, InventoryError, "inventory"),
                  "ip_ranges": local(args.ip_ranges, IpRangesError, "ip-ranges file"),
                  "engine": args.engine, "strict": args.strict, "load_options": load_options}
    span = "everything" if window.is_open else window
    print(f"flowtools report: running {notebook.stem} on {args.source}, window {span} ...", file=sys.stderr)
    result = report(args.out, parameters=parameters, notebook=notebook)
    print(f"flowtools report: wrote {result.path.resolve()} ({result.bytes / 1e6:.1f} MB, {result.figures} "
          f"figure(s)) in {result.seconds:.1f} s", file=sys.stderr)
    print(result.path.resolve())
    return EXIT_OK


# -- parser ------------------------------------------------------------------------------

_EXAMPLES = {
    "sample": "flowtools sample /tmp/flows --seed 1 --hours 6",
    "info": "flowtools info data/samples --start 2026-11-20T00:00Z --end 2026-11-20T06:00Z",
    "sql": "flowtools sql data/samples \"SELECT action, count(*) AS n FROM flows GROUP BY ALL\"",
    "exposure": "flowtools exposure data/samples --inventory data/samples/inventory --format json",
    "inventory": "flowtools inventory inventory/ --profile audit --regions us-east-1,eu-west-1 "
                 "--role-arn arn:aws:iam::123456789012:role/flowtools-audit",
    "ip-ranges": "flowtools ip-ranges update",
    "fetch": "flowtools fetch s3://my-flow-logs/AWSLogs/ flows/ --start -6h --regions eu-west-1",
    "cache": "flowtools cache info",
    "report": "flowtools report data/samples --inventory data/samples/inventory "
              "--ip-ranges data/samples/ip-ranges.json --out out/exposure-report.html",
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="flowtools",
        description="Analyse AWS VPC Flow Logs: load any S3 layout into DuckDB or Polars, "
                    "find what the internet really reaches.",
        epilog="Run 'flowtools COMMAND --help' for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"flowtools {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, func: Callable, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {_EXAMPLES[name]}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        p.set_defaults(func=func)
        return p

    p = add("sample", cmd_sample, "Write a generated scenario (flow logs, inventory, ip-ranges, ground truth).")
    p.add_argument("out", metavar="OUT", help="folder to write into")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--hours", type=int, default=24, help="hours of logs (default 24)")
    p.add_argument("--scale", type=float, default=1.0, help="traffic volume multiplier (default 1.0)")
    p.add_argument("--format", choices=("text", "parquet"), default="text", help="file format (default text)")

    p = add("info", cmd_info, "What is there: files, flow logs and formats, accounts, regions, records, problems.")
    _source_options(p)
    _format_option(p)

    p = add("sql", cmd_sql, "Run DuckDB SQL over the view 'flows'.")
    _source_options(p)
    p.add_argument("query", metavar="QUERY", help="SQL over the view 'flows'")
    _format_option(p)

    p = add("exposure", cmd_exposure, "What the internet really reaches: exposed, reachable and blocked ports.")
    _source_options(p)
    p.add_argument("--inventory", metavar="PATH", help="folder of AWS CLI describe-* JSON files")
    p.add_argument("--ip-ranges", metavar="PATH", help="AWS ip-ranges.json")
    p.add_argument("--method", choices=("full", "naive"), default="full",
                   help="full (flags, direction, port evidence) or naive (the v2 reading)")
    p.add_argument("--include-configured", action="store_true",
                   help="also list security-group openings with no observed traffic")
    _format_option(p)

    p = add("report", cmd_report,
            "Run the internet-exposure notebook on SOURCE and write one self-contained HTML report.")
    _source_options(p)
    p.add_argument("--out", metavar="FILE.html", required=True,
                   help="the report to write: one self-contained HTML file (plotly inlined, works offline)")
    p.add_argument("--inventory", metavar="PATH", help="folder of AWS CLI describe-* JSON files")
    p.add_argument("--ip-ranges", metavar="PATH", help="AWS ip-ranges.json")
    p.add_argument("--notebook", default="02_internet_exposure",
                   help="curated notebook name (default 02_internet_exposure) or the path of a notebook whose "
                        "cell tagged `parameters` declares source, start, end, inventory, ip_ranges, engine, "
                        "strict and load_options like the curated ones")

    p = add("fetch", cmd_fetch,
            "Copy the flow-log objects of a window from S3 into a local folder (same layout), for offline work.")
    p.add_argument("source", metavar="S3_URI", help="s3://bucket/prefix")
    p.add_argument("dest", metavar="DEST", help="local folder (created); a local SOURCE afterwards")
    p.add_argument("--start", metavar="T", help="window start: ISO 8601 (2026-11-20T10:00Z), a date, or relative (-6h)")
    p.add_argument("--end", metavar="T", help="window end (exclusive), same forms as --start")
    p.add_argument("--all", action="store_true", help="copy everything (no window)")
    p.add_argument("--accounts", metavar="A,...", help="only these account ids")
    p.add_argument("--regions", metavar="R,...", help="only these regions")
    p.add_argument("--profile", metavar="P", help="AWS profile (default: boto3's standard chain)")

    p = add("cache", cmd_cache, "The local cache of S3 objects: what it holds (info) or empty it (clear).")
    p.add_argument("action", choices=("info", "clear"), help="info: files and bytes per bucket; clear: remove them")
    p.add_argument("--format", choices=("table", "json"), default="table", help="output format of info")

    p = add("inventory", cmd_inventory,
            "Collect the AWS inventory with boto3: describe-* JSON per account and region, as the AWS CLI prints it.")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder for <account-id>-<region>-describe-<kind>.json")
    p.add_argument("--profile", metavar="P", help="AWS profile (default: the standard credential chain)")
    p.add_argument("--regions", metavar="R,...", help="only these regions (default: every region enabled in each account)")
    p.add_argument("--role-arn", metavar="ARN", action="append",
                   help="assume this role and collect its account (repeatable); the caller's own account is "
                        "then collected only with --include-caller")
    p.add_argument("--external-id", metavar="ID", help="ExternalId to pass when assuming the roles")
    p.add_argument("--include-caller", action="store_true",
                   help="with --role-arn: also collect the caller's own account")

    p = add("ip-ranges", cmd_ip_ranges,
            "AWS ip-ranges.json: download it to the cache (update) or show what a copy holds (show).")
    p.add_argument("action", choices=("update", "show"), help="update: download; show: syncToken, date and counts")
    p.add_argument("--url", metavar="URL", help="where to download from (default AWS's ip-ranges.json URL)")
    p.add_argument("--dest", metavar="PATH",
                   help="file to write (update) or read (show); default the cache, ~/.cache/flowtools/ip-ranges.json "
                        "(FLOWTOOLS_CACHE_DIR sets the folder)")
    return parser


def _version() -> str:
    from flowtools import __version__

    return __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except UsageError as e:
        print(f"flowtools: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except FlowtoolsError as e:
        print(f"flowtools: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # e.g. `flowtools sql ... | head`
        return EXIT_OK
    except KeyboardInterrupt:
        print("flowtools: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
