"""Writing the store's Parquet files: split a chunk by partition, rewrite, compact.

Every file is written under a temporary name (``.tmp-part-...``) in its partition folder
and renamed to ``part-<build-id>-<n>.parquet`` when complete; it becomes visible to
readers only when the manifest lists it (:mod:`flowtools.store.manifest`). Files are
zstd-compressed Parquet, rows sorted by ``(interface_id, start)`` within a file, the Hive
keys not stored as columns (they are folded into ``account_id``/``region``/``start``).

Costs: one sort per chunk by (partition keys, ``interface_id``, ``start``), then each
partition is a zero-copy slice of it (no per-row Python); one write per (chunk, partition). A rewrite (an object that changed) or a compaction reads one
partition's files (streaming, through a Polars lazy scan) and writes one file.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Literal

import polars as pl

from flowtools.read.reader import canonical_schema
from flowtools.store.manifest import FileEntry, fsync_dir
from flowtools.store.partitions import KEY_COLUMNS, Partition, key_expressions

SORT_KEYS = ("interface_id", "start")
COMPRESSION: Literal["zstd"] = "zstd"
#: Rows per Parquet row group: small enough that a scan filtered on ``interface_id`` (rows
#: are sorted by it) skips most of a file's row groups by their min/max statistics, as the
#: exposure analysis's interface batches do; large enough to compress well.
ROW_GROUP_ROWS = 65_536
TMP_PREFIX = ".tmp-"
#: A partition with more files than this is compacted at the end of a build ...
COMPACT_FILES = 8
#: ... into files of at most this many rows (a merge sorts its rows in memory: at 200 M
#: records an account-hour holds about 10 M rows, and merging it into one file peaked at
#: 12 GB; 1 M rows keep a merge near 1 GB). A file this large already is left as it is.
COMPACT_ROWS = 1_000_000


class Writer:
    """Names and writes the files of one build (``part-<build>-<n>.parquet``)."""

    def __init__(self, root: Path, build_id: str, *, read_url: Callable[[str], str] | None = None,
                 storage_options: dict[str, str] | None = None) -> None:
        """Files go to ``root / <partition>/...``; existing files (a rewrite) are read at
        ``read_url(rel)`` (default ``root / rel``) with ``storage_options`` (an S3 store)."""
        self.root = Path(root)
        self.build_id = build_id
        self.count = 0
        self.read_url = read_url or (lambda rel: str(self.root / rel))
        self.storage_options = storage_options

    def close(self, *, done: bool) -> None:
        """Nothing to close (see the journaled writer of a local store)."""

    def _target(self, partition: str) -> tuple[Path, str]:
        self.count += 1
        rel = f"{partition}/part-{self.build_id}-{self.count:05d}.parquet"
        return self.root / rel, rel

    def write_chunk(self, chunk: pl.DataFrame) -> Iterator[tuple[str, FileEntry]]:
        """Write a canonical chunk as one file per partition it touches; yields (path, entry)."""
        if not chunk.height:
            return
        keys = list(KEY_COLUMNS)
        ordered = chunk.with_columns(key_expressions()).sort(keys + list(SORT_KEYS), nulls_last=True,
                                                             maintain_order=True)
        runs = (ordered.select(keys).with_row_index("__offset")
                .group_by(keys, maintain_order=True).agg(pl.col("__offset").first(), pl.len()))
        for account, region, hour, offset, n in runs.iter_rows():
            part = ordered.slice(offset, n).drop(keys)
            yield self.write_frame(Partition.of_hour(account, region, hour).path, part, presorted=True)

    def write_frame(self, partition: str, df: pl.DataFrame, *, presorted: bool = False) -> tuple[str, FileEntry]:
        """Write ``df`` (rows of one partition) sorted, under a temporary name, then rename."""
        path, rel = self._target(partition)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(TMP_PREFIX + path.name)
        if not presorted:
            df = df.sort(list(SORT_KEYS), nulls_last=True, maintain_order=True)
        df.write_parquet(tmp, compression=COMPRESSION, statistics=True, row_group_size=ROW_GROUP_ROWS)
        os.replace(tmp, path)
        fsync_dir(path.parent)
        return rel, self._entry(partition, df, path)

    def write_lazy(self, partition: str, lf: pl.LazyFrame) -> tuple[str, FileEntry] | None:
        """Stream a partition's rows (a lazy scan) into one sorted file; None when empty."""
        path, rel = self._target(partition)
        tmp = path.with_name(TMP_PREFIX + path.name)
        lf.sort(list(SORT_KEYS), nulls_last=True, maintain_order=True).sink_parquet(
            str(tmp), compression=COMPRESSION, statistics=True, row_group_size=ROW_GROUP_ROWS)
        counts = pl.scan_parquet(tmp, hive_partitioning=False).group_by("source_file").len().collect()
        if counts.get_column("len").sum() == 0:
            tmp.unlink()
            return None
        os.replace(tmp, path)
        fsync_dir(path.parent)
        sources = dict(zip(counts.get_column("source_file").to_list(), counts.get_column("len").to_list(),
                           strict=True))
        known = canonical_schema()
        extra = [c for c in pl.read_parquet_schema(path) if c not in known]
        return rel, FileEntry(partition, sum(sources.values()), path.stat().st_size, self.build_id, sources, extra)

    def _entry(self, partition: str, df: pl.DataFrame, path: Path) -> FileEntry:
        counts = df.group_by("source_file").len()
        sources = dict(zip(counts.get_column("source_file").to_list(), counts.get_column("len").to_list(),
                           strict=True))
        known = canonical_schema()
        extra = [c for c in df.columns if c not in known]
        return FileEntry(partition, df.height, path.stat().st_size, self.build_id, sources, extra)

    def merge(self, partition: str, paths: list[str], entries: list[FileEntry],
              drop_sources: frozenset[str] | set[str] = frozenset()) -> tuple[str, FileEntry] | None:
        """One file with the rows of ``paths`` (all in ``partition``) except those of
        ``drop_sources``; None when nothing is left."""
        schema = scan_schema(entries)
        lf = pl.scan_parquet([self.read_url(p) for p in paths], hive_partitioning=False, schema=schema,
                             missing_columns="insert", storage_options=self.storage_options)
        if drop_sources:
            lf = lf.filter(~pl.col("source_file").is_in(sorted(drop_sources)))
        return self.write_lazy(partition, lf)


def scan_schema(entries: Iterable[FileEntry]) -> dict[str, pl.DataType]:
    """The columns of a set of files: the canonical ones, then the unknown fields any
    of them holds (strings), in order of first appearance."""
    schema = dict(canonical_schema())
    for e in entries:
        for c in e.extra_columns:
            schema.setdefault(c, pl.String())
    return schema


def remove_files(root: Path, paths: Iterable[str]) -> None:
    """Delete files (already unlisted from the manifest); missing ones are fine."""
    for p in paths:
        try:
            (Path(root) / p).unlink()
        except FileNotFoundError:
            pass


def stray_files(root: Path, listed: set[str]) -> list[str]:
    """Parquet files (and temporaries) under the partition folders that the manifest does
    not list: left by a build that was killed before its commit."""
    out = []
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = Path(dirpath).relative_to(root).as_posix()
        if rel_dir == ".":
            dirnames[:] = [d for d in dirnames if d.startswith("account_id=")]
            continue
        for name in filenames:
            rel = f"{rel_dir}/{name}"
            if name.endswith(".parquet") and rel not in listed:
                out.append(rel)
    return out
