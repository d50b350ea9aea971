"""An hourly partition store: any window of a large estate, read on one machine.

Flow logs are read once from SOURCE and kept as zstd Parquet in the canonical schema
(every field plus ``start_time``, ``end_time``, ``source_file``, ``flow_log_id``,
``source_account_id``, ``source_region``), in Hive folders
``account_id=<id>/region=<r>/date=YYYY-MM-DD/hour=HH/`` by each record's own start (UTC),
rows sorted by ``(interface_id, start)`` within a file. A manifest lists the published
files and the source objects they came from with their read findings, so a window read
from the store gives the same rows and the same read report as a read of SOURCE.

API::

    from flowtools.store import PartitionStore, build, open_flows, default_root

    result = build("s3://bucket/AWSLogs/", "/data/store", start="-2d")   # BuildResult
    store = PartitionStore("/data/store")            # or "s3://bucket/store"; default: default_root()
    store.update(source_store, objects)              # new/changed objects only
    store.files(window, accounts=None, regions=None) # files a window needs (absolute paths)
    store.objects()                                  # the source objects it holds
    store.report(objects, window)                    # ReadReport of those objects
    open_flows("/data/store", window, engine="polars")  # lazy frame, canonical columns
    store.info()                                     # partitions, records, bytes, sources

Modules: :mod:`~flowtools.store.partitions` (layout, pruning), :mod:`~flowtools.store.manifest`
(the manifest, atomic commits), :mod:`~flowtools.store.lock` (one builder at a time: a second
build waits), :mod:`~flowtools.store.write` (Parquet files), :mod:`~flowtools.store.update`
(update), :mod:`~flowtools.store.scan` (pruning, frames, reports),
:mod:`~flowtools.store.location` (a local folder or ``s3://bucket/prefix``: manifest, uploads,
engines' access). See ``docs/store.md``.
"""

from flowtools.store.core import STORE_ENV, PartitionStore, build, default_root, open_flows
from flowtools.store.lock import StoreLockedError
from flowtools.store.update import BuildResult

__all__ = ["STORE_ENV", "BuildResult", "PartitionStore", "StoreLockedError", "build", "default_root",
           "open_flows"]
