"""`flowtools.athena.exposure.exposure` and `flowtools athena exposure` against moto's Athena
in server mode: the boto3 call sequence (start, poll, result pages, failure, stop on Ctrl-C)
and the side tables staged in S3 and cleaned up.

moto runs no SQL: a proxy in front of it answers each started query with the rows the local
stand-in (:class:`flowtools.athena.local.LocalAthena`, DuckDB) computes for that very SQL,
preset into moto just before the start. Staged tables are read back from moto's S3 when
their ``CREATE EXTERNAL TABLE`` arrives, so the findings that come back through boto3 are
the DuckDB engine's only if every step of the sequence carried them.
"""

from __future__ import annotations

import json
import re

import aws_server
import boto3
import duckdb
import polars as pl
import pytest
from athena_server import AthenaProxy
from athena_server import post as _post
from flowlog_files import SAMPLES

import flowtools
from flowtools.analyses.exposure import findings_records, internet_exposure
from flowtools.athena import QueryFailed, exposure
from flowtools.athena.local import LocalAthena
from flowtools.athena.run import cost_usd
from flowtools.cli import main
from flowtools.frames import to_polars

BUCKET = "athena-results"
OUTPUT = f"s3://{BUCKET}/athena/"
STAGING = f"{OUTPUT}flowtools-staging/"
_ATHENA_TYPES = {pl.String: "varchar", pl.Int8: "tinyint", pl.Int16: "smallint", pl.Int32: "integer",
                 pl.Int64: "bigint", pl.Float64: "double", pl.Boolean: "boolean", pl.Date: "date"}
_HIVE_POLARS = {"string": pl.String, "int": pl.Int32, "bigint": pl.Int64, "boolean": pl.Boolean,
                "double": pl.Float64, "smallint": pl.Int16, "tinyint": pl.Int8, "float": pl.Float32}
_CREATE = re.compile(r"CREATE EXTERNAL TABLE `(\w+)` \((.*?)\) ROW FORMAT .* LOCATION 's3://([^/]+)/(.*)'", re.S)


def athena_rows(frame: pl.DataFrame) -> tuple[list[list[str | None]], list[dict]]:
    """A frame as Athena's API returns it: strings, a label row first, types in ColumnInfo."""
    info, cols = [], []
    for name, dtype in frame.schema.items():
        if isinstance(dtype, pl.Datetime):
            kind = "timestamp"
            col = pl.col(name).dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%d %H:%M:%S%.3f")
        elif dtype == pl.Boolean:
            kind, col = "boolean", pl.col(name).cast(pl.String)  # "true" / "false"
        else:
            kind, col = _ATHENA_TYPES[dtype.base_type()], pl.col(name).cast(pl.String)
        info.append({"Name": name, "Label": name, "Type": kind})
        cols.append(col)
    return [list(frame.columns), *[list(r) for r in frame.select(cols).iter_rows()]], info


class ComputingProxy(AthenaProxy):
    """An AthenaProxy whose queries return what ``local`` computes for their SQL; a query
    whose SQL ``fail(sql)`` accepts ends FAILED with :attr:`reason`."""

    reason = "HIVE_BAD_DATA: Error parsing field value '' for field 3"

    def __post_init__(self):
        super().__post_init__()
        self.local: LocalAthena | None = None
        self.started: list[tuple[str, str]] = []  # (execution id, SQL)
        self.fail = lambda sql: False
        self.failing: set[str] = set()
        self.s3 = boto3.client("s3", endpoint_url=self.upstream)

    def answer(self, sql: str) -> tuple[list, list]:
        create = _CREATE.match(sql)
        if create:
            table, cols, bucket, prefix = create.groups()
            names_types = re.findall(r"`(\w+)` (\w+)", cols)
            keys = [o["Key"] for o in self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
            assert len(keys) == 1, f"{table}: one staged object expected under {prefix}, found {keys}"
            body = self.s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read()
            frame = pl.read_csv(body, separator="\t", has_header=False, quote_char=None, null_values="\\N",
                                new_columns=[n for n, _ in names_types],
                                schema_overrides={n: _HIVE_POLARS[t] for n, t in names_types})
            self.local.con.register(table, frame.to_arrow())
            return [], []
        drop = re.match(r"DROP TABLE IF EXISTS `(\w+)`", sql)
        if drop:
            self.local.con.unregister(drop.group(1))
            return [], []
        return athena_rows(self.local(sql))

    def _forward(self, h, body: bytes):
        target = h.headers.get("X-Amz-Target", "")
        if target.endswith(".StartQueryExecution") and self.local is not None:
            sql = json.loads(body)["QueryString"]
            rows, info = ([], []) if self.fail(sql) else self.answer(sql)
            data = [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]
            _post(f"{self.upstream}/moto-api/static/athena/query-results",
                  {"results": [{"rows": data, "column_info": info}]})
            status, headers, payload = super()._forward(h, body)
            qid = json.loads(payload)["QueryExecutionId"]
            self.started.append((qid, sql))
            if self.fail(sql):
                self.failing.add(qid)
            return status, headers, payload
        status, headers, payload = super()._forward(h, body)
        if target.endswith(".GetQueryExecution") and status == 200:
            answer = json.loads(payload)
            if answer["QueryExecution"]["QueryExecutionId"] in self.failing:
                answer["QueryExecution"]["Status"] = {"State": "FAILED", "StateChangeReason": self.reason}
                payload = json.dumps(answer).encode()
        return status, headers, payload

    def statements(self) -> list[str]:
        """What each started query is: pairs, findings, create, drop."""
        kinds = []
        for _, sql in self.started:
            kinds.append("create" if sql.startswith("CREATE EXTERNAL") else "drop" if sql.startswith("DROP")
                         else "findings" if "sample_peers" in sql else "pairs")
        return kinds

    def staged_objects(self) -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix="athena/flowtools-staging/")
        return [o["Key"] for o in listing.get("Contents", [])]


@pytest.fixture(scope="module")
def records() -> pl.DataFrame:
    """One exposed interface of the sample over two hours: small, with findings."""
    truth = json.loads((SAMPLES / "truth.json").read_text())
    flows = flowtools.load(SAMPLES, engine="polars", start="2026-11-20T06:00Z", end="2026-11-20T08:00Z")
    return flows.to_polars().filter(pl.col("interface_id") == truth["exposure"][0]["interface_id"])


@pytest.fixture(scope="module")
def engine_findings(records) -> pl.DataFrame:
    con = duckdb.connect()
    con.register("flows", records.to_arrow())
    return to_polars(internet_exposure(con.table("flows")))


@pytest.fixture
def athena(moto_url, monkeypatch, tmp_path, records):
    """Fresh moto state with the results bucket; every boto3 call through a ComputingProxy."""
    aws_server.prepare(moto_url, monkeypatch, tmp_path)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    with ComputingProxy(moto_url) as proxy:
        proxy.local = LocalAthena(records)
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield proxy
    _post(f"{moto_url}/moto-api/state-manager/unset-transition", {"model_name": "athena::execution"})


def utc(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(c).dt.convert_time_zone("UTC") for c in ("first_seen", "last_seen"))


def per_query(actions: list[str]) -> list[list[str]]:
    """The Athena actions split at each StartQueryExecution."""
    out: list[list[str]] = []
    for a in actions:
        if a == "StartQueryExecution":
            out.append([])
        out[-1].append(a)
    return out


def test_findings_through_boto3_equal_the_duckdb_engine(athena, slow_queries, engine_findings):
    slow_queries(1)  # QUEUED for one poll, RUNNING for one, then SUCCEEDED
    athena.page_size = 200  # results come in pages of 200 rows
    athena.execution_patch = {"Statistics": {"DataScannedInBytes": 3 * 2**30, "EngineExecutionTimeInMillis": 800}}
    states = []
    result = exposure(database="flows", output_location=OUTPUT, poll_seconds=0,
                      progress=lambda state, n: states.append(state))
    assert engine_findings.height > 0
    assert utc(result.findings).equals(utc(engine_findings))
    # the sequence: the pairs, the long side table staged and declared, the findings, the drop
    assert athena.statements() == ["pairs", "create", "findings", "drop"]
    polled = len(states) // 4
    assert polled >= 1 and states == states[:polled] * 4 and "RUNNING" in states  # the same for each query
    for calls, (_, sql) in zip(per_query(athena.actions()), athena.started, strict=True):
        # start, poll until a final state (one poll more than progress calls), then the pages
        pages = len(calls) - 2 - polled
        assert calls == ["StartQueryExecution", *["GetQueryExecution"] * (polled + 1),
                         *["GetQueryResults"] * pages] and pages >= 1, sql[:40]
    pairs = athena.local(athena.started[0][1])  # the address pairs: several pages
    assert per_query(athena.actions())[0].count("GetQueryResults") == -(-(pairs.height + 1) // 200) > 1
    # one staged object, written before its CREATE and deleted at the end
    s3 = [(s.action, s.params) for s in athena.seen(service="s3") if s.action in ("PutObject", "DeleteObject")]
    assert [a for a, _ in s3] == ["PutObject", "DeleteObject"]
    create_sql = athena.started[1][1]
    assert f"LOCATION '{STAGING}" in create_sql
    table = re.search(r"`(\w+)`", create_sql).group(1)
    assert f'"{table}"' in result.sql.findings_sql and athena.started[3][1] == f"DROP TABLE IF EXISTS `{table}`"
    assert athena.staged_objects() == []
    # cost: the two DML queries billed, DDL free; every query's bytes summed
    assert [r.statement_type for r in result.results] == ["DML", "DDL", "DML", "DDL"]
    assert result.data_scanned_bytes == 4 * 3 * 2**30
    assert result.cost_usd == pytest.approx(2 * cost_usd(3 * 2**30))


def test_a_failed_query_names_the_reason_and_the_staging_is_cleaned_up(athena):
    athena.fail = lambda sql: "sample_peers" in sql  # the findings query fails
    with pytest.raises(QueryFailed, match="HIVE_BAD_DATA: Error parsing field value") as caught:
        exposure(database="flows", output_location=OUTPUT, poll_seconds=0)
    assert caught.value.reason == ComputingProxy.reason
    assert athena.statements() == ["pairs", "create", "findings", "drop"]
    assert caught.value.query_execution_id == athena.started[2][0]
    assert per_query(athena.actions())[2] == ["StartQueryExecution", "GetQueryExecution"]  # no results read
    assert athena.staged_objects() == [] and athena.count(service="s3", action="DeleteObject") == 1


def test_ctrl_c_stops_the_running_query(athena, slow_queries):
    slow_queries(1000)  # the pairs query stays QUEUED
    calls = []

    def progress(state, scanned):
        calls.append(state)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        exposure(database="flows", output_location=OUTPUT, poll_seconds=0, progress=progress)
    assert athena.actions() == ["StartQueryExecution", "GetQueryExecution", "GetQueryExecution",
                                "StopQueryExecution"]
    qid = athena.started[0][0]
    state = boto3.client("athena").get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
    assert state == "CANCELLED"
    assert athena.staged_objects() == []


def test_cli_prints_the_findings_as_flowtools_exposure_does(athena, engine_findings, capsys):
    athena.execution_patch = {"Statistics": {"DataScannedInBytes": 50 * 2**20, "EngineExecutionTimeInMillis": 900}}
    assert main(["athena", "exposure", "--database", "flows", "--output-location", OUTPUT, "--format", "json"]) == 0
    captured = capsys.readouterr()
    expected = json.loads(json.dumps(findings_records(engine_findings), default=str))
    out = json.loads(captured.out)
    assert len(out) == len(expected) > 0
    assert [(r["interface_id"], r["port"], r["status"], r["peers"], r["risk"]) for r in out] == \
        [(r["interface_id"], r["port"], r["status"], r["peers"], r["risk"]) for r in expected]
    assert captured.err.count("scanned 50.0 MB") == 4
    assert f"{len(out)} finding(s) from 4 queries" in captured.err and "~USD 0.0005" in captured.err


@pytest.mark.parametrize("argv, message", [
    (["--layout", "store", "--file-format", "text"], "Parquet only"),
    (["--start", "yesterday-ish"], "yesterday-ish"),
])
def test_cli_usage_errors_exit_2(athena, capsys, argv, message):
    assert main(["athena", "exposure", "--database", "flows", *argv]) == 2
    assert message in capsys.readouterr().err
    assert athena.actions() == []  # nothing was sent to Athena
