"""run_query against moto's Athena in server mode (real HTTP, botocore's retries and
paginators): the call sequence, typed results over several pages, failure, cancellation on
a timeout and on Ctrl-C, throttling and access errors, cost."""

from __future__ import annotations

from datetime import UTC, date, datetime

import boto3
import polars as pl
import pytest

from flowtools.athena.ddl import ddl
from flowtools.athena.run import (
    MIN_BILLED_BYTES,
    PRICE_USD_PER_TB,
    AthenaError,
    QueryCancelled,
    QueryFailed,
    billed_bytes,
    cost_usd,
    run_query,
)


def info(name: str, kind: str, **extra) -> dict:
    return {"Name": name, "Label": name, "Type": kind, "Nullable": "UNKNOWN", "CaseSensitive": False, **extra}


COLUMNS = [info("srcaddr", "varchar"), info("dstport", "integer"), info("bytes", "bigint"),
           info("share", "double"), info("rejected", "boolean"), info("first_seen", "timestamp"),
           info("day", "date"), info("amount", "decimal", Precision=10, Scale=2)]
HEADER = [c["Name"] for c in COLUMNS]
ROWS = [
    ["198.51.100.7", "22", "123456789012", "0.25", "true", "2026-11-20 10:00:00.000", "2026-11-20", "12.50"],
    ["203.0.113.9", "443", "5", "1.0", "false", "2026-11-20 10:05:30.123", "2026-11-21", "0.01"],
    [None, None, None, None, None, None, None, None],
    ["2001:db8::1", "3389", "0", "0", "TRUE", "2026-12-31 23:59:59.999", "2026-12-31", "-3.00"],
    ["10.0.0.1", "53", "9", "1e-3", "false", "2027-01-01 00:00:00.000", "2027-01-01", "99999999.99"],
]


def athena_state(query_execution_id: str) -> str:
    client = boto3.client("athena")
    return client.get_query_execution(QueryExecutionId=query_execution_id)["QueryExecution"]["Status"]["State"]


def test_select_call_sequence_types_and_cost(athena, preset, slow_queries):
    preset([HEADER, *ROWS], COLUMNS)
    slow_queries(2)  # QUEUED for 2 polls, RUNNING for 2, then SUCCEEDED
    scanned = 3 * 2**30
    athena.execution_patch = {"Statistics": {"DataScannedInBytes": scanned, "EngineExecutionTimeInMillis": 1234}}
    seen = []
    result = run_query("SELECT * FROM vpc_flow_logs", database="flows", output_location="s3://results/athena/",
                       poll_seconds=0, progress=lambda state, n: seen.append((state, n)))
    actions = athena.actions()
    assert actions[0] == "StartQueryExecution"
    assert actions[1:5] == ["GetQueryExecution"] * 4 and actions[5:] == ["GetQueryResults"]
    assert [s for s, _ in seen] == ["QUEUED", "RUNNING", "RUNNING"]
    assert seen[0][1] == scanned
    df = result.frame
    assert df.columns == HEADER and df.height == len(ROWS)  # the label row is not data
    assert df.schema == pl.Schema({
        "srcaddr": pl.String, "dstport": pl.Int32, "bytes": pl.Int64, "share": pl.Float64,
        "rejected": pl.Boolean, "first_seen": pl.Datetime("us", "UTC"), "day": pl.Date,
        "amount": pl.Decimal(10, 2)})
    assert df.row(0)[:7] == ("198.51.100.7", 22, 123456789012, 0.25, True,
                             datetime(2026, 11, 20, 10, 0, tzinfo=UTC), date(2026, 11, 20))
    assert df["first_seen"][1] == datetime(2026, 11, 20, 10, 5, 30, 123000, tzinfo=UTC)
    assert df.row(2) == (None,) * 8
    assert df["rejected"].to_list() == [True, False, None, True, False]
    assert [str(v) for v in df["amount"].drop_nulls()] == ["12.50", "0.01", "-3.00", "99999999.99"]
    assert result.data_scanned_bytes == scanned and result.engine_execution_ms == 1234
    assert result.statement_type == "DML" and result.pages == 1
    assert result.output_location.startswith("s3://results/athena/")
    assert result.cost_usd == pytest.approx(3 / 1024 * PRICE_USD_PER_TB)
    assert "3.0 GB" in result.summary_line()


def test_results_over_several_pages_are_one_frame(athena, preset):
    rows = [[f"10.0.0.{i}", str(i)] for i in range(7)]
    preset([["addr", "n"], *rows], [info("addr", "varchar"), info("n", "bigint")])
    athena.page_size = 3  # header + 2 rows, then 3, 3: three pages
    result = run_query("SELECT addr, n FROM t", database="flows", poll_seconds=0)
    assert athena.actions().count("GetQueryResults") == 3 and result.pages == 3
    assert result.frame.to_dict(as_series=False) == {"addr": [r[0] for r in rows], "n": list(range(7))}


def test_a_row_equal_to_the_labels_later_on_is_data(athena, preset):
    preset([["a"], ["x"], ["a"]], [info("a", "varchar")])
    assert run_query("SELECT a FROM t", database="flows", poll_seconds=0).frame["a"].to_list() == ["x", "a"]


def test_ddl_statement_no_header_no_cost(athena, preset):
    """A generated DDL statement goes through the same path: no label row, no charge."""
    preset([["vpc_flow_logs"], ["other"]], [info("tab_name", "string")])
    result = run_query(ddl("s3://flow-bucket/", layout="daily"), database="flows", poll_seconds=0)
    assert result.statement_type == "DDL" and result.cost_usd == 0
    assert result.frame["tab_name"].to_list() == ["vpc_flow_logs", "other"]
    start = athena.seen(action="StartQueryExecution")
    assert len(start) == 1


def test_failed_query_names_the_reason(athena, preset):
    reason = "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved"
    athena.execution_patch = {"Status": {"State": "FAILED", "StateChangeReason": reason,
                                         "AthenaError": {"ErrorCategory": 2, "ErrorType": 1006}}}
    with pytest.raises(QueryFailed, match="cannot be resolved") as caught:
        run_query("SELECT nope FROM t", database="flows", poll_seconds=0)
    assert caught.value.reason == reason and caught.value.error_type == "1006"
    assert caught.value.query_execution_id in str(caught.value)
    assert "GetQueryResults" not in athena.actions()


def test_cancelled_elsewhere(athena):
    athena.execution_patch = {"Status": {"State": "CANCELLED", "StateChangeReason": "Query cancelled by user"}}
    with pytest.raises(QueryCancelled, match="cancelled by user") as caught:
        run_query("SELECT 1", database="flows", poll_seconds=0)
    assert not caught.value.timed_out
    assert "StopQueryExecution" not in athena.actions()


def test_interrupt_while_polling_stops_the_query(athena, slow_queries):
    slow_queries(1000)  # the query stays QUEUED
    calls = []

    def progress(state, scanned):
        calls.append(state)
        if len(calls) == 2:
            raise KeyboardInterrupt  # Ctrl-C during the poll loop

    with pytest.raises(KeyboardInterrupt):
        run_query("SELECT * FROM big", database="flows", poll_seconds=0, progress=progress)
    assert athena.actions() == ["StartQueryExecution", "GetQueryExecution", "GetQueryExecution",
                                "StopQueryExecution"]
    stopped = athena.seen(action="StopQueryExecution")[0]
    assert stopped.status == 200
    qid = athena_execution_ids()[0]
    assert athena_state(qid) == "CANCELLED"


def athena_execution_ids() -> list[str]:
    return boto3.client("athena").list_query_executions()["QueryExecutionIds"]


def test_timeout_stops_the_query(athena, slow_queries):
    slow_queries(1000)
    with pytest.raises(QueryCancelled, match="stopped it") as caught:
        run_query("SELECT * FROM big", database="flows", poll_seconds=0, timeout=0)
    assert caught.value.timed_out
    assert athena.actions()[-1] == "StopQueryExecution"
    assert athena_state(caught.value.query_execution_id) == "CANCELLED"


def test_throttling_is_retried(athena, preset):
    preset([["n"], ["1"]], [info("n", "integer")])
    athena.throttle("GetQueryExecution", service="athena", times=1)
    athena.throttle("GetQueryResults", service="athena", times=1)
    result = run_query("SELECT 1 AS n", database="flows", poll_seconds=0)
    assert result.frame["n"].to_list() == [1]
    assert athena.count(action="GetQueryExecution", injected="Throttling") == 1
    assert athena.count(action="GetQueryResults", injected="Throttling") == 1


def test_access_denied_says_what_is_needed(athena):
    athena.deny("StartQueryExecution", service="athena")
    with pytest.raises(AthenaError, match=r"access denied: athena StartQueryExecution .*athena:StartQueryExecution"):
        run_query("SELECT 1", database="flows", poll_seconds=0)


def test_unknown_workgroup_is_an_athena_error(athena):
    with pytest.raises(AthenaError, match="WorkGroup does not exist"):
        run_query("SELECT 1", database="flows", workgroup="nope", poll_seconds=0)


def test_cost_rules():
    assert billed_bytes(0) == MIN_BILLED_BYTES == 10 * 2**20
    assert billed_bytes(11 * 2**20 + 1) == 12 * 2**20  # rounded up to the megabyte
    assert billed_bytes(5 * 2**40, "DDL") == 0
    assert cost_usd(2**40) == PRICE_USD_PER_TB
