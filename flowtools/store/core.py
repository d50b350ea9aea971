"""The public face of the store: :class:`PartitionStore`, :func:`build`, :func:`open_flows`."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from flowtools.errors import UsageError
from flowtools.layout import FlowLogObject
from flowtools.read.reader import ObjectStore
from flowtools.read.report import ReadReport
from flowtools.store import scan
from flowtools.store.location import S3, Local, open_location
from flowtools.store.manifest import Manifest
from flowtools.store.partitions import Partition
from flowtools.store.update import BuildResult, update
from flowtools.window import TimeValue, Window

if TYPE_CHECKING:
    import duckdb

STORE_ENV = "FLOWTOOLS_STORE"


#: Values of ``$FLOWTOOLS_STORE`` that turn the store off (every load reads SOURCE directly).
STORE_OFF = ("off", "none", "0", "false", "no")

#: A window as the store's methods take it: a Window, a ``(start, end)`` pair, or None (all).
WindowArg: TypeAlias = Window | tuple[TimeValue, TimeValue] | None


def default_root(source: str | os.PathLike | None = None) -> Path | str | None:
    """The store used when none is named: ``$FLOWTOOLS_STORE`` (one store, whatever the
    SOURCE; ``off`` turns the store off: None), else a folder per SOURCE under
    ``<cache dir>/store/`` (``$FLOWTOOLS_CACHE_DIR``, else ``~/.cache/flowtools``), named
    after the SOURCE so that two SOURCEs never share one by accident."""
    env = os.environ.get(STORE_ENV, "").strip()
    if env.lower() in STORE_OFF:
        return None
    if env:
        return env if "://" in env else Path(env).expanduser()
    from flowtools.sources.cache import cache_dir

    base = cache_dir() / "store"
    return base if source is None else base / source_folder(source)


def source_folder(source: str | os.PathLike) -> str:
    """``samples-3f2a9c1e0b``: a readable, unique folder name for a SOURCE (its absolute
    path, or its URI)."""
    import hashlib
    import re

    text = str(source)
    if "://" not in text:
        text = str(Path(text).expanduser().resolve())
    tail = [p for p in re.split(r"[/\\:]+", text) if p][-2:]
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", "-".join(tail))[:48] or "source"
    return f"{slug}-{hashlib.sha256(text.encode()).hexdigest()[:10]}"


def _window(window: WindowArg) -> Window:
    if window is None:
        return Window()
    if isinstance(window, Window):
        return window
    start, end = window
    return Window.parse(start, end)


class PartitionStore:
    """An hourly partition store in a local folder or below ``s3://bucket/prefix`` (``root``;
    default :func:`default_root`). ``profile``: the AWS profile of an S3 store (default
    boto3's standard chain: environment, ``AWS_PROFILE``, roles; ``AWS_ENDPOINT_URL``).

    Writers (:meth:`update`) hold the store's lock; readers (:meth:`files`, :meth:`open`,
    :meth:`report`) read the manifest once and see one committed version.
    """

    def __init__(self, root: str | os.PathLike | None = None, *, profile: str | None = None):
        if root is None:
            root = default_root()
            if root is None:
                raise UsageError(f"${STORE_ENV} turns the store off: name a store folder")
        self.location: Local | S3 = open_location(root, profile=profile)
        #: The store's folder (a Path), or its ``s3://bucket/prefix/`` URI (a str).
        self.root: Path | str = self.location.root if isinstance(self.location, Local) else self.location.uri

    def __repr__(self) -> str:
        return f"PartitionStore({str(self.root)!r})"

    def manifest(self) -> Manifest:
        """The current committed manifest (read now; one GET on S3)."""
        return self.location.load_manifest()

    def update(self, source_store: ObjectStore, objects: Sequence[FlowLogObject], *, strict: bool = False,
               log_format: str | Sequence[str] | None = None, progress: bool | None = None,
               single_file: bool = False, lock_timeout: float | None = None,
               on_wait: Callable[[str], None] | None = None) -> BuildResult:
        """Read the objects that are new or changed and write them (see
        :mod:`flowtools.store.update`); waits for another build's lock up to ``lock_timeout``
        seconds (default one hour), then raises :class:`~flowtools.store.lock.StoreLockedError`."""
        return update(self.location, source_store, objects, strict=strict, log_format=log_format, progress=progress,
                      single_file=single_file, lock_timeout=lock_timeout, on_wait=on_wait)

    def objects(self) -> list[FlowLogObject]:
        """The source objects the store holds (as the SOURCE's listing gives them)."""
        return scan.objects(self.manifest())

    def files(self, window: WindowArg = None, accounts: Iterable[str] | None = None,
              regions: Iterable[str] | None = None) -> list[str]:
        """Absolute paths (``s3://`` URLs) of the files a window needs (pruned by partition folder only)."""
        m = self.manifest()
        return [self.location.url(p) for p in scan.select_files(m, _window(window), accounts, regions)]

    def open(self, window: WindowArg = None, *, engine: str = "duckdb", accounts: Iterable[str] | None = None,
             regions: Iterable[str] | None = None, connection: duckdb.DuckDBPyConnection | None = None,
             sources: Iterable[str] | None = None, spark: Any = None) -> Any:
        """The window's flows as a lazy native frame; see :func:`open_flows`."""
        return open_flows(self, window, engine=engine, accounts=accounts, regions=regions,
                          connection=connection, sources=sources, spark=spark)

    def report(self, objects: Sequence[FlowLogObject], window: WindowArg = None, *, source: str = "",
               files_found: int | None = None, files_pruned: int = 0, records: int | None = None) -> ReadReport:
        """The read report of ``objects`` for ``window`` from the manifest (as a direct read
        of the SOURCE gives it). ``records``: the rows in the window, counted here over the
        objects' rows (one scan of the ``start``/``end`` columns) when not given."""
        m = self.manifest()
        w = _window(window)
        if records is None:
            keys = [o.key for o in objects]
            records = scan.count(scan.open_polars(self.location, m, w, sources=keys))
        return scan.report(m, objects, w, source=source, files_found=files_found, files_pruned=files_pruned,
                           records=records)

    def info(self) -> dict[str, Any]:
        """What the store holds: partitions, files, records, bytes, source objects, problems."""
        m = self.manifest()
        parts = [Partition.parse(p) for p in m.partitions()]
        hours = sorted(f"{p.date}T{p.hour}" for p in parts if p.start is not None)
        issues = [i for e in m.objects.values() for i in e.issues]
        return {
            "store": str(self.root), "created": m.created or None, "updated": m.updated or None,
            "sources": m.sources, "partitions": len(parts), "files": len(m.files),
            "records": sum(f.rows for f in m.files.values()), "bytes": sum(f.bytes for f in m.files.values()),
            "objects": len(m.objects), "objects_bytes": sum(e.size for e in m.objects.values()),
            "files_with_issues": len({i.file for i in issues}),
            "files_skipped": sum(1 for i in issues if i.skipped),
            "lines_skipped": sum(i.lines_skipped for i in issues),
            "accounts": sorted({p.account for p in parts}), "regions": sorted({p.region for p in parts}),
            "first_hour": hours[0] + ":00Z" if hours else None, "last_hour": hours[-1] + ":00Z" if hours else None,
        }


def open_flows(store_root: str | os.PathLike | PartitionStore | None, window: WindowArg = None, *,
               engine: str = "duckdb", accounts: Iterable[str] | None = None, regions: Iterable[str] | None = None,
               connection: duckdb.DuckDBPyConnection | None = None, sources: Iterable[str] | None = None, spark: Any = None) -> Any:
    """The flows of ``window`` in the store as a lazy native frame over the pruned files.

    ``engine="duckdb"``: a ``DuckDBPyRelation`` on ``connection`` (default a new
    :func:`flowtools.engines.connect` connection, reachable as ``relation`` keeps it
    alive only while you hold it: pass yours); ``engine="polars"``: a ``polars.LazyFrame``;
    ``engine="spark"``: a ``pyspark.sql.DataFrame`` of ``spark`` (default
    :func:`flowtools.engines.spark_session`: the active session, else a local one).
    Both hold the canonical columns only (no Hive keys), filtered exactly to the window;
    ``window`` is a :class:`~flowtools.window.Window`, a ``(start, end)`` pair or None (all).
    ``sources`` (object keys) keeps only those objects' rows, e.g. exactly the objects a
    direct read of the SOURCE would select. Nothing is read until the frame is collected.
    An ``s3://`` store is read there: Polars with the store's ``storage_options``, DuckDB
    through httpfs with a secret scoped to the store's prefix, created on ``connection``.
    """
    store = store_root if isinstance(store_root, PartitionStore) else PartitionStore(store_root)
    m = store.manifest()
    w = _window(window)
    if engine == "polars":
        return scan.open_polars(store.location, m, w, accounts=accounts, regions=regions, sources=sources)
    if engine == "spark":
        from flowtools.engines import spark_session

        return scan.open_spark(store.location, m, w, spark_session(spark), accounts=accounts, regions=regions,
                               sources=sources)
    if engine != "duckdb":
        raise UsageError(f"unknown engine {engine!r}: use duckdb, polars or spark")
    if connection is None:
        from flowtools.engines import connect

        connection = connect()
    store.location.attach_duckdb(connection)
    return scan.open_duckdb(store.location, m, w, connection, accounts=accounts, regions=regions, sources=sources)


def build(source: str | os.PathLike, store_root: str | os.PathLike | None = None, *, start: TimeValue = None,
          end: TimeValue = None, all: bool = False, accounts: str | Iterable[str] | None = None,
          regions: str | Iterable[str] | None = None, strict: bool = False,
          log_format: str | Sequence[str] | None = None, profile: str | None = None, s3_mode: str = "auto",
          progress: bool | None = None, lock_timeout: float | None = None,
          on_wait: Callable[[str], None] | None = None) -> BuildResult:
    """Add SOURCE's objects for the window ``[start, end)`` to the store at ``store_root``
    (default :func:`default_root`): lists and prunes SOURCE like :func:`flowtools.load`,
    then :meth:`PartitionStore.update`. Only new or changed objects are read; every record
    of an object read is stored (the window chooses objects, not records)."""
    from flowtools.layout import select
    from flowtools.options import comma_list as _csv_list
    from flowtools.sources import open_source

    if store_root is None:
        store_root = default_root(source)
    store = PartitionStore(store_root, profile=profile)
    window = Window.parse(start, end)
    accounts_l, regions_l = _csv_list(accounts), _csv_list(regions)
    src, objects, single = open_source(source, window=window, all=all, accounts=accounts_l, regions=regions_l,
                                       log_format=log_format, profile=profile, s3_mode=s3_mode, progress=progress)
    kept, pruned = select(objects, window, accounts=accounts_l, regions=regions_l)
    try:
        result = store.update(src, kept, strict=strict, log_format=log_format, progress=progress,
                              single_file=single, lock_timeout=lock_timeout, on_wait=on_wait)
    finally:
        src.close()
    rep = result.report
    assert rep is not None  # update() always reports
    rep.source, rep.window = str(source), str(window)
    rep.files_found, rep.files_pruned = len(objects), len(pruned)
    if not objects:
        rep.warnings.append(f"{source}: no flow-log files found")
    stats = getattr(src, "stats", None)
    if stats is not None:
        rep.transfer = stats.to_dict() | {"summary": stats.line()}
    return result
