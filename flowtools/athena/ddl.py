"""``CREATE EXTERNAL TABLE`` statements with partition projection for VPC Flow Logs in S3.

One table per flow-log format and layout. The layouts (as :mod:`flowtools.layout` reads them):

=============  =========================================================================
daily          ``AWSLogs/[{org}/]{account}/vpcflowlogs/{region}/{yyyy}/{MM}/{dd}/``
hourly         ``.../{yyyy}/{MM}/{dd}/{HH}/``
hive           ``AWSLogs/[{org}/]aws-account-id={account}/aws-service=vpcflowlogs/
               aws-region={region}/year={yyyy}/month={MM}/day={dd}/``
hive-hourly    the same plus ``hour={HH}/``
store          flowtools' partition store (Parquet, canonical columns):
               ``account_id={account}/region={region}/date={yyyy-MM-dd}/hour={HH}/``
=============  =========================================================================

Partition columns are all named ``p_*`` so none can clash with a data column: ``account_id``
and ``region`` are flow-log fields, and Athena refuses a partition column that repeats a
data column's name (AWS's own projection example, ``PARTITIONED BY (region string, ...)``,
breaks as soon as the format includes the version-4 ``region`` field). The date is one
``date``-projected column where the folders allow it (``p_date`` ``yyyy/MM/dd``,
``p_datehour`` ``yyyy/MM/dd/HH``, the store's ``p_date`` ``yyyy-MM-dd``); in the Hive
layouts the folders split the date into ``year=``/``month=``/``day=``, which AWS documents
as incompatible with one ``date`` projection, so they are ``p_year`` (``date``, ``yyyy``,
up to ``NOW``) and ``p_month``/``p_day``/``p_hour`` (two-digit ``integer`` projections).
:func:`partition_filter` writes the pruning predicate for a time window in any layout.

Account ids are an ``enum`` projection when the accounts are given, else ``injected``
(every query must then name them: ``WHERE p_account_id = '123456789012'``); regions
likewise. Text tables read columns by position (the field list must be the flow log's
format, in order); Parquet tables read them by name. Nothing here talks to AWS.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from flowtools.aws_names import ORGANIZATION_ID, REGION_NAME
from flowtools.errors import UsageError
from flowtools.fields import (
    DEFAULT_FORMAT,
    DERIVED_COLUMNS,
    FIELDS,
    column_name,
    field_type,
    parse_log_format,
)
from flowtools.options import comma_list

Layout = Literal["daily", "hourly", "hive", "hive-hourly", "store"]
FileFormat = Literal["text", "parquet"]
LAYOUTS: tuple[str, ...] = ("daily", "hourly", "hive", "hive-hourly", "store")
FILE_FORMATS: tuple[str, ...] = ("text", "parquet")

#: Athena (Hive DDL) type of each catalogue type. ``protocol`` is INT32 in AWS's Parquet
#: files: declaring it ``bigint`` (as AWS's own Parquet DDL once did) fails on read.
ATHENA_TYPES = {"int32": "int", "int64": "bigint", "string": "string", "timestamp": "timestamp"}

#: Earliest date projected when ``start`` is not given. S3 delivery of flow logs began in
#: 2018 (AWS's file-name example is of 2018-06-20); the per-hour and Hive-compatible options
#: exist since 2021-10-13. Partitions before ``start`` are never read: set it to the oldest
#: log you keep (a query without a date predicate lists every projected partition).
DEFAULT_START = {"daily": date(2018, 6, 1), "hourly": date(2021, 10, 1), "hive": date(2021, 10, 1),
                 "hive-hourly": date(2021, 10, 1), "store": date(2018, 6, 1)}
#: The store files a record under its own start hour; a record overlapping a window can
#: start this long before it (the store's pruning rule).
STORE_RECORD_SLACK = timedelta(hours=1)

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")
_COLUMN = re.compile(r"^[a-z0-9_]+$")
_ACCOUNT = re.compile(r"^\d{12}$")
_REGION = REGION_NAME
_ORG = ORGANIZATION_ID
_LOCATION = re.compile(r"^s3://[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9](/[^'\\\s]*)?$")

_TEXT_SERDE = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe"


@dataclass(frozen=True)
class TableSpec:
    """Everything a statement says: columns, partition columns, where, and table properties."""

    table: str
    database: str | None
    layout: str
    file_format: str
    columns: tuple[tuple[str, str], ...]  # (name, Athena type), in file order for text
    partitions: tuple[tuple[str, str], ...]
    location: str  # the table's LOCATION (the template's fixed head)
    properties: dict[str, str] = field(default_factory=dict)  # TBLPROPERTIES, in order

    @property
    def template(self) -> str:
        return self.properties["storage.location.template"]

    def sql(self) -> str:
        """The ``CREATE EXTERNAL TABLE`` statement (no trailing semicolon: Athena's API takes
        one statement per query)."""
        name = f"`{self.database}`.`{self.table}`" if self.database else f"`{self.table}`"
        cols = ",\n".join(f"  `{c}` {t}" for c, t in self.columns)
        parts = ",\n".join(f"  `{c}` {t}" for c, t in self.partitions)
        lines = [f"CREATE EXTERNAL TABLE {name} (", cols, ")", "PARTITIONED BY (", parts, ")"]
        if self.file_format == "text":
            lines += [f"ROW FORMAT SERDE '{_TEXT_SERDE}'", "WITH SERDEPROPERTIES (",
                      "  'field.delim' = ' ',", "  'serialization.format' = ' ',",
                      "  'serialization.null.format' = '-'", ")", "STORED AS TEXTFILE"]
        else:
            lines.append("STORED AS PARQUET")
        lines.append(f"LOCATION {_quote(self.location)}")
        props = ",\n".join(f"  {_quote(k)} = {_quote(v)}" for k, v in self.properties.items())
        lines += ["TBLPROPERTIES (", props, ")"]
        return "\n".join(lines)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _csv(values: Sequence[str] | str | None) -> list[str] | None:
    return comma_list(values)


def _day(value: str | date | datetime | None, layout: str) -> date:
    if value is None:
        return DEFAULT_START[layout]
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value).strip()[:10])
    except ValueError:
        raise UsageError(f"bad start date {value!r}: use YYYY-MM-DD") from None


def _columns(layout: str, file_format: str, fields: str | Sequence[str] | None) -> tuple[tuple[str, str], ...]:
    if layout == "store":
        if fields is not None:
            raise UsageError("the store's columns are fixed (every catalogue field plus the derived columns): "
                             "--fields does not apply to --layout store")
        store = [(f.column, ATHENA_TYPES[f.type]) for f in FIELDS]
        return tuple(store + [(c, ATHENA_TYPES[t]) for c, t in DERIVED_COLUMNS])
    try:
        names = list(DEFAULT_FORMAT) if fields is None else parse_log_format(
            fields if isinstance(fields, str) else " ".join(fields))
    except ValueError as e:
        raise UsageError(str(e)) from None
    cols: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name in names:
        col = column_name(name)
        if not _COLUMN.match(col):
            raise UsageError(f"field {name!r} cannot be an Athena column name (letters, digits, '-' and '_' only)")
        if col in seen:
            raise UsageError(f"field {name!r} appears twice in the format")
        seen.add(col)
        cols.append((col, ATHENA_TYPES[field_type(col)]))
    return tuple(cols)


def _base(location: str) -> str:
    loc = location.strip()
    if not _LOCATION.match(loc):
        raise UsageError(f"bad location {location!r}: expected s3://bucket/prefix/ (a bucket name of 3 to 63 "
                         "lower-case letters, digits, '.' and '-'; no quotes or spaces)")
    loc = loc if loc.endswith("/") else loc + "/"
    if loc.endswith("/AWSLogs/"):  # accept the AWSLogs/ folder itself
        loc = loc[: -len("AWSLogs/")]
    return loc


def table_spec(
    location: str,
    *,
    layout: str,
    file_format: str = "text",
    fields: str | Sequence[str] | None = None,
    table: str = "vpc_flow_logs",
    database: str | None = None,
    org_id: str | None = None,
    start: str | date | datetime | None = None,
    accounts: Sequence[str] | str | None = None,
    regions: Sequence[str] | str | None = None,
) -> TableSpec:
    """The table for flow logs under ``location``; see :func:`ddl` for the arguments."""
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}: one of {', '.join(LAYOUTS)}")
    if file_format not in FILE_FORMATS:
        raise UsageError(f"unknown file format {file_format!r}: text or parquet")
    if layout == "store" and file_format != "parquet":
        raise UsageError("the partition store holds Parquet only: use --format parquet with --layout store")
    if layout == "store" and org_id:
        raise UsageError("the partition store has no organisation folder: --org-id does not apply")
    for what, value in (("table", table), ("database", database)):
        if value is not None and not _NAME.match(value):
            raise UsageError(f"bad {what} name {value!r}: lower-case letters, digits and '_' only")
    if org_id is not None and not _ORG.match(org_id):
        raise UsageError(f"bad organisation id {org_id!r}: expected o- and 10 to 32 lower-case letters or digits")
    accts, regs = _csv(accounts), _csv(regions)
    for a in accts or ():
        if not (_ACCOUNT.match(a) or (layout == "store" and a == "unknown")):
            raise UsageError(f"bad account id {a!r}: 12 digits")
    for r in regs or ():
        if not _REGION.match(r):
            raise UsageError(f"bad region {r!r}: e.g. us-east-1")

    base = _base(location)
    first = _day(start, layout)
    props: dict[str, str] = {}
    if file_format == "text":
        props["skip.header.line.count"] = "1"  # the field names
    props["projection.enabled"] = "true"

    def enum_or_injected(col: str, values: list[str] | None) -> None:
        if values:
            props[f"projection.{col}.type"] = "enum"
            props[f"projection.{col}.values"] = ",".join(values)
        else:
            props[f"projection.{col}.type"] = "injected"

    def dated(col: str, fmt: str, first_value: str, unit: str) -> None:
        props[f"projection.{col}.type"] = "date"
        props[f"projection.{col}.format"] = fmt
        props[f"projection.{col}.range"] = f"{first_value},NOW"
        props[f"projection.{col}.interval"] = "1"
        props[f"projection.{col}.interval.unit"] = unit

    def integer(col: str, lo: int, hi: int) -> None:
        props[f"projection.{col}.type"] = "integer"
        props[f"projection.{col}.range"] = f"{lo},{hi}"
        props[f"projection.{col}.digits"] = "2"

    enum_or_injected("p_account_id", accts)
    enum_or_injected("p_region", regs)
    partitions = [("p_account_id", "string"), ("p_region", "string")]
    head = base + "AWSLogs/" + (f"{org_id}/" if org_id else "")
    if layout == "daily":
        dated("p_date", "yyyy/MM/dd", first.strftime("%Y/%m/%d"), "DAYS")
        partitions.append(("p_date", "string"))
        tail = "${p_account_id}/vpcflowlogs/${p_region}/${p_date}/"
    elif layout == "hourly":
        dated("p_datehour", "yyyy/MM/dd/HH", first.strftime("%Y/%m/%d/00"), "HOURS")
        partitions.append(("p_datehour", "string"))
        tail = "${p_account_id}/vpcflowlogs/${p_region}/${p_datehour}/"
    elif layout in ("hive", "hive-hourly"):
        dated("p_year", "yyyy", f"{first.year:04d}", "YEARS")
        integer("p_month", 1, 12)
        integer("p_day", 1, 31)  # impossible days (02-31) are empty prefixes: listed, nothing read
        partitions += [("p_year", "string"), ("p_month", "string"), ("p_day", "string")]
        tail = ("aws-account-id=${p_account_id}/aws-service=vpcflowlogs/aws-region=${p_region}/"
                "year=${p_year}/month=${p_month}/day=${p_day}/")
        if layout == "hive-hourly":
            integer("p_hour", 0, 23)
            partitions.append(("p_hour", "string"))
            tail += "hour=${p_hour}/"
    else:  # store
        head = base
        dated("p_date", "yyyy-MM-dd", first.isoformat(), "DAYS")
        integer("p_hour", 0, 23)
        partitions += [("p_date", "string"), ("p_hour", "string")]
        tail = "account_id=${p_account_id}/region=${p_region}/date=${p_date}/hour=${p_hour}/"
    props["storage.location.template"] = head + tail
    return TableSpec(table=table, database=database, layout=layout, file_format=file_format,
                     columns=_columns(layout, file_format, fields), partitions=tuple(partitions),
                     location=head, properties=props)


def ddl(
    location: str,
    *,
    layout: str,
    file_format: str = "text",
    fields: str | Sequence[str] | None = None,
    table: str = "vpc_flow_logs",
    database: str | None = None,
    org_id: str | None = None,
    start: str | date | datetime | None = None,
    accounts: Sequence[str] | str | None = None,
    regions: Sequence[str] | str | None = None,
) -> str:
    """``CREATE EXTERNAL TABLE`` with partition projection for flow logs under ``location``.

    ``location``: ``s3://bucket/prefix/``, what precedes ``AWSLogs/`` (a location ending in
    ``AWSLogs/`` is accepted too); for ``layout="store"`` the store's root folder in S3.
    ``layout``: daily, hourly, hive, hive-hourly or store. ``file_format``: text (gzip,
    space-delimited, header line skipped, ``-`` read as NULL) or parquet (columns by name;
    the store is Parquet). ``fields``: the flow log's format, AWS syntax
    (``"${version} ${srcaddr} ..."``) or bare names (default: the version-2 default format);
    types come from the field catalogue (int32 -> int, int64 -> bigint, others string;
    unknown fields are strings). ``org_id``: the ``AWSLogs/{org}/`` segment of centrally
    delivered logs. ``accounts`` / ``regions``: ``enum`` projections (default ``injected``:
    queries must name them). ``start``: first projected day (default
    :data:`DEFAULT_START`). ``table`` (default ``vpc_flow_logs``), ``database``: the name.

    Pure string work: no AWS call. Raises :class:`~flowtools.errors.UsageError` on a bad
    argument.
    """
    return table_spec(location, layout=layout, file_format=file_format, fields=fields, table=table,
                      database=database, org_id=org_id, start=start, accounts=accounts, regions=regions).sql()


def partition_filter(layout: str, start: datetime, end: datetime) -> str:
    """A predicate on the partition columns of ``layout`` that keeps every partition able to
    hold records overlapping the window ``[start, end)`` (UTC), for a query's ``WHERE``.

    It prunes partitions only (with the delivery slack of :mod:`flowtools.layout`, or the
    store's one hour); filter rows on ``start``/``end`` as well. Ranges on ``date``-projected
    columns, ``IN`` lists on the Hive layouts' integer columns (a superset across month ends).
    """
    from flowtools.layout import partition_prefixes
    from flowtools.window import Window

    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}: one of {', '.join(LAYOUTS)}")
    window = Window.parse(start, end)  # UTC; end after start
    if layout == "store":
        assert window.start is not None and window.end is not None
        lo = (window.start - STORE_RECORD_SLACK).date()
        hi = (window.end - timedelta(microseconds=1)).date()
        return f"p_date BETWEEN '{lo.isoformat()}' AND '{hi.isoformat()}'"
    hourly = layout in ("hourly", "hive-hourly")
    starts = [t for t, _, _ in partition_prefixes(window, hourly=hourly)]
    a, b = starts[0], starts[-1]
    if layout == "daily":
        return f"p_date BETWEEN '{a:%Y/%m/%d}' AND '{b:%Y/%m/%d}'"
    if layout == "hourly":
        return f"p_datehour BETWEEN '{a:%Y/%m/%d/%H}' AND '{b:%Y/%m/%d/%H}'"

    def values(fmt: str) -> str:
        return ", ".join(f"'{v}'" for v in sorted({format(t, fmt) for t in starts}))

    parts = [f"p_year BETWEEN '{a:%Y}' AND '{b:%Y}'", f"p_month IN ({values('%m')})", f"p_day IN ({values('%d')})"]
    if hourly:
        parts.append(f"p_hour IN ({values('%H')})")
    return " AND ".join(parts)


__all__ = ["ATHENA_TYPES", "DEFAULT_START", "LAYOUTS", "TableSpec", "ddl", "partition_filter", "table_spec"]
