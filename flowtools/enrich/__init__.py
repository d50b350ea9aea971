"""Enrichment: the inventory, ip-ranges, port names, and side tables joined to flows.

The package is callable: ``flowtools.enrich(flows, inventory=..., ip_ranges=...)`` is
:func:`flowtools.enrich.joins.enrich` (the public name in docs/design.md), while
``flowtools.enrich.inventory`` and the other modules stay importable as usual.

A *side table* is a small table computed in Python (distinct addresses classified,
inventory rows) that is joined back to a lazy frame of flows. :func:`side_table` puts a
Polars DataFrame on the same engine as the flows, and for DuckDB on the same
connection (DuckDB cannot join relations of two different connections).
:func:`materialised` executes a lazy frame once and holds its (small) result the same way,
so that a result used by several branches of a plan is not computed once per branch.
"""

from __future__ import annotations

import os
import sys
import tempfile
import types
import uuid
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["Inventory", "materialised", "side_table"]


def _native(like: Any) -> Any:
    native = getattr(like, "frame", like)  # a Flows object
    to_native = getattr(native, "to_native", None)  # a Narwhals frame
    if to_native is not None and not isinstance(native, pl.DataFrame | pl.LazyFrame):
        native = to_native()
    return native


def side_table(like: Any, table: pl.DataFrame) -> Any:
    """``table`` as a native frame on the engine of ``like``, ready to join with it.

    ``like`` is a ``Flows``, a Narwhals frame or a native frame: a Polars
    ``LazyFrame``/``DataFrame`` gives ``table.lazy()``; a ``duckdb.DuckDBPyRelation``
    gives a relation on the relation's own connection (a ``DuckDBPyConnection`` is
    accepted too).

    DuckDB: a relation does not expose its connection, but ``relation.query(name, sql)``
    runs SQL on it. The Arrow form of ``table`` is bound there through DuckDB's
    replacement scan of Python variables (the relation keeps the Arrow table alive; no
    copy). When the connection disables replacement scans (``python_enable_replacements
    = false``) the table goes through a temporary Parquet file into a ``TEMP`` table of
    that connection instead. Cost: the size of ``table``, never of ``like``.
    """
    native = _native(like)
    if isinstance(native, pl.LazyFrame | pl.DataFrame):
        return table.lazy()
    if isinstance(native, duckdb.DuckDBPyConnection):
        return native.from_arrow(table.to_arrow(compat_level=pl.CompatLevel.oldest()))
    if isinstance(native, duckdb.DuckDBPyRelation):
        return _duckdb_side_table(native, table)
    raise TypeError(f"side_table: expected a DuckDB relation or a Polars frame, got {type(native).__name__}")


def materialised(frame: Any) -> Any:
    """Execute ``frame`` (a native lazy frame, or a Narwhals frame) now and return a native
    lazy frame of the same engine over its result, held in memory.

    Use it for an intermediate result that several branches of a plan read: DuckDB runs a
    relation that a plan uses twice twice (no common subplans across relation branches),
    and Polars' streaming engine may too. Polars: ``collect().lazy()``. DuckDB: the result
    as an Arrow table (plain strings) bound on the relation's own connection, as
    :func:`side_table` does (no copy back into DuckDB storage). Cost: one execution of
    ``frame`` plus the size of its result in memory, which must be small enough to hold
    (never materialise the records themselves).
    """
    native = _native(frame)
    if isinstance(native, pl.LazyFrame):
        return native.collect().lazy()
    if isinstance(native, pl.DataFrame):
        return native.lazy()
    if isinstance(native, duckdb.DuckDBPyRelation):
        return _duckdb_side_table(native, native.to_arrow_table())
    raise TypeError(f"materialised: expected a DuckDB relation or a Polars frame, got {type(native).__name__}")


_ANCHOR = "_flowtools_anchor"  # the name `like` gets inside relation.query(); never referenced


def _duckdb_side_table(relation: duckdb.DuckDBPyRelation, table: pl.DataFrame | pa.Table) -> duckdb.DuckDBPyRelation:
    # Plain (large) strings, not string views: DuckDB pushes filters down into the Arrow
    # scan and pyarrow has no comparison kernels for string views.
    if isinstance(table, pl.DataFrame):
        table = table.to_arrow(compat_level=pl.CompatLevel.oldest())
    _flowtools_side_table = table  # noqa: F841 (found by DuckDB's replacement scan)
    try:
        return relation.query(_ANCHOR, "SELECT * FROM _flowtools_side_table")
    except duckdb.CatalogException:
        pass  # replacement scans disabled on this connection
    name = f"_flowtools_side_{uuid.uuid4().hex}"
    fd, path = tempfile.mkstemp(suffix=".parquet", prefix="flowtools-side-")
    os.close(fd)
    try:
        pq.write_table(table, path)
        quoted = path.replace("'", "''")
        relation.query(_ANCHOR, f'CREATE TEMP TABLE "{name}" AS SELECT * FROM read_parquet(\'{quoted}\')')
    finally:
        os.unlink(path)
    return relation.query(_ANCHOR, f'SELECT * FROM "{name}"')


from flowtools.enrich.inventory import Inventory  # noqa: E402 (needs side_table above)


class _Enrich(types.ModuleType):
    """This package's class: calling it calls :func:`flowtools.enrich.joins.enrich`."""

    def __call__(self, flows: Any, *, inventory: Inventory | None = None, ip_ranges: Any = None) -> Any:
        from flowtools.enrich.joins import enrich

        return enrich(flows, inventory=inventory, ip_ranges=ip_ranges)


sys.modules[__name__].__class__ = _Enrich
