"""The engine layer (flowtools/frames.py): every flows form in, the right native frame out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import narwhals as nw
import polars as pl
import pytest

from flowtools import frames
from flowtools.errors import UsageError
from flowtools.flows import Flows
from flowtools.read.report import ReadReport

DF = pl.DataFrame({"a": [1, 2, 3], "b": ["x", "y", "z"]})


def _forms() -> dict[str, object]:
    con = duckdb.connect()
    relation = frames.register(con, "t", DF)
    return {
        "polars eager": DF, "polars lazy": DF.lazy(), "duckdb": relation,
        "narwhals": nw.from_native(relation), "flows": Flows("polars", DF.lazy(), ReadReport("test", "all"), con),
    }


@pytest.mark.parametrize("form", list(_forms()))
def test_every_form_becomes_a_native_lazy_frame_and_collects(form):
    frame = _forms()[form]
    native = frames.native(frame)
    assert isinstance(native, pl.LazyFrame | duckdb.DuckDBPyRelation)
    assert isinstance(frames.lazy(frame), nw.LazyFrame)
    assert frames.to_polars(frame).sort("a").equals(DF)
    side = frames.side_table(frame, pl.DataFrame({"a": [2], "c": [True]}))
    joined = frames.lazy(frame).join(nw.from_native(side), on="a")
    assert frames.to_polars(joined)["b"].to_list() == ["y"]
    assert frames.to_polars(frames.materialised(native)).sort("a").equals(DF)


def test_other_objects_are_refused_with_the_reason():
    with pytest.raises(UsageError, match="flows must be a Flows, a DuckDB relation or a Polars frame, not list"):
        frames.native([1, 2])
    with pytest.raises(TypeError, match="to_polars"):
        frames.to_polars({"a": 1})
    with pytest.raises(TypeError, match="materialised"):
        frames.materialised("flows")


def test_register_makes_a_view_for_sql():
    con = duckdb.connect()
    frames.register(con, "flows_data", DF)
    assert con.sql("SELECT sum(a) FROM flows_data WHERE b <> 'x'").fetchone() == (5,)


def test_spilled_polars_is_a_scan_of_a_file_in_the_spill_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWTOOLS_TEMP_DIR", str(tmp_path))
    monkeypatch.setattr(frames, "_SPILL", {})  # a fresh folder, under tmp_path
    plan = pl.concat([DF.lazy(), DF.lazy()]).filter(pl.col("a") > 1)
    spilled = frames.spilled(nw.from_native(plan))
    assert isinstance(spilled, pl.LazyFrame)
    folder = Path(frames.spill_folder())
    assert folder.parent == tmp_path and folder.name.startswith("flowtools-spill-")
    files = list(folder.glob("*.parquet"))
    assert len(files) == 1 and str(files[0]) in spilled.explain()  # read from disk, not memory
    assert spilled.collect().sort("a").equals(plan.collect().sort("a"))
    assert frames.spilled(DF).collect().equals(DF)  # an eager frame too, in a second file
    assert len(list(folder.glob("*.parquet"))) == 2


def test_spilled_duckdb_is_a_parquet_file_read_on_the_relations_connection(tmp_path, monkeypatch):
    """Not a TEMP table (DuckDB holds those in memory up to its memory limit): a file."""
    monkeypatch.setenv("FLOWTOOLS_TEMP_DIR", str(tmp_path))
    monkeypatch.setattr(frames, "_SPILL", {})
    con = duckdb.connect()
    relation = frames.register(con, "t", DF).filter("a > 1")
    spilled = frames.spilled(relation)
    assert isinstance(spilled, duckdb.DuckDBPyRelation)
    files = list(Path(frames.spill_folder()).glob("*.parquet"))
    assert len(files) == 1 and str(files[0]) in spilled.sql_query()
    assert con.sql("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone() == (0,)
    expected = pl.DataFrame({"a": [2, 3], "b": ["y", "z"]})
    assert spilled.pl().sort("a").equals(expected)
    con.unregister("t")  # the input is gone: the spilled rows are not read through it
    assert spilled.pl().sort("a").equals(expected)
    with pytest.raises(TypeError, match="spilled"):
        frames.spilled("flows")


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_spilled_parts_run_one_after_the_other_into_one_frame(engine, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWTOOLS_TEMP_DIR", str(tmp_path))
    monkeypatch.setattr(frames, "_SPILL", {})
    con = duckdb.connect()
    base = frames.register(con, "t", DF) if engine == "duckdb" else DF.lazy()
    parts = [nw.from_native(base).filter(nw.col("a") == v).to_native() for v in (1, 3, 2)]
    union = frames.spilled_parts(parts)
    assert len(list(Path(frames.spill_folder()).glob("*.parquet"))) == 3  # one file per part
    assert frames.to_polars(union)["a"].to_list() == [1, 3, 2]  # every row, in the parts' order
    with pytest.raises(ValueError, match="no parts"):
        frames.spilled_parts([])


def test_the_spill_folder_is_removed_when_the_interpreter_exits(tmp_path):
    script = ("import polars as pl; from flowtools import frames; "
              "frames.spilled(pl.LazyFrame({'a': [1]})); print(frames.spill_folder())")
    env = {**os.environ, "FLOWTOOLS_TEMP_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)
    folder = Path(done.stdout.strip())
    assert folder.parent == tmp_path and folder.name.startswith("flowtools-spill-")
    assert not folder.exists() and list(tmp_path.iterdir()) == []
