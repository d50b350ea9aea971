"""What every command shares: exit codes, the parser (usage errors exit 2; ``--start -6h``
read as a value), the options of a command that reads a SOURCE, and loading it; the
options and output of the exposure findings (``exposure``, ``athena exposure``).

A command module registers its commands with an :data:`AddCommand` (``add(name, func,
help)``, made by :func:`flowtools.cli.build_parser`) and imports only this module from
the command line: the command modules do not import each other.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from flowtools import output

if TYPE_CHECKING:
    from flowtools.enrichment.inventory import Inventory
    from flowtools.enrichment.ip_ranges import IpRanges
    from flowtools.flows import Engine, Flows

#: 0 success (warnings allowed), 1 a data or AWS error, 2 a usage error, 3 a ``--fail-on``
#: gate tripped (the command itself succeeded).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_GATE = 0, 1, 2, 3

#: A command: parsed arguments in, exit code out.
Command = Callable[[argparse.Namespace], int]
#: ``add(name, func, help)``: a subcommand with its description and example (see
#: :func:`flowtools.cli.build_parser`).
AddCommand = Callable[[str, Command, str], argparse.ArgumentParser]

#: Options whose value may be a relative time (``-6h``), which argparse takes for an option.
TIME_OPTIONS = frozenset({"--start", "--end"})
#: The engines `--engine` offers (spark: the flowtools[spark] extra and Java 17).
ENGINES = ("duckdb", "polars", "spark")
#: A value, never an option: no flowtools option starts with a digit (``-6h``, ``-1.5h``, ``-.5d``).
DASH_DIGIT = re.compile(r"^-\.?\d")


def join_time_values(argv: Sequence[str]) -> list[str]:
    """``--start -6h`` -> ``--start=-6h`` (likewise ``--end``), so that argparse reads a
    relative time as the option's value; anything after ``--`` is left alone. A bad value
    (``--start -6x``) is then reported by the time parser as a bad time value."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--":
            return out + list(argv[i:])
        if a in TIME_OPTIONS and i + 1 < len(argv) and DASH_DIGIT.match(argv[i + 1]):
            out.append(f"{a}={argv[i + 1]}")
            i += 2
            continue
        out.append(a)
        i += 1
    return out


class Parser(argparse.ArgumentParser):
    """The parser of flowtools and of each subcommand: relative times are option values
    (:func:`join_time_values`), a usage error exits 2 after the usage line."""

    def parse_known_args(  # type: ignore[override]  # argparse's overloads; same behaviour
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None,
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = sys.argv[1:] if args is None else args
        return super().parse_known_args(join_time_values(argv), namespace)

    def error(self, message: str) -> NoReturn:  # usage errors: exit 2 with the usage line
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def source_options(p: argparse.ArgumentParser, *, engine: bool = True) -> None:
    """SOURCE and the options that choose what of it is read (window, accounts, regions,
    format, strictness, AWS profile, S3 mode) and, with ``engine``, ``--engine``."""
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
        g.add_argument("--engine", choices=ENGINES, default="duckdb",
                       help="engine (default duckdb; spark: the flowtools[spark] extra and Java 17)")


def format_option(p: argparse.ArgumentParser, default: str = "table",
                  choices: Sequence[str] = output.FORMATS) -> None:
    """``--format`` (default ``table``; choices default table, csv, json)."""
    p.add_argument("--format", choices=choices, default=default, help=f"output format (default {default})")


def load(args: argparse.Namespace, engine: Engine | None = None) -> Flows:
    """Load the SOURCE the :func:`source_options` of ``args`` describe (engine: ``engine``,
    else ``--engine``, else DuckDB); the read report's warnings and its one summary line
    (with the store's, when one served the read) go to stderr."""
    from flowtools.flows import load as load_flows

    chosen: Engine = engine or (args.engine if "engine" in args else "duckdb")
    flows = load_flows(
        args.source, start=args.start, end=args.end, engine=chosen,
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


def load_inventory(path: str | None) -> Inventory | None:
    """``--inventory PATH`` loaded (errors name the file); None without the option."""
    if not path:
        return None
    from flowtools.enrichment.inventory import Inventory

    return Inventory.load(path)


def load_ip_ranges(path: str | None) -> IpRanges | None:
    """``--ip-ranges PATH`` loaded (errors name the file); None without the option."""
    if not path:
        return None
    from flowtools.enrichment.ip_ranges import IpRanges

    return IpRanges.load(path)


def findings_options(p: argparse.ArgumentParser) -> None:
    """The exposure analysis's options (``--method``, ``--include-configured``) and the
    decisions on its findings (risk policy, filters, ``--fail-on``): see :func:`write_findings`."""
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


@dataclass(frozen=True)
class FindingsDecisions:
    """The :func:`findings_options` decisions, parsed (bad values fail before any work)."""

    status: list[str] | None
    risk: list[str] | None
    ports: list[tuple[int, int]] | None
    gate: tuple[str, ...] | None
    fail_on: str | None


def findings_decisions(args: argparse.Namespace) -> FindingsDecisions:
    """``--status``, ``--risk``, ``--ports`` and ``--fail-on`` of ``args``, checked."""
    from flowtools.analyses import risk
    from flowtools.options import comma_list

    return FindingsDecisions(status=comma_list(args.status), risk=comma_list(args.risk),
                             ports=risk.parse_ports(args.ports) if args.ports else None,
                             gate=risk.at_least(args.fail_on) if args.fail_on else None, fail_on=args.fail_on)


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


def write_findings(frame: Any, decisions: FindingsDecisions, fmt: str, prog: str) -> int:
    """Exposure findings (``internet_exposure``'s frame, any engine) filtered by
    ``decisions`` and printed in ``fmt`` (the exposure output contract: table, csv, json);
    returns :data:`EXIT_GATE` when ``--fail-on`` trips (the first finding named on stderr
    after ``prog``), else :data:`EXIT_OK`."""
    from flowtools.analyses import risk
    from flowtools.analyses.exposure import findings_records

    frame = risk.select(frame, status=decisions.status, risk=decisions.risk, ports=decisions.ports)
    rows = findings_records(frame)
    cols = output.columns_of(rows) or EXPOSURE_COLUMNS
    if fmt == "table":  # a configured rule's port range as one cell: 8000-8100
        shown = [{**r, "port": f"{r['port']}-{r['port_to']}"} if r.get("port_to") not in (None, r.get("port"))
                 else r for r in rows]
        output.write_table(shown, [c for c in EXPOSURE_TABLE if c in cols], sys.stdout, max_cell=22)
    else:
        output.write_rows(rows, cols, fmt, sys.stdout)
    if decisions.gate is not None:
        tripped = [r for r in rows if r["risk"] in decisions.gate]
        if tripped:
            worst = min(tripped, key=lambda r: risk.LEVELS.index(r["risk"]))
            print(f"{prog}: --fail-on {decisions.fail_on}: {len(tripped)} finding(s) at risk {decisions.fail_on} "
                  f"or above (first: {worst['risk']} {worst['status']} {worst['protocol']}/{worst['port']} on "
                  f"{worst['interface_id']})", file=sys.stderr)
            return EXIT_GATE
    return EXIT_OK


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, one trailing newline."""
    import json

    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")
