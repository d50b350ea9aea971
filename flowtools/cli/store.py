"""``flowtools store build|info``: the hourly partition store, built from a SOURCE, and
what it holds."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flowtools.cli.parser import EXIT_OK, AddCommand, Parser, print_json, source_options

EXAMPLES = {
    "store": "flowtools store build s3://my-flow-logs/AWSLogs/ /data/flowstore --start -2d\n"
             "  flowtools store info /data/flowstore",
}


def register(add: AddCommand) -> None:
    """``flowtools store build SOURCE STORE`` and ``flowtools store info STORE``."""
    p = add("store", cmd_store, "The hourly partition store: build it from a SOURCE, or show what it holds.")
    actions = p.add_subparsers(dest="action", metavar="ACTION", parser_class=Parser)
    actions.required = True
    b = actions.add_parser("build", help="read the SOURCE's new or changed objects of the window into STORE",
                           description="Read the flow-log objects of SOURCE (for the window) that the store does "
                                       "not hold yet, or that changed, into STORE: hourly Parquet partitions "
                                       "plus a manifest. A second build of the same store waits for the first.")
    source_options(b, engine=False)
    b.add_argument("store", metavar="STORE", nargs="?",
                   help="store folder or s3://bucket/prefix (default $FLOWTOOLS_STORE, else the SOURCE's own store under "
                        "<cache dir>/store/, the one every command reading SOURCE uses)")
    b.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")
    i = actions.add_parser("info", help="partitions, records, source objects and bytes of STORE")
    i.add_argument("store", metavar="STORE", nargs="?",
                   help="store folder, or a SOURCE whose default store to show (default $FLOWTOOLS_STORE)")
    i.add_argument("--format", choices=("table", "json"), default="table", help="output format (default table)")


def cmd_store(args: argparse.Namespace) -> int:
    from flowtools.sources.cache import human_size
    from flowtools.store import PartitionStore, build

    if args.action == "build":
        result = build(args.source, args.store, start=args.start, end=args.end, all=args.all,
                       accounts=args.accounts, regions=args.regions, strict=args.strict,
                       log_format=args.log_format, profile=args.profile, s3_mode=args.s3_mode,
                       on_wait=lambda holder: print(f"flowtools: waiting for the store lock ({holder})",
                                                    file=sys.stderr))
        report = result.report
        assert report is not None  # build() always reports
        for line in report.warning_lines():
            print(line, file=sys.stderr)
        print(result.line(), file=sys.stderr)
        if args.format == "json":
            out = {k: v for k, v in result.__dict__.items() if k not in ("report", "partitions")}
            out["partitions"] = sorted(result.partitions)
            out["report"] = report.to_dict()
            print_json(out)
        else:
            print(result.root)
        return EXIT_OK
    from flowtools.store.core import default_root

    root = args.store
    if root is not None and "://" not in root and discover_any(root):  # a local SOURCE: its default store
        root = default_root(root)
    info = PartitionStore(root).info()
    if args.format == "json":
        print_json(info)
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
