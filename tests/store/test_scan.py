"""Pruning: a 2-hour window of a store of several days opens only those hours' files."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from flowlog_files import DEFAULT_HEADER, daily_key, frames_equal, write_log

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


@pytest.mark.parametrize("same_columns", [True, False])
def test_duckdb_reads_by_name_only_when_the_files_columns_differ(tmp_path, same_columns):
    """Files holding the same unknown field (an extra column) are read by position: DuckDB's
    ``union_by_name`` reads every file's schema each time a plan is bound. Files whose
    columns differ are read by name, the missing field NULL."""
    t = int(Window.parse(START).start.timestamp())
    src, root = tmp_path / "src", tmp_path / "store"
    for hour, extra in (("10", True), ("11", same_columns)):  # one build each: a file each
        line = f"2 123456789010 eni-0a1b2c3d4e5f60718 203.0.113.9 10.0.0.5 40000 443 6 10 840 {t} {t + 60} ACCEPT OK"
        write_log(src, daily_key(ts=f"20261121T{hour}00Z"), [line + (f" v{hour}" if extra else "")],
                  header=DEFAULT_HEADER + (" future-field" if extra else ""))
        build(src, root)
        t += 3600
    rel = open_flows(root, (START, END), engine="duckdb")
    assert ("union_by_name" in rel.sql_query()) is not same_columns
    got = rel.pl().sort("start")
    assert got["future_field"].to_list() == (["v10", "v11"] if same_columns else ["v10", None])
    frames_equal(flowtools.load(src, start=START, end=END, engine="duckdb").to_polars(), got)


def test_the_sources_filter_is_left_out_when_the_files_hold_only_those_sources(days):
    """Every row of the window's files from the selected objects: no per-row filter on
    ``source_file`` (it would read that column for nothing); a selection that leaves out
    objects of those files filters them, on both engines."""
    _, root = days
    store = PartitionStore(root)
    keys = sorted(o.key for o in store.objects())
    some = keys[::2]
    for engine in ("polars", "duckdb"):
        con = flowtools.engines.connect()

        def filtered(frame, engine=engine):
            return ('col("source_file").is_in' in frame.explain() if engine == "polars"
                    else "__flowtools_store_sources_" in frame.sql_query())

        every = open_flows(root, (START, END), engine=engine, sources=keys, connection=con)
        part = open_flows(root, (START, END), engine=engine, sources=some, connection=con)
        assert not filtered(every) and filtered(part)
        rows = every.collect() if engine == "polars" else every.pl()
        picked = part.collect() if engine == "polars" else part.pl()
        assert set(picked["source_file"]) == set(rows["source_file"]) & set(some)
        assert picked.height == rows.filter(pl.col("source_file").is_in(some)).height > 0
