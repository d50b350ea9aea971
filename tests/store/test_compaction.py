"""Compaction merges runs of a partition's files into files of bounded size (a merge sorts
its rows in memory: one file per partition peaked at 12 GB at 200 M records)."""

from __future__ import annotations

from collections import Counter

from flowlog_files import frames_equal

import flowtools
from flowtools.store import PartitionStore, build, update, write
from flowtools.store.update import compaction_runs


def test_runs_of_consecutive_files_within_the_row_cap():
    files = [("a", 40), ("b", 40), ("c", 40), ("d", 100), ("e", 10), ("f", 10)]
    assert compaction_runs(files, 100) == [["a", "b"], ["e", "f"]]  # c alone and d alone: nothing to merge
    assert compaction_runs(files, 1_000) == [["a", "b", "c", "d", "e", "f"]]
    assert compaction_runs([("a", 5)], 100) == []


def _build(source, root, monkeypatch, max_rows: int):
    monkeypatch.setattr(update, "COMMIT_OBJECTS", 2)  # many small commits: many files per partition
    monkeypatch.setattr(write, "COMPACT_FILES", 1)  # every partition of two files or more
    monkeypatch.setattr(write, "COMPACT_ROWS", max_rows)
    return build(source, root, all=True)


def test_compaction_bounds_the_files_and_keeps_the_rows(store_source, tmp_path, monkeypatch):
    whole = _build(store_source, tmp_path / "whole", monkeypatch, 10**9)
    m = PartitionStore(tmp_path / "whole").manifest()
    per_partition = Counter(f.partition for f in m.files.values())
    assert whole.compacted and set(per_partition.values()) == {1}  # no cap: one file each
    largest = max(f.rows for f in m.files.values())
    cap = largest // 3
    capped = _build(store_source, tmp_path / "capped", monkeypatch, cap)
    files = PartitionStore(tmp_path / "capped").manifest().files
    assert capped.compacted > whole.compacted and len(files) > len(per_partition)
    uncapped = [f for f in files.values() if f.rows > cap]  # a file over the cap was never merged:
    assert all(len(f.sources) <= 2 for f in uncapped)  # it holds one commit's objects (2) at most
    direct = flowtools.load(store_source, all=True, store=False)
    through = flowtools.load(store_source, all=True, store=tmp_path / "capped")
    assert through.store is not None and through.store.read == 0  # read from the capped store
    frames_equal(direct.to_polars(), through.to_polars())
