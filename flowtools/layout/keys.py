"""The key grammar: an object key <-> its partition, and what a window may hold.

Works on keys (relative to SOURCE), never on a file system, so the same code serves
local folders, S3 listings and caches.

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from flowtools.aws_names import ACCOUNT_ID, ORGANIZATION_ID, REGION_NAME
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


# -- the key grammar: one folder at a time ---------------------------------------------------

#: What a folder of a flow-log key is, in the order AWS nests them: user prefix folders,
#: ``AWSLogs``, the optional organisation, account, service (``vpcflowlogs``), region, then
#: year, month, day and (per-hour delivery) hour.
Level = Literal["prefix", "awslogs", "org", "account", "service", "region", "year", "month", "day", "hour"]
#: The levels that may follow each level (``None``: the top of the bucket or SOURCE).
NEXT_LEVELS: dict[Level | None, tuple[Level, ...]] = {
    None: ("prefix", "awslogs"), "prefix": ("prefix", "awslogs"), "awslogs": ("org", "account"),
    "org": ("account",), "account": ("service",), "service": ("region",), "region": ("year",),
    "year": ("month",), "month": ("day",), "day": ("hour",), "hour": (),
}
#: The Hive key of each level of the Hive-compatible layout (``aws-account-id=123456789012``);
#: the layout is Hive from the account folder down, or not at all.
HIVE_KEYS: dict[Level, str] = {"account": "aws-account-id", "service": "aws-service", "region": "aws-region",
                               "year": "year", "month": "month", "day": "day", "hour": "hour"}
SERVICE = "vpcflowlogs"
AWSLOGS = "AWSLogs"
_YEAR = re.compile(r"^\d{4}$")
_TWO_DIGITS = re.compile(r"^\d{2}$")
_VALUE: dict[Level, re.Pattern[str]] = {"org": ORGANIZATION_ID, "account": ACCOUNT_ID, "region": REGION_NAME,
                                        "year": _YEAR, "month": _TWO_DIGITS, "day": _TWO_DIGITS,
                                        "hour": _TWO_DIGITS}


@dataclass(frozen=True)
class Segment:
    """One folder of a key, parsed: its level, its value (without the Hive key: the account
    id, the region, ``2026``...) and whether it is written the Hive way."""

    level: Level
    value: str
    hive: bool = False

    @property
    def name(self) -> str:
        """The folder name: ``eu-west-1``, or ``aws-region=eu-west-1`` when Hive."""
        return f"{HIVE_KEYS[self.level]}={self.value}" if self.hive else self.value


def next_segment(previous: Segment | None, name: str) -> Segment | None:
    """Folder ``name`` parsed as the folder below ``previous`` (``None``: the top), or
    ``None`` when the grammar has no place for it there. A few comparisons, no I/O.

    Below the top (or a user prefix) comes ``AWSLogs`` or another user-prefix folder (any
    other name); below ``AWSLogs`` an organisation id or an account; below an account the
    rest, all plain (``123456789012/vpcflowlogs/eu-west-1/2026/11/20/10``) or all Hive
    (``aws-account-id=.../aws-service=vpcflowlogs/aws-region=.../year=2026/month=11/day=20/hour=10``).
    Nothing may follow the hour.
    """
    if not name:
        return None
    for level in NEXT_LEVELS[previous.level if previous is not None else None]:
        if level == "prefix":
            if name != AWSLOGS:
                return Segment("prefix", name)
            continue
        if level == "awslogs":
            if name == AWSLOGS:
                return Segment("awslogs", name)
            continue
        value, hive = name, False
        if level in HIVE_KEYS:
            key, sep, rest = name.partition("=")
            hive = bool(sep) and key == HIVE_KEYS[level]
            if level != "account" and previous is not None and hive != previous.hive:  # Hive from the account down, or not at all
                continue
            value = rest if hive else name
        if level == "service":
            ok = value == SERVICE
        else:
            ok = _VALUE[level].match(value) is not None
        if ok:
            return Segment(level, value, hive)
    return None


def parse_segments(names: Iterable[str], previous: Segment | None = None) -> list[Segment] | None:
    """The folders ``names`` parsed one after the other below ``previous``
    (:func:`next_segment`); ``None`` when one of them has no place in the grammar."""
    out: list[Segment] = []
    for name in names:
        seg = next_segment(previous, name)
        if seg is None:
            return None
        out.append(seg)
        previous = seg
    return out


def partition_of(segments: Sequence[Segment]) -> tuple[datetime, timedelta] | None:
    """(start, span) of the day or hour partition that ``segments`` (ending at its day or
    hour folder) name; ``None`` when they do not end there or name an impossible date
    (``2026/02/31``)."""
    if not segments or segments[-1].level not in ("day", "hour"):
        return None
    values = {s.level: int(s.value) for s in segments if s.level in ("year", "month", "day", "hour")}
    try:
        start = datetime(values["year"], values["month"], values["day"], values.get("hour", 0), tzinfo=UTC)
    except (KeyError, ValueError):
        return None
    return start, timedelta(hours=1) if "hour" in values else timedelta(days=1)


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
    if AWSLOGS in dirs:  # the last AWSLogs/ folder; what precedes it is a user prefix
        i = len(dirs) - 1 - dirs[::-1].index(AWSLOGS)
        prefix = "/".join(dirs[:i])
        segments: list[Segment] = []
        previous: Segment | None = Segment("awslogs", AWSLOGS)
        for name in dirs[i + 1:]:
            previous = next_segment(previous, name)
            if previous is None:
                break
            segments.append(previous)
        org_id = next((s.value for s in segments if s.level == "org"), None)
        partition = partition_of(segments) if previous is not None else None
        if partition is not None:
            partition_start, partition_span = partition
            hive, hourly = segments[-1].hive, segments[-1].level == "hour"
            layout = ("hive-hourly" if hive else "hourly") if hourly else ("hive" if hive else "daily")
            account = next(s.value for s in segments if s.level == "account")
            region = next(s.value for s in segments if s.level == "region")
    return FlowLogObject(
        key=key, size=size, format=fmt, layout=layout, account_id=account, region=region,
        flow_log_id=flow_log_id, file_time=file_time, partition_start=partition_start,
        partition_span=partition_span, org_id=org_id, prefix=prefix, etag=etag,
    )


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
