"""The engine layer: the one place that knows DuckDB, Polars and Narwhals frames apart.

Every analysis, enrichment and figure takes "flows" in any of these forms and works on
its native engine; this module turns them into what the caller needs:

* :func:`native`: a native lazy frame (a ``duckdb.DuckDBPyRelation``, a
  ``polars.LazyFrame`` or a ``pyspark.sql.DataFrame``) from a ``Flows``, a relation, a
  Polars ``LazyFrame``/``DataFrame``, a Spark DataFrame or a Narwhals frame; :func:`lazy`
  the same as a Narwhals ``LazyFrame``.
* :func:`to_polars`: execute any of those and return a Polars ``DataFrame``.
* :func:`side_table`: a small Polars table on the same engine (and for DuckDB the same
  connection) as a given frame, ready to join with it; :func:`materialised`: execute a
  lazy frame once and hold its small result the same way; :func:`spilled`: the same for a
  large result, kept on disk (in :func:`spill_folder`) instead of in memory.
* :func:`register`: a Polars frame as a named view of a DuckDB connection, for SQL.

Spark (the optional ``flowtools[spark]`` extra) is recognised without importing pyspark:
a Spark DataFrame is one when pyspark is already imported (Narwhals'
``is_pyspark_dataframe``; Spark Connect DataFrames too). On Spark, a side table is
``spark.createDataFrame`` of the small table's Arrow form, a materialised result a
``localCheckpoint`` (held by the executors, lineage cut), and :func:`to_polars` goes
through ``DataFrame.toArrow`` (the result travels to the driver: small results only).

Nothing here reads the data on its own: costs are those of the frames passed in, and are
stated per function.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import narwhals as nw
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from narwhals.dependencies import is_pyspark_connect_dataframe, is_pyspark_dataframe

from flowtools.errors import UsageError

__all__ = ["NativeFrame", "PolarsType", "is_spark", "lazy", "materialised", "native", "optional_columns", "register",
           "side_table", "spark_schema", "spill_folder", "spilled", "spilled_parts", "to_polars", "to_spark"]

#: A native lazy frame: what analyses take and return (a ``pyspark.sql.DataFrame`` too,
#: which is not named here because pyspark is optional).
NativeFrame = duckdb.DuckDBPyRelation | pl.LazyFrame | Any
#: A Polars column type as schemas write it: ``pl.String`` (the class) or ``pl.Datetime("us", "UTC")``.
PolarsType = pl.DataType | type[pl.DataType]


def _unwrap(frame: Any) -> Any:
    """The native object behind a ``Flows`` (its ``.frame``) or a Narwhals frame."""
    frame = getattr(frame, "frame", frame)  # a Flows object
    if isinstance(frame, nw.LazyFrame | nw.DataFrame):
        frame = frame.to_native()
    return frame


def is_spark(frame: Any) -> bool:
    """Whether ``frame`` (a ``Flows``, a Narwhals or a native frame) is a Spark DataFrame
    (classic or Spark Connect). Never imports pyspark."""
    frame = _unwrap(frame)
    return bool(is_pyspark_dataframe(frame) or is_pyspark_connect_dataframe(frame))


def native(flows: Any) -> NativeFrame:
    """``flows`` as a native lazy frame: a ``Flows`` gives its ``.frame``, a Narwhals frame
    its native frame, a Polars ``DataFrame`` its ``.lazy()``; a DuckDB relation or a Polars
    ``LazyFrame`` or a Spark DataFrame is returned as is. Anything else raises
    :class:`~flowtools.errors.UsageError`. Costs nothing (no execution)."""
    frame = _unwrap(flows)
    if isinstance(frame, pl.DataFrame):
        frame = frame.lazy()
    if not (isinstance(frame, pl.LazyFrame | duckdb.DuckDBPyRelation) or is_spark(frame)):
        raise UsageError(f"flows must be a Flows, a DuckDB relation or a Polars frame, not {type(frame).__name__}")
    return frame


def lazy(flows: Any) -> nw.LazyFrame:
    """``flows`` (any form :func:`native` takes) as a Narwhals ``LazyFrame``. No execution."""
    return nw.from_native(native(flows))


def to_polars(frame: Any) -> pl.DataFrame:
    """Execute ``frame`` (a ``Flows``, a DuckDB relation, a Polars lazy or eager frame, a
    Spark DataFrame, a Narwhals frame) and return a Polars ``DataFrame``. Cost: the frame's
    whole plan and its result in memory: use it on small results (findings, aggregates).
    Polars plans run on its streaming engine, so an aggregate over a large scan holds the
    aggregate, not the scanned columns. Spark: ``toArrow()`` (the result is collected on the
    driver); timestamps come back in UTC."""
    frame = _unwrap(frame)
    if isinstance(frame, duckdb.DuckDBPyRelation):
        return frame.pl()
    if is_spark(frame):
        return _spark_to_polars(frame)
    if isinstance(frame, pl.LazyFrame):
        return frame.collect(engine="streaming")
    if isinstance(frame, pl.DataFrame):
        return frame
    raise TypeError(f"to_polars: expected a DuckDB relation or a Polars frame, got {type(frame).__name__}")


def optional_columns(frame: nw.LazyFrame) -> Callable[..., nw.Expr]:
    """``column(name, dtype=String)``: the column of ``frame``, or a typed null when the
    frame has no such column (a flow log whose format lacks the field). Costs nothing."""
    names = set(frame.collect_schema().names())

    def column(name: str, dtype: Any = nw.String) -> nw.Expr:
        return nw.col(name) if name in names else nw.lit(None, dtype)

    return column


def side_table(like: Any, table: pl.DataFrame) -> NativeFrame:
    """``table`` as a native frame on the engine of ``like``, ready to join with it.

    ``like`` is a ``Flows``, a Narwhals frame or a native frame: a Polars
    ``LazyFrame``/``DataFrame`` gives ``table.lazy()``; a ``duckdb.DuckDBPyRelation``
    gives a relation on the relation's own connection (a ``DuckDBPyConnection`` is
    accepted too); a Spark DataFrame gives a DataFrame of its session
    (``spark.createDataFrame`` of the Arrow form, with the Spark schema of ``table``'s
    Polars schema, so that an empty table keeps its types). Anything else raises
    ``TypeError``.

    DuckDB: a relation does not expose its connection, but ``relation.query(name, sql)``
    runs SQL on it. The Arrow form of ``table`` is bound there through DuckDB's
    replacement scan of Python variables (the relation keeps the Arrow table alive; no
    copy). When the connection disables replacement scans (``python_enable_replacements
    = false``) the table goes through a temporary Parquet file into a ``TEMP`` table of
    that connection instead. Cost: the size of ``table``, never of ``like``.
    """
    frame = _unwrap(like)
    if isinstance(frame, pl.LazyFrame | pl.DataFrame):
        return table.lazy()
    if isinstance(frame, duckdb.DuckDBPyConnection):
        return frame.from_arrow(table.to_arrow(compat_level=pl.CompatLevel.oldest()))
    if isinstance(frame, duckdb.DuckDBPyRelation):
        return _duckdb_side_table(frame, table)
    if is_spark(frame):
        return to_spark(frame.sparkSession, table)
    raise TypeError(f"side_table: expected a DuckDB relation or a Polars frame, got {type(frame).__name__}")


def materialised(frame: Any) -> NativeFrame:
    """Execute ``frame`` (a native lazy frame, or a Narwhals frame) now and return a native
    lazy frame of the same engine over its result, held in memory.

    Use it for an intermediate result that several branches of a plan read: DuckDB runs a
    relation that a plan uses twice twice (no common subplans across relation branches),
    and Polars' streaming engine may too. Polars: ``collect().lazy()``. DuckDB: the result
    as an Arrow table (plain strings) bound on the relation's own connection, as
    :func:`side_table` does (no copy back into DuckDB storage). Spark: ``localCheckpoint()``
    (eager: the result is held by the executors and the plan's lineage is cut, so the
    branches that read it do not run the records pass again), read as one partition
    (``coalesce(1)``: no shuffles in the plans over it) when it has at most
    :data:`SPARK_ONE_PARTITION_ROWS` rows (one more job counts them). Cost: one execution of
    ``frame`` plus the size of its result in memory, which must be small enough to hold
    (never materialise the records themselves).
    """
    frame = _unwrap(frame)
    if isinstance(frame, pl.LazyFrame):
        return frame.collect(engine="streaming").lazy()
    if isinstance(frame, pl.DataFrame):
        return frame.lazy()
    if isinstance(frame, duckdb.DuckDBPyRelation):
        return _duckdb_side_table(frame, frame.to_arrow_table())
    if is_spark(frame):
        return _spark_materialised(frame)
    raise TypeError(f"materialised: expected a DuckDB relation or a Polars frame, got {type(frame).__name__}")


def spilled(frame: Any) -> NativeFrame:
    """Execute ``frame`` (a native lazy frame, or a Narwhals frame) now and return a native
    lazy frame of the same engine over its result, kept on disk rather than in memory.

    :func:`materialised` for an intermediate result too large to hold (one row per
    conversation of a large window, say) that several branches of a plan read. Polars and
    DuckDB: the plan runs streaming into a Parquet file (LZ4) in :func:`spill_folder`
    (Polars ``sink_parquet`` on the streaming engine; DuckDB ``COPY ... TO``), returned as a
    scan of that file (``pl.scan_parquet``; a ``read_parquet`` relation on the relation's own
    connection); the file is removed when the interpreter exits (the lazy frame, and plans
    built on it, read it until then). Not a DuckDB ``TEMP`` table: that stays in DuckDB's
    buffer pool, in memory up to the connection's ``memory_limit`` (half of the machine's by
    default), so several spilled results would add up in memory. Spark: as
    :func:`materialised` (``localCheckpoint``: the executors' block manager holds it). Cost:
    one execution of ``frame`` and one write of its result, then a read of it per branch;
    memory: the engine's streaming buffers and the plan's own aggregates, not the result.
    """
    return spilled_parts([frame])


def spilled_parts(parts: Sequence[Any]) -> NativeFrame:
    """:func:`spilled` of each plan of ``parts`` (one engine, the same columns), one after
    the other, returned as one lazy frame over all their rows (their union, in order).

    For a result computed in parts to bound memory (an aggregate per batch of interfaces):
    each part's plan runs and is written before the next one starts, so memory holds one
    part's working set. Polars: a concat of the parts' scans; DuckDB: one ``read_parquet``
    of the parts' files; Spark: a union of the parts' checkpoints."""
    if not parts:
        raise ValueError("spilled_parts: no parts")
    natives = [_unwrap(f) for f in parts]
    natives = [f.lazy() if isinstance(f, pl.DataFrame) else f for f in natives]
    first = natives[0]
    if isinstance(first, pl.LazyFrame):
        scans = []
        for frame in natives:
            path = _spill_path()
            frame.sink_parquet(path, compression="lz4", engine="streaming")
            scans.append(pl.scan_parquet(path))
        return scans[0] if len(scans) == 1 else pl.concat(scans, how="vertical")
    if isinstance(first, duckdb.DuckDBPyRelation):
        paths = []
        for frame in natives:
            paths.append(_spill_path())
            frame.to_parquet(paths[-1], compression="lz4")
        files = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
        return first.query(_ANCHOR, f"SELECT * FROM read_parquet([{files}])")
    if is_spark(first):
        held = [_spark_materialised(frame) for frame in natives]
        return functools.reduce(lambda a, b: a.unionByName(b), held)
    raise TypeError(f"spilled: expected a DuckDB relation or a Polars frame, got {type(first).__name__}")


def _spill_path() -> str:
    return os.path.join(spill_folder(), f"{uuid.uuid4().hex}.parquet")


_SPILL: dict[str, tuple[int, str]] = {}  # "folder": (the process that made it, its path)


def spill_folder() -> str:
    """The folder of this process's :func:`spilled` Polars files: ``flowtools-spill-*``,
    made on first use under ``$FLOWTOOLS_TEMP_DIR`` (the DuckDB spill folder's override)
    or else the system's temporary folder (``tempfile.gettempdir()``: ``$TMPDIR``,
    ``/tmp``), and removed with its files when the interpreter exits (``atexit``)."""
    held = _SPILL.get("folder")
    if held is None or held[0] != os.getpid() or not os.path.isdir(held[1]):
        parent = os.environ.get("FLOWTOOLS_TEMP_DIR") or None
        if parent:
            os.makedirs(parent, exist_ok=True)
        path = tempfile.mkdtemp(prefix="flowtools-spill-", dir=parent)
        held = _SPILL["folder"] = (os.getpid(), path)
        atexit.register(_remove_spill_folder, *held)
    return held[1]


def _remove_spill_folder(pid: int, path: str) -> None:
    if os.getpid() == pid:  # not a forked child's copy of the hook
        shutil.rmtree(path, ignore_errors=True)


def register(con: duckdb.DuckDBPyConnection, name: str, frame: pl.DataFrame) -> duckdb.DuckDBPyRelation:
    """Make the Polars ``frame`` the view ``name`` of ``con`` for SQL, and return it as a
    relation. Its Arrow form is scanned in place, not copied into DuckDB storage; strings
    are plain Arrow strings (one conversion of the string columns), because DuckDB pushes
    filters into the scan and pyarrow has no kernels for string views. The connection holds
    the table until ``con.unregister(name)``."""
    con.register(name, frame.to_arrow(compat_level=pl.CompatLevel.oldest()))
    return con.table(name)


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


#: A result :func:`materialised` holds on Spark with at most this many rows is read as one
#: partition (``coalesce(1)``, no shuffle).
SPARK_ONE_PARTITION_ROWS = 1_000_000


def _spark_materialised(frame: Any) -> Any:
    # localCheckpoint: the result is held by the executors, the lineage is cut (later plans
    # are not analysed and optimised over the records pass again). A small result is then
    # read as ONE partition: Spark knows it is a single partition, so the aggregates,
    # windows and joins of the plans that read it need no shuffle (each one a stage, and
    # stages cost seconds of scheduling and code generation on small data). One count of
    # the held rows (no records pass) decides.
    held = frame.localCheckpoint(eager=True)
    if held.rdd.getNumPartitions() > 1 and held.count() <= SPARK_ONE_PARTITION_ROWS:
        held = held.coalesce(1)
    return held


def _spark_to_polars(frame: Any) -> pl.DataFrame:
    df = pl.from_arrow(frame.toArrow())
    assert isinstance(df, pl.DataFrame)
    # Spark's TIMESTAMP is an instant shown in the session's time zone: flowtools shows UTC.
    return df.with_columns(pl.col(c).dt.convert_time_zone("UTC") for c, t in df.schema.items()
                           if isinstance(t, pl.Datetime) and t.time_zone is not None)


def to_spark(spark: Any, table: pl.DataFrame) -> Any:
    """The Polars ``table`` as a DataFrame of the SparkSession ``spark``: its Arrow form
    (plain strings and lists) with the Spark schema of its Polars schema
    (:func:`spark_schema`). Cost: ``table`` is sent to the JVM once;
    for small tables (side tables, findings), or a small window's records."""
    schema = spark_schema(table.schema)
    # Plain (not large, not view) Arrow types: what Spark's Arrow conversion takes in.
    arrow = table.to_arrow(compat_level=pl.CompatLevel.oldest())
    arrow = arrow.cast(pa.schema([_small_arrow_field(f) for f in arrow.schema]))
    return spark.createDataFrame(arrow, schema=schema)


def _small_arrow_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_large_string(t) or pa.types.is_null(t):
        return pa.string()
    if pa.types.is_large_binary(t):
        return pa.binary()
    if pa.types.is_large_list(t) or pa.types.is_list(t):
        return pa.list_(_small_arrow_type(t.value_type))
    return t


def _small_arrow_field(f: pa.Field) -> pa.Field:
    return pa.field(f.name, _small_arrow_type(f.type), nullable=True)


def spark_schema(schema: Any) -> Any:
    """The Spark ``StructType`` of a Polars schema (a ``{name: dtype}`` mapping): integers,
    floats, booleans, strings (categoricals too), dates, datetimes (with a time zone:
    ``TimestampType``; without: ``TimestampNTZType``), lists and structs; a column of
    Polars ``Null`` type becomes a string column of nulls. Needs pyspark."""
    from pyspark.sql import types as T

    return T.StructType([T.StructField(name, _spark_type(dtype), True) for name, dtype in schema.items()])


def _spark_type(dtype: Any) -> Any:
    import polars as pl
    from pyspark.sql import types as T

    simple = {
        pl.Int8: T.ByteType(), pl.Int16: T.ShortType(), pl.Int32: T.IntegerType(), pl.Int64: T.LongType(),
        pl.UInt8: T.ShortType(), pl.UInt16: T.IntegerType(), pl.UInt32: T.LongType(), pl.UInt64: T.LongType(),
        pl.Float32: T.FloatType(), pl.Float64: T.DoubleType(), pl.Boolean: T.BooleanType(),
        pl.String: T.StringType(), pl.Categorical: T.StringType(), pl.Enum: T.StringType(),
        pl.Null: T.StringType(), pl.Date: T.DateType(), pl.Binary: T.BinaryType(),
    }
    base = dtype.base_type() if hasattr(dtype, "base_type") else dtype
    if base in simple:
        return simple[base]
    if base is pl.Datetime:
        return T.TimestampType() if getattr(dtype, "time_zone", None) else T.TimestampNTZType()
    if base is pl.List or base is pl.Array:
        return T.ArrayType(_spark_type(dtype.inner), True)
    if base is pl.Struct:
        return T.StructType([T.StructField(f.name, _spark_type(f.dtype), True) for f in dtype.fields])
    raise TypeError(f"no Spark type for the Polars type {dtype}")
