"""The engine layer (flowtools/frames.py): every flows form in, the right native frame out."""

from __future__ import annotations

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
