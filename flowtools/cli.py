"""The ``flowtools`` command line: a thin shell over the library.

Results go to stdout; warnings and the one-line summary always go to stderr, so
``--format json`` output stays clean. Exit codes: 0 success (warnings allowed), 1 a data
or AWS error, 2 a usage error, 3 a ``--fail-on`` gate tripped (the command itself succeeded).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from flowtools import output
from flowtools.errors import FlowtoolsError, UsageError
from flowtools.options import comma_list

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_GATE = 0, 1, 2, 3


#: Options whose value may be a relative time (``-6h``), which argparse takes for an option.
_TIME_OPTIONS = frozenset({"--start", "--end"})
#: A value, never an option: no flowtools option starts with a digit (``-6h``, ``-1.5h``, ``-.5d``).
_DASH_DIGIT = re.compile(r"^-\.?\d")


def _join_time_values(argv: Sequence[str]) -> list[str]:
    """``--start -6h`` -> ``--start=-6h`` (likewise ``--end``), so that argparse reads a
    relative time as the option's value; anything after ``--`` is left alone. A bad value
    (``--start -6x``) is then reported by the time parser as a bad time value."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return out + list(argv[i:])
        if a in _TIME_OPTIONS and i + 1 < len(argv) and _DASH_DIGIT.match(argv[i + 1]):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


class _Parser(argparse.ArgumentParser):
    def parse_known_args(self, args=None, namespace=None):
        argv = sys.argv[1:] if args is None else args
        return super().parse_known_args(_join_time_values(argv), namespace)

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
    g.add_argument("--any-name", action="store_true", help="read every .gz/.log/.parquet/.txt file of a local folder as a flow log, whatever its name")
    g = p.add_argument_group("s3:// and cwlogs:// SOURCEs")
    g.add_argument("--profile", metavar="P", help="AWS profile (default: boto3's standard chain: environment, "
                   "AWS_PROFILE, SSO, instance role; AWS_ENDPOINT_URL is honoured)")
    g.add_argument("--s3-mode", choices=("auto", "cache", "stream"), default="auto",
                   help="cache: download the window's objects in parallel to the local cache and read them there; "
                        "stream: read s3:// directly; auto (default): cache when they fit its budget")
    if engine:
        g.add_argument("--engine", choices=("duckdb", "polars", "spark"), default="duckdb",
                       help="engine (default duckdb; spark: the flowtools[spark] extra and Java 17)")


def _format_option(p: argparse.ArgumentParser, default: str = "table",
                   choices: Sequence[str] = output.FORMATS) -> None:
    p.add_argument("--format", choices=choices, default=default, help=f"output format (default {default})")


def _load(args, engine: str | None = None):
    from flowtools.flows import load

    flows = load(
        args.source, start=args.start, end=args.end, engine=engine or getattr(args, "engine", "duckdb"),
        strict=args.strict, all=args.all, accounts=args.accounts, regions=args.regions,
        log_format=args.log_format, profile=args.profile, s3_mode=args.s3_mode, any_name=args.any_name,
    )
    for line in flows.report.warning_lines():
        print(line, file=sys.stderr)
    summary = flows.report.summary_line()
    if flows.store is not None:  # still one summary line
        summary += f"; {flows.store.summary()}"
    print(summary, file=sys.stderr)
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


def cmd_sql(args) -> int:
    import duckdb

    from flowtools.enrichment.inventory import Inventory
    from flowtools.errors import QueryError

    inventory = Inventory.load(args.inventory) if args.inventory else None  # before the load: a bad file fails fast
    ip_ranges = _ip_ranges(args.ip_ranges)
    flows = _load(args)
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


def _ip_ranges(path):
    """``--ip-ranges PATH`` loaded (errors name the file); None without the option."""
    if not path:
        return None
    from flowtools.enrichment.ip_ranges import IpRanges

    return IpRanges.load(path)


def cmd_exposure(args) -> int:
    from flowtools.analyses import risk
    from flowtools.analyses.exposure import findings_records, internet_exposure
    from flowtools.enrichment.inventory import Inventory

    policy = risk.load_policy(args.risk_policy)
    statuses = comma_list(args.status)
    levels = comma_list(args.risk)
    ports = risk.parse_ports(args.ports) if args.ports else None
    gate = risk.at_least(args.fail_on) if args.fail_on else None
    inventory = Inventory.load(args.inventory) if args.inventory else None
    ip_ranges = _ip_ranges(args.ip_ranges)
    if args.include_configured and (inventory is None or inventory.security_groups.height == 0):
        print("warning: --include-configured needs security groups in --inventory "
              "(<account>-<region>-describe-security-groups.json); none given", file=sys.stderr)
    flows = _load(args)
    frame = internet_exposure(flows, inventory=inventory, method=args.method,
                              include_configured=args.include_configured, ip_ranges=ip_ranges, risk_policy=policy)
    frame = risk.select(frame, status=statuses, risk=levels, ports=ports)
    rows = findings_records(frame)
    cols = output.columns_of(rows) or _EXPOSURE_COLUMNS
    if args.format == "table":  # a configured rule's port range as one cell: 8000-8100
        shown = [{**r, "port": f"{r['port']}-{r['port_to']}"} if r.get("port_to") not in (None, r.get("port"))
                 else r for r in rows]
        output.write_table(shown, [c for c in _EXPOSURE_TABLE if c in cols], sys.stdout, max_cell=22)
    else:
        output.write_rows(rows, cols, args.format, sys.stdout)
    if gate is not None:
        tripped = [r for r in rows if r["risk"] in gate]
        if tripped:
            worst = min(tripped, key=lambda r: risk.LEVELS.index(r["risk"]))
            print(f"flowtools exposure: --fail-on {args.fail_on}: {len(tripped)} finding(s) at risk {args.fail_on} "
                  f"or above (first: {worst['risk']} {worst['status']} {worst['protocol']}/{worst['port']} on "
                  f"{worst['interface_id']})", file=sys.stderr)
            return EXIT_GATE
    return EXIT_OK


_EXPOSURE_COLUMNS = [
    "account_id", "region", "vpc_id", "interface_id", "instance_id", "resource_name", "interface_type",
    "local_ip", "port", "port_to", "protocol", "status", "sg_open", "peers", "connections", "bytes_in",
    "bytes_out", "first_seen", "last_seen", "confidence", "evidence", "sample_peers", "risk",
]
#: The table for people: what, where, how sure; columns that do not fit the terminal are
#: dropped from the right (the footer says so).
_EXPOSURE_TABLE = ["risk", "status", "interface_id", "resource_name", "protocol", "port", "peers", "confidence",
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
    from flowtools.analyses.change import FindingsFileError, read_findings
    from flowtools.enrichment.ip_ranges import IpRangesError
    from flowtools.errors import InventoryError, SourceError
    from flowtools.report.render import (
        NothingToReport,
        declared_parameters,
        notebook_path,
        parse_parameters,
        preflight,
        report,
    )
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
                  "engine": args.engine, "strict": args.strict, "load_options": load_options,
                  "previous": local(args.previous, FindingsFileError, "previous findings file")}
    options = {"source": "SOURCE", "start": "--start", "end": "--end", "inventory": "--inventory",
               "ip_ranges": "--ip-ranges", "engine": "--engine", "strict": "--strict",
               "load_options": "--all/--accounts/--regions/--log-format/--profile/--s3-mode",
               "previous": "--previous"}
    declared = declared_parameters(notebook)
    parameters.update(parse_parameters(args.param, declared, reserved=options, notebook=notebook.name))
    if parameters["previous"]:
        if "previous" not in declared:
            raise UsageError(f"--previous: {notebook.name} does not declare a parameter 'previous'")
        read_findings(parameters["previous"])  # a file that cannot be compared fails here, not in the kernel
    # The read report comes back from the kernel (the loading cell displays it); an empty
    # window is an error (exit 1), found before a kernel starts for a local SOURCE.
    try:
        preflight(parameters["source"], window, accounts=args.accounts, regions=args.regions)
        span = "everything" if window.is_open else window
        print(f"flowtools report: running {notebook.stem} on {args.source}, window {span} ...", file=sys.stderr)
        result = report(args.out, parameters=parameters, notebook=notebook)
    except NothingToReport as e:
        print("\n".join([*e.read_report["warnings"], e.read_report["summary"]]), file=sys.stderr)
        raise
    if result.read_report is not None:
        print("\n".join([*result.read_report["warnings"], result.read_report["summary"]]), file=sys.stderr)
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
    "store": "flowtools store build s3://my-flow-logs/AWSLogs/ /data/flowstore --start -2d\n"
             "  flowtools store info /data/flowstore",
    "athena": "flowtools athena ddl --location s3://my-flow-logs/ --layout hourly --format parquet "
              "--accounts 111122223333 --regions us-east-1,eu-west-1 --start 2026-01-01 --database flows",
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
    _format_option(p, choices=("table", "json"))  # one report, not rows: no CSV

    p = add("sql", cmd_sql, "Run DuckDB SQL over the view 'flows' (and 'enriched' with --inventory/--ip-ranges).")
    _source_options(p)
    p.add_argument("--inventory", metavar="PATH",
                   help="folder of AWS CLI describe-* JSON files: adds the view 'enriched' (flows with resource "
                        "names, types and owners of both ends)")
    p.add_argument("--ip-ranges", metavar="PATH", help="AWS ip-ranges.json: adds the view 'enriched' (with the AWS "
                   "service and region of both ends)")
    p.add_argument("query", metavar="QUERY",
                   help="SQL over the view 'flows'; several statements separated by ';' run in order and the "
                        "last one's result is printed. A statement without result rows (CREATE, DROP, COPY ... TO) "
                        "prints nothing ('[]' with --format json) and says so on stderr")
    _format_option(p)

    p = add("exposure", cmd_exposure, "What the internet really reaches: exposed, reachable and blocked ports.")
    _source_options(p)
    p.add_argument("--inventory", metavar="PATH", help="folder of AWS CLI describe-* JSON files")
    p.add_argument("--ip-ranges", metavar="PATH", help="AWS ip-ranges.json")
    p.add_argument("--method", choices=("full", "naive"), default="full",
                   help="full (flags, direction, port evidence) or naive (the v2 reading)")
    p.add_argument("--include-configured", action="store_true",
                   help="also list security-group openings with no observed traffic")
    g = p.add_argument_group("decisions")
    g.add_argument("--risk-policy", metavar="FILE",
                   help="TOML file overriding the built-in risk policy (categories of ports, level per status; "
                        "`flowtools risk-policy` prints it)")
    g.add_argument("--status", metavar="S,...", help="only these statuses (exposed, reachable, blocked, configured)")
    g.add_argument("--risk", metavar="R,...", help="only these risk levels (critical, high, medium, low)")
    g.add_argument("--ports", metavar="P,...", help="only findings on these ports or ranges (22,3389,8000-8100)")
    g.add_argument("--fail-on", metavar="LEVEL", choices=("critical", "high", "medium", "low"),
                   help="exit 3 when a finding (after the filters) has this risk or above: a scheduled or CI check")
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
    p.add_argument("--previous", metavar="FILE.json",
                   help="findings of an earlier run (`flowtools exposure --format json > FILE.json`): the report "
                        "adds what changed since (new, changed and gone findings)")
    p.add_argument("--param", metavar="NAME=VALUE", action="append",
                   help="set a parameter the notebook's `parameters` cell declares (repeatable); VALUE is read "
                        "as JSON when it parses (5, true, [\"a\"]), else as a string")

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
    _store_commands(add)
    _athena_commands(sub)
    from flowtools import cli_decisions

    _EXAMPLES.update(cli_decisions.EXAMPLES)
    cli_decisions.register(add, source_options=_source_options, format_option=_format_option, load=_load)
    return parser


# -- store (the hourly partition store) -------------------------------------------------

def _store_commands(add) -> None:
    """``flowtools store build SOURCE STORE`` and ``flowtools store info STORE``."""
    p = add("store", cmd_store, "The hourly partition store: build it from a SOURCE, or show what it holds.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    actions.required = True
    b = actions.add_parser("build", help="read the SOURCE's new or changed objects of the window into STORE",
                           description="Read the flow-log objects of SOURCE (for the window) that the store does "
                                       "not hold yet, or that changed, into STORE: hourly Parquet partitions "
                                       "plus a manifest. A second build of the same store waits for the first.")
    _source_options(b, engine=False)
    b.add_argument("store", metavar="STORE", nargs="?",
                   help="store folder (default $FLOWTOOLS_STORE, else the SOURCE's own store under "
                        "<cache dir>/store/, the one every command reading SOURCE uses)")
    b.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    i = actions.add_parser("info", help="partitions, records, source objects and bytes of STORE")
    i.add_argument("store", metavar="STORE", nargs="?",
                   help="store folder, or a SOURCE whose default store to show (default $FLOWTOOLS_STORE)")
    i.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")


def cmd_store(args) -> int:
    from flowtools.sources.cache import human_size
    from flowtools.store import PartitionStore, build

    if args.action == "build":
        result = build(args.source, args.store, start=args.start, end=args.end, all=args.all,
                       accounts=args.accounts, regions=args.regions, strict=args.strict,
                       log_format=args.log_format, profile=args.profile, s3_mode=args.s3_mode,
                       on_wait=lambda holder: print(f"flowtools: waiting for the store lock ({holder})",
                                                    file=sys.stderr))
        for line in result.report.warning_lines():
            print(line, file=sys.stderr)
        print(result.line(), file=sys.stderr)
        if args.format == "json":
            out = {k: v for k, v in result.__dict__.items() if k not in ("report", "partitions")}
            out["partitions"] = sorted(result.partitions)
            out["report"] = result.report.to_dict()
            json.dump(out, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(result.root)
        return EXIT_OK
    from flowtools.store.core import default_root

    root = args.store
    if root is not None and "://" not in root and discover_any(root):  # a local SOURCE: its default store
        root = default_root(root)
    info = PartitionStore(root).info()
    if args.format == "json":
        json.dump(info, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    sys.stdout.write(
        f"store       {info['store']}\nupdated     {info['updated'] or '-'}\n"
        f"sources     {', '.join(info['sources']) or '-'}\n"
        f"objects     {info['objects']} source object(s), {human_size(info['objects_bytes'])}; "
        f"{info['files_with_issues']} with problems ({info['files_skipped']} skipped, "
        f"{info['lines_skipped']} line(s) skipped)\n"
        f"partitions  {info['partitions']} (hours {info['first_hour'] or '-'} .. {info['last_hour'] or '-'})\n"
        f"files       {info['files']} Parquet file(s), {human_size(info['bytes'])}\n"
        f"records     {info['records']}\n"
        f"accounts    {', '.join(info['accounts']) or '-'}\nregions     {', '.join(info['regions']) or '-'}\n")
    return EXIT_OK


def discover_any(path: str) -> bool:
    """Whether ``path`` is a local folder or file holding flow logs rather than a store."""
    p = Path(path)
    return p.is_file() or (p.is_dir() and not (p / "_manifest.json").exists() and any(p.rglob("*.log.*")))


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
    except OSError as e:  # a file or folder that cannot be read or written (names it), not a traceback
        print(f"flowtools: error: {e}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("flowtools: interrupted", file=sys.stderr)
        return 130


# -- athena ------------------------------------------------------------------------------

_ATHENA_QUERY_EXAMPLE = ("flowtools athena query \"SELECT action, count(*) AS n FROM vpc_flow_logs "
                         "WHERE p_date = '2026/11/20' GROUP BY action\" --database flows "
                         "--output-location s3://my-athena-results/")


def _athena_commands(sub) -> None:
    """``flowtools athena ddl|query``: tables with partition projection, and SQL run in Athena."""
    from flowtools.athena.ddl import LAYOUTS

    help = "Athena: CREATE TABLE statements for flow logs in S3 (ddl) and SQL run in Athena (query)."
    p = sub.add_parser("athena", help=help, description=help, epilog=f"example:\n  {_EXAMPLES['athena']}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="athena_command", metavar="ACTION", parser_class=_Parser)
    actions.required = True

    help = ("Print a CREATE EXTERNAL TABLE statement with partition projection for flow logs delivered "
            "to S3 in LAYOUT (or for flowtools' partition store); nothing is sent to AWS.")
    d = actions.add_parser("ddl", help=help, description=help, epilog=f"example:\n  {_EXAMPLES['athena']}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    d.set_defaults(func=cmd_athena_ddl)
    d.add_argument("--location", metavar="S3_URI", required=True,
                   help="s3://bucket/prefix/: what precedes AWSLogs/ (for --layout store: the store's root)")
    d.add_argument("--layout", choices=LAYOUTS, required=True,
                   help="daily, hourly, hive, hive-hourly (the S3 delivery options) or store (flowtools' store)")
    d.add_argument("--format", choices=("text", "parquet"), default=None,
                   help="file format of the logs (default text; parquet for --layout store)")
    d.add_argument("--fields", metavar="FORMAT",
                   help="the flow log's format, AWS syntax '${version} ${srcaddr} ...' or bare names "
                        "(default: the version-2 default format); text tables read columns in this order")
    d.add_argument("--org-id", metavar="O", help="the AWSLogs/{org-id}/ folder of centrally delivered logs")
    d.add_argument("--accounts", metavar="A,...",
                   help="account ids to project (enum); default injected: every query names its accounts")
    d.add_argument("--regions", metavar="R,...",
                   help="regions to project (enum); default injected: every query names its regions")
    d.add_argument("--start", metavar="DATE", help="first day projected, YYYY-MM-DD (default: per layout, "
                   "the day the delivery option appeared)")
    d.add_argument("--table", default="vpc_flow_logs", help="table name (default vpc_flow_logs)")
    d.add_argument("--database", metavar="NAME", help="database (schema) to create the table in")

    help = "Run one SQL statement in Athena and print its rows; the scanned bytes and cost go to stderr."
    q = actions.add_parser("query", help=help, description=help, epilog=f"example:\n  {_ATHENA_QUERY_EXAMPLE}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    q.set_defaults(func=cmd_athena_query)
    q.add_argument("query", metavar="SQL", help="one statement (Athena's SQL: Trino for queries, Hive for DDL)")
    q.add_argument("--database", metavar="NAME", help="the query's database (default: none; qualify tables)")
    q.add_argument("--workgroup", metavar="WG", help="Athena workgroup (default: the account's default, primary)")
    q.add_argument("--output-location", metavar="S3_URI",
                   help="where Athena writes result files (required unless the workgroup sets one)")
    q.add_argument("--timeout", type=float, metavar="SECONDS", help="stop the query after this long (default: none)")
    q.add_argument("--profile", metavar="P", help="AWS profile (default: boto3's standard chain)")
    _format_option(q)


def cmd_athena_ddl(args) -> int:
    from flowtools.athena.ddl import ddl

    file_format = args.format or ("parquet" if args.layout == "store" else "text")
    print(ddl(args.location, layout=args.layout, file_format=file_format, fields=args.fields, table=args.table,
              database=args.database, org_id=args.org_id, start=args.start, accounts=args.accounts,
              regions=args.regions) + ";")
    return EXIT_OK


def cmd_athena_query(args) -> int:
    from flowtools import aws
    from flowtools.athena.run import AthenaError, run_query

    session = aws.session(args.profile, AthenaError)
    last: list[str] = []

    def progress(state: str, scanned: int) -> None:
        if state not in last:  # one line per state, not per poll
            last.append(state)
            print(f"athena: {state.lower()} ...", file=sys.stderr)

    result = run_query(args.query, database=args.database, workgroup=args.workgroup,
                       output_location=args.output_location, session=session, timeout=args.timeout,
                       progress=progress)
    output.write_frame(result.frame, args.format, sys.stdout)
    print(result.summary_line(), file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
