"""``flowtools athena ddl|query``: tables with partition projection for flow logs in S3,
and SQL run in Athena."""

from __future__ import annotations

import argparse
import sys

from flowtools import output
from flowtools.cli.parser import EXIT_OK, Parser, format_option

EXAMPLES = {
    "athena": "flowtools athena ddl --location s3://my-flow-logs/ --layout hourly --format parquet "
              "--accounts 111122223333 --regions us-east-1,eu-west-1 --start 2026-01-01 --database flows",
}
QUERY_EXAMPLE = ("flowtools athena query \"SELECT action, count(*) AS n FROM vpc_flow_logs "
                 "WHERE p_date = '2026/11/20' GROUP BY action\" --database flows "
                 "--output-location s3://my-athena-results/")


def register(sub: argparse._SubParsersAction[Parser]) -> None:
    """Add ``athena`` with its actions ``ddl`` and ``query`` to the subcommands ``sub`` (its
    own epilog: no :data:`~flowtools.cli.parser.AddCommand`)."""
    from flowtools.athena.ddl import LAYOUTS

    help = "Athena: CREATE TABLE statements for flow logs in S3 (ddl) and SQL run in Athena (query)."
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
