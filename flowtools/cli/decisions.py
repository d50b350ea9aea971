"""Command-line forms of the decision analyses: ``diff``, ``watchlist``, ``egress``, ``scanners``.

Registered by :func:`flowtools.cli.build_parser`; they share the source options, output
formats and exit codes of :mod:`flowtools.cli.parser` (``3``: a ``--fail-on`` gate tripped
while the command succeeded).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from flowtools import output
from flowtools.cli.parser import (
    ENGINES,
    EXIT_GATE,
    EXIT_OK,
    AddCommand,
    format_option,
    load,
    load_inventory,
    load_ip_ranges,
    source_options,
)
from flowtools.errors import UsageError

EXAMPLES = {
    "diff": "flowtools diff yesterday.json today.json\n"
            "flowtools diff data/samples --start 2026-11-20T12:00Z --end 2026-11-21 "
            "--inventory data/samples/inventory --fail-on high",
    "watchlist": "flowtools watchlist data/samples --watchlist bad-addresses.txt --inventory data/samples/inventory",
    "egress": "flowtools egress data/samples --inventory data/samples/inventory --ip-ranges data/samples/ip-ranges.json",
    "scanners": "flowtools scanners data/samples --inventory data/samples/inventory",
    "risk-policy": "flowtools risk-policy my-policy.toml",
}


def _frame_rows(frame: Any) -> tuple[list[dict[str, Any]], list[str]]:
    """Execute a small result frame (any engine) into rows and columns."""
    from flowtools.report.figures import collect

    df = collect(frame)
    return output.records(df), df.columns


# -- diff ------------------------------------------------------------------------------------

def cmd_diff(args: argparse.Namespace) -> int:
    from flowtools.analyses import change, risk
    from flowtools.analyses.exposure import findings_records, internet_exposure
    from flowtools.window import Window, iso

    if len(args.inputs) == 2:
        if args.start or args.end or args.since_start or args.since_end:
            raise UsageError("diff A.json B.json compares two saved results: windows go with diff SOURCE "
                             "--start/--end")
        before, after = (change.read_findings(p) for p in args.inputs)
    elif len(args.inputs) == 1:
        window = Window.parse(args.start, args.end)
        if window.start is None or window.end is None:
            raise UsageError("diff SOURCE needs --start and --end (the window to check); the previous window "
                             "defaults to the same length just before it (--since-start/--since-end)")
        since = Window.parse(args.since_start or (window.start - (window.end - window.start)),
                             args.since_end or window.start)
        inventory, ip_ranges = load_inventory(args.inventory), load_ip_ranges(args.ip_ranges)
        frames = []
        for w in (since, window):
            assert w.start is not None and w.end is not None  # both sides given or derived above
            ns = argparse.Namespace(**{**vars(args), "source": args.inputs[0], "start": iso(w.start),
                                       "end": iso(w.end)})
            flows = load(ns)
            frames.append(findings_records(internet_exposure(flows, inventory=inventory, ip_ranges=ip_ranges,
                                                             include_configured=args.include_configured)))
        import polars as pl

        before, after = (pl.DataFrame(f) if f else pl.DataFrame() for f in frames)
        print(f"flowtools diff: {since} -> {window}", file=sys.stderr)
    else:
        raise UsageError("diff takes two saved results (A.json B.json) or one SOURCE with --start/--end")
    rows_df = change.changes(before, after, peers_factor=args.peers_factor)
    rows = output.records(rows_df)
    output.write_rows(rows, list(change.COLUMNS), args.format, sys.stdout)
    counts = {c: sum(1 for r in rows if r["change"] == c) for c in change.CHANGES}
    print("flowtools diff: " + ", ".join(f"{n} {c}" for c, n in counts.items()), file=sys.stderr)
    if args.fail_on:
        levels = risk.at_least(args.fail_on)
        tripped = [r for r in rows if r["change"] in ("new", "changed") and r["risk_after"] in levels]
        if tripped:
            print(f"flowtools diff: --fail-on {args.fail_on}: {len(tripped)} new or changed finding(s) at risk "
                  f"{args.fail_on} or above", file=sys.stderr)
            return EXIT_GATE
    return EXIT_OK


# -- watchlist, egress, scanners ---------------------------------------------------------

def cmd_watchlist(args: argparse.Namespace) -> int:
    from flowtools.analyses.watchlist import Watchlist, watchlist_hits

    wl = Watchlist.load(args.watchlist)
    inventory = load_inventory(args.inventory)
    flows = load(args)
    rows, columns = _frame_rows(watchlist_hits(flows, wl, inventory=inventory))
    output.write_rows(rows, columns, args.format, sys.stdout)
    print(f"flowtools watchlist: {len(rows)} row(s) of traffic with {len({r['listed_address'] for r in rows})} "
          f"listed address(es) of {len(wl)} entries", file=sys.stderr)
    if args.fail_on_hit and rows:
        return EXIT_GATE
    return EXIT_OK


def cmd_egress(args: argparse.Namespace) -> int:
    from flowtools.analyses.egress import egress

    inventory, ip_ranges = load_inventory(args.inventory), load_ip_ranges(args.ip_ranges)
    flows = load(args)
    rows, columns = _frame_rows(egress(flows, inventory=inventory, ip_ranges=ip_ranges))
    output.write_rows(rows, columns, args.format, sys.stdout)
    return EXIT_OK


def cmd_scanners(args: argparse.Namespace) -> int:
    from flowtools.analyses.scanning import scanner_outcomes

    inventory = load_inventory(args.inventory)
    flows = load(args)
    rows, columns = _frame_rows(scanner_outcomes(flows, inventory=inventory, min_ports=args.min_ports,
                                                 min_interfaces=args.min_interfaces))
    output.write_rows(rows, columns, args.format, sys.stdout)
    if args.fail_on_answered and any(r["outcome"] == "answered" for r in rows):
        return EXIT_GATE
    return EXIT_OK


def cmd_risk_policy(args: argparse.Namespace) -> int:
    from flowtools.analyses import risk

    print(risk.load_policy(args.file).describe())
    return EXIT_OK


# -- parser --------------------------------------------------------------------------------

def register(add: AddCommand) -> None:
    """Add ``diff``, ``watchlist``, ``egress``, ``scanners`` and ``risk-policy``."""

    def enrichment(p: argparse._ActionsContainer, *, ip_ranges: bool = True) -> None:
        p.add_argument("--inventory", metavar="PATH", help="folder of AWS CLI describe-* JSON files")
        if ip_ranges:
            p.add_argument("--ip-ranges", metavar="PATH", help="AWS ip-ranges.json")

    p = add("diff", cmd_diff,
            "What changed: new, gone and changed exposure findings between two saved JSON results, or "
            "between a window of SOURCE and the window before it.")
    p.add_argument("inputs", nargs="+", metavar="A.json B.json | SOURCE",
                   help="two saved `flowtools exposure --format json` results, or one SOURCE with --start/--end")
    g = p.add_argument_group("windows (with a SOURCE)")
    g.add_argument("--start", metavar="T", help="the window to check: ISO 8601, a date, or relative (-6h)")
    g.add_argument("--end", metavar="T", help="its end (exclusive)")
    g.add_argument("--since-start", metavar="T", help="the earlier window's start (default: the same length "
                   "just before --start)")
    g.add_argument("--since-end", metavar="T", help="the earlier window's end (default: --start)")
    for name, kw in (("--all", {"action": "store_true", "help": "read an s3:// or cwlogs:// SOURCE whole"}),
                     ("--accounts", {"metavar": "A,...", "help": "only these account ids"}),
                     ("--regions", {"metavar": "R,...", "help": "only these regions"}),
                     ("--log-format", {"metavar": "FORMAT", "help": "field list for files without a header"}),
                     ("--strict", {"action": "store_true", "help": "any bad file or line is an error"}),
                     ("--any-name", {"action": "store_true", "help": "read every file of a folder, whatever its name"}),
                     ("--profile", {"metavar": "P", "help": "AWS profile"}),
                     ("--engine", {"choices": ENGINES, "default": "duckdb", "help": "engine"})):
        g.add_argument(name, **kw)
    g.add_argument("--s3-mode", choices=("auto", "cache", "stream"), default="auto", help=argparse.SUPPRESS)
    enrichment(g)
    g.add_argument("--include-configured", action="store_true", help="compare configured findings too")
    p.add_argument("--peers-factor", type=float, default=2.0, metavar="X",
                   help="peers alone make a change when they grow or shrink by this factor (default 2)")
    p.add_argument("--fail-on", metavar="LEVEL", choices=("critical", "high", "medium", "low"),
                   help="exit 3 when a new or changed finding has this risk or above")
    format_option(p)

    p = add("watchlist", cmd_watchlist,
            "Which interfaces talked to listed addresses and CIDRs: direction, accepted or rejected, bytes, "
            "first and last seen.")
    source_options(p)
    p.add_argument("--watchlist", metavar="FILE", required=True,
                   help="one address or CIDR per line (IPv4 or IPv6), an optional label after it, # comments")
    enrichment(p, ip_ranges=False)
    p.add_argument("--fail-on-hit", action="store_true", help="exit 3 when any listed address was seen")
    format_option(p)

    p = add("egress", cmd_egress,
            "Bytes leaving for the internet per internal source and destination (AWS service and region, or "
            "the rest of the internet); NAT gateway traffic attributed to the instance, counted once.")
    source_options(p)
    enrichment(p)
    format_option(p)

    p = add("scanners", cmd_scanners,
            "Internet sources probing many ports or interfaces, and which of them were accepted and answered "
            "(those first).")
    source_options(p)
    enrichment(p, ip_ranges=False)
    p.add_argument("--min-ports", type=int, default=5, metavar="N", help="a scanner probed >= N ports (default 5)")
    p.add_argument("--min-interfaces", type=int, default=3, metavar="N",
                   help="... or >= N interfaces (default 3)")
    p.add_argument("--fail-on-answered", action="store_true", help="exit 3 when any scanner got an answer")
    format_option(p)

    p = add("risk-policy", cmd_risk_policy,
            "Show the risk policy of exposure findings: the built-in one, or a TOML file laid over it.")
    p.add_argument("file", metavar="FILE", nargs="?", help="a policy file (same shape as the built-in one)")
