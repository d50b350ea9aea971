"""``flowtools exposure`` and ``report``: what the internet really reaches, as rows (with
the risk filters and the ``--fail-on`` gate) or as the notebook's HTML report."""

from __future__ import annotations

import argparse
import os
import sys

from flowtools import output
from flowtools.cli.parser import (
    EXIT_GATE,
    EXIT_OK,
    AddCommand,
    format_option,
    load,
    load_inventory,
    load_ip_ranges,
    source_options,
)
from flowtools.errors import FlowtoolsError, UsageError
from flowtools.options import comma_list

EXAMPLES = {
    "exposure": "flowtools exposure data/samples --inventory data/samples/inventory --format json",
    "report": "flowtools report data/samples --inventory data/samples/inventory "
              "--ip-ranges data/samples/ip-ranges.json --out out/exposure-report.html",
}


def cmd_exposure(args: argparse.Namespace) -> int:
    from flowtools.analyses import risk
    from flowtools.analyses.exposure import findings_records, internet_exposure

    policy = risk.load_policy(args.risk_policy)
    statuses = comma_list(args.status)
    levels = comma_list(args.risk)
    ports = risk.parse_ports(args.ports) if args.ports else None
    gate = risk.at_least(args.fail_on) if args.fail_on else None
    inventory = load_inventory(args.inventory)
    ip_ranges = load_ip_ranges(args.ip_ranges)
    if args.include_configured and (inventory is None or inventory.security_groups.height == 0):
        print("warning: --include-configured needs security groups in --inventory "
              "(<account>-<region>-describe-security-groups.json); none given", file=sys.stderr)
    flows = load(args)
    frame = internet_exposure(flows, inventory=inventory, method=args.method,
                              include_configured=args.include_configured, ip_ranges=ip_ranges, risk_policy=policy)
    frame = risk.select(frame, status=statuses, risk=levels, ports=ports)
    rows = findings_records(frame)
    cols = output.columns_of(rows) or EXPOSURE_COLUMNS
    if args.format == "table":  # a configured rule's port range as one cell: 8000-8100
        shown = [{**r, "port": f"{r['port']}-{r['port_to']}"} if r.get("port_to") not in (None, r.get("port"))
                 else r for r in rows]
        output.write_table(shown, [c for c in EXPOSURE_TABLE if c in cols], sys.stdout, max_cell=22)
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


#: The columns of an empty result (a non-empty one has its own).
EXPOSURE_COLUMNS = [
    "account_id", "region", "vpc_id", "interface_id", "instance_id", "resource_name", "interface_type",
    "local_ip", "port", "port_to", "protocol", "status", "sg_open", "peers", "connections", "bytes_in",
    "bytes_out", "first_seen", "last_seen", "confidence", "evidence", "sample_peers", "risk",
]
#: The table for people: what, where, how sure; columns that do not fit the terminal are
#: dropped from the right (the footer says so).
EXPOSURE_TABLE = ["risk", "status", "interface_id", "resource_name", "protocol", "port", "peers", "confidence",
                  "connections", "sg_open", "local_ip"]


def cmd_report(args: argparse.Namespace) -> int:
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

    # The notebook runs in the report's folder: local paths become absolute.
    def local(path: str | None, error: type[FlowtoolsError], what: str) -> str | None:
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


def register(add: AddCommand) -> None:
    """Add ``exposure`` and ``report``."""
    p = add("exposure", cmd_exposure, "What the internet really reaches: exposed, reachable and blocked ports.")
    source_options(p)
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
    format_option(p)

    p = add("report", cmd_report,
            "Run the internet-exposure notebook on SOURCE and write one self-contained HTML report.")
    source_options(p)
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
