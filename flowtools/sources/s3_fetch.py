"""Downloading many S3 objects at once (:func:`download_all`, shared by the cache mode of
:class:`~flowtools.sources.s3.S3Store`) and ``flowtools fetch`` (:func:`fetch`): the objects
a window can need, copied into a local folder in the same layout."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from flowtools.errors import UsageError
from flowtools.layout import FlowLogObject
from flowtools.sources.cache import download, human_size, materialize_key
from flowtools.sources.s3_client import DOWNLOAD_WORKERS, progress_bar, s3_error
from flowtools.sources.s3_listing import list_objects
from flowtools.window import Window

#: Told the bytes transferred as a download goes (a progress bar's ``update``).
OnBytes = Callable[[int], None]
#: Downloads one object, telling an :data:`OnBytes` as it goes; returns the bytes moved.
DownloadOne = Callable[[FlowLogObject, OnBytes], int]


def download_all(objects: Sequence[FlowLogObject], one: DownloadOne, *, progress: bool | None,
                 desc: str) -> tuple[int, int]:
    """Run ``one(object, on_bytes) -> bytes moved`` for every object, :data:`DOWNLOAD_WORKERS`
    at a time, under one progress bar of bytes and files; returns (files, bytes moved).
    The first error stops the rest and is raised."""
    bar = progress_bar(progress, total=sum(o.size for o in objects), unit="B", unit_scale=True, files=len(objects), desc=desc)
    moved = 0

    def run(o: FlowLogObject) -> int:
        n = one(o, bar.update)
        bar.file_done()
        return n

    try:
        with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS) as pool:
            futures = [pool.submit(run, o) for o in objects]
            try:
                for fut in futures:
                    moved += fut.result()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    finally:
        bar.close()
    return len(objects), moved


@dataclass
class FetchSummary:
    """What ``flowtools fetch`` did."""

    source: str
    dest: str
    files: int = 0
    files_downloaded: int = 0
    bytes_downloaded: int = 0
    files_present: int = 0
    files_pruned: int = 0
    list_requests: int = 0

    def line(self) -> str:
        return (f"fetch: {self.files} file(s) for the window into {self.dest}: {self.files_downloaded} downloaded "
                f"({human_size(self.bytes_downloaded)}), {self.files_present} already there; {self.files_pruned} outside "
                f"the window; {self.list_requests} list request(s)")


def fetch(uri: str, dest: str | os.PathLike[str], *, start: str | datetime | date | None = None,
          end: str | datetime | date | None = None, all: bool = False,
          accounts: str | Iterable[str] | None = None, regions: str | Iterable[str] | None = None,
          profile: str | None = None, progress: bool | None = None) -> FetchSummary:
    """Copy the flow-log objects of ``uri`` that the window can need into ``dest``, in the
    same layout (keys relative to the SOURCE prefix), for offline work: ``dest`` is then a
    local SOURCE giving the same rows (and ``source_file`` values). Files already in
    ``dest`` with the object's size are not downloaded again; interrupted downloads resume."""
    from flowtools.layout import select
    from flowtools.options import comma_list as _csv_list

    window = Window.parse(start, end)
    if window.is_open and not all:
        raise UsageError(f"{uri}: fetch needs --start/--end (or --all to copy everything)")
    accounts_l, regions_l = _csv_list(accounts), _csv_list(regions)
    found = list_objects(uri, window=window, accounts=accounts_l, regions=regions_l, profile=profile,
                         progress=progress)
    kept, pruned = select(found.objects, window, accounts=accounts_l, regions=regions_l)
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    summary = FetchSummary(uri, str(root), files=len(kept), files_pruned=len(pruned),
                           list_requests=found.stats.requests)
    todo: list[FlowLogObject] = []
    targets: dict[str, Path] = {}
    for o in kept:
        target = materialize_key(root, o.key)
        if target.exists() and target.stat().st_size == o.size:
            summary.files_present += 1
        else:
            todo.append(o)
            targets[o.key] = target

    def one(o: FlowLogObject, on_bytes: OnBytes) -> int:
        target, key = targets[o.key], found.prefix + o.key
        target.parent.mkdir(parents=True, exist_ok=True)
        return download(found.client, found.bucket, key, target, etag=o.etag, size=o.size, on_bytes=on_bytes,
                        on_error=lambda e: s3_error(e, "GetObject", found.bucket, key, profile))

    summary.files_downloaded, summary.bytes_downloaded = download_all(
        todo, one, progress=progress, desc=f"fetching from s3://{found.bucket}")
    return summary
