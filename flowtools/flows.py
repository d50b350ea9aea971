"""``load(source, ...)`` -> :class:`Flows`: the flows of a window on DuckDB or Polars."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import duckdb
import polars as pl

from flowtools.engines import connect
from flowtools.errors import QueryError, SourceError, UsageError
from flowtools.layout import discover, parse_key, select
from flowtools.options import comma_list as _csv_list
from flowtools.read.reader import read_objects
from flowtools.read.report import ReadReport
from flowtools.window import Window

Engine = Literal["duckdb", "polars"]
ENGINES = ("duckdb", "polars")


@dataclass
class Flows:
    """Loaded flows: a native frame on one engine plus the read report.

    ``frame`` is a ``duckdb.DuckDBPyRelation`` (engine ``duckdb``, over the table also
    visible as the view ``flows`` on ``connection``) or a ``polars.LazyFrame`` (engine
    ``polars``). Both hold the same canonical columns and rows.
    """

    engine: Engine
    frame: Any
    report: ReadReport
    connection: duckdb.DuckDBPyConnection
    _polars: pl.DataFrame | None = field(default=None, repr=False)
    _registered: bool = field(default=False, repr=False)

    def sql(self, query: str) -> duckdb.DuckDBPyRelation:
        """Run DuckDB SQL over the view ``flows`` (on either engine); a lazy relation.

        Call ``.pl()``, ``.df()`` or ``.fetchall()`` on the result to execute it.
        """
        if self.engine == "polars" and not self._registered:
            self.connection.register("flows", self._polars.to_arrow(compat_level=pl.CompatLevel.newest()))
            self._registered = True
        try:
            return self.connection.sql(query)
        except duckdb.Error as e:
            raise QueryError(f"SQL error: {e}") from None

    def to_polars(self) -> pl.DataFrame:
        """The flows as a Polars DataFrame (materialised)."""
        if self._polars is not None:
            return self._polars
        return self.frame.pl()

    def to_pandas(self):
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


def open_source(source: str | os.PathLike, *, window: Window, all: bool = False,
                accounts=None, regions=None, log_format=None, profile: str | None = None,
                s3_mode: str = "auto", progress: bool | None = None):
    """(store, flow-log objects, single_file) for any SOURCE form: a local folder or file,
    ``s3://bucket/prefix`` (:mod:`flowtools.sources.s3`) or ``cwlogs://LOG_GROUP``
    (:mod:`flowtools.sources.cloudwatch`). Remote SOURCEs need a window or ``all``."""
    text = str(source)
    remote = text.startswith(("s3://", "cwlogs://"))
    if remote and window.is_open and not all:
        raise UsageError(f"{text}: a remote SOURCE needs --start/--end (or --all to read everything)")
    if text.startswith("s3://"):
        from flowtools.sources.s3 import open_s3

        return open_s3(text, window=window, accounts=accounts, regions=regions, profile=profile, mode=s3_mode,
                       progress=progress)
    if text.startswith("cwlogs://"):
        from flowtools.sources.cloudwatch import open_cloudwatch

        return open_cloudwatch(text, window=window, regions=regions, log_format=log_format, profile=profile,
                               progress=progress)
    from flowtools.sources.local import open_local

    store, listing, single = open_local(source)
    if single:
        objects = [parse_key(listing[0].key, listing[0].size, any_name=True)]
    else:
        objects = discover(listing)
    return store, objects, single


def load(
    source: str | os.PathLike,
    *,
    start=None,
    end=None,
    engine: Engine = "duckdb",
    strict: bool = False,
    all: bool = False,
    accounts: str | Sequence[str] | None = None,
    regions: str | Sequence[str] | None = None,
    log_format: str | Sequence[str] | None = None,
    profile: str | None = None,
    s3_mode: str = "auto",
    progress: bool | None = None,
) -> Flows:
    """Load the flow logs of SOURCE for the window ``[start, end)`` into ``engine``.

    SOURCE is a local folder (searched recursively for files named like AWS's flow-log
    objects, in any S3 layout), a single file (read whatever its name), ``s3://bucket/
    prefix`` or ``cwlogs://LOG_GROUP``. ``start``/``end`` take ISO 8601, a date or a
    relative time (``-6h``); a missing side is open (a remote SOURCE needs a window, or
    ``all=True``). Only files that can hold records overlapping the window are listed and
    opened, and only records overlapping it are kept.

    Remote SOURCEs: ``profile`` names the AWS profile (default: boto3's standard chain);
    ``s3_mode`` is ``"auto"`` (default: through the local cache when the selected objects
    fit its budget, else streamed), ``"cache"`` or ``"stream"`` (see
    :mod:`flowtools.sources.s3`); ``log_format`` gives the fields of headerless records
    (CloudWatch Logs, when ``DescribeFlowLogs`` cannot tell; it overrides it).

    This is the one eager step: the records are read once into engine storage (a DuckDB
    table, which spills to disk beyond memory, or a Polars DataFrame), so the read report
    is complete and later questions do not re-read gzip. Bad files and lines are skipped,
    counted and listed in ``flows.report``; ``strict=True`` raises :class:`ReadError`.
    """
    if engine not in ENGINES:
        raise UsageError(f"unknown engine {engine!r}: use one of {', '.join(ENGINES)}")
    window = Window.parse(start, end)
    accounts_l, regions_l = _csv_list(accounts), _csv_list(regions)
    store, objects, _single = open_source(source, window=window, all=all, accounts=accounts_l,
                                          regions=regions_l, log_format=log_format, profile=profile,
                                          s3_mode=s3_mode, progress=progress)
    kept, pruned = select(objects, window, accounts=accounts_l, regions=regions_l)
    report = ReadReport(source=str(source), window=str(window), files_found=len(objects),
                        files_pruned=len(pruned))
    if not objects:
        report.warnings.append(f"{source}: no flow-log files found")
    bar = None
    try:
        kept = store.prepare(kept, progress=progress)  # remote SOURCEs: downloads, CloudWatch events
        report.warnings.extend(getattr(store, "warnings", ()))
        bar = _progress(len(kept), progress)
        if engine == "duckdb":
            flows = _load_duckdb(store, kept, window, report, strict=strict, log_format=log_format, progress=bar)
        else:
            df = read_objects(store, kept, window, report, strict=strict, log_format=log_format, progress=bar)
            flows = from_polars(df, report, engine=engine)
    finally:
        if bar is not None:
            bar.close()
        store.close()
    stats = getattr(store, "stats", None)
    if stats is not None:
        report.transfer = stats.to_dict() | {"summary": stats.line()}
    if hasattr(store, "attach_duckdb"):  # flows.sql runs on DuckDB whatever the engine
        _attach(store, flows)
    return flows


def _attach(store, flows: Flows) -> None:
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


def _load_duckdb(store, objects, window, report, **kw) -> Flows:
    """Load into DuckDB: Arrow chunks scanned in place, or a spilling table past the limit."""
    con = connect()
    chunks: list = []
    state = {"bytes": 0, "table": False, "schema": None}

    def to_table() -> None:
        empty = pl.DataFrame(schema=state["schema"]).to_arrow(compat_level=pl.CompatLevel.newest())
        con.register("__flows_empty", empty)
        con.execute("CREATE TABLE flows_data AS SELECT * FROM __flows_empty")
        con.unregister("__flows_empty")
        for c in chunks:
            insert(c)
        chunks.clear()
        state["table"] = True

    def insert(arrow) -> None:
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
        import pyarrow as pa

        empty = pl.DataFrame(schema=state["schema"]).to_arrow(compat_level=pl.CompatLevel.newest())
        data = pa.concat_tables(chunks) if chunks else empty
        con.register("flows_data", data)
    report.records = con.execute("SELECT count(*) FROM flows_data").fetchone()[0]
    con.execute("CREATE VIEW flows AS SELECT * FROM flows_data")
    return Flows("duckdb", con.table("flows"), report, con)


def from_polars(df: pl.DataFrame, report: ReadReport, *, engine: Engine = "duckdb") -> Flows:
    """Wrap a canonical Polars DataFrame as :class:`Flows` on ``engine``."""
    report.records = df.height
    con = connect()
    if engine == "duckdb":
        con.register("flows_data", df.to_arrow(compat_level=pl.CompatLevel.newest()))
        con.execute("CREATE VIEW flows AS SELECT * FROM flows_data")
        return Flows("duckdb", con.table("flows"), report, con)
    return Flows("polars", df.lazy(), report, con, _polars=df)


def _progress(files: int, enabled: bool | None):
    """A tqdm bar over files on long reads (auto: when stderr is a terminal and >20 files)."""
    import sys

    if enabled is False or (enabled is None and (files <= 20 or not sys.stderr.isatty())):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=files, unit="file", desc="reading flow logs", leave=False)


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
