"""Object keys <-> partitions, and pruning by time window.

Works on key listings (key relative to SOURCE, size), never on a file system, so the
same code serves local folders, S3 listings and caches.

AWS delivers flow logs to S3 under an optional ``bucket/prefix/``, as
``AWSLogs/[{org-id}/]{account}/vpcflowlogs/{region}/{yyyy}/{MM}/{dd}/[{HH}/]`` (daily or
per-hour) or, Hive-compatible, ``AWSLogs/[{org-id}/]aws-account-id={account}/
aws-service=vpcflowlogs/aws-region={region}/year={yyyy}/month={MM}/day={dd}/[hour={HH}/]``.
File names carry the 5-minute batch time:
``{account}_vpcflowlogs_{region}_{flow-log-id}_{YYYYMMDDTHHmmZ}_{hash}.log.gz`` (or
``.log.parquet``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from flowtools.window import Window

#: Records in a file are batched by their ``end`` time in 5-minute batches.
BATCH = timedelta(minutes=5)
#: The slack pruning allows on each side of the window: an aggregation interval of up to
#: 10 minutes (a record's start precedes its end by up to 600 s) plus one batch of late
#: delivery (5 minutes). A file whose 5-minute batch lies further than this from the
#: window cannot hold a record overlapping it.
PRUNE_SLACK = timedelta(minutes=15)

FILE_NAME = re.compile(
    r"^(?P<account>[^_/]+)_vpcflowlogs_(?P<region>[a-z0-9-]+)_(?P<flow_log_id>fl-[0-9A-Za-z]+)_"
    r"(?P<ts>\d{8}T\d{4}Z)_(?P<hash>[0-9A-Za-z]+)\.log\.(?P<ext>gz|parquet)$"
)
#: CloudWatch Logs exports to S3 (CreateExportTask): ``[prefix/]{task-id}/{log-stream}/000000.gz``,
#: each line an event's ISO timestamp and message, no header (the format must be given).
CWL_EXPORT_KEY = re.compile(
    r"(?:^|/)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/(?P<stream>[^/]+)/\d{6}\.gz$"
)
_ORG = re.compile(r"^o-[a-z0-9]{10,32}$")
_ACCOUNT = re.compile(r"^(\d{12}|unknown)$")
_DAILY = re.compile(
    r"^(?P<account>\d{12})/vpcflowlogs/(?P<region>[a-z0-9-]+)/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})"
    r"(?:/(?P<h>\d{2}))?$"
)
_HIVE = re.compile(
    r"^aws-account-id=(?P<account>\d{12})/aws-service=vpcflowlogs/aws-region=(?P<region>[a-z0-9-]+)/"
    r"year=(?P<y>\d{4})/month=(?P<m>\d{2})/day=(?P<d>\d{2})(?:/hour=(?P<h>\d{2}))?$"
)

Layout = Literal["daily", "hourly", "hive", "hive-hourly", "cwlogs-export"]
#: How an object is read: text (``.log.gz``, header line first; CloudWatch exports without
#: one), Parquet, or a CloudWatch Logs stream (text lines without a header).
Format = Literal["text", "parquet", "cloudwatch"]


@dataclass(frozen=True)
class ObjectInfo:
    """One listed object: key relative to SOURCE, size in bytes, optional ETag."""

    key: str
    size: int = 0
    etag: str | None = None


@dataclass(frozen=True)
class FlowLogObject:
    """A flow-log object and what its key says about it."""

    key: str
    size: int
    format: Format
    layout: Layout | None  # None: the folders follow no known layout
    account_id: str | None  # from the partition path, else the file name
    region: str | None
    flow_log_id: str | None
    file_time: datetime | None  # start of the 5-minute batch, from the file name
    partition_start: datetime | None  # start of the day / hour partition
    partition_span: timedelta | None
    org_id: str | None = None
    prefix: str = ""  # what precedes AWSLogs/ (a user prefix)
    etag: str | None = None
    #: The field list when it is known from outside the object (CloudWatch Logs streams:
    #: DescribeFlowLogs or --log-format); None: from the header line or Parquet schema.
    fields: tuple[str, ...] | None = None

    def may_overlap(self, window: Window) -> bool:
        """Whether this object can hold records overlapping ``window`` (with PRUNE_SLACK)."""
        if window.is_open:
            return True
        if self.partition_start is not None and self.partition_span is not None:
            if not window.overlaps(
                self.partition_start, self.partition_start + self.partition_span + BATCH,
                slack=PRUNE_SLACK,
            ):
                return False
        if self.file_time is not None:
            return window.overlaps(self.file_time, self.file_time + BATCH, slack=PRUNE_SLACK)
        return True


def _parse_ts(ts: str) -> datetime:
    return datetime.strptime(ts, "%Y%m%dT%H%MZ").replace(tzinfo=UTC)


def parse_key(key: str, size: int = 0, etag: str | None = None, *, any_name: bool = False) -> FlowLogObject | None:
    """Parse an object key (relative to SOURCE) into a :class:`FlowLogObject`.

    Returns ``None`` when the file name is not a flow-log name (nor a CloudWatch Logs
    export object, :data:`CWL_EXPORT_KEY`), unless ``any_name`` (a SOURCE that is one file
    is read whatever its name).
    """
    parts = key.split("/")
    name = parts[-1]
    m = FILE_NAME.match(name)
    if m is None and not any_name:
        if CWL_EXPORT_KEY.search(key):
            return FlowLogObject(key=key, size=size, format="text", layout="cwlogs-export", account_id=None,
                                 region=None, flow_log_id=None, file_time=None, partition_start=None,
                                 partition_span=None, etag=etag)
        return None
    fmt: Format = "parquet" if name.endswith(".parquet") else "text"
    account = region = flow_log_id = None
    file_time = None
    if m is not None:
        account, region, flow_log_id = m["account"], m["region"], m["flow_log_id"]
        try:
            file_time = _parse_ts(m["ts"])
        except ValueError:
            file_time = None
    layout: Layout | None = None
    partition_start = partition_span = None
    org_id = None
    prefix = ""
    dirs = parts[:-1]
    if "AWSLogs" in dirs:
        i = len(dirs) - 1 - dirs[::-1].index("AWSLogs")
        prefix = "/".join(dirs[:i])
        rest = dirs[i + 1 :]
        if rest and _ORG.match(rest[0]) and not _ACCOUNT.match(rest[0]):
            org_id, rest = rest[0], rest[1:]
        tail = "/".join(rest)
        pm = _DAILY.match(tail)
        hive = False
        if pm is None:
            pm = _HIVE.match(tail)
            hive = pm is not None
        if pm is not None:
            try:
                hour = int(pm["h"]) if pm["h"] is not None else None
                partition_start = datetime(int(pm["y"]), int(pm["m"]), int(pm["d"]), hour or 0, tzinfo=UTC)
                partition_span = timedelta(hours=1) if hour is not None else timedelta(days=1)
                layout = ("hive" if hive else "daily") if hour is None else ("hive-hourly" if hive else "hourly")
                account, region = pm["account"], pm["region"]
            except ValueError:  # impossible date such as 2026/02/31: not a partition
                partition_start = partition_span = layout = None
    return FlowLogObject(
        key=key, size=size, format=fmt, layout=layout, account_id=account, region=region,
        flow_log_id=flow_log_id, file_time=file_time, partition_start=partition_start,
        partition_span=partition_span, org_id=org_id, prefix=prefix, etag=etag,
    )


def discover(listing: Iterable[ObjectInfo]) -> list[FlowLogObject]:
    """Keep the flow-log objects of a listing (by file name), parsed, in key order."""
    found = []
    for info in listing:
        obj = parse_key(info.key, info.size, info.etag)
        if obj is not None:
            found.append(obj)
    found.sort(key=lambda o: o.key)
    return found


def select(
    objects: Iterable[FlowLogObject],
    window: Window,
    *,
    accounts: Iterable[str] | None = None,
    regions: Iterable[str] | None = None,
) -> tuple[list[FlowLogObject], list[FlowLogObject]]:
    """Split objects into (kept, pruned) by window, accounts and regions."""
    accts = set(accounts) if accounts else None
    regs = set(regions) if regions else None
    kept, pruned = [], []
    for o in objects:
        ok = o.may_overlap(window)
        if ok and accts is not None and o.account_id is not None and o.account_id not in accts:
            ok = False
        if ok and regs is not None and o.region is not None and o.region not in regs:
            ok = False
        (kept if ok else pruned).append(o)
    return kept, pruned


def partition_prefixes(window: Window, *, hourly: bool) -> list[tuple[datetime, str, str]]:
    """Day (or hour) partitions that can hold files for a bounded window.

    Returns ``(partition_start, plain_suffix, hive_suffix)`` such as
    ``(2026-11-20T10:00Z, "2026/11/20/10/", "year=2026/month=11/day=20/hour=10/")``;
    used to list only the partitions of a window.
    """
    if window.start is None or window.end is None:
        raise ValueError("partition_prefixes needs a bounded window")
    step = timedelta(hours=1) if hourly else timedelta(days=1)
    lo = window.start - PRUNE_SLACK - BATCH
    hi = window.end + PRUNE_SLACK
    t = lo.replace(minute=0, second=0, microsecond=0)
    if not hourly:
        t = t.replace(hour=0)
    out = []
    while t < hi:
        plain = t.strftime("%Y/%m/%d/") + (t.strftime("%H/") if hourly else "")
        hive = t.strftime("year=%Y/month=%m/day=%d/") + (t.strftime("hour=%H/") if hourly else "")
        out.append((t, plain, hive))
        t += step
    return out
