"""What every command shares: exit codes, the parser (usage errors exit 2; ``--start -6h``
read as a value), the options of a command that reads a SOURCE, and loading it.

A command module registers its commands with an :data:`AddCommand` (``add(name, func,
help)``, made by :func:`flowtools.cli.build_parser`) and imports only this module from
the command line: the command modules do not import each other.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
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


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, one trailing newline."""
    import json

    json.dump(value, sys.stdout, indent=2)
    sys.stdout.write("\n")
