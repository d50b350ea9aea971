"""Athena (Trino) SQL from DuckDB's: sqlglot's transpiler with the fixes it needs, and
small tables written as typed ``VALUES`` lists in Athena's syntax.

Used by :mod:`flowtools.athena.exposure`, whose analysis is planned on DuckDB and printed
as DuckDB SQL. Cost: parsing and printing the query text, nothing on the data.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl
import sqlglot
from sqlglot import exp

from flowtools.errors import UsageError

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

__all__ = ["to_athena", "values_sql"]


def _literal(value: Any, dtype: PolarsDataType) -> str:
    """``value`` as an Athena (Trino) literal."""
    if value is None:
        return "NULL"
    if isinstance(dtype, pl.List):
        return "ARRAY[" + ", ".join(_literal(v, dtype.inner) for v in value) + "]"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, datetime):
        return f"TIMESTAMP '{value.replace(tzinfo=None).isoformat(sep=' ')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    return "'" + str(value).replace("'", "''") + "'"


def _athena_type(duckdb_type: str) -> str:
    return exp.DataType.build(duckdb_type, dialect="duckdb").sql(dialect="athena")


def values_sql(relation: duckdb.DuckDBPyRelation) -> str:
    """A side table as a typed Athena ``SELECT ... FROM (VALUES ...)``: written directly in
    Athena's syntax (plain literals), not through the transpiler."""
    frame = relation.pl()
    types = [_athena_type(str(t)) for t in relation.types]
    names = [f'"{c}"' for c in relation.columns]
    if frame.height == 0:
        return "SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in zip(names, types, strict=True)) + \
            " WHERE FALSE"
    dtypes = list(frame.schema.values())
    rows = ", ".join("(" + ", ".join(_literal(v, d) for v, d in zip(row, dtypes, strict=True)) + ")"
                     for row in frame.iter_rows())
    alias = ", ".join(f"c{i}" for i in range(len(names)))
    cols = ", ".join(f"CAST(c{i} AS {t}) AS {c}" for i, (c, t) in enumerate(zip(names, types, strict=True)))
    return f"SELECT {cols} FROM (VALUES {rows}) AS v({alias})"




def _fix(node: exp.Expression) -> exp.Expression:
    """What sqlglot's DuckDB -> Athena output gets wrong for Trino."""
    if isinstance(node, exp.Anonymous) and node.name.lower() == "mean":  # DuckDB's mean(): avg()
        return exp.Avg(this=node.expressions[0])
    if isinstance(node, exp.Count) and node.this is None:  # DuckDB's count(): count(*)
        return exp.Count(this=exp.Star())
    if isinstance(node, exp.Group) and node.args.get("all"):
        raise UsageError("generated SQL uses GROUP BY ALL, which Athena does not accept")
    return node


def to_athena(sql: str) -> str:
    """DuckDB SQL as Athena (Trino) SQL: sqlglot's transpiler plus the fixes it needs
    (``mean`` -> ``avg``, ``count()`` -> ``count(*)``; ``GROUP BY ALL`` refused)."""
    tree = sqlglot.parse_one(sql, read="duckdb").transform(_fix, copy=False)
    return tree.sql(dialect="athena")
