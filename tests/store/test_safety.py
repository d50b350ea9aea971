"""Interrupted and concurrent builds leave a readable, correct store."""

from __future__ import annotations

import os
import threading

import polars as pl
import pytest
from flowlog_files import frames_equal

import flowtools
from flowtools.store import PartitionStore, StoreLockedError, build, open_flows
from flowtools.store import update as build_mod
from flowtools.store.lock import StoreLock
from flowtools.store.write import Writer


@pytest.fixture
def src(store_source, tmp_path, h):
    return h.copy_source(store_source, tmp_path / "src")


def test_an_interrupted_build_is_consistent_and_the_next_one_completes_it(src, tmp_path, monkeypatch, h):
    root = tmp_path / "store"
    monkeypatch.setattr(build_mod, "COMMIT_OBJECTS", 40)  # several commits
    state = {"reads": 0, "writes": 0}
    read, write_frame = build_mod._Build.read, Writer.write_frame

    def counting_read(self, *a, **kw):
        state["reads"] += 1
        return read(self, *a, **kw)

    def failing_write(self, partition, df, **kw):
        if state["reads"] >= 2:  # the second batch: one partition written, then the "crash"
            if state["writes"] >= 1:
                raise RuntimeError("disk full (injected)")
            state["writes"] += 1
        return write_frame(self, partition, df, **kw)

    with monkeypatch.context() as mp:
        mp.setattr(build_mod._Build, "read", counting_read)
        mp.setattr(Writer, "write_frame", failing_write)
        mp.setattr(build_mod, "remove_files", lambda *a: None)  # as if killed: nothing tidied
        with pytest.raises(RuntimeError, match="injected"):
            build(src, root)
    m = PartitionStore(root).manifest()
    direct = flowtools.load(src, engine="polars").to_polars()
    total = direct.get_column("source_file").n_unique()
    assert 0 < len(m.objects) == 40
    assert set(m.files) < h.parquet_on_disk(root)  # the unpublished files exist but are invisible
    held = direct.filter(pl.col("source_file").is_in(list(m.objects)))
    frames_equal(held, open_flows(root, None, engine="polars").collect())

    result = build(src, root)
    assert result.unchanged == 40 and result.new + 40 == result.objects >= total
    frames_equal(direct, open_flows(root, None, engine="duckdb").pl())
    m = PartitionStore(root).manifest()
    assert h.parquet_on_disk(root) == set(m.files) | set(m.trash)  # the killed build's files are gone
    assert not list((root / "_journal").glob("*"))


def test_two_builds_at_once_leave_a_correct_store(src, tmp_path):
    root = tmp_path / "store"
    results, errors = [], []
    barrier = threading.Barrier(2)

    def run():
        barrier.wait()
        try:
            results.append(build(src, root))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.new for r in results) == [0, results[0].objects]  # the second found it all done
    frames_equal(flowtools.load(src, engine="polars").to_polars(), open_flows(root, None, engine="polars").collect())


def test_a_build_waits_for_the_lock_then_names_the_holder(src, tmp_path):
    root = tmp_path / "store"
    seen = []
    with StoreLock(root), pytest.raises(StoreLockedError, match=f"pid {os.getpid()}"):
        build(src, root, lock_timeout=0.3, on_wait=seen.append)
    assert seen and "pid" in seen[0]
    assert build(src, root).new > 0  # released
