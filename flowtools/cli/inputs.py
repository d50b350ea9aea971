"""``flowtools fetch``, ``cache``, ``inventory`` and ``ip-ranges``: bring the inputs home
(S3 objects to a folder or the cache, the AWS inventory, AWS's ip-ranges.json)."""

from __future__ import annotations

import argparse
import sys

from flowtools.cli.parser import EXIT_OK, AddCommand, print_json

EXAMPLES = {
    "inventory": "flowtools inventory inventory/ --profile audit --regions us-east-1,eu-west-1 "
                 "--role-arn arn:aws:iam::123456789012:role/flowtools-audit",
    "ip-ranges": "flowtools ip-ranges update",
    "fetch": "flowtools fetch s3://my-flow-logs/AWSLogs/ flows/ --start -6h --regions eu-west-1",
    "cache": "flowtools cache info",
}


def cmd_inventory(args: argparse.Namespace) -> int:
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


def cmd_ip_ranges(args: argparse.Namespace) -> int:
    from flowtools.enrichment import ip_ranges

    if args.action == "update":
        ranges = ip_ranges.update(url=args.url or ip_ranges.DEFAULT_URL, dest=args.dest)
    else:
        ranges = ip_ranges.IpRanges.load(args.dest) if args.dest else ip_ranges.IpRanges.cached()
    counts = ranges.counts()
    print(f"file        {ranges.source}\nsyncToken   {ranges.sync_token}\ncreateDate  {ranges.create_date}\n"
          f"prefixes    {counts['ipv4']} IPv4, {counts['ipv6']} IPv6; {len(ranges.services())} services")
    return EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    from flowtools.sources.s3 import fetch

    summary = fetch(args.source, args.dest, start=args.start, end=args.end, all=args.all, accounts=args.accounts,
                    regions=args.regions, profile=args.profile)
    print(summary.line(), file=sys.stderr)
    print(args.dest)
    return EXIT_OK


def cmd_cache(args: argparse.Namespace) -> int:
    from flowtools.sources.cache import ObjectCache, human_size

    cache = ObjectCache()
    if args.action == "clear":
        cleared = cache.clear()
        print(f"cache cleared: {cleared.files} file(s), {human_size(cleared.bytes)} removed from {cleared.root}",
              file=sys.stderr)
        return EXIT_OK
    rep = cache.report()
    if args.format == "json":
        print_json(rep.__dict__)
    else:
        sys.stdout.write("\n".join(rep.lines()) + "\n")
    return EXIT_OK


def register(add: AddCommand) -> None:
    """Add ``fetch``, ``cache``, ``inventory`` and ``ip-ranges``."""
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
