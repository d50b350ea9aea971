"""Reading the store: which files a window needs, the flows as a lazy frame, the report.

Pruning uses the manifest's partition folders (account, region, date, hour) only: no
folder is listed and no Parquet file opened to decide (see
:mod:`flowtools.store.partitions` for the one-hour slack on the left). The files left are
scanned lazily with the canonical columns only (``hive_partitioning`` off: the folder keys
are not columns), and rows are filtered exactly by the window rule.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import polars as pl

from flowtools.layout import FlowLogObject, parse_key
from flowtools.read.report import ReadReport
from flowtools.store.location import S3, Local, open_location
from flowtools.store.manifest import FileEntry, Manifest, ObjectEntry
from flowtools.store.partitions import Partition, wanted, window_filter, window_sql
from flowtools.store.write import scan_schema
from flowtools.window import Window

if TYPE_CHECKING:
    import duckdb


def select_files(manifest: Manifest, window: Window, accounts: Iterable[str] | None = None,
                 regions: Iterable[str] | None = None) -> list[str]:
    """Paths (relative to the root) of the published files that can hold rows of ``window``."""
    accounts = set(accounts) if accounts else None
    regions = set(regions) if regions else None
    out = []
    for partition, paths in sorted(manifest.partitions().items()):
        if wanted(Partition.parse(partition), window, accounts, regions):
            out.extend(sorted(paths))
    return out


def objects(manifest: Manifest) -> list[FlowLogObject]:
    """The source objects the store holds, as the SOURCE's listing would give them."""
    out = []
    for key, e in sorted(manifest.objects.items()):
        o = parse_key(key, e.size, e.etag, any_name=e.any_name)
        if o is not None:
            out.append(o)
    return out


def _columns(entries: Sequence[FileEntry]) -> dict[str, pl.DataType]:
    return scan_schema(entries)


def open_polars(loc: str | os.PathLike | Local | S3, manifest: Manifest, window: Window, *,
                accounts: Iterable[str] | None = None, regions: Iterable[str] | None = None,
                sources: Iterable[str] | None = None) -> pl.LazyFrame:
    """A ``polars.LazyFrame`` over the window's files at ``loc`` (a
    :mod:`~flowtools.store.location`, or a local folder), filtered exactly to the window (and
    to rows of ``sources`` when given)."""
    return open_files(loc, manifest, select_files(manifest, window, accounts, regions), window=window, sources=sources)


def open_files(loc: str | os.PathLike | Local | S3, manifest: Manifest, paths: Sequence[str], *,
               window: Window | None = None, sources: Iterable[str] | None = None) -> pl.LazyFrame:
    """A ``polars.LazyFrame`` over the store's files ``paths`` (relative to the root), filtered
    exactly to ``window`` and to rows of ``sources`` when given. The ``sources`` filter is
    left out when every file holds rows of ``sources`` only (the manifest lists each file's
    objects): it would read the ``source_file`` column of every row for nothing."""
    loc = open_location(loc)
    schema = _columns([manifest.files[p] for p in paths])
    if not paths:
        return pl.LazyFrame(schema=schema)
    lf = pl.scan_parquet([loc.url(p) for p in paths], hive_partitioning=False, schema=schema,
                         missing_columns="insert", storage_options=loc.storage_options)
    expr = window_filter(window) if window is not None else None
    if expr is not None:
        lf = lf.filter(expr)
    if sources is not None and not _holds_only(manifest, paths, sources):
        lf = lf.filter(pl.col("source_file").is_in(sorted(set(sources))))
    return lf


def _holds_only(manifest: Manifest, paths: Sequence[str], sources: Iterable[str]) -> bool:
    """Whether the files ``paths`` hold rows of ``sources`` only."""
    keys = set(sources)
    return all(keys.issuperset(manifest.files[p].sources) for p in paths)


def open_duckdb(loc: str | os.PathLike | Local | S3, manifest: Manifest, window: Window,
                con: duckdb.DuckDBPyConnection, *, accounts: Iterable[str] | None = None,
                regions: Iterable[str] | None = None, sources: Iterable[str] | None = None) -> duckdb.DuckDBPyRelation:
    """A DuckDB relation on ``con`` over the window's files (``read_parquet``, Hive
    partitioning off), filtered exactly to the window (and to ``sources`` when given, unless
    the window's files hold rows of ``sources`` only). An
    S3 store's files are read through httpfs: ``con`` needs its credentials
    (:meth:`flowtools.store.location.S3.attach_duckdb`)."""
    loc = open_location(loc)
    paths = select_files(manifest, window, accounts, regions)
    schema = _columns([manifest.files[p] for p in paths])
    tag = secrets.token_hex(6)  # each relation keeps its own helper tables (relations are lazy)
    if not paths:
        name = f"__flowtools_store_empty_{tag}"
        con.register(name, pl.DataFrame(schema=schema).to_arrow(compat_level=pl.CompatLevel.newest()))
        return con.table(name)
    files = "[" + ", ".join(_sql_text(loc.url(p)) for p in paths) + "]"
    # by name only when the files' columns differ (their extra fields): DuckDB then reads
    # every file's schema each time a plan over the relation is bound (~10 ms per step for
    # 176 files), and the files of a store usually share one column list
    union = len({tuple(manifest.files[p].extra_columns) for p in paths}) > 1
    cols = ", ".join(_ident(c) for c in schema)
    where = [w for w in (window_sql(window),) if w]
    if sources is not None and not _holds_only(manifest, paths, sources):
        table = f"__flowtools_store_sources_{tag}"  # a temp table: no Arrow round trip (it imports pandas)
        con.execute(f"CREATE TEMP TABLE {table} AS SELECT unnest(?::VARCHAR[]) AS k", [sorted(set(sources))])
        where.append(f"source_file IN (SELECT k FROM {table})")
    sql = (f"SELECT {cols} FROM read_parquet({files}, hive_partitioning = false"
           f"{', union_by_name = true' if union else ''})")
    if where:
        sql += " WHERE " + " AND ".join(where)
    return con.sql(sql)


#: Up to this many source keys filter a Spark scan with ``isin``; more go through a
#: broadcast semi join with a table of the keys (a plan with a huge literal list is slow
#: to optimise and to ship to the executors).
SPARK_ISIN_KEYS = 1000


def open_spark(loc: str | os.PathLike | Local | S3, manifest: Manifest, window: Window, spark: Any, *,
               accounts: Iterable[str] | None = None, regions: Iterable[str] | None = None,
               sources: Iterable[str] | None = None) -> Any:
    """A ``pyspark.sql.DataFrame`` of ``spark`` over the window's files, filtered exactly to
    the window (and to ``sources`` when given): the same columns, types and rows as
    :func:`open_duckdb` and :func:`open_polars`.

    The files are pruned by the manifest exactly as for the other engines and handed to
    ``spark.read.parquet`` by path with the store's schema given (no schema inference,
    Hive keys not read as columns: they are folded into ``account_id``/``region``/``start``;
    a file that lacks a column of the schema reads it as nulls). The ``sources`` filter is
    decided on the manifest too (it lists each file's source objects): files without rows
    of ``sources`` are not read, and rows are filtered only when a file also holds others.
    Lazy: nothing is read until
    an action. The paths must be readable by the executors (a local store: local mode, or a
    folder every node mounts; a store on ``s3://`` is read as ``s3a://``, which needs the
    cluster's own S3 connector, hadoop-aws, and credentials: flowtools does not configure them)."""
    from pyspark.sql import functions as F

    from flowtools.frames import spark_schema

    paths = select_files(manifest, window, accounts, regions)
    schema = spark_schema(_columns([manifest.files[p] for p in paths]))
    exact = True  # every row of the files left belongs to ``sources``
    if sources is not None:  # the manifest knows each file's source objects: skip files without them
        wanted_keys = set(sources)
        paths = [p for p in paths if wanted_keys.intersection(manifest.files[p].sources)]
        exact = _holds_only(manifest, paths, wanted_keys)
    if not paths:
        return spark.createDataFrame([], schema)
    loc = open_location(loc)
    urls = [re.sub(r"^s3://", "s3a://", loc.url(p)) for p in paths]
    df = spark.read.schema(schema).parquet(*urls)
    if window.end_s is not None:
        df = df.filter(F.col("start") < F.lit(window.end_s))
    if window.start_s is not None:
        df = df.filter(F.col("end") >= F.lit(window.start_s))
    if not exact:
        keys = sorted(set(sources or ()))
        if len(keys) <= SPARK_ISIN_KEYS:
            df = df.filter(F.col("source_file").isin(keys))
        else:
            table = spark.createDataFrame([(k,) for k in keys], "source_file string")
            df = df.join(F.broadcast(table), on="source_file", how="left_semi")
    return df


def _sql_text(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _ident(s: str) -> str:
    return '"' + s.replace('"', '""') + '"'


def report(manifest: Manifest, objects: Sequence[FlowLogObject], window: Window, *, source: str = "",
           files_found: int | None = None, files_pruned: int = 0, records: int | None = None) -> ReadReport:
    """The read report a direct read of ``objects`` for ``window`` gives, from the manifest.

    Files and issues come in the reader's order: issues found while planning first (in
    object order), then the files by read group (file type and field list, in order of
    first appearance) and object order. ``records`` is the count of rows in the window (the
    caller counts them on its frame); objects the store does not hold are named in a warning.
    """
    rep = ReadReport(source=source, window=str(window),
                     files_found=len(objects) if files_found is None else files_found, files_pruned=files_pruned)
    found = [(o, manifest.objects.get(o.key)) for o in objects]
    missing = [o.key for o, e in found if e is None]
    held: list[tuple[FlowLogObject, ObjectEntry]] = [(o, e) for o, e in found if e is not None]
    for _, e in held:
        if e.plan_issue:
            _add_issues(rep, e)
    groups: dict[tuple[str, ...], int] = {}
    for _, e in held:
        if not e.plan_issue:
            groups.setdefault(e.group, len(groups))
    # text groups are read before Parquet ones
    order = sorted(((0 if e.group[:1] != ("parquet",) else 1, groups[e.group], n), e)
                   for n, (_, e) in enumerate(held) if not e.plan_issue)
    for _, e in order:
        if e.read is not None:
            rep.files.append(e.read)
        _add_issues(rep, e)
        rep.warnings.extend(e.warnings)
    rep.records_parsed = sum(f.records for f in rep.files)
    if records is not None:
        rep.records = records
    if missing:
        rep.warnings.append(f"{len(missing)} object(s) of the window are not in the store yet (first: {missing[0]}); "
                            "run `flowtools store build` to add them")
    return rep


def _add_issues(rep: ReadReport, e: ObjectEntry) -> None:
    for n, i in enumerate(e.issues):  # the bad lines kept belong to the file's (first) issue
        rep.add_issue(i, e.bad_lines if n == 0 else [])


def count(frame: Any) -> int:
    """Rows of a frame from :func:`open_polars`, :func:`open_duckdb` or :func:`open_spark`."""
    if isinstance(frame, pl.LazyFrame):
        return frame.select(pl.len()).collect().item()
    if hasattr(frame, "sparkSession"):
        return frame.count()
    return frame.aggregate("count(*)").fetchone()[0]
