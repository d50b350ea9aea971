"""Building and updating the store from source objects.

:func:`update` reads the objects that are new or changed since the manifest recorded them
(key, size, ETag or mtime), through :func:`flowtools.read.reader.read_objects` with a sink
that splits each chunk by partition and writes it as new files (appends never rewrite).
Objects are read with an open window (every record of an object is stored, whatever
window a later reader asks for), sorted by their 5-minute batch time so that one chunk
touches few partitions, and committed to the manifest every :data:`COMMIT_OBJECTS`
objects. A changed object's rows are first removed from every file that holds them (each
such file is rewritten without them, one partition at a time) and committed; then it is
read again like a new one. At the end, partitions this build touched that hold more than
:data:`~flowtools.store.write.COMPACT_FILES` files are compacted: runs of consecutive
files are merged into files of at most :data:`~flowtools.store.write.COMPACT_ROWS` rows.

Memory: one reader chunk (:data:`~flowtools.read.reader.CHUNK_FILES` files) plus the
partition being written or rewritten; never the window.

Crash safety: files are published by the manifest only; every file a build creates is
first noted in its journal (``_journal/<build-id>``), so the next build removes what a
killed one left unpublished. Replaced files go to the manifest's trash and are deleted
by a later build after a grace period (readers may still hold them).

A store on ``s3://`` (:mod:`flowtools.store.location`) is built the same way in a local
staging folder; each commit first uploads the files written since the last one (journal
object ``_journal/<build-id>-<n>``, then the files), then writes the manifest. An
``s3://`` SOURCE is prepared (listed headers, or downloaded to the cache) one commit's
objects at a time, never the whole window first.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import polars as pl

from flowtools.layout import FlowLogObject
from flowtools.progress import bar as progress_bar
from flowtools.read.reader import CHUNK_FILES, ObjectStore, read_objects
from flowtools.read.report import ReadReport
from flowtools.store import write
from flowtools.store.location import S3, Local, open_location, remove_staging, staging_folder
from flowtools.store.lock import S3Lock, StoreLock, StoreLockedError
from flowtools.store.manifest import TRASH_GRACE_S, FileEntry, Manifest, ObjectEntry
from flowtools.store.write import TMP_PREFIX, Writer, remove_files
from flowtools.window import Window

#: Objects read between two manifest commits (a killed build loses at most these).
COMMIT_OBJECTS = 4 * CHUNK_FILES
JOURNAL = "_journal"


@dataclass
class BuildResult:
    """What a build did."""

    root: str
    build_id: str
    objects: int = 0  # objects offered
    unchanged: int = 0
    new: int = 0
    changed: int = 0
    records: int = 0  # records written
    files_written: int = 0
    files_replaced: int = 0
    partitions: set[str] = field(default_factory=set)  # partitions written to
    compacted: int = 0
    seconds: float = 0.0
    report: ReadReport | None = None  # the read findings of the objects read now

    def line(self) -> str:
        return (f"store {self.root}: {self.new} new and {self.changed} changed object(s) read, {self.unchanged} "
                f"unchanged; {self.records} record(s) written to {len(self.partitions)} partition(s) "
                f"({self.files_written} file(s), {self.files_replaced} replaced, {self.compacted} compacted) "
                f"in {self.seconds:.1f} s")


def _format_text(log_format: str | Sequence[str] | None) -> str | None:
    """``--log-format`` as the store keeps it (field names, space-separated), or None."""
    if not log_format:
        return None
    from flowtools.fields import parse_log_format

    fields = parse_log_format(log_format) if isinstance(log_format, str) else list(log_format)
    return " ".join(fields)


def new_build_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)


def _mtime_ns(source_store: ObjectStore, key: str) -> int | None:
    path = source_store.path(key)
    if "://" in path:
        return None
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


class _Build:
    """One build. ``self.root`` is where files are written: the store's folder, or the
    staging folder of an S3 store (``loc``)."""

    def __init__(self, root: Path, manifest: Manifest, result: BuildResult, loc: Local | S3 | None = None,
                 lock: S3Lock | None = None) -> None:
        self.root, self.m, self.result = root, manifest, result
        self.loc = loc if loc is not None else Local(root)
        self.lock = lock
        if self.loc.remote:
            self.writer: Writer = Writer(root, result.build_id, read_url=self.loc.url,
                                         storage_options=self.loc.storage_options)
        else:
            self.writer = _JournaledWriter(root, result.build_id)
        self.any_name: set[str] = set()
        self.pending: list[str] = []  # files written but not uploaded yet (S3)
        self.journals = 0

    def commit(self) -> None:
        if not self.loc.remote:
            self.m.save(self.root)
            return
        if self.lock is not None and self.lock.lost:
            raise StoreLockedError(f"{self.loc.uri}: {self.lock.lost}; nothing of this commit is published: "
                                   "run the build again")
        pending = [r for r in self.pending if r in self.m.files]
        assert isinstance(self.loc, S3)  # the only remote location
        if pending:
            self.journals += 1
            self.loc.publish(self.root, pending, f"{self.result.build_id}-{self.journals:05d}")
        remove_files(self.root, [r for r in self.pending if r not in self.m.files])  # replaced before upload
        self.pending.clear()
        self.loc.save_manifest(self.m)

    # -- before: what earlier builds left -----------------------------------------------
    def tidy(self) -> None:
        """Remove files of killed builds (journaled, never published) and old trash."""
        changed = False
        journals = self.root / JOURNAL
        if self.loc.remote:
            assert isinstance(self.loc, S3)
            old_journals = self.loc.journals()
            stray = {r for rels in old_journals.values() for r in rels if r not in self.m.files and r not in self.m.trash}
            self.loc.remove(sorted(stray))
            self.loc.drop_journals(old_journals)
        elif journals.is_dir():
            for j in sorted(journals.iterdir()):
                if j.name == self.result.build_id:
                    continue
                rels = [r for r in j.read_text().splitlines() if r and r not in self.m.files and r not in self.m.trash]
                remove_files(self.root, rels)
                remove_files(self.root, [_tmp(r) for r in rels])
                j.unlink()
        now = time.time()
        old = [p for p, t in self.m.trash.items() if now - t >= TRASH_GRACE_S]
        if old:
            if isinstance(self.loc, S3):
                self.loc.remove(old)
            else:
                remove_files(self.root, old)
            for p in old:
                del self.m.trash[p]
            changed = True
        if changed:
            self.commit()

    # -- changed objects: their rows out of every file that holds them -------------------
    def drop_objects(self, keys: set[str]) -> None:
        paths = self.m.files_of(keys)
        by_partition: dict[str, list[str]] = {}
        for p in paths:
            by_partition.setdefault(self.m.files[p].partition, []).append(p)
        for partition, ps in sorted(by_partition.items()):
            self._replace(partition, ps, drop=keys)
        for k in keys:
            self.m.objects.pop(k, None)
        self.commit()

    def _replace(self, partition: str, paths: list[str], drop: frozenset[str] | set[str] = frozenset()) -> None:
        entries = [self.m.files[p] for p in paths]
        out = self.writer.merge(partition, paths, entries, drop)
        now = time.time()
        for p in paths:
            del self.m.files[p]
            self.m.trash[p] = now
        self.result.files_replaced += len(paths)
        if out is not None:
            rel, entry = out
            self.m.files[rel] = entry
            self.pending.append(rel)
            self.result.files_written += 1
            self.result.partitions.add(partition)

    # -- reading ------------------------------------------------------------------------
    def read(self, source_store: ObjectStore, batch: Sequence[FlowLogObject], mtimes: dict[str, int | None], *,
             strict: bool, log_format: str | Sequence[str] | None, progress: Any, total: ReadReport) -> None:
        rep = ReadReport(source=total.source, window=total.window)
        written: dict[str, FileEntry] = {}
        plan = {"issues": 0}

        def sink(chunk: pl.DataFrame) -> None:
            for rel, entry in self.writer.write_chunk(chunk):
                written[rel] = entry

        def on_schema(_schema: dict[str, pl.DataType]) -> None:
            plan["issues"] = len(rep.issues)

        try:
            read_objects(source_store, batch, Window(), rep, sink=sink, strict=strict, log_format=log_format,
                         progress=progress, on_schema=on_schema)
        except BaseException:
            remove_files(self.root, list(written))  # unpublished anyway; the journal covers a kill
            raise
        entries = {o.key: ObjectEntry(o.size, o.etag, mtimes.get(o.key), o.key in self.any_name,
                                      self.result.build_id, group=(o.format,), log_format=_format_text(log_format))
                   for o in batch}
        for f in rep.files:
            e = entries[f.file]
            e.read, e.group = f, (f.format, *f.fields)
        for i, issue in enumerate(rep.issues):
            e = entries[issue.file]
            e.issues.append(issue)
            e.plan_issue = e.plan_issue or i < plan["issues"]
        for b in rep.bad_lines:
            entries[b.file].bad_lines.append(b)
        for w in rep.warnings:  # a warning about one object is kept with it, for later reports
            owner = entries.get(w.split(": ", 1)[0])
            if owner is not None:
                owner.warnings.append(w)
            else:
                total.warnings.append(w)
        self.m.objects.update(entries)
        self.m.files.update(written)
        self.pending.extend(written)
        self.commit()
        total.files.extend(rep.files)
        total.issues.extend(rep.issues)
        total.bad_lines.extend(rep.bad_lines)
        self.result.records += sum(e.rows for e in written.values())
        self.result.files_written += len(written)
        self.result.partitions.update(e.partition for e in written.values())

    # -- after: fewer, bigger files -----------------------------------------------------
    def compact(self) -> None:
        parts = self.m.partitions()
        todo = [p for p in sorted(self.result.partitions) if len(parts.get(p, ())) > write.COMPACT_FILES]
        merged = 0
        for p in todo:
            for run in compaction_runs([(f, self.m.files[f].rows) for f in sorted(parts[p])], write.COMPACT_ROWS):
                self._replace(p, run)
                merged += 1
        self.result.compacted = merged
        if merged:
            self.commit()


def compaction_runs(files: list[tuple[str, int]], max_rows: int) -> list[list[str]]:
    """Runs of consecutive ``(file, rows)`` whose rows add up to at most ``max_rows``,
    each of two files or more (the files a compaction merges, one output per run)."""
    runs: list[list[str]] = []
    run: list[str] = []
    total = 0
    for name, rows in files:
        if run and total + rows > max_rows:
            runs.append(run)
            run, total = [], 0
        run.append(name)
        total += rows
    runs.append(run)
    return [r for r in runs if len(r) > 1]


class _JournaledWriter(Writer):
    """A writer that notes each file in the build's journal before creating it."""

    def __init__(self, root: Path, build_id: str) -> None:
        super().__init__(root, build_id)
        self.journal = Path(root) / JOURNAL / build_id
        self._fh: IO[str] | None = None

    def _target(self, partition: str) -> tuple[Path, str]:
        path, rel = super()._target(partition)
        if self._fh is None:
            self.journal.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.journal, "a")
        self._fh.write(rel + "\n")
        self._fh.flush()
        return path, rel

    def close(self, *, done: bool) -> None:
        """Close the journal; a finished build removes it (every file it lists is either
        published or deleted), a failed one leaves it for the next build to clean up."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if done:
            try:
                self.journal.unlink()
            except FileNotFoundError:
                pass


def _tmp(rel: str) -> str:
    head, _, name = rel.rpartition("/")
    return f"{head}/{TMP_PREFIX}{name}"


def update(root: str | os.PathLike | Local | S3, source_store: ObjectStore, objects: Sequence[FlowLogObject], *,
           strict: bool = False, log_format: str | Sequence[str] | None = None, progress: bool | None = None,
           single_file: bool = False, lock_timeout: float | None = None,
           on_wait: Callable[[str], None] | None = None) -> BuildResult:
    """Bring the store at ``root`` (a folder, ``s3://bucket/prefix`` or a
    :mod:`~flowtools.store.location`) up to date with ``objects`` of ``source_store`` (see
    the module docstring). Takes the build lock (waiting up to ``lock_timeout`` seconds,
    default :data:`~flowtools.store.lock.LOCK_TIMEOUT_S`); ``single_file`` marks a SOURCE
    that is one file (its key is read whatever its name)."""
    from flowtools.store.lock import LOCK_TIMEOUT_S

    t0 = time.monotonic()
    loc = open_location(root)
    timeout = LOCK_TIMEOUT_S if lock_timeout is None else lock_timeout
    result = BuildResult(loc.uri, new_build_id(), objects=len(objects))
    total = ReadReport(source=getattr(source_store, "label", ""), window=str(Window()))
    result.report = total
    if loc.remote:
        assert isinstance(loc, S3)
        lock: S3Lock | StoreLock = S3Lock(loc, timeout=timeout, on_wait=on_wait)
        workdir = staging_folder()
    else:
        assert isinstance(loc, Local)
        loc.root.mkdir(parents=True, exist_ok=True)
        lock, workdir = StoreLock(loc.root, timeout=timeout, on_wait=on_wait), loc.root
    try:
        with lock:
            m = loc.load_manifest()
            b = _Build(workdir, m, result, loc, lock if isinstance(lock, S3Lock) else None)
            done = False
            try:
                _run(b, source_store, objects, single_file=single_file, strict=strict, log_format=log_format,
                     progress=progress, total=total)
                done = True
            finally:
                b.writer.close(done=done)
                if done and loc.remote and b.journals:
                    assert isinstance(loc, S3)
                    loc.drop_journals([f"{result.build_id}-{n:05d}" for n in range(1, b.journals + 1)])
    finally:
        if loc.remote:
            remove_staging(workdir)
    total.records_parsed = sum(f.records for f in total.files)
    total.records = result.records
    result.seconds = time.monotonic() - t0
    return result


def _run(b: _Build, source_store: ObjectStore, objects: Sequence[FlowLogObject], *, single_file: bool, strict: bool,
         log_format: str | Sequence[str] | None, progress: bool | None, total: ReadReport) -> None:
    m, result = b.m, b.result
    b.any_name = {o.key for o in objects} if single_file else set()
    b.tidy()
    label = getattr(source_store, "label", None)
    if label and label not in m.sources:
        m.sources.append(label)
    mtimes = {o.key: _mtime_ns(source_store, o.key) for o in objects}
    todo, changed = [], set()
    fmt = _format_text(log_format)
    for o in objects:
        e = m.objects.get(o.key)
        if e is not None and e.same_version(o.size, o.etag, mtimes[o.key]) and e.log_format == fmt:
            result.unchanged += 1
            continue
        todo.append(o)
        if e is not None:
            changed.add(o.key)
    result.changed, result.new = len(changed), len(todo) - len(changed)
    if changed:
        b.drop_objects(changed)
    if not todo:
        if not m.created:
            b.commit()  # an empty store is still a store
        return
    todo.sort(key=lambda o: (o.file_time or o.partition_start or datetime.min.replace(tzinfo=UTC), o.key))
    bar = progress_bar(progress, total=len(todo), desc="reading flow logs", unit="file", min_total=20)
    try:
        for i in range(0, len(todo), COMMIT_OBJECTS):
            # one commit's objects at a time: an S3 SOURCE's downloads never hold the whole window
            batch = source_store.prepare(todo[i:i + COMMIT_OBJECTS], progress=progress)
            total.warnings.extend(w for w in getattr(source_store, "warnings", ()) if w not in total.warnings)
            b.read(source_store, batch, mtimes, strict=strict, log_format=log_format, progress=bar, total=total)
    finally:
        if bar is not None:
            bar.close()
    b.compact()
