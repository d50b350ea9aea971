"""A window read from the store equals a direct read of SOURCE: rows and read report."""

from __future__ import annotations

import polars as pl
import pytest
from flowlog_files import frames_equal

import flowtools
from flowtools.layout import select_explained
from flowtools.store import PartitionStore, open_flows
from flowtools.window import Window

WINDOWS = [(None, None), ("2026-11-20T01:00Z", "2026-11-20T02:00Z"), ("2026-11-20T01:40Z", "2026-11-20T02:10Z")]


def from_store(root, window: Window, engine: str):
    store = PartitionStore(root)
    objects = store.objects()
    selection = select_explained(objects, window)
    kept = selection.kept
    frame = open_flows(root, window, engine=engine, sources=[o.key for o in kept])
    df = frame.collect() if engine == "polars" else frame.pl()
    rep = store.report(kept, window, source="SRC")
    rep.record_selection(objects, selection, window)
    return df, rep


@pytest.mark.parametrize(("start", "end"), WINDOWS)
def test_rows_and_report_equal_a_direct_load(store_source, built_store, engine, start, end):
    window = Window.parse(start, end)
    direct = flowtools.load(store_source, start=start, end=end, engine=engine, store=False)
    df, rep = from_store(built_store, window, engine)
    frames_equal(direct.to_polars(), df)
    assert rep.records == direct.report.records == df.height > 0
    # the store alone does not list SOURCE: the files it ignored for their names are unknown
    want = direct.report.to_dict() | {"source": "SRC", "files_ignored": 0}
    assert rep.to_dict() == want
    if start is None:  # the bad files are in the report, in the reader's order
        assert rep.files_skipped == 2 and rep.lines_skipped >= 2 and len(rep.bad_lines) == 2


@pytest.mark.parametrize(("start", "end"), WINDOWS)
def test_load_through_the_store_equals_a_direct_load(store_source, tmp_path, engine, start, end):
    direct = flowtools.load(store_source, start=start, end=end, engine=engine, store=False)
    for run in ("first", "warm"):  # the first load builds the store on the way, the second reads it
        through = flowtools.load(store_source, start=start, end=end, engine=engine, store=tmp_path / "st")
        assert through.store is not None and (through.store.read > 0) == (run == "first")
        assert isinstance(through.frame, pl.LazyFrame if engine == "polars" else type(direct.frame))
        frames_equal(direct.to_polars(), through.to_polars())
        assert through.report.to_dict() == direct.report.to_dict()
        assert len(through) == len(direct)
        n = through.sql("SELECT count(*) FROM flows").fetchone()[0]
        assert n == direct.sql("SELECT count(*) FROM flows").fetchone()[0]


def test_frames_are_lazy_with_canonical_columns_only(built_store, store_source):
    w = Window.parse("2026-11-20T01:00Z", "2026-11-20T02:00Z")
    lf = open_flows(built_store, w, engine="polars")
    assert isinstance(lf, pl.LazyFrame)
    direct = flowtools.load(store_source, engine="polars", store=False)
    assert lf.collect_schema().names() == direct.to_polars().columns
    assert not {"account_id=", "date", "hour"} & set(lf.collect_schema().names())
    rel = open_flows(built_store, w, engine="duckdb")
    assert rel.columns == direct.to_polars().columns
    assert rel.aggregate("min(\"end\") AS lo, max(\"start\") AS hi").fetchone() >= (w.start_s, 0)
    assert rel.aggregate("max(\"start\")").fetchone()[0] < w.end_s


def test_layout_sorting_and_partition_keys(built_store):
    store = PartitionStore(built_store)
    m = store.manifest()
    for rel, entry in m.files.items():
        assert rel.startswith(entry.partition + "/part-") and rel.endswith(".parquet")
        df = pl.read_parquet(built_store / rel, hive_partitioning=False)
        assert df.height == entry.rows
        assert df.equals(df.sort(["interface_id", "start"], nulls_last=True, maintain_order=True))
        part = dict(kv.split("=") for kv in entry.partition.split("/"))
        acct = df.select(pl.coalesce("account_id", "source_account_id").fill_null("unknown").unique()).to_series()
        assert acct.to_list() == [part["account_id"]]
        hours = df.select(pl.col("start_time").dt.strftime("%Y-%m-%d %H").unique()).to_series().to_list()
        assert hours == [f"{part['date']} {part['hour']}"]
    info = store.info()
    assert info["records"] == sum(e.rows for e in m.files.values()) and info["files_skipped"] == 2
