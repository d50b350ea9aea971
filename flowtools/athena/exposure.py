"""The exposure analysis run in Athena, from SQL generated out of the analysis itself.

The analysis is written once, in Narwhals (:mod:`flowtools.analyses.exposure`). Nothing of
it is written again as SQL here: it is *planned* on DuckDB and its plan printed as SQL.

1. **A table shaped like Athena's.** An in-memory DuckDB connection gets an empty table
   with the Athena table's name and columns (the columns :func:`flowtools.athena.ddl.ddl`
   declares for the layout and format, partition columns included). The flows are a
   relation over it in the canonical schema: the raw layouts derive ``start_time`` /
   ``end_time`` from ``start`` / ``end`` and ``source_account_id`` / ``source_region``
   from the partition columns; a window adds the partition predicate
   (:func:`flowtools.athena.ddl.partition_filter`) and the row filter.
2. **The analysis runs on that relation** with :class:`~flowtools.analyses.exposure.Steps`
   that do not execute on DuckDB: the eager address-pairs aggregate is printed as SQL,
   transpiled, run in Athena (a small result: distinct interfaces and address pairs) and
   returned to the analysis, which classifies the addresses and orients the pairs in
   Python as always; the conversation tables that the analysis would materialise become
   named steps (``WITH`` queries).
3. **The findings relation is printed** (DuckDB's ``relation.sql_query()``) and made
   self-contained: the small side tables (orientation, interfaces, addresses, the risk
   policy...) become ``VALUES`` lists and the steps ``WITH`` queries.
4. **Transpiled to Athena** with sqlglot (DuckDB -> ``athena``, Trino's SQL), with the
   fixes sqlglot's output needs (:func:`flowtools.athena.transpile.to_athena`), then run
   in Athena; side tables too long to inline are staged in S3
   (:mod:`flowtools.athena.staging`).

What it costs: two queries. The address-pairs query reads the columns the analysis needs
once. The findings query refers to the table once per reading of the conversations, and
Athena (Trino) evaluates a ``WITH`` query at each reference rather than storing it: the
bytes scanned are a few times the columns read (the figure is reported). Athena refuses a
query string above :data:`MAX_QUERY_BYTES`; the side tables grow with the distinct address
pairs, so very large estates exceed it (an error says so; see ``docs/athena.md``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import narwhals as nw
import polars as pl

from flowtools import aws
from flowtools.analyses.exposure import Steps, internet_exposure
from flowtools.analyses.exposure.findings import COLUMNS, EXTRA_COLUMNS, POLARS_TYPES
from flowtools.analyses.risk import STATUSES, Policy
from flowtools.athena.ddl import partition_filter, table_spec
from flowtools.athena.run import AthenaError, AthenaResult, cost_usd, run_query
from flowtools.athena.staging import S3Stager, Stager
from flowtools.athena.transpile import to_athena, values_sql
from flowtools.enrichment.inventory import Inventory
from flowtools.enrichment.ip_ranges import IpRanges
from flowtools.errors import UsageError
from flowtools.window import Window

__all__ = ["MAX_QUERY_BYTES", "AthenaExposure", "ExposureSql", "exposure", "exposure_sql", "to_athena"]

#: Athena's limit on a query string (bytes, UTF-8), a service quota.
MAX_QUERY_BYTES = 262_144

#: DuckDB types of the Athena (Hive DDL) column types of :mod:`flowtools.athena.ddl`.
_DUCKDB_TYPES = {"int": "INTEGER", "bigint": "BIGINT", "string": "VARCHAR",
                 "timestamp": "TIMESTAMP WITH TIME ZONE"}  # as the canonical schema (UTC)
#: A record's ``start``/``end`` above this is milliseconds (as the readers treat it).
_MILLISECONDS = 10**11
_SIDE = re.compile(r'"?(_flowtools_side_[0-9a-f]{32})"?')
_STEP = re.compile(r'"?(_flowtools_step_\d+)"?')


class _Planner:
    """The DuckDB connection the analysis is planned on: an empty table named like the Athena
    table, the flows over it, and the steps and side tables the plan refers to."""

    def __init__(self, table: str, columns: Sequence[tuple[str, str]], partitions: Sequence[tuple[str, str]],
                 layout: str, window: Window | None) -> None:
        self.table = table
        self.con = duckdb.connect(":memory:")
        # side tables then become TEMP tables with unique names (flowtools.frames.side_table),
        # which the SQL names and :meth:`sql` inlines
        self.con.execute("SET python_enable_replacements = false")
        cols = ", ".join(f'"{c}" {_DUCKDB_TYPES[t]}' for c, t in [*columns, *partitions])
        self.con.execute(f'CREATE TABLE "{table}" ({cols})')
        self.steps: dict[str, str] = {}
        self.flows = self.con.sql(flows_sql(table, [c for c, _ in columns], layout, window))

    def hold(self, frame: Any) -> duckdb.DuckDBPyRelation:
        """A conversation table the analysis would materialise: a named step instead."""
        relation = nw.to_native(frame) if isinstance(frame, nw.LazyFrame) else frame
        name = f"_flowtools_step_{len(self.steps) + 1}"
        self.steps[name] = relation.sql_query()
        # an empty table of the step's columns, not a view: later steps bind against a table,
        # not the whole plan again (DuckDB binds a relation's full tree at each step)
        self.con.execute(f'CREATE TEMP TABLE "{name}" AS SELECT * FROM ({self.steps[name]}) LIMIT 0')
        return self.con.sql(f'SELECT * FROM "{name}"')

    def seed(self, rows: pl.DataFrame) -> None:
        """Put ``rows`` (some of the table's columns) into the planning table, for an eager
        step of the analysis that reads the flows directly."""
        _rows = rows.to_arrow()  # noqa: F841 (read by the INSERT below)
        self.con.register("_flowtools_rows", _rows)
        cols = ", ".join(f'"{c}"' for c in rows.columns)
        self.con.execute(f'INSERT INTO "{self.table}" ({cols}) SELECT {cols} FROM _flowtools_rows')
        self.con.unregister("_flowtools_rows")

    def schema(self, relation: duckdb.DuckDBPyRelation) -> pl.Schema:
        return relation.limit(0).pl().schema  # the table is empty: costs nothing

    def sql(self, relation: duckdb.DuckDBPyRelation, outer: Callable[[str], str] | None = None,
            ) -> tuple[str, dict[str, duckdb.DuckDBPyRelation]]:
        """``relation`` as one DuckDB query with its steps as ``WITH`` queries (``step_N``)
        and its side tables as ``WITH`` queries over placeholders (``side_N AS (SELECT *
        FROM __side_N)``, see :func:`_with_sides`), and the side tables by placeholder;
        ``outer(query)`` wraps the query."""
        body = relation.sql_query()
        if outer is not None:
            body = outer(body)
        steps: list[str] = []
        pending = set(_STEP.findall(body))
        while pending:
            name = pending.pop()
            steps.append(name)
            pending |= set(_STEP.findall(self.steps[name])) - set(steps)
        steps.sort(key=lambda n: int(n.rsplit("_", 1)[1]))  # creation order: dependencies first
        texts = [*(self.steps[n] for n in steps), body]
        sides: list[str] = []
        for text in texts:  # numbered in order of first use
            for n in _SIDE.findall(text):
                if n not in sides:
                    sides.append(n)
        names = {n: f"side_{i + 1}" for i, n in enumerate(sides)} | {n: n.removeprefix("_flowtools_") for n in steps}

        def renamed(text: str) -> str:
            text = _SIDE.sub(lambda m: names[m.group(1)], text)
            return _STEP.sub(lambda m: names[m.group(1)], text)

        ctes = [f"{names[n]} AS (SELECT * FROM __{names[n]})" for n in sides]
        ctes += [f"{names[n]} AS ({renamed(self.steps[n])})" for n in steps]
        query = (("WITH " + ",\n".join(ctes) + "\n") if ctes else "") + renamed(body)
        return query, {f"__{names[n]}": self.con.table(n) for n in sides}


def flows_sql(table: str, columns: Sequence[str], layout: str, window: Window | None) -> str:
    """The flows in the canonical schema over the Athena table (DuckDB SQL, transpiled with
    the rest): the raw layouts' derived columns, and the window's partition and row filters."""
    select = ["*"]
    if layout != "store":  # the store holds the canonical columns
        def stamp(c: str) -> str:
            return f'to_timestamp(CASE WHEN "{c}" > {_MILLISECONDS} THEN "{c}" / 1000 ELSE "{c}" END)'
        if "start" in columns:
            select.append(f"{stamp('start')} AS start_time")
        if "end" in columns:
            select.append(f"{stamp('end')} AS end_time")
        if "account_id" not in columns:
            select.append("p_account_id AS account_id")
        select += ["p_account_id AS source_account_id", "p_region AS source_region"]
    where = []
    if window is not None and window.start is not None and window.end is not None:
        where.append(partition_filter(layout, window.start, window.end))
    if window is not None and window.end is not None:
        where.append(f'"start" < {window.end_s}')
    if window is not None and window.start is not None:
        where.append(f'"end" >= {window.start_s}')
    return f'SELECT {", ".join(select)} FROM "{table}"' + (f" WHERE {' AND '.join(where)}" if where else "")


def _with_sides(athena_sql: str, sides: dict[str, duckdb.DuckDBPyRelation], stage: Stager | None) -> str:
    """Replace each side-table placeholder of the transpiled query by the table's rows
    (``VALUES``) or by the table ``stage`` put them in."""
    for placeholder, relation in sides.items():
        staged = stage(placeholder.removeprefix("__"), relation) if stage is not None else None
        source = staged if staged is not None else f"({values_sql(relation)}) AS {placeholder}"
        pieces = re.split(rf'\b{placeholder}\b', athena_sql)  # the text as is (no escapes)
        n, athena_sql = len(pieces) - 1, source.join(pieces)
        if n != 1:
            raise AssertionError(f"side table {placeholder}: {n} placeholders in the transpiled query")
    return athena_sql

@dataclass
class ExposureSql:
    """The queries of one run (Athena SQL): the address pairs, the findings, and (with an
    inventory and the v7 ``ecs_service_name`` field) the interfaces' ECS services."""

    pairs_sql: str
    findings_sql: str
    names_sql: str | None = None


@dataclass
class AthenaExposure:
    """Findings computed in Athena, the SQL that computed them, and what the queries cost."""

    findings: pl.DataFrame
    sql: ExposureSql
    results: list[AthenaResult] = field(default_factory=list)

    @property
    def data_scanned_bytes(self) -> int:
        return sum(r.data_scanned_bytes for r in self.results)

    @property
    def cost_usd(self) -> float:
        """On-demand estimate, each query billed on its own (:func:`flowtools.athena.run.cost_usd`)."""
        return sum(cost_usd(r.data_scanned_bytes, r.statement_type) for r in self.results)


#: Runs one Athena SQL statement and returns its rows.
Runner = Callable[[str], pl.DataFrame]


def exposure_sql(run: Runner, *, table: str = "vpc_flow_logs", layout: str = "store", file_format: str | None = None,
                 fields: str | Sequence[str] | None = None, window: Window | None = None,
                 inventory: Inventory | None = None, method: str = "full", include_configured: bool = False,
                 ip_ranges: IpRanges | None = None, risk_policy: Policy | None = None,
                 stage: Stager | None = None) -> tuple[ExposureSql, pl.DataFrame]:
    """Generate the exposure analysis as Athena SQL and run it through ``run``.

    ``run(sql)`` executes one Athena statement and returns its rows as a Polars frame: it is
    called twice, for the address pairs (whose result the analysis needs to write the
    second query) and for the findings. :func:`exposure` passes Athena; the tests pass
    DuckDB over the same SQL transpiled back. The table is described as
    :func:`flowtools.athena.ddl.ddl` declares it (``layout``, ``file_format``, ``fields``).
    ``stage(name, side_table)`` (optional) puts a side table where Athena can read it and
    returns the table's name, or None to inline it as ``VALUES``; without it every side
    table is inlined. Returns the two statements and the findings, in the columns, types
    and order of :func:`flowtools.analyses.exposure.internet_exposure`.
    """
    fmt = file_format or ("parquet" if layout == "store" else "text")
    spec = table_spec("s3://flowtools-plan/", layout=layout, file_format=fmt, fields=fields, table=table)
    planner = _Planner(table, spec.columns, spec.partitions, layout, window)
    pairs_sql: list[str] = []

    def collect(frame: nw.LazyFrame) -> pl.DataFrame:
        relation = nw.to_native(frame)
        query, sides = planner.sql(relation)
        pairs_sql.append(_with_sides(to_athena(query), sides, stage))
        return _typed(run(pairs_sql[-1]), planner.schema(relation))

    names_sql = None
    if inventory is not None and inventory.interfaces.height and "ecs_service_name" in planner.flows.columns:
        # The findings name interfaces after the ECS services of their records, read by an
        # eager aggregate (flowtools.enrichment.naming) on the flows: the planning table gets
        # the distinct (interface, service) pairs from Athena, and that aggregate runs on them.
        pairs = planner.flows.filter("ecs_service_name IS NOT NULL").aggregate(
            "interface_id, ecs_service_name", "interface_id, ecs_service_name")
        query, sides = planner.sql(pairs)
        names_sql = _with_sides(to_athena(query), sides, stage)
        names = run(names_sql)
        planner.seed(names.select(pl.col(c).cast(pl.String) for c in ("interface_id", "ecs_service_name")))
    steps = Steps(collect=collect, hold=planner.hold)
    relation = internet_exposure(planner.flows, inventory=inventory, method=method,  # type: ignore[arg-type]
                                 include_configured=include_configured, ip_ranges=ip_ranges,
                                 risk_policy=risk_policy, batch_records=0, steps=steps)
    # sample_peers as one string: arrays come back from Athena's API as text
    columns = ", ".join("array_to_string(sample_peers, ';') AS sample_peers" if c == "sample_peers" else f'"{c}"'
                        for c in relation.columns)
    query, sides = planner.sql(relation, lambda body: f"SELECT {columns} FROM ({body}) AS findings")
    findings_sql = _with_sides(to_athena(query), sides, stage)
    size = len(findings_sql.encode())
    if size > MAX_QUERY_BYTES:
        raise UsageError(f"the generated findings query is {size:,} bytes, above Athena's limit of "
                         f"{MAX_QUERY_BYTES:,}: its side tables grow with the distinct address pairs of the "
                         "window; stage them in S3 (staging_location) or use a shorter window (see docs/athena.md)")
    findings = run(findings_sql)
    return ExposureSql(pairs_sql[0], findings_sql, names_sql), findings_frame(findings)


def _typed(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """Rows from a runner in the types the plan has (Athena's API types them loosely)."""
    return frame.select(pl.col(c).cast(t) if c in frame.columns else pl.lit(None, t).alias(c)
                        for c, t in schema.items())


_STATUS_ORDER = {s: i for i, s in enumerate(("exposed", "reachable", "blocked", "configured"))}
assert set(_STATUS_ORDER) == set(STATUSES)


def findings_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """The findings query's rows in the columns, types and order of ``internet_exposure``
    (Athena drops a subquery's ``ORDER BY``: the order is the contract's, applied here)."""
    types = {**POLARS_TYPES, "risk": pl.String, "risk_category": pl.String}
    peers = pl.col("sample_peers")
    if frame.schema.get("sample_peers") == pl.String:
        peers = pl.when(peers.is_null() | (peers == "")).then(pl.lit([], pl.List(pl.String))).otherwise(
            peers.str.split(";"))
    out = frame.with_columns(sample_peers=peers)
    stamps = [c for c, t in out.schema.items()
              if c in ("first_seen", "last_seen") and isinstance(t, pl.Datetime) and t.time_zone is None]
    out = out.with_columns(pl.col(c).dt.replace_time_zone("UTC") for c in stamps)
    out = out.select(pl.col(c).cast(types[c]) for c in (*COLUMNS, *EXTRA_COLUMNS))
    return out.with_columns(_rank=pl.col("status").replace_strict(_STATUS_ORDER, default=len(_STATUS_ORDER))).sort(
        ["_rank", "peers", "interface_id", "protocol", "port"], descending=[False, True, False, False, False],
        nulls_last=True).drop("_rank")


def exposure(*, database: str | None, table: str = "vpc_flow_logs", layout: str = "store",
             file_format: str | None = None, fields: str | Sequence[str] | None = None,
             window: Window | None = None, workgroup: str | None = None, output_location: str | None = None,
             session: Any = None, catalog: str | None = None, inventory: Inventory | None = None,
             method: str = "full", include_configured: bool = False, ip_ranges: IpRanges | None = None,
             risk_policy: Policy | None = None, poll_seconds: float = 1.0, timeout: float | None = None,
             progress: Callable[[str, int], None] | None = None, staging_location: str | None = None,
             ) -> AthenaExposure:
    """Internet exposure computed in Athena over the flow-log table ``database.table``.

    The table is one :func:`flowtools.athena.ddl.ddl` declares: ``layout`` (default
    ``store``, flowtools' partition store), ``file_format`` (default text, parquet for the
    store) and ``fields`` (the flow log's format; raw layouts) say its columns. ``window``:
    the records overlapping it, its partitions only (default: every record; with
    ``injected`` projections Athena then refuses the query: give a window and accounts).
    ``inventory``, ``method``, ``include_configured``, ``ip_ranges``, ``risk_policy``: as
    :func:`flowtools.analyses.exposure.internet_exposure`, whose findings (columns, types,
    order) this returns. ``workgroup``, ``output_location``, ``session``, ``catalog``,
    ``poll_seconds``, ``timeout``, ``progress``: as :func:`flowtools.athena.run.run_query`,
    for each of the two queries.

    Side tables longer than :data:`flowtools.athena.staging.INLINE_BYTES` as ``VALUES``
    (the oriented address pairs, typically) are staged: written as one text object under ``staging_location``
    (default: ``output_location`` + ``flowtools-staging/``), declared as a table of
    ``database`` for the query (``CREATE EXTERNAL TABLE``, free), then dropped and deleted.
    This needs ``s3:PutObject``/``DeleteObject`` there and ``glue:CreateTable``/``DeleteTable``.
    Without a staging location every side table is inlined.

    Cost: two Athena queries (see the module doc): the bytes they scan are in
    :attr:`AthenaExposure.data_scanned_bytes` and :attr:`AthenaExposure.cost_usd`. Raises
    the errors of :func:`~flowtools.athena.run.run_query`, and
    :class:`~flowtools.errors.UsageError` when the findings query is too long for Athena.
    """
    results: list[AthenaResult] = []
    if session is None:
        session = aws.session(None, AthenaError)

    def run(sql: str) -> pl.DataFrame:
        result = run_query(sql, database=database, workgroup=workgroup, output_location=output_location,
                           session=session, poll_seconds=poll_seconds, timeout=timeout, progress=progress,
                           catalog=catalog)
        results.append(result)
        return result.frame

    staging = staging_location or (output_location.rstrip("/") + "/flowtools-staging/" if output_location else None)
    stager = S3Stager(staging, session, run) if staging else None
    try:
        statements, findings = exposure_sql(run, table=table, layout=layout, file_format=file_format, fields=fields,
                                            window=window, inventory=inventory, method=method,
                                            include_configured=include_configured, ip_ranges=ip_ranges,
                                            risk_policy=risk_policy, stage=stager)
    finally:
        if stager is not None:
            stager.clean_up()
    return AthenaExposure(findings=findings, sql=statements, results=results)
