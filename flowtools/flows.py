"""``load(source, ...)`` -> :class:`Flows`: the flows of a window on DuckDB, Polars or Spark."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

import duckdb
import polars as pl
import pyarrow as pa

from flowtools.engines import connect
from flowtools.errors import QueryError, SourceError, UsageError
from flowtools.layout import FlowLogObject, Selection, select_explained
from flowtools.options import comma_list as _csv_list
from flowtools.progress import bar as progress_bar
from flowtools.read.reader import ObjectStore, read_objects
from flowtools.read.report import ReadReport
from flowtools.sources import open_source
from flowtools.window import Window

if TYPE_CHECKING:
    import pandas as pd

Engine = Literal["duckdb", "polars", "spark"]
ENGINES = ("duckdb", "polars", "spark")
PathArg = str | os.PathLike[str]


@dataclass
class StoreUse:
    """How a load used the partition store: its folder, the objects read into it now (new
    or changed) and those it already held."""

    root: str
    read: int
    stored: int
    seconds: float
    #: What was opened (window, selected keys, manifest, frame): per-hour facts read them
    #: (:func:`flowtools.store.facts.store_window`).
    window: Window | None = field(default=None, repr=False, compare=False)
    sources: tuple[str, ...] | None = field(default=None, repr=False, compare=False)
    manifest: Any = field(default=None, repr=False, compare=False)
    frame: Any = field(default=None, repr=False, compare=False)

    def summary(self) -> str:
        return f"store: {self.read} file(s) read into it now, {self.stored} already there ({self.root})"


@dataclass
class Flows:
    """Loaded flows: a native frame on one engine plus the read report.

    ``frame`` is a ``duckdb.DuckDBPyRelation`` (engine ``duckdb``, the view ``flows`` on
    ``connection``), a ``polars.LazyFrame`` (engine ``polars``) or a ``pyspark.sql.DataFrame``
    (engine ``spark``). All hold the same canonical columns and rows; loaded through the
    partition store (the default) all are lazy over its Parquet files, and ``flows`` on
    ``connection`` reads the same files (so :meth:`sql` is DuckDB SQL whatever the engine).
    """

    engine: Engine
    frame: Any
    report: ReadReport
    connection: duckdb.DuckDBPyConnection
    _polars: pl.DataFrame | None = field(default=None, repr=False)
    _registered: bool = field(default=False, repr=False)
    #: How the partition store served this load (None: read directly from SOURCE).
    store: StoreUse | None = None

    def sql(self, query: str, params: dict[str, Any] | Sequence[Any] | None = None) -> duckdb.DuckDBPyRelation:
        """Run DuckDB SQL over the view ``flows`` (on either engine); a lazy relation.

        Call ``.pl()``, ``.df()`` or ``.fetchall()`` on the result to execute it. A statement
        without result rows (``CREATE``, ``DROP``, ``COPY ... TO``) runs at once and returns
        None. Several statements separated by ``;`` run in order; the result is the last one's.
        ``params`` binds ``$name`` (a dict) or ``?`` (a sequence) parameters: pass values
        from logs or users this way, never formatted into the query text.
        """
        if self.engine != "duckdb" and not self._registered:
            if self._polars is None:
                self._polars = self.to_polars()
            self.connection.register("flows", self._polars.to_arrow(compat_level=pl.CompatLevel.newest()))
            self._registered = True
        try:
            return self.connection.sql(query, params=params) if params is not None else self.connection.sql(query)
        except duckdb.Error as e:
            raise QueryError(f"SQL error: {e}") from None

    def to_polars(self) -> pl.DataFrame:
        """The flows as a Polars DataFrame (materialised: every record in memory)."""
        if self._polars is not None:
            return self._polars
        if isinstance(self.frame, pl.LazyFrame):
            return self.frame.collect()
        if self.engine == "spark":
            from flowtools.frames import to_polars

            return to_polars(self.frame)
        return self.frame.pl()

    def to_pandas(self) -> pd.DataFrame:
        """The flows as a pandas DataFrame (materialised)."""
        if self.engine == "duckdb":
            return self.frame.df()
        return self.to_polars().to_pandas()

    def describe(self) -> dict[str, Any]:
        """What was loaded: the read report plus accounts, regions, flow logs (formats,
        layouts, files, records) and the first and last record time (``flowtools info``)."""
        return describe(self)

    def __len__(self) -> int:
        return self.report.records

    def __repr__(self) -> str:
        return (f"Flows(engine={self.engine!r}, records={self.report.records}, "
                f"files={self.report.files_read}, window={self.report.window})")


def load(
    source: PathArg,
    *,
    start: str | datetime | date | None = None,
    end: str | datetime | date | None = None,
    engine: Engine = "duckdb",
    strict: bool = False,
    all: bool = False,
    accounts: str | Sequence[str] | None = None,
    regions: str | Sequence[str] | None = None,
    log_format: str | Sequence[str] | None = None,
    profile: str | None = None,
    s3_mode: str = "auto",
    progress: bool | None = None,
    any_name: bool = False,
    store: PathArg | bool | None = None,
    spark: Any = None,
) -> Flows:
    """Load the flow logs of SOURCE for the window ``[start, end)`` into ``engine``.

    SOURCE is a local folder (searched recursively for files named like AWS's flow-log
    objects, in any S3 layout), a single file (read whatever its name), ``s3://bucket/
    prefix`` or ``cwlogs://LOG_GROUP``. ``start``/``end`` take ISO 8601, a date or a
    relative time (``-6h``); a missing side is open (a remote SOURCE needs a window, or
    ``all=True``). Only files that can hold records overlapping the window are listed and
    opened, and only records overlapping it are kept. ``any_name=True`` (default False)
    also reads the files of a local folder (or S3 prefix) named otherwise, when their names end in
    ``.gz``, ``.log``, ``.parquet`` or ``.txt`` (not hidden files): a file that then is not a
    flow log is a bad file.

    Remote SOURCEs: ``profile`` names the AWS profile (default: boto3's standard chain);
    ``s3_mode`` is ``"auto"`` (default: through the local cache when the selected objects
    fit its budget, else streamed), ``"cache"`` or ``"stream"`` (see
    :mod:`flowtools.sources.s3`); ``log_format`` gives the fields of headerless records
    (CloudWatch Logs, when ``DescribeFlowLogs`` cannot tell; it overrides it).

    The partition store (``store``, see :mod:`flowtools.store`): by default the window's
    objects are read once into an hourly Parquet store, and the flows are a lazy frame over
    the store's files of the window (DuckDB ``read_parquet`` / Polars ``scan_parquet``,
    pruned by the hour folders). Only objects the store does not hold yet, or that changed,
    are read, so the second question about a window costs a fraction of the first, and
    memory stays bounded by a chunk of files whatever the window. ``store`` is a folder;
    ``None`` (default) is ``$FLOWTOOLS_STORE``, else the SOURCE's own folder under the cache
    directory; ``False`` (or ``$FLOWTOOLS_STORE=off``) reads SOURCE into memory instead (a
    DuckDB table that spills to disk, or a Polars DataFrame). CloudWatch Logs SOURCEs are
    always read directly.

    Either way the read report is complete and the same: bad files and lines are skipped,
    counted and listed in ``flows.report``; ``strict=True`` raises :class:`ReadError`
    (also for problems found when the store was built).

    ``engine="spark"`` (the ``flowtools[spark]`` extra, Java 17+): the flows are a
    ``pyspark.sql.DataFrame`` of ``spark`` (default :func:`flowtools.engines.spark_session`:
    the active session, else a local one). The SOURCE's objects (text ``.log.gz`` and
    Parquet, mixed headers, pruned by window through the same layout code) are read by
    flowtools' own streaming reader into the partition store, which also counts bad lines
    for the report; Spark then reads the store's Parquet files of the window
    (``spark.read.parquet`` with the files pruned by the hour folders, the same columns and
    types as on DuckDB and Polars). Spark does not parse the text logs itself. Without a
    store (``store=False``, CloudWatch Logs) the records are read in this process and
    handed to Spark as one Arrow table: for small windows only.
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    window = Window.parse(start, end)
    accounts_l, regions_l = _csv_list(accounts), _csv_list(regions)
    store_, objects, _single = open_source(source, window=window, all=all, accounts=accounts_l,
                                          regions=regions_l, log_format=log_format, profile=profile,
                                          s3_mode=s3_mode, progress=progress, any_name=any_name)
    selection = select_explained(objects, window, accounts=accounts_l, regions=regions_l)
    kept = selection.kept
    root = _store_root(source, store)
    if root is not None:
        return _load_from_store(root, source, src=store_, objects=objects, selection=selection, window=window,
                                engine=engine, strict=strict, log_format=log_format, progress=progress,
                                single=_single, any_name=any_name, spark=spark, profile=profile)
    report = ReadReport(source=str(source), window=str(window))
    report.record_selection(objects, selection, window, any_name=any_name)
    bar = None
    try:
        kept = store_.prepare(kept, progress=progress)  # remote SOURCEs: downloads, CloudWatch events
        report.warnings.extend(getattr(store_, "warnings", ()))
        # a bar over files on long reads (auto: when stderr is a terminal and >20 files)
        bar = progress_bar(progress, total=len(kept), desc="reading flow logs", unit="file", min_total=20)
        if engine == "duckdb":
            flows = _load_duckdb(store_, kept, window, report, strict=strict, log_format=log_format, progress=bar)
        else:
            df = read_objects(store_, kept, window, report, strict=strict, log_format=log_format, progress=bar)
            assert df is not None  # read without a sink: one frame
            flows = from_polars(df, report, engine=engine, spark=spark)
    finally:
        if bar is not None:
            bar.close()
        store_.close()
    _finish(store_, flows)
    return flows


def _finish(source_store: ObjectStore, flows: Flows) -> None:
    """What every load ends with: the transfer figures of a remote SOURCE in the report, and
    its credentials on the DuckDB connection (``flows.sql`` runs on DuckDB whatever the engine)."""
    stats = getattr(source_store, "stats", None)
    if stats is not None:
        flows.report.transfer = stats.to_dict() | {"summary": stats.line()}
    if hasattr(source_store, "attach_duckdb"):
        _attach(source_store, flows)


def _store_root(source: PathArg, store: PathArg | bool | None) -> PathArg | None:
    """The partition store of a load: ``store`` given, else the default (None: read directly)."""
    if store is False or str(source).startswith("cwlogs://"):
        return None
    from flowtools.store.core import default_root

    if store is None or store is True:
        return default_root(source)
    return store


def _load_from_store(root: PathArg, source: PathArg, *, src: ObjectStore, objects: Sequence[FlowLogObject],
                     selection: Selection, window: Window, engine: Engine, strict: bool,
                     log_format: str | Sequence[str] | None, progress: bool | None, single: bool, any_name: bool,
                     spark: Any = None, profile: str | None = None) -> Flows:
    """Bring the store up to date with the window's objects, then open the window lazily."""
    from flowtools.errors import ReadError
    from flowtools.store import PartitionStore

    kept = selection.kept
    ps = PartitionStore(root, profile=profile)  # an s3:// store: the SOURCE's profile
    try:
        built = ps.update(src, kept, strict=strict, log_format=log_format, progress=progress, single_file=single)
    finally:
        src.close()
    con = connect()
    keys = [o.key for o in kept]
    relation = ps.open(window, engine="duckdb", connection=con, sources=keys)
    relation.create_view("flows")
    records = (con.execute("SELECT count(*) FROM flows").fetchone() or (0,))[0]
    report = ps.report(kept, window, source=str(source), records=records)
    about_objects = list(report.warnings)  # in a direct load's order: selection, fetching, reading
    report.warnings.clear()
    report.record_selection(objects, selection, window, any_name=any_name)
    report.warnings += [w for w in (built.report.warnings if built.report else ()) if w not in report.warnings]
    report.warnings += about_objects
    if strict and report.issues:
        first = report.warning_lines()[0].removeprefix("warning: ")
        raise ReadError(f"{first} (strict mode; {len(report.issues)} problem file(s))")
    frame = con.table("flows") if engine == "duckdb" else ps.open(window, engine=engine, sources=keys, spark=spark)
    used = StoreUse(str(ps.root), read=built.new + built.changed, stored=built.unchanged, seconds=built.seconds,
                    window=window, sources=tuple(keys), manifest=ps.manifest(), frame=frame)
    _finish(src, flows := Flows(engine, frame, report, con, _registered=True, store=used))
    return flows


def _attach(store: Any, flows: Flows) -> None:
    """Give the DuckDB connection the remote SOURCE's credentials, for ad hoc SQL over
    ``s3://`` paths; a failure costs only that (a warning), never the load."""
    try:
        store.attach_duckdb(flows.connection)
    except (duckdb.Error, OSError, ImportError, SourceError) as e:
        flows.report.warnings.append(f"DuckDB cannot read s3:// paths directly in SQL ({e})")


#: Loaded flows stay in Arrow memory (DuckDB scans it without a copy: ingesting 2 M
#: records into a DuckDB table costs more than parsing them) until they pass this many
#: bytes; beyond it they go to a DuckDB table, which spills to disk.
ARROW_MEMORY_LIMIT = int(0.25 * (os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
                                 if hasattr(os, "sysconf") else 8 << 30))


def _load_duckdb(store: ObjectStore, objects: Sequence[FlowLogObject], window: Window, report: ReadReport,
                 **kw: Any) -> Flows:
    """Load into DuckDB: Arrow chunks scanned in place, or a spilling table past the limit."""
    con = connect()
    chunks: list[pa.Table] = []
    state: dict[str, Any] = {"bytes": 0, "table": False, "schema": None}

    def to_table() -> None:
        empty = pl.DataFrame(schema=state["schema"]).to_arrow(compat_level=pl.CompatLevel.newest())
        con.register("__flows_empty", empty)
        con.execute("CREATE TABLE flows_data AS SELECT * FROM __flows_empty")
        con.unregister("__flows_empty")
        for c in chunks:
            insert(c)
        chunks.clear()
        state["table"] = True

    def insert(arrow: pa.Table) -> None:
        con.register("__flows_chunk", arrow)
        con.execute("INSERT INTO flows_data SELECT * FROM __flows_chunk")
        con.unregister("__flows_chunk")

    def append(chunk: pl.DataFrame) -> None:
        if not chunk.height:
            return
        arrow = chunk.to_arrow(compat_level=pl.CompatLevel.newest())
        if state["table"]:
            insert(arrow)
            return
        chunks.append(arrow)
        state["bytes"] += arrow.nbytes
        if state["bytes"] > ARROW_MEMORY_LIMIT:
            to_table()

    read_objects(store, objects, window, report, sink=append,
                 on_schema=lambda schema: state.update(schema=schema), **kw)
    if not state["table"]:
        empty = pl.DataFrame(schema=state["schema"]).to_arrow(compat_level=pl.CompatLevel.newest())
        data = pa.concat_tables(chunks) if chunks else empty
        con.register("flows_data", data)
    report.records = (con.execute("SELECT count(*) FROM flows_data").fetchone() or (0,))[0]
    con.execute("CREATE VIEW flows AS SELECT * FROM flows_data")
    return Flows("duckdb", con.table("flows"), report, con)


def from_polars(df: pl.DataFrame, report: ReadReport, *, engine: Engine = "duckdb", spark: Any = None) -> Flows:
    """Wrap a canonical Polars DataFrame as :class:`Flows` on ``engine`` (Spark: one Arrow
    table sent to ``spark``, default :func:`flowtools.engines.spark_session`)."""
    report.records = df.height
    con = connect()
    if engine == "duckdb":
        con.register("flows_data", df.to_arrow(compat_level=pl.CompatLevel.newest()))
        con.execute("CREATE VIEW flows AS SELECT * FROM flows_data")
        return Flows("duckdb", con.table("flows"), report, con)
    if engine == "spark":
        from flowtools.engines import spark_session
        from flowtools.frames import to_spark

        return Flows("spark", to_spark(spark_session(spark), df), report, con, _polars=df)
    return Flows("polars", df.lazy(), report, con, _polars=df)


def describe(flows: Flows) -> dict[str, Any]:
    """What a load found: the read report plus accounts, regions, flow logs and time span.

    One small aggregate query over the loaded flows; the rest comes from the read report.
    """
    from flowtools.window import iso

    rep = flows.report
    per_log = {
        r[0]: r[1:]
        for r in flows.sql(
            "SELECT flow_log_id, count(*), min(start_time), max(end_time) FROM flows GROUP BY ALL"
        ).fetchall()
    }
    span = flows.sql("SELECT min(start_time), max(end_time) FROM flows").fetchone()
    logs: dict[str, dict[str, Any]] = {}
    for f in rep.files:
        key = f.flow_log_id or f.file
        d = logs.setdefault(key, {
            "flow_log_id": f.flow_log_id, "account_id": f.account_id, "region": f.region,
            "formats": [], "layouts": [], "file_types": [], "files": 0, "records": 0,
        })
        fmt = " ".join(f.fields)
        if fmt not in d["formats"]:
            d["formats"].append(fmt)
        if (f.layout or "none") not in d["layouts"]:
            d["layouts"].append(f.layout or "none")
        if f.format not in d["file_types"]:
            d["file_types"].append(f.format)
        d["files"] += 1
    for d in logs.values():
        n, lo, hi = per_log.get(d["flow_log_id"], (0, None, None))
        d["records"] = n
        d["first_record"] = iso(lo) if lo else None
        d["last_record"] = iso(hi) if hi else None
    out = rep.to_dict()
    out.update(
        engine=flows.engine,
        accounts=sorted({f.account_id for f in rep.files if f.account_id}),
        regions=sorted({f.region for f in rep.files if f.region}),
        layouts=sorted({f.layout or "none" for f in rep.files}),
        flow_logs=sorted(logs.values(), key=lambda d: (d["flow_log_id"] or "", d["account_id"] or "")),
        first_record=iso(span[0]) if span and span[0] else None,
        last_record=iso(span[1]) if span and span[1] else None,
    )
    return out
