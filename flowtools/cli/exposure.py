"""``flowtools exposure`` and ``report``: what the internet really reaches, as rows (with
the risk filters and the ``--fail-on`` gate) or as the notebook's HTML report."""

from __future__ import annotations

import argparse
import os
import sys

from flowtools.cli.parser import (
    EXIT_OK,
    AddCommand,
    findings_decisions,
    findings_options,
    format_option,
    load,
    load_inventory,
    load_ip_ranges,
    source_options,
    write_findings,
)
from flowtools.errors import FlowtoolsError, UsageError

EXAMPLES = {
    "exposure": "flowtools exposure data/samples --inventory data/samples/inventory --format json",
    "report": "flowtools report data/samples --inventory data/samples/inventory "
              "--ip-ranges data/samples/ip-ranges.json --out out/exposure-report.html",
}


def cmd_exposure(args: argparse.Namespace) -> int:
    from flowtools.analyses import risk
    from flowtools.analyses.exposure import internet_exposure

    decisions = findings_decisions(args)
    policy = risk.load_policy(args.risk_policy)
    inventory = load_inventory(args.inventory)
    ip_ranges = load_ip_ranges(args.ip_ranges)
    if args.include_configured and (inventory is None or inventory.security_groups.height == 0):
        print("warning: --include-configured needs security groups in --inventory "
              "(<account>-<region>-describe-security-groups.json); none given", file=sys.stderr)
    flows = load(args)
    frame = internet_exposure(flows, inventory=inventory, method=args.method,
                              include_configured=args.include_configured, ip_ranges=ip_ranges, risk_policy=policy)
    return write_findings(frame, decisions, args.format, "flowtools exposure")


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
    findings_options(p)
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
