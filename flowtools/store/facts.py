"""Per-hour facts: small aggregates of one partition's records, computed once and kept
next to the store, so that a later analysis of any window over those hours reads them
instead of the records.

A fact is what an analysis's ``compute`` makes of one partition's records (a Polars
``LazyFrame`` of the partition's files, canonical columns) when the result is small and
*adds up*: the fact of a window is the union of its hours' facts, re-aggregated by the
caller (counts sum, distinct values union). Exposure keeps its address pairs and the
ECS service names this way (:mod:`flowtools.analyses.exposure`).

Which hours come from facts: a partition whose whole hour lies inside the window (so
every record of it passes the window rule, since a record lands in the hour of its own
``start``) and whose files hold only objects of the load's selection. The others (the
hours cut by the window's edges, the slack hour before it, the ``unknown`` partition, and
hours that also hold objects the load did not select) are computed from their records,
filtered exactly like the flows, every time and in one pass; they are never kept.

Where: ``<store>/_facts/<name>/<partition folder>/<digest>.arrow`` (Arrow IPC; not
``.parquet``, and under a folder starting with ``_``, so readers of the store's Parquet
files, Hive-style or by glob, never see them). ``digest`` hashes the fact's name,
flowtools' version and the partition's published files (their names, unique per write,
and row counts): a partition rewritten by a later build, or a new flowtools, gets new
facts, and the stale file of that partition is removed when the new one is written. A
fact is written to a temporary name and renamed, so a reader sees all of it or none; two
processes that compute the same fact at once write the same content. Local stores only:
an ``s3://`` store gets no facts (:func:`partition_facts` returns None and the caller
reads the records).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Callable, Iterable
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Any

import polars as pl

from flowtools.store.location import open_location
from flowtools.store.manifest import Manifest
from flowtools.store.partitions import Partition, wanted
from flowtools.store.scan import open_files
from flowtools.window import Window

FACTS_DIR = "_facts"
try:  # facts kept by another flowtools are not read (a fact's meaning may have changed)
    _VERSION = metadata.version("flowtools")
except metadata.PackageNotFoundError:  # run from a source tree
    _VERSION = "unknown"
_HOUR_S = 3600

Compute = Callable[[pl.LazyFrame], pl.DataFrame]


def partition_facts(root: str | os.PathLike, manifest: Manifest, window: Window, *, name: str, compute: Compute,
                    sources: Iterable[str] | None = None, accounts: Iterable[str] | None = None,
                    regions: Iterable[str] | None = None) -> list[pl.DataFrame] | None:
    """``compute`` of the window's records, per hour: the kept fact of each whole hour
    (computed and kept now when missing) and one ``compute`` of the other hours' records
    (see the module docstring). Returns the frames to re-aggregate (at least one, maybe
    empty), or None for a store that keeps no facts (``s3://``). ``name`` names the fact
    and its version (change it when ``compute`` changes meaning)."""
    loc = open_location(root)
    if loc.remote:
        return None
    base = Path(loc.url(FACTS_DIR)) / name
    wanted_sources = set(sources) if sources is not None else None
    acc = set(accounts) if accounts else None
    reg = set(regions) if regions else None
    out: list[pl.DataFrame] = []
    edges: list[str] = []
    for folder, paths in sorted(manifest.partitions().items()):
        partition = Partition.parse(folder)
        if not wanted(partition, window, acc, reg):
            continue
        if wanted_sources is not None:  # files without rows of the selection are not read at all
            paths = [p for p in paths if wanted_sources.intersection(manifest.files[p].sources)]
            if not paths:
                continue
        paths = sorted(paths)
        whole = _inside(partition, window) and (
            wanted_sources is None or all(wanted_sources.issuperset(manifest.files[p].sources) for p in paths))
        if not whole:
            edges.extend(paths)
            continue
        out.append(_kept(base / folder, _digest(name, manifest, paths), partial(_of_files, compute, loc, manifest, paths)))
    if edges or not out:
        out.append(compute(open_files(loc, manifest, edges, window=window, sources=sources)))
    return out


def store_window(flows: Any) -> Any:
    """How ``flows`` reads the partition store (its ``StoreUse``), when it is a
    ``flowtools.Flows`` loaded through the store whose frame is still the one the load
    opened (not replaced by a filtered one): its rows are then exactly the store's rows of
    the load's window and selection. Else None."""
    used = getattr(flows, "store", None)
    if used is None or getattr(used, "manifest", None) is None or getattr(flows, "frame", None) is not used.frame:
        return None
    return used


def flows_facts(flows: Any, *, name: str, compute: Compute) -> list[pl.DataFrame] | None:
    """:func:`partition_facts` of a ``Flows`` that reads the store's window unchanged
    (:func:`store_window`), else None (the caller reads the records)."""
    used = store_window(flows)
    if used is None:
        return None
    return partition_facts(used.root, used.manifest, used.window or Window(), name=name, compute=compute,
                           sources=used.sources)


def _of_files(compute: Compute, loc: Any, manifest: Manifest, paths: list[str]) -> pl.DataFrame:
    return compute(open_files(loc, manifest, paths))


def _inside(partition: Partition, window: Window) -> bool:
    """Whether the partition's whole hour lies inside the window."""
    start = partition.start
    if start is None:
        return False
    s = int(start.timestamp())
    return (window.start_s is None or s >= window.start_s) and (window.end_s is None or s + _HOUR_S <= window.end_s)


def _digest(name: str, manifest: Manifest, paths: list[str]) -> str:
    text = json.dumps([name, _VERSION, [(p, manifest.files[p].rows) for p in paths]])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _kept(folder: Path, digest: str, compute: Callable[[], pl.DataFrame]) -> pl.DataFrame:
    """The fact in ``folder/<digest>.arrow``, computed and written first when missing (the
    folder's other facts, stale, removed)."""
    path = folder / f"{digest}.arrow"
    try:
        return pl.read_ipc(path)
    except FileNotFoundError:
        pass
    fact = compute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{digest}.{secrets.token_hex(4)}.tmp"
        try:
            fact.write_ipc(tmp, compression="lz4")
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        for old in folder.glob("*.arrow"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:  # a read-only store still answers: the fact is just not kept
        pass
    return fact
