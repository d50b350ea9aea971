"""A local folder (or one file) as a SOURCE: listing and bytes."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from flowtools.errors import SourceError
from flowtools.layout import FlowLogObject, ObjectInfo
from flowtools.read import text as tx


class LocalStore:
    """Objects under a local root folder; keys are relative POSIX paths (an ObjectStore)."""

    scannable = True
    storage_options = None

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.label = str(root)

    def path(self, key: str) -> str:
        return str(self.root / key)

    def read_bytes(self, key: str) -> bytes:
        return (self.root / key).read_bytes()

    def read_head(self, key: str) -> bytes:
        return tx.read_head(self.path(key))

    def prepare(self, objects: Sequence[FlowLogObject], progress: bool | None = None) -> list[FlowLogObject]:
        """Nothing to fetch: the files are here."""
        return list(objects)

    def close(self) -> None:
        pass

    def list(self) -> Iterator[ObjectInfo]:
        """Every file below the root, as (key, size); hidden folders are skipped."""
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(self.root)
            for name in sorted(filenames):
                full = Path(dirpath) / name
                try:
                    size = full.stat().st_size
                except OSError:
                    continue
                yield ObjectInfo((rel / name).as_posix(), size)


def open_local(source: str | os.PathLike) -> tuple[LocalStore, list[ObjectInfo], bool]:
    """(store, listing, single_file) for a local SOURCE; a missing path is a SourceError."""
    p = Path(source)
    if not p.exists():
        raise SourceError(f"SOURCE not found: {source} (no such file or folder)")
    if p.is_file():
        store = LocalStore(p.parent)
        return store, [ObjectInfo(p.name, p.stat().st_size)], True
    store = LocalStore(p)
    return store, list(store.list()), False
