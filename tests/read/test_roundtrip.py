"""A Parquet file flowtools wrote loads back as the same flows (issue 11, item 4).

``COPY flows TO 'x.parquet'`` (and the partition store's own files) hold the derived columns
(``start_time``, ``end_time``, ``source_file``, ``flow_log_id``, ``source_account_id``,
``source_region``) next to the fields: reading such a file must recognise them rather than
add a second copy (which failed with a duplicate ``source_file`` column before).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from flowlog_files import frames_equal

import flowtools
from flowtools.fields import CANONICAL_COLUMNS
from flowtools.store import PartitionStore

#: Two hours of the embedded sample: enough accounts, regions and flow logs, and fast.
WINDOW = {"start": "2026-11-20T01:00Z", "end": "2026-11-20T03:00Z"}


@pytest.fixture(scope="module")
def direct(sample_dir) -> pl.DataFrame:
    return flowtools.load(sample_dir, engine="polars", store=False, **WINDOW).to_polars()


def _same_flows(original: pl.DataFrame, back: pl.DataFrame, key: str) -> None:
    """Same columns (no duplicated derived ones), same rows; ``source_file`` is the key of
    the file read back (the object key relative to SOURCE, as for any file)."""
    assert back.columns == original.columns
    assert back.columns[:len(CANONICAL_COLUMNS)] == list(CANONICAL_COLUMNS)  # then unknown fields (flow_tag)
    assert len(set(back.columns)) == len(back.columns)
    assert back.get_column("source_file").unique().to_list() == [key]
    frames_equal(original.drop("source_file"), back.drop("source_file"),
                 sort_by=("interface_id", "start", "srcaddr", "srcport", "flow_log_id"))


@pytest.mark.parametrize("through_store", [False, True], ids=["direct", "store"])
def test_copy_flows_to_parquet_loads_back_as_the_same_flows(sample_dir, direct, engine, through_store, tmp_path):
    flows = flowtools.load(sample_dir, engine=engine, store=False, **WINDOW)
    out = tmp_path / "x.parquet"
    flows.sql(f"COPY flows TO '{out}' (FORMAT parquet)")  # what `flowtools sql` runs
    assert {"start_time", "source_file", "flow_log_id"} <= set(pl.read_parquet_schema(out))

    store = tmp_path / "store" if through_store else False
    back = flowtools.load(out, engine=engine, all=True, store=store)
    assert not back.report.issues and not back.report.warnings
    assert not {"start-time", "source-file"} & set(back.report.files[0].fields)  # not reported as fields
    _same_flows(direct, back.to_polars(), "x.parquet")


def test_a_store_file_loads_back_as_the_flows_it_holds(sample_dir, direct, engine, tmp_path):
    root = tmp_path / "store"
    flowtools.load(sample_dir, engine="polars", store=root, **WINDOW)
    part = Path(max(PartitionStore(root).files(), key=lambda p: Path(p).stat().st_size))
    held = pl.read_parquet(part)
    back = flowtools.load(part, engine=engine, all=True, store=False).to_polars()
    _same_flows(held, back, part.name)
    assert back.height == held.height > 0
