"""A local stand-in for Athena: the generated Athena SQL run on DuckDB, without AWS.

:class:`LocalAthena` holds flow records (a Polars frame with the Athena table's columns,
e.g. flowtools' canonical schema for the ``store`` layout) as the table ``vpc_flow_logs``
of an in-memory DuckDB connection. Each statement it is given must parse in sqlglot's
``athena`` dialect; it is then transpiled back to DuckDB and run there. Side tables that
:func:`flowtools.athena.exposure.exposure` would stage in S3 (the same rule,
:func:`~flowtools.athena.staging.stageable`) are registered on the connection instead.

It checks the generated SQL, not Athena: what it shows is that the SQL is Athena's syntax
and means, read back by DuckDB, what the analysis means. It cannot show how Trino evaluates
it (see ``docs/athena.md``). Cost: the records are held in memory (Arrow) and each query
runs on DuckDB over them.
"""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl
import sqlglot

from flowtools.athena.exposure import ExposureSql, exposure_sql
from flowtools.athena.staging import stageable

__all__ = ["LocalAthena"]


class LocalAthena:
    """Athena stood in for by DuckDB over ``records`` (table ``table``, default
    ``vpc_flow_logs``). Call it with one Athena statement to get its rows; ``statements``
    lists what it ran, ``staged`` the side tables it was handed instead of inlining them."""

    def __init__(self, records: pl.DataFrame, table: str = "vpc_flow_logs") -> None:
        self.table = table
        self.con = duckdb.connect(":memory:")
        self.con.register(table, records.to_arrow())
        self.statements: list[str] = []
        self.staged: dict[str, pl.DataFrame] = {}

    def __call__(self, sql: str) -> pl.DataFrame:
        """Run one Athena statement: it must parse as Athena SQL (sqlglot raises a
        ``ParseError`` naming the position otherwise); then it runs on DuckDB."""
        self.statements.append(sql)
        tree = sqlglot.parse_one(sql, read="athena")  # parsed once: long queries take seconds
        return self.con.sql(tree.sql(dialect="duckdb")).pl()

    def stage(self, name: str, relation: duckdb.DuckDBPyRelation) -> str | None:
        """Where :func:`~flowtools.athena.exposure.exposure` would stage a side table in
        S3, register it here and return its name (None: inline it)."""
        if not stageable(relation):
            return None
        table = f"staged_{name}"
        self.staged[table] = relation.pl()
        self.con.register(table, self.staged[table].to_arrow())
        return table

    def exposure(self, **options: Any) -> tuple[ExposureSql, pl.DataFrame]:
        """The exposure analysis as generated Athena SQL, run here with staging:
        :func:`~flowtools.athena.exposure.exposure_sql` with ``table`` and ``options``
        (``inventory``, ``ip_ranges``, ``include_configured``, ``layout``, ``window``...).
        Returns the statements and the findings (as ``internet_exposure`` returns them)."""
        return exposure_sql(self, table=self.table, stage=self.stage, **options)
