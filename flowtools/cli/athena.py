"""``flowtools athena ddl|query|exposure``: tables with partition projection for flow logs
in S3, SQL run in Athena, and the exposure analysis run in Athena."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from flowtools import output
from flowtools.cli.parser import (
    EXIT_OK,
    Parser,
    findings_decisions,
    findings_options,
    format_option,
    load_inventory,
    load_ip_ranges,
    write_findings,
)

EXAMPLES = {
    "athena": "flowtools athena ddl --location s3://my-flow-logs/ --layout hourly --format parquet "
              "--accounts 111122223333 --regions us-east-1,eu-west-1 --start 2026-01-01 --database flows",
}
QUERY_EXAMPLE = ("flowtools athena query \"SELECT action, count(*) AS n FROM vpc_flow_logs "
                 "WHERE p_date = '2026/11/20' GROUP BY action\" --database flows "
                 "--output-location s3://my-athena-results/")
EXPOSURE_EXAMPLE = ("flowtools athena exposure --database flows --table vpc_flow_logs --layout hourly "
                    "--start 2026-11-20 --end 2026-11-21 --inventory inventory/ --output-location "
                    "s3://my-athena-results/ --format json")


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add ``athena`` with its actions ``ddl``, ``query`` and ``exposure`` to the subcommands ``sub`` (its
    own epilog: no :data:`~flowtools.cli.parser.AddCommand`)."""
    from flowtools.athena.ddl import LAYOUTS

    help = ("Athena: CREATE TABLE statements for flow logs in S3 (ddl), SQL run in Athena (query), the "
            "exposure analysis run in Athena (exposure).")
    p = sub.add_parser("athena", help=help, description=help, epilog=f"example:\n  {EXAMPLES['athena']}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="athena_command", metavar="ACTION", parser_class=Parser)
    actions.required = True

    help = ("Print a CREATE EXTERNAL TABLE statement with partition projection for flow logs delivered "
            "to S3 in LAYOUT (or for flowtools' partition store); nothing is sent to AWS.")
    d = actions.add_parser("ddl", help=help, description=help, epilog=f"example:\n  {EXAMPLES['athena']}",
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
    q = actions.add_parser("query", help=help, description=help, epilog=f"example:\n  {QUERY_EXAMPLE}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    q.set_defaults(func=cmd_athena_query)
    q.add_argument("query", metavar="SQL", help="one statement (Athena's SQL: Trino for queries, Hive for DDL)")
    q.add_argument("--database", metavar="NAME", help="the query's database (default: none; qualify tables)")
    q.add_argument("--workgroup", metavar="WG", help="Athena workgroup (default: the account's default, primary)")
    q.add_argument("--output-location", metavar="S3_URI",
                   help="where Athena writes result files (required unless the workgroup sets one)")
    q.add_argument("--timeout", type=float, metavar="SECONDS", help="stop the query after this long (default: none)")
    q.add_argument("--profile", metavar="P", help="AWS profile (default: boto3's standard chain)")
    format_option(q)

    help = ("What the internet really reaches, computed in Athena over a flow-log table (one `athena ddl` "
            "declares): SQL generated from the exposure analysis, two or three queries; findings as "
            "`flowtools exposure` prints them, the scanned bytes and cost on stderr.")
    e = actions.add_parser("exposure", help=help, description=help, epilog=f"example:\n  {EXPOSURE_EXAMPLE}",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    e.set_defaults(func=cmd_athena_exposure)
    g = e.add_argument_group("the table")
    g.add_argument("--database", metavar="NAME", help="the table's database (default: the workgroup's context)")
    g.add_argument("--table", default="vpc_flow_logs", help="table name (default vpc_flow_logs)")
    g.add_argument("--layout", choices=LAYOUTS, default="store",
                   help="the layout the table was declared for (`athena ddl --layout`; default store)")
    g.add_argument("--file-format", choices=("text", "parquet"), default=None,
                   help="its file format (`athena ddl --format`; default text, parquet for --layout store)")
    g.add_argument("--fields", metavar="FORMAT", help="its fields (`athena ddl --fields`; raw layouts)")
    g.add_argument("--start", metavar="T", help="window start: ISO 8601, a date, or relative (-6h); prunes the "
                   "partitions (default: every record, which injected projections refuse)")
    g.add_argument("--end", metavar="T", help="window end (exclusive), same forms as --start")
    g = e.add_argument_group("Athena")
    g.add_argument("--workgroup", metavar="WG", help="Athena workgroup (default: the account's default, primary)")
    g.add_argument("--output-location", metavar="S3_URI",
                   help="where Athena writes result files (required unless the workgroup sets one)")
    g.add_argument("--staging-location", metavar="S3_URI",
                   help="where long side tables are staged for the query, then deleted (default: "
                        "OUTPUT_LOCATION/flowtools-staging/; without either every side table is inlined)")
    g.add_argument("--timeout", type=float, metavar="SECONDS", help="stop a query after this long (default: none)")
    g.add_argument("--profile", metavar="P", help="AWS profile (default: boto3's standard chain)")
    e.add_argument("--inventory", metavar="PATH", help="folder of AWS CLI describe-* JSON files")
    e.add_argument("--ip-ranges", metavar="PATH", help="AWS ip-ranges.json")
    findings_options(e)
    format_option(e)


def _progress() -> Callable[[str, int], None]:
    """A ``run_query`` progress callback: one stderr line per state a query enters."""
    last: list[str] = []

    def progress(state: str, scanned: int) -> None:
        if not last or last[-1] != state:  # a line per state, not per poll
            last.append(state)
            print(f"athena: {state.lower()} ...", file=sys.stderr)
    return progress


def cmd_athena_ddl(args: argparse.Namespace) -> int:
    from flowtools.athena.ddl import ddl

    file_format = args.format or ("parquet" if args.layout == "store" else "text")
    print(ddl(args.location, layout=args.layout, file_format=file_format, fields=args.fields, table=args.table,
              database=args.database, org_id=args.org_id, start=args.start, accounts=args.accounts,
              regions=args.regions) + ";")
    return EXIT_OK


def cmd_athena_query(args: argparse.Namespace) -> int:
    from flowtools import aws
    from flowtools.athena.run import AthenaError, run_query

    session = aws.session(args.profile, AthenaError)
    result = run_query(args.query, database=args.database, workgroup=args.workgroup,
                       output_location=args.output_location, session=session, timeout=args.timeout,
                       progress=_progress())
    output.write_frame(result.frame, args.format, sys.stdout)
    print(result.summary_line(), file=sys.stderr)
    return EXIT_OK


def cmd_athena_exposure(args: argparse.Namespace) -> int:
    from flowtools import aws
    from flowtools.analyses import risk
    from flowtools.athena.exposure import exposure
    from flowtools.athena.run import PRICE_USD_PER_TB, AthenaError
    from flowtools.errors import UsageError
    from flowtools.window import Window

    decisions = findings_decisions(args)
    policy = risk.load_policy(args.risk_policy)
    window = Window.parse(args.start, args.end)
    if args.layout == "store" and args.file_format == "text":
        raise UsageError("--layout store: the store is Parquet only (drop --file-format text)")
    inventory = load_inventory(args.inventory)
    ip_ranges = load_ip_ranges(args.ip_ranges)
    session = aws.session(args.profile, AthenaError)
    print(f"athena exposure: {args.database + '.' if args.database else ''}{args.table} ({args.layout}), window "
          f"{'everything' if window.is_open else window} ...", file=sys.stderr)
    result = exposure(database=args.database, table=args.table, layout=args.layout, file_format=args.file_format,
                      fields=args.fields, window=None if window.is_open else window, workgroup=args.workgroup,
                      output_location=args.output_location, staging_location=args.staging_location,
                      session=session, timeout=args.timeout, progress=_progress(), inventory=inventory,
                      method=args.method, include_configured=args.include_configured, ip_ranges=ip_ranges,
                      risk_policy=policy)
    for r in result.results:
        print(r.summary_line(), file=sys.stderr)
    print(f"athena exposure: {result.findings.height} finding(s) from {len(result.results)} queries; scanned "
          f"{result.data_scanned_bytes:,} bytes in all, ~USD {result.cost_usd:.4f} at USD {PRICE_USD_PER_TB:.2f}/TB",
          file=sys.stderr)
    return write_findings(result.findings, decisions, args.format, "flowtools athena exposure")
