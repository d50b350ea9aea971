"""Run one SQL statement in Athena through boto3 and get a Polars frame back.

The call sequence is Athena's: ``StartQueryExecution``, ``GetQueryExecution`` every
``poll_seconds`` until the state is ``SUCCEEDED``, ``FAILED`` or ``CANCELLED``, then
``GetQueryResults`` page by page (1,000 rows a page). A failure raises
:class:`QueryFailed` with Athena's state-change reason; a timeout or Ctrl-C sends
``StopQueryExecution`` first, so nothing keeps scanning (and billing) after flowtools
stopped waiting. Throttled calls are retried by botocore's standard retry mode
(:mod:`flowtools.aws`); other API errors become :class:`AthenaError` messages that say what
to do.

Cost: Athena bills the bytes a query scans (:data:`PRICE_USD_PER_TB`, rounded up to the
megabyte, at least :data:`MIN_BILLED_BYTES` a query; DDL and failed queries are free).
:attr:`AthenaResult.cost_usd` is that estimate from ``DataScannedInBytes``, not a bill.

Results come through the API as strings, typed here from ``ResultSetMetadata``; the API
path suits results of up to some hundred thousand rows. For bigger outputs, write them
with ``UNLOAD`` or CTAS to S3 as Parquet and read them with flowtools or Polars.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from flowtools import aws
from flowtools.errors import FlowtoolsError

#: Athena's on-demand price per TB (2**40 bytes) scanned, US regions; AWS's pricing page
#: (https://aws.amazon.com/athena/pricing/) lists USD 5.00 (as of PRICE_DATE; unchanged
#: since 2016). Some regions charge more; provisioned capacity is billed per DPU-hour instead.
PRICE_USD_PER_TB = 5.00
PRICE_DATE = "2020-10-15"
#: Each query is billed at least 10 MB; scanned bytes are rounded up to the megabyte.
MIN_BILLED_BYTES = 10 * 2**20
_MB = 2**20
_TB = 2**40
FINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED")


class AthenaError(FlowtoolsError):
    """An Athena API call failed (access, configuration, a missing database...)."""


class QueryFailed(AthenaError):
    """The query reached state FAILED; the message carries Athena's reason."""

    def __init__(self, message: str, *, query_execution_id: str, reason: str, error_type: str | None = None):
        super().__init__(message)
        self.query_execution_id = query_execution_id
        self.reason = reason
        self.error_type = error_type


class QueryCancelled(AthenaError):
    """The query was cancelled: by someone else, or by flowtools on a timeout."""

    def __init__(self, message: str, *, query_execution_id: str, timed_out: bool = False):
        super().__init__(message)
        self.query_execution_id = query_execution_id
        self.timed_out = timed_out


def billed_bytes(scanned: int, statement_type: str | None = "DML") -> int:
    """Bytes Athena bills for a query that scanned ``scanned``: rounded up to the megabyte,
    at least :data:`MIN_BILLED_BYTES`; DDL statements are free."""
    if statement_type == "DDL":
        return 0
    return max(MIN_BILLED_BYTES, -(-scanned // _MB) * _MB)


def cost_usd(scanned: int, statement_type: str | None = "DML") -> float:
    """Estimated on-demand cost in USD of a query that scanned ``scanned`` bytes."""
    return billed_bytes(scanned, statement_type) / _TB * PRICE_USD_PER_TB


@dataclass
class AthenaResult:
    """A finished query: its rows and what it cost."""

    frame: pl.DataFrame
    query_execution_id: str
    statement_type: str | None
    data_scanned_bytes: int
    engine_execution_ms: int
    total_execution_ms: int | None
    output_location: str | None
    pages: int = 0
    execution: dict[str, Any] = field(default_factory=dict, repr=False)  # GetQueryExecution's QueryExecution

    @property
    def cost_usd(self) -> float:
        """On-demand cost estimate (:func:`cost_usd`)."""
        return cost_usd(self.data_scanned_bytes, self.statement_type)

    def summary_line(self) -> str:
        return (f"athena: query {self.query_execution_id}: {self.frame.height} row(s), scanned "
                f"{_human(self.data_scanned_bytes)} in {self.engine_execution_ms / 1000:.1f} s (engine), "
                f"~USD {self.cost_usd:.4f} at USD {PRICE_USD_PER_TB:.2f}/TB")


def _human(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def athena_error(e: BaseException, action: str, *, profile: str | None = None) -> AthenaError:
    """The :class:`AthenaError` for a botocore error during ``action``."""
    mapped = aws.credentials_error(e, profile, AthenaError)
    if mapped is not None:
        return mapped
    code, message = aws.error_code(e)
    if code in aws.EXPIRED:
        return AthenaError(f"athena {action}: AWS credentials expired ({code}): refresh them "
                           f"({aws.login_hint(profile)}) and run again")
    if code in aws.ACCESS_DENIED:
        return AthenaError(f"access denied: athena {action} ({code}: {message or 'Access Denied'}); the principal "
                           f"needs athena:{action} on the workgroup, glue:GetTable/GetDatabase on the table, and "
                           "s3:GetObject/ListBucket on the data and s3:PutObject on the output location")
    if code in aws.BAD_CREDENTIALS:
        return AthenaError(f"athena {action}: AWS rejected the credentials ({code}): check them "
                           f"({aws.login_hint(profile)})")
    if code in aws.THROTTLED:
        return AthenaError(f"athena {action}: still throttled ({code}) after {aws.MAX_ATTEMPTS} attempts with "
                           "back-off; run again later")
    if "output location" in message.lower():
        return AthenaError(f"athena {action}: {message} (pass output_location='s3://bucket/prefix/' or a "
                           "workgroup that sets one)")
    from botocore import exceptions as bx

    if isinstance(e, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return AthenaError(f"athena {action}: cannot reach Athena: {e}")
    return AthenaError(f"athena {action} failed: {code + ': ' if code else ''}{message or e}")


def _call(client: Any, action: str, method: str, **kwargs: Any) -> dict[str, Any]:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return getattr(client, method)(**kwargs)
    except (ClientError, BotoCoreError) as e:
        raise athena_error(e, action) from None


def run_query(
    sql: str,
    *,
    database: str | None,
    workgroup: str | None = None,
    output_location: str | None = None,
    session: Any = None,
    poll_seconds: float = 1.0,
    timeout: float | None = None,
    progress: Callable[[str, int], None] | None = None,
    catalog: str | None = None,
) -> AthenaResult:
    """Run ``sql`` (one statement, any SQL Athena accepts) and return its rows.

    ``database`` (and ``catalog``, default ``AwsDataCatalog``): the query's context.
    ``workgroup``: default the caller's default (``primary``). ``output_location``:
    ``s3://...`` for the result files, unless the workgroup sets one. ``session``: a
    ``boto3.Session`` (default: boto3's standard chain; ``AWS_ENDPOINT_URL`` honoured).
    ``poll_seconds`` (default 1.0): the wait between ``GetQueryExecution`` calls.
    ``timeout``: seconds to wait before stopping the query (default: no limit).
    ``progress(state, scanned_bytes)``: called after each poll while the query runs.

    Raises :class:`QueryFailed` (state FAILED, with Athena's reason), :class:`QueryCancelled`
    (cancelled elsewhere, or ``timeout`` reached: the query is stopped), :class:`AthenaError`
    (API errors). On ``KeyboardInterrupt`` the query is stopped, then the interrupt goes on.
    Cost: the bytes the query scans (see :attr:`AthenaResult.cost_usd`) plus one API call
    per poll and per 1,000 result rows.
    """
    if session is None:
        session = aws.session(None, AthenaError)
    client = session.client("athena", config=aws.client_config())
    request: dict[str, Any] = {"QueryString": sql}
    context = {k: v for k, v in (("Database", database), ("Catalog", catalog)) if v}
    if context:
        request["QueryExecutionContext"] = context
    if output_location:
        request["ResultConfiguration"] = {"OutputLocation": output_location}
    if workgroup:
        request["WorkGroup"] = workgroup
    qid = _call(client, "StartQueryExecution", "start_query_execution", **request)["QueryExecutionId"]
    execution = _wait(client, qid, poll_seconds=poll_seconds, timeout=timeout, progress=progress)
    frame, pages = _results(client, qid, execution)
    stats = execution.get("Statistics", {}) or {}
    return AthenaResult(
        frame=frame, query_execution_id=qid, statement_type=execution.get("StatementType"),
        data_scanned_bytes=int(stats.get("DataScannedInBytes") or 0),
        engine_execution_ms=int(stats.get("EngineExecutionTimeInMillis") or 0),
        total_execution_ms=stats.get("TotalExecutionTimeInMillis"),
        output_location=(execution.get("ResultConfiguration") or {}).get("OutputLocation"),
        pages=pages, execution=execution,
    )


def _stop(client: Any, qid: str) -> None:
    """StopQueryExecution, best effort (we are already leaving)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.stop_query_execution(QueryExecutionId=qid)
    except (ClientError, BotoCoreError):
        pass


def _wait(client: Any, qid: str, *, poll_seconds: float, timeout: float | None,
          progress: Callable[[str, int], None] | None) -> dict[str, Any]:
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            execution = _call(client, "GetQueryExecution", "get_query_execution",
                              QueryExecutionId=qid)["QueryExecution"]
            status = execution.get("Status", {}) or {}
            state = status.get("State", "")
            if state in FINAL_STATES:
                break
            if progress is not None:
                progress(state, int((execution.get("Statistics") or {}).get("DataScannedInBytes") or 0))
            if deadline is not None and time.monotonic() >= deadline:
                _stop(client, qid)
                raise QueryCancelled(f"athena query {qid}: still {state} after {timeout:g} s; stopped it "
                                     "(StopQueryExecution)", query_execution_id=qid, timed_out=True)
            time.sleep(poll_seconds)
    except KeyboardInterrupt:
        _stop(client, qid)
        raise
    if state == "FAILED":
        reason = status.get("StateChangeReason") or "no reason given"
        err = status.get("AthenaError") or {}
        kind = err.get("ErrorType")
        extra = f" [{err.get('ErrorCategory')}/{kind}]" if kind is not None else ""
        raise QueryFailed(f"athena query {qid} failed: {reason}{extra}", query_execution_id=qid, reason=reason,
                          error_type=None if kind is None else str(kind))
    if state == "CANCELLED":
        reason = status.get("StateChangeReason")
        raise QueryCancelled(f"athena query {qid} was cancelled{': ' + reason if reason else ''}",
                             query_execution_id=qid)
    return execution


#: Athena result types -> Polars (anything else stays a string: varchar, json, arrays, maps...).
_SIMPLE_TYPES: dict[str, pl.DataType] = {
    "boolean": pl.Boolean(), "tinyint": pl.Int8(), "smallint": pl.Int16(), "integer": pl.Int32(),
    "int": pl.Int32(), "bigint": pl.Int64(), "double": pl.Float64(), "float": pl.Float32(), "real": pl.Float32(),
}


def _typed(col: pl.Expr, info: dict[str, Any]) -> pl.Expr:
    """A string column of results cast to the column's Athena type."""
    kind = str(info.get("Type", "varchar")).lower()
    if kind == "boolean":
        return col.str.to_lowercase().replace_strict({"true": True, "false": False}, default=None,
                                                     return_dtype=pl.Boolean)
    if kind in _SIMPLE_TYPES:
        return col.cast(_SIMPLE_TYPES[kind], strict=True)
    if kind == "decimal":
        return col.cast(pl.Decimal(int(info.get("Precision") or 38), int(info.get("Scale") or 0)), strict=True)
    if kind == "date":
        return col.str.to_date("%Y-%m-%d")
    if kind == "timestamp":  # "2026-11-20 10:00:00.000", UTC by Athena's convention
        return col.str.to_datetime("%Y-%m-%d %H:%M:%S%.f", time_unit="us", time_zone="UTC")
    if kind == "timestamp with time zone":  # "2026-11-20 10:00:00.000 UTC"
        return col.str.replace(r" [A-Za-z_/+\-0-9:]+$", "").str.to_datetime(
            "%Y-%m-%d %H:%M:%S%.f", time_unit="us", time_zone="UTC")
    return col


_ROWS_SCHEMA = {"Data": pl.List(pl.Struct({"VarCharValue": pl.String}))}


def _results(client: Any, qid: str, execution: dict[str, Any]) -> tuple[pl.DataFrame, int]:
    """Every page of GetQueryResults as one typed frame, and the number of pages."""
    from botocore.exceptions import BotoCoreError, ClientError

    frames: list[pl.DataFrame] = []
    infos: list[dict[str, Any]] = []
    pages = 0
    try:
        for page in client.get_paginator("get_query_results").paginate(QueryExecutionId=qid):
            result = page.get("ResultSet", {}) or {}
            if pages == 0:
                infos = list((result.get("ResultSetMetadata") or {}).get("ColumnInfo") or [])
            pages += 1
            rows = result.get("Rows") or []
            if rows:
                frames.append(pl.DataFrame(rows, schema=_ROWS_SCHEMA))
    except (ClientError, BotoCoreError) as e:
        raise athena_error(e, "GetQueryResults") from None
    labels = [str(i.get("Label") or i.get("Name") or f"_col{n}") for n, i in enumerate(infos)]
    names = _unique(labels)
    cells = pl.concat(frames) if frames else pl.DataFrame(schema=_ROWS_SCHEMA)
    raw = cells.select(
        pl.col("Data").list.get(n, null_on_oob=True).struct.field("VarCharValue").alias(name)
        for n, name in enumerate(names)
    ) if names else pl.DataFrame()
    # SELECT results start with a row of the column labels (DDL results such as SHOW do not).
    if raw.height and execution.get("StatementType") == "DML" and list(raw.row(0)) == labels:
        raw = raw.slice(1)
    try:
        frame = raw.select(_typed(pl.col(name), info) for name, info in zip(names, infos, strict=True))
    except pl.exceptions.PolarsError as e:
        raise AthenaError(f"athena query {qid}: cannot type the results ({e})") from None
    return frame, pages


def _unique(names: list[str]) -> list[str]:
    """Column labels made unique (``SELECT a, a`` gives ``a``, ``a_2``)."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out
