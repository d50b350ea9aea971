"""The store's manifest: which source objects it holds, their read findings, its files.

One JSON document, ``_manifest.json`` at the store root, replaced atomically (written to a
temporary file, flushed to disk, then renamed over the old one; on S3 one conditional PUT
of the whole object, see :mod:`flowtools.store.location`), so a reader always sees one
complete version. It is the commit point of a build: Parquet files that exist on disk
but are not listed here are invisible (a build killed before its commit) and are removed
by the next build.

``objects`` maps each source object's key (relative to SOURCE, = ``source_file``) to what
identifies its version (size, ETag for S3, mtime in nanoseconds for local files) and to
what reading it found: its :class:`~flowtools.read.report.FileRead` (None when skipped),
its :class:`~flowtools.read.report.FileIssue` list and the bad lines kept, whether the
issue came before reading (planning: empty file, no header line) and the group it was
read in (file type and field list), so a report assembled from the manifest lists files
and issues in the order a direct read would.

``files`` maps each published Parquet file (path relative to the root) to its partition,
row count, bytes and rows per source object (so a changed object's partitions are known
without opening anything). ``trash`` holds files replaced by a rewrite, deleted by a later
build once :data:`TRASH_GRACE_S` has passed (readers that listed them before may still be
reading).

Cost: the whole manifest is read and rewritten once per committed batch of objects; about
300 bytes per object without findings (a year of one flow log's 5-minute files: ~30 MB).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from pathlib import Path
from typing import Any

from flowtools.errors import SourceError
from flowtools.read.report import BadLine, FileIssue, FileRead

MANIFEST = "_manifest.json"
VERSION = 1
#: Seconds a replaced file stays on disk for readers that listed it before the rewrite.
TRASH_GRACE_S = 600


@dataclass
class ObjectEntry:
    """One source object as the store holds it."""

    size: int
    etag: str | None = None
    mtime_ns: int | None = None
    any_name: bool = False  # the key was read whatever its name (a SOURCE that is one file)
    build: str = ""
    read: FileRead | None = None
    issues: list[FileIssue] = field(default_factory=list)
    bad_lines: list[BadLine] = field(default_factory=list)
    plan_issue: bool = False  # its issue was found while planning (before any file was read)
    group: tuple[str, ...] = ()  # (file type, *fields): the read group, for the report's order
    warnings: list[str] = field(default_factory=list)  # the reader's warnings about it (not issues)
    #: the --log-format it was read with (fields, space-separated): another one reads it again
    log_format: str | None = None

    def same_version(self, size: int, etag: str | None, mtime_ns: int | None) -> bool:
        """Whether an object listed now is the version stored (size, then ETag or mtime
        when both sides know it)."""
        if size != self.size:
            return False
        if etag is not None and self.etag is not None and etag != self.etag:
            return False
        if mtime_ns is not None and self.mtime_ns is not None and mtime_ns != self.mtime_ns:
            return False
        return True

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"size": self.size, "etag": self.etag, "mtime_ns": self.mtime_ns, "build": self.build}
        if self.any_name:
            d["any_name"] = True
        if self.read is not None:
            r = _fields(self.read)
            del r["file"]
            r["fields"] = list(r["fields"])
            d["read"] = r
        if self.issues:
            d["issues"] = [{k: v for k, v in _fields(i).items() if k != "file"} for i in self.issues]
        if self.bad_lines:
            d["bad_lines"] = [[b.line, b.reason] for b in self.bad_lines]
        if self.plan_issue:
            d["plan_issue"] = True
        if self.warnings:
            d["warnings"] = list(self.warnings)
        if self.log_format:
            d["log_format"] = self.log_format
        d["group"] = list(self.group)
        return d

    @classmethod
    def from_json(cls, key: str, d: dict[str, Any]) -> ObjectEntry:
        r = d.get("read")
        return cls(
            size=d["size"], etag=d.get("etag"), mtime_ns=d.get("mtime_ns"), any_name=d.get("any_name", False),
            build=d.get("build", ""),
            read=None if r is None else FileRead(file=key, **(r | {"fields": tuple(r["fields"])})),
            issues=[FileIssue(file=key, **i) for i in d.get("issues", ())],
            bad_lines=[BadLine(key, line, reason) for line, reason in d.get("bad_lines", ())],
            plan_issue=d.get("plan_issue", False), group=tuple(d.get("group", ())),
            warnings=list(d.get("warnings", ())), log_format=d.get("log_format"),
        )


@dataclass
class FileEntry:
    """One published Parquet file of the store."""

    partition: str  # folder relative to the root
    rows: int
    bytes: int
    build: str
    sources: dict[str, int]  # rows per source object key
    extra_columns: list[str] = field(default_factory=list)  # unknown flow-log fields it holds


@dataclass
class Manifest:
    """The whole manifest (see the module docstring)."""

    objects: dict[str, ObjectEntry] = field(default_factory=dict)
    files: dict[str, FileEntry] = field(default_factory=dict)
    trash: dict[str, float] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    created: str = ""
    updated: str = ""

    @classmethod
    def load(cls, root: Path) -> Manifest:
        """The manifest of the local store at ``root`` (empty when there is none yet)."""
        path = Path(root) / MANIFEST
        try:
            text = path.read_text()
        except FileNotFoundError:
            return cls()
        except OSError as e:
            raise SourceError(f"{path}: cannot read the store manifest: {e}") from None
        return cls.from_text(text, str(path))

    @classmethod
    def from_text(cls, text: str, where: str) -> Manifest:
        """The manifest in ``text`` (``where``: its path or URL, for the error message)."""
        try:
            d = json.loads(text)
            if d.get("version") != VERSION:
                raise ValueError(f"unsupported manifest version {d.get('version')!r} (this flowtools reads {VERSION})")
            return cls(
                objects={k: ObjectEntry.from_json(k, v) for k, v in d["objects"].items()},
                files={k: FileEntry(**v) for k, v in d["files"].items()},
                trash=dict(d.get("trash", {})),
                sources=list(d.get("sources", [])),
                created=d.get("created", ""),
                updated=d.get("updated", ""),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise SourceError(f"{where}: not a flowtools store manifest ({e})") from None

    def to_text(self) -> str:
        """The JSON document (sets ``created`` / ``updated``)."""
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.created = self.created or now
        self.updated = now
        doc = {
            "version": VERSION, "created": self.created, "updated": self.updated, "sources": self.sources,
            "objects": {k: v.to_json() for k, v in sorted(self.objects.items())},
            "files": {k: _fields(v) for k, v in sorted(self.files.items())},
            "trash": self.trash,
        }
        return json.dumps(doc, separators=(",", ":"))

    def save(self, root: Path) -> None:
        """Replace the local manifest atomically (temporary file, fsync, rename, fsync of the folder)."""
        text = self.to_text()
        root = Path(root)
        tmp = root / f".tmp-{MANIFEST}.{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, root / MANIFEST)
        fsync_dir(root)

    # -- questions ----------------------------------------------------------------------
    def partitions(self) -> dict[str, list[str]]:
        """Partition folder -> its published files."""
        out: dict[str, list[str]] = {}
        for path, f in self.files.items():
            out.setdefault(f.partition, []).append(path)
        return out

    def files_of(self, keys: set[str]) -> list[str]:
        """The files holding rows of any of ``keys``."""
        return [p for p, f in self.files.items() if keys.intersection(f.sources)]


def _fields(record: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, values as they are (``dataclasses.asdict`` deep-copies
    every value: a manifest of many objects is written at every commit of a build)."""
    return {f.name: getattr(record, f.name) for f in dataclass_fields(record)}


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (a rename) to disk; a no-op where folders cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
