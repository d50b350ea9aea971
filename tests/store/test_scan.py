"""Pruning: a 2-hour window of a store of several days opens only those hours' files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from flowlog_files import daily_key, frames_equal, write_log

import flowtools
from flowtools import sample
from flowtools.store import PartitionStore, build, open_flows
from flowtools.store.partitions import Partition
from flowtools.window import Window

START, END = "2026-11-21T10:00Z", "2026-11-21T12:00Z"


@pytest.fixture(scope="module")
def days(tmp_path_factory):
    src = tmp_path_factory.mktemp("store-days")
    sample.generate(src, seed=3, hours=50, scale=0.02)
    # a record that starts at 09:58, before the window, and ends inside it (10:03)
    t = int(Window.parse("2026-11-21T09:58Z").start.timestamp())
    write_log(src, daily_key(ts="20261121T1000Z"),
              [f"2 123456789010 eni-0a1b2c3d4e5f60718 203.0.113.9 10.0.0.5 40000 443 6 10 840 {t} {t + 300} ACCEPT OK"])
    root = src.parent / (src.name + "-store")
    build(src, root)
    return src, root


def test_a_two_hour_window_opens_only_its_hours(days, engine, monkeypatch):
    src, root = days
    store = PartitionStore(root)
    m = store.manifest()
    assert {Partition.parse(p).date for p in m.partitions()} >= {"2026-11-20", "2026-11-21", "2026-11-22"}
    files = store.files(Window.parse(START, END))
    # the window's hours, plus the hour before (records started then may still overlap)
    hours = {"09", "10", "11"}
    expected = sorted(str(root / p) for p, f in m.files.items()
                      if Partition.parse(f.partition).date == "2026-11-21" and Partition.parse(f.partition).hour in hours)
    assert sorted(files) == expected and 0 < len(files) < len(m.files) / 8

    opened = []
    if engine == "polars":
        scan = pl.scan_parquet

        def spy(paths, **kw):
            opened.extend(paths)
            return scan(paths, **kw)

        monkeypatch.setattr(pl, "scan_parquet", spy)
        got = open_flows(root, (START, END), engine="polars").collect()
        assert sorted(opened) == expected
    else:
        rel = open_flows(root, (START, END), engine="duckdb")
        got = rel.pl()
    direct = flowtools.load(src, start=START, end=END, engine=engine).to_polars()
    frames_equal(direct, got)
    w = Window.parse(START, END)
    assert got.filter(pl.col("start") < w.start_s).height > 0  # records started before the window, kept


def test_accounts_and_regions_prune_folders(days):
    src, root = days
    store = PartitionStore(root)
    one = store.files(Window.parse(START, END), accounts=["111111111111"], regions=["eu-west-1"])
    assert one and all("account_id=111111111111/region=eu-west-1/" in f for f in one)
    assert all(Path(f).exists() for f in one)
