"""Athena DDL: every statement parses in sqlglot's Athena dialect, and the partition
projection it declares resolves, for real object keys, to a prefix of those keys.

Without AWS this is the strongest check there is: the statement is read back by a SQL
parser (not by our own code), its TBLPROPERTIES are interpreted here the way Athena
documents partition projection (enum / injected / date with a Java date format / integer
with digits), and the resolved ``storage.location.template`` must be a prefix of keys made
by the sample generator's naming (``object_key``) and of every file in the embedded sample.
"""

from __future__ import annotations

import functools
import gzip
import re
from datetime import UTC, datetime

import pytest
import sqlglot
from sqlglot import exp

from flowtools.athena.ddl import ATHENA_TYPES, DEFAULT_START, ddl, partition_filter, table_spec
from flowtools.errors import UsageError
from flowtools.fields import BY_COLUMN, DEFAULT_FORMAT, DERIVED_COLUMNS, FIELDS, parse_log_format
from flowtools.layout import parse_key
from flowtools.sample.deliver import object_key
from flowtools.sample.estate import FLOW_LOGS, FlowLog

BUCKET = "s3://flow-bucket/"
ORG = "o-abcdefghij"
ACCOUNT, REGION = "111122223333", "eu-west-1"
TS = datetime(2026, 11, 20, 10, 35, tzinfo=UTC)
RAW_LAYOUTS = ("daily", "hourly", "hive", "hive-hourly")


# -- reading a statement back through sqlglot ------------------------------------------------

@functools.lru_cache(maxsize=64)
def parse(sql: str) -> dict:
    """The parts of a CREATE EXTERNAL TABLE as sqlglot's Athena dialect reads them."""
    tree = sqlglot.parse_one(sql, read="athena")
    assert isinstance(tree, exp.Create) and tree.args["kind"] == "TABLE"
    props = tree.args["properties"].expressions
    assert any(isinstance(p, exp.ExternalProperty) for p in props)
    columns = [(c.name, c.args["kind"].sql("hive").lower()) for c in tree.this.expressions]
    part = next(p for p in props if isinstance(p, exp.PartitionedByProperty))
    partitions = [(c.name, c.args["kind"].sql("hive").lower()) for c in part.this.expressions]
    location = next(p for p in props if isinstance(p, exp.LocationProperty)).this.name
    tbl = {p.this.name: p.args["value"].name for p in props if type(p) is exp.Property}
    serde = next((p for p in props if isinstance(p, exp.RowFormatSerdeProperty)), None)
    serde_props = ({p.this.name: p.args["value"].name for p in serde.args["serde_properties"].expressions}
                   if serde is not None else {})
    stored = [p for p in props if isinstance(p, exp.FileFormatProperty)]
    return {"table": tree.this.this, "columns": columns, "partitions": partitions, "location": location,
            "props": tbl, "serde": serde, "serde_props": serde_props,
            "stored": stored[0].this.name.upper() if stored else None}


_JAVA = {"yyyy": "%Y", "MM": "%m", "dd": "%d", "HH": "%H"}


def java_format(fmt: str, t: datetime) -> str:
    """A Java DateTimeFormatter pattern (the subset projections use) applied to ``t``."""
    return re.sub(r"yyyy|MM|dd|HH", lambda m: t.strftime(_JAVA[m.group(0)]), fmt)


def projected(props: dict, column: str, obj) -> str:
    """The value Athena's projection gives ``column`` for the partition holding ``obj``;
    asserts the value is inside the declared projection."""
    kind = props[f"projection.{column}.type"]
    t = obj.partition_start
    if "account" in column or "region" in column:
        value = obj.account_id if "account" in column else obj.region
        if kind == "enum":
            assert value in props[f"projection.{column}.values"].split(","), (column, value)
        else:
            assert kind == "injected"
        return value
    if kind == "date":
        fmt = props[f"projection.{column}.format"]
        value = java_format(fmt, t)
        first, last = props[f"projection.{column}.range"].split(",")
        assert last == "NOW"
        assert len(first) == len(value) and first <= value  # same format, zero-padded: ordered as text
        unit = props[f"projection.{column}.interval.unit"]
        assert unit == {"yyyy": "YEARS", "yyyy/MM/dd": "DAYS", "yyyy-MM-dd": "DAYS", "yyyy/MM/dd/HH": "HOURS"}[fmt]
        return value
    assert kind == "integer"
    number = {"p_month": t.month, "p_day": t.day, "p_hour": t.hour}[column]
    lo, hi = map(int, props[f"projection.{column}.range"].split(","))
    assert lo <= number <= hi
    return f"{number:0{int(props[f'projection.{column}.digits'])}d}"


def resolve(parts: dict, obj) -> str:
    """``storage.location.template`` with every partition column's projected value."""
    template = parts["props"]["storage.location.template"]
    names = {c for c, _ in parts["partitions"]}
    assert set(re.findall(r"\$\{(\w+)\}", template)) == names  # every column used, nothing else
    assert template.startswith(parts["location"])
    return re.sub(r"\$\{(\w+)\}", lambda m: projected(parts["props"], m.group(1), obj), template)


def assert_key_matches(sql: str, key: str) -> None:
    parts = parse(sql)
    obj = parse_key(key)
    assert obj is not None and obj.partition_start is not None, key
    resolved = resolve(parts, obj)
    full = BUCKET + key
    assert full.startswith(resolved), f"{resolved} is not a prefix of {full}"
    # the partition is the key's folder: nothing between the resolved prefix and the file name
    assert "/" not in full[len(resolved):], (resolved, full)


# -- every layout x format x organisation segment ------------------------------------------

@pytest.mark.parametrize("org", [None, ORG], ids=["no-org", "org"])
@pytest.mark.parametrize("file_format", ["text", "parquet"])
@pytest.mark.parametrize("layout", RAW_LAYOUTS)
@pytest.mark.parametrize("accounts", [None, [ACCOUNT, "444455556666"]], ids=["injected", "enum"])
def test_raw_layout_parses_and_projects_to_the_key(layout, file_format, org, accounts):
    fl = FlowLog("t", ACCOUNT, REGION, DEFAULT_FORMAT, layout, org_id=org, prefix="team/logs")
    ext = "gz" if file_format == "text" else "parquet"
    key = object_key(fl, TS, "abcd1234", ext)
    sql = ddl(BUCKET + "team/logs/", layout=layout, file_format=file_format, org_id=org, accounts=accounts,
              regions=[REGION, "us-east-1"], database="flows")
    assert_key_matches(sql, key)
    parts = parse(sql)
    assert parts["location"] == BUCKET + "team/logs/AWSLogs/" + (f"{org}/" if org else "")
    assert [c for c, _ in parts["columns"]] == [BY_COLUMN[c].column for c in (f.replace("-", "_")
                                                                               for f in DEFAULT_FORMAT)]
    # partition columns never repeat a data column (Athena refuses that)
    assert not {c for c, _ in parts["partitions"]} & {c for c, _ in parts["columns"]}
    assert parts["props"]["projection.enabled"] == "true"
    if file_format == "text":
        assert parts["props"]["skip.header.line.count"] == "1"
        assert parts["serde_props"]["field.delim"] == " "
        assert parts["serde_props"]["serialization.null.format"] == "-"
        assert parts["stored"] == "TEXTFILE"
    else:
        assert "skip.header.line.count" not in parts["props"]
        assert parts["serde"] is None and parts["stored"] == "PARQUET"


@pytest.mark.parametrize("layout", RAW_LAYOUTS)
def test_a_key_of_another_layout_does_not_match(layout):
    """The prefix check discriminates: the template of one layout is not a prefix of a key
    delivered in a layout with different folders."""
    other = {"daily": "hive", "hourly": "hive-hourly", "hive": "daily", "hive-hourly": "hourly"}[layout]
    key = object_key(FlowLog("t", ACCOUNT, REGION, DEFAULT_FORMAT, other), TS, "abcd1234", "gz")
    with pytest.raises(AssertionError):
        assert_key_matches(ddl(BUCKET, layout=layout), key)


def test_every_file_of_the_embedded_sample_matches_its_table(sample_dir):
    """The embedded sample's own files (every layout it has, organisation segment and user
    prefix included): a text table per flow log, its columns the file's header line."""
    seen_layouts = set()
    tables: dict[tuple, str] = {}
    for path in sorted(sample_dir.rglob("*.log.gz")):
        key = path.relative_to(sample_dir).as_posix()
        obj = parse_key(key)
        if obj is None or obj.layout is None:
            continue
        group = (obj.prefix, obj.org_id, obj.layout, obj.flow_log_id)
        if group not in tables:
            with gzip.open(path, "rt") as f:
                header = f.readline().split()
            sql = ddl(BUCKET + (obj.prefix + "/" if obj.prefix else ""), layout=obj.layout, file_format="text",
                      fields=header, org_id=obj.org_id, accounts=[obj.account_id], regions=[obj.region])
            assert [c for c, _ in parse(sql)["columns"]] == [h.replace("-", "_") for h in header]
            tables[group] = sql
        assert_key_matches(tables[group], key)
        seen_layouts.add(obj.layout)
    assert seen_layouts == set(RAW_LAYOUTS)
    assert any(g[1] for g in tables) and any(g[0] for g in tables)  # an org segment and a user prefix


@pytest.mark.parametrize("fl", FLOW_LOGS, ids=[f.key for f in FLOW_LOGS])
def test_the_sample_flow_logs_in_parquet(fl):
    """Each flow log of the sample scenario (its own format, layout, org and prefix) as Parquet."""
    key = object_key(fl, TS, "abcd1234", "parquet")
    sql = ddl(BUCKET + (fl.prefix + "/" if fl.prefix else ""), layout=fl.layout, file_format="parquet",
              fields=" ".join("${" + f + "}" for f in fl.fields), org_id=fl.org_id)
    assert_key_matches(sql, key)
    assert [c for c, _ in parse(sql)["columns"]] == [f.replace("-", "_") for f in fl.fields]


# -- the partition store -------------------------------------------------------------------

def store_key(account: str, region: str, t: datetime) -> str:
    """A file of flowtools' partition store, by its documented folder layout."""
    return f"store/account_id={account}/region={region}/date={t:%Y-%m-%d}/hour={t:%H}/part-b1-00001.parquet"


class _StoreObject:
    def __init__(self, key: str):
        m = re.search(r"account_id=([^/]+)/region=([^/]+)/date=([^/]+)/hour=(\d\d)/", key)
        self.account_id, self.region = m.group(1), m.group(2)
        self.partition_start = datetime.strptime(f"{m.group(3)} {m.group(4)}", "%Y-%m-%d %H").replace(tzinfo=UTC)


@pytest.mark.parametrize("accounts", [None, [ACCOUNT, "unknown"]], ids=["injected", "enum"])
def test_store_table(accounts):
    sql = ddl(BUCKET + "store/", layout="store", file_format="parquet", accounts=accounts, database="flows")
    parts = parse(sql)
    assert parts["stored"] == "PARQUET" and parts["location"] == BUCKET + "store/"
    for t in (TS, datetime(2026, 1, 1, 0, tzinfo=UTC), datetime(2026, 12, 31, 23, tzinfo=UTC)):
        key = store_key(ACCOUNT, REGION, t)
        resolved = resolve(parts, _StoreObject(key))
        assert (BUCKET + key).startswith(resolved) and "/" not in (BUCKET + key)[len(resolved):]
    # the canonical columns, derived ones included; partition columns are distinct names
    columns = dict(parts["columns"])
    assert list(columns) == [f.column for f in FIELDS] + [c for c, _ in DERIVED_COLUMNS]
    assert columns["start_time"] == columns["end_time"] == "timestamp"
    assert columns["source_file"] == columns["flow_log_id"] == "string"
    assert [c for c, _ in parts["partitions"]] == ["p_account_id", "p_region", "p_date", "p_hour"]
    assert "account_id" in columns and "region" in columns


# -- columns and types ---------------------------------------------------------------------

def test_types_follow_the_catalogue_and_protocol_is_int():
    everything = " ".join(f.name for f in FIELDS) + " some-future-field"
    for file_format in ("text", "parquet"):
        columns = dict(parse(ddl(BUCKET, layout="daily", file_format=file_format, fields=everything))["columns"])
        for f in FIELDS:
            assert columns[f.column] == {"int32": "int", "int64": "bigint", "string": "string"}[f.type], f.name
        # AWS's facts, spelled out: protocol is INT32 (bigint breaks Parquet reads)
        assert columns["protocol"] == "int" and columns["version"] == "int" and columns["srcport"] == "int"
        assert columns["packets"] == columns["bytes"] == columns["start"] == columns["end"] == "bigint"
        assert columns["some_future_field"] == "string"  # unknown fields are strings


def test_fields_in_aws_syntax_bare_names_or_a_list_are_the_same():
    aws = "${version} ${account-id} ${tcp-flags} ${pkt-srcaddr}"
    a = ddl(BUCKET, layout="daily", fields=aws)
    assert a == ddl(BUCKET, layout="daily", fields="version account-id tcp-flags pkt-srcaddr")
    assert a == ddl(BUCKET, layout="daily", fields=parse_log_format(aws))
    assert [c for c, _ in parse(a)["columns"]] == ["version", "account_id", "tcp_flags", "pkt_srcaddr"]


def test_reserved_words_are_quoted():
    sql = ddl(BUCKET, layout="daily")
    # Hive DDL reserves `end` (AWS's DDL quotes it); every column and partition is quoted
    assert "`end` bigint" in sql and "`start` bigint" in sql
    assert not re.search(r"^  [a-z]", sql, re.MULTILINE)


def test_start_and_defaults():
    spec = table_spec(BUCKET, layout="hourly", start="2024-03-05")
    assert spec.properties["projection.p_datehour.range"] == "2024/03/05/00,NOW"
    assert spec.properties["projection.p_datehour.interval.unit"] == "HOURS"
    spec = table_spec(BUCKET, layout="daily")
    assert spec.properties["projection.p_date.range"] == DEFAULT_START["daily"].strftime("%Y/%m/%d") + ",NOW"
    spec = table_spec(BUCKET + "AWSLogs/", layout="daily")  # the AWSLogs/ folder itself is accepted
    assert spec.location == BUCKET + "AWSLogs/"
    assert ATHENA_TYPES["int32"] == "int"


@pytest.mark.parametrize("kwargs, message", [
    ({"layout": "weekly"}, "unknown layout"),
    ({"layout": "daily", "file_format": "csv"}, "unknown file format"),
    ({"layout": "store", "file_format": "text"}, "Parquet only"),
    ({"layout": "store", "file_format": "parquet", "org_id": ORG}, "no organisation folder"),
    ({"layout": "store", "file_format": "parquet", "fields": "version"}, "fixed"),
    ({"layout": "daily", "org_id": "org-1"}, "bad organisation id"),
    ({"layout": "daily", "accounts": "12345"}, "bad account id"),
    ({"layout": "daily", "regions": "Europe"}, "bad region"),
    ({"layout": "daily", "table": "Flow-Logs"}, "bad table name"),
    ({"layout": "daily", "fields": "version version"}, "twice"),
    ({"layout": "daily", "fields": "version src'addr"}, "cannot be an Athena column"),
    ({"layout": "daily", "start": "20th of May"}, "bad start date"),
])
def test_bad_arguments(kwargs, message):
    with pytest.raises(UsageError, match=message):
        ddl(BUCKET, **kwargs)


@pytest.mark.parametrize("location", ["flow-bucket/logs", "s3://", "s3://b/it's"])
def test_bad_location(location):
    with pytest.raises(UsageError, match="bad location"):
        ddl(location, layout="daily")


# -- the pruning predicate -----------------------------------------------------------------

@pytest.mark.parametrize("layout", [*RAW_LAYOUTS, "store"])
def test_partition_filter_keeps_the_partitions_of_the_window(layout):
    """Across a month end: the predicate parses, names only partition columns, and keeps
    the partitions holding the window's records (checked against keys of those hours)."""
    start, end = datetime(2026, 11, 30, 23, 0, tzinfo=UTC), datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    predicate = partition_filter(layout, start, end)
    tree = sqlglot.parse_one(f"SELECT 1 FROM t WHERE {predicate}", read="athena")
    names = {c.name for c in tree.find_all(exp.Column)}
    fmt = "parquet" if layout == "store" else "text"
    parts = parse(ddl(BUCKET, layout=layout, file_format=fmt))
    assert names <= {c for c, _ in parts["partitions"]}
    import duckdb

    def kept(t: datetime) -> bool:
        if layout == "store":
            obj = _StoreObject(store_key(ACCOUNT, REGION, t))
        else:
            obj = parse_key(object_key(FlowLog("t", ACCOUNT, REGION, DEFAULT_FORMAT, layout), t, "ab", "gz"))
        values = {c: projected(parts["props"], c, obj) for c, _ in parts["partitions"]}
        row = ", ".join(f"'{v}' AS {c}" for c, v in values.items())
        sql = sqlglot.transpile(f"SELECT count(*) FROM (SELECT {row}) WHERE {predicate}", read="athena",
                                write="duckdb")[0]
        return duckdb.sql(sql).fetchone()[0] == 1

    for t in (datetime(2026, 11, 30, 23, 10, tzinfo=UTC), datetime(2026, 12, 1, 0, 30, tzinfo=UTC)):
        assert kept(t), t
    assert not kept(datetime(2026, 11, 28, 12, tzinfo=UTC))
