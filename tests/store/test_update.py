"""Incremental builds: new objects, late objects, changed objects."""

from __future__ import annotations

import gzip

import polars as pl
import pytest
from flowlog_files import daily_key, frames_equal, write_log

import flowtools
from flowtools.store import PartitionStore, build, open_flows


@pytest.fixture
def src(store_source, tmp_path, h):
    return h.copy_source(store_source, tmp_path / "src")


def store_rows(root) -> pl.DataFrame:
    return open_flows(root, None, engine="polars").collect()


def test_a_new_object_touches_only_its_partition(src, tmp_path, h):
    root = tmp_path / "store"
    first = build(src, root)
    before = h.snapshot(root)
    key = daily_key("444444444444", ts="20261120T0210Z")
    write_log(src, key, [h.rec(i, h.T1 + 3660, account="444444444444") for i in range(6)])  # 02:01 onwards
    again = build(src, root)
    assert (again.new, again.changed, again.unchanged) == (1, 0, first.objects)
    after = h.snapshot(root)
    assert set(after) - set(before) == {"account_id=444444444444/region=us-east-1/date=2026-11-20/hour=02"}
    assert {p: after[p] for p in before} == before  # no other file rewritten or added
    frames_equal(flowtools.load(src, engine="polars").to_polars(), store_rows(root))


def test_a_late_object_lands_in_the_hour_of_its_records(src, tmp_path, h):
    root = tmp_path / "store"
    build(src, root)
    key = daily_key("555555555555", ts="20261120T0255Z")  # delivered at 02:55 ...
    write_log(src, key, [h.rec(i, h.T1 - 3000, account="555555555555") for i in range(4)])  # ... records of 00:10
    build(src, root)
    m = PartitionStore(root).manifest()
    parts = {f.partition for f in m.files.values() if key in f.sources}
    assert parts == {"account_id=555555555555/region=us-east-1/date=2026-11-20/hour=00"}
    got = open_flows(root, ("2026-11-20T00:00Z", "2026-11-20T00:30Z"), engine="polars").collect()
    assert got.filter(pl.col("source_file") == key).height == 4


def test_a_changed_object_replaces_its_rows(src, tmp_path, h):
    root = tmp_path / "store"
    build(src, root)
    m = PartitionStore(root).manifest()
    counts = {}
    for f in m.files.values():
        for k, n in f.sources.items():
            counts[k] = counts.get(k, 0) + n
    key = max((k for k in counts if "123456789010" not in k), key=counts.get)  # the sample object with most rows
    path = src / key
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    path.write_bytes(gzip.compress(("\n".join(lines[:3]) + "\n").encode(), mtime=0))  # header + 2 records
    again = build(src, root)
    assert (again.new, again.changed) == (0, 1) and again.files_replaced >= 1
    rows = store_rows(root)
    assert rows.filter(pl.col("source_file") == key).height == 2 < counts[key]
    others = rows.filter(pl.col("source_file") != key).group_by("source_file").len()
    assert dict(others.iter_rows()) == {k: n for k, n in counts.items() if k != key}
    frames_equal(flowtools.load(src, engine="polars").to_polars(), rows)
    m2 = PartitionStore(root).manifest()
    assert m2.trash and not set(m2.trash) & set(m2.files)  # old files kept a while for readers, unlisted
    assert set(m2.files) | set(m2.trash) == h.parquet_on_disk(root)


def test_an_unchanged_source_reads_nothing(built_store):
    m = PartitionStore(built_store).manifest()
    assert len(m.objects) > 100 and all(e.build for e in m.objects.values())
