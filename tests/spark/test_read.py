"""Flows on Spark: the same rows, columns, types and read report as on DuckDB."""

from __future__ import annotations

import polars as pl
import pytest
from flowlog_files import daily_key, frames_equal, write_log

import flowtools
from flowtools.frames import is_spark, to_polars
from flowtools.store import PartitionStore


def test_sample_from_the_store_equals_duckdb_row_for_row(sample):
    assert sample.spark.engine == "spark" and is_spark(sample.spark.frame)
    frames_equal(to_polars(sample.spark), to_polars(sample.duckdb))
    # the same read report, bad files and lines included (the store counted them)
    assert sample.spark.report.to_dict() == sample.duckdb.report.to_dict()
    assert len(sample.spark) == sample.spark.frame.count()


def test_mixed_headers_and_bad_lines_from_source(tmp_path, spark):
    """Text logs of two formats (default v2 and a custom v5 field list) with a bad line:
    the same rows on Spark, and the bad line counted in its read report."""
    v5 = "version interface-id srcaddr dstaddr srcport dstport protocol start end action flow-direction"
    write_log(tmp_path, daily_key(ts="20261120T1000Z"), [
        "2 123456789010 eni-a 10.0.0.1 198.51.100.7 443 50000 6 10 4000 1795168800 1795168860 ACCEPT OK",
        "2 123456789010 eni-a 10.0.0.1 198.51.100.7 443 50001 6 not-a-number 4000 1795168800 1795168860 ACCEPT OK",
    ])
    write_log(tmp_path, daily_key(ts="20261120T1005Z", flow_log="fl-5555eeee"), [
        "5 eni-b 10.0.0.2 203.0.113.9 22 40000 6 1795169100 1795169160 REJECT ingress",
    ], header=v5)
    on_spark = flowtools.load(tmp_path, engine="spark", spark=spark, all=True, progress=False)
    on_duckdb = flowtools.load(tmp_path, all=True, progress=False)
    frames_equal(to_polars(on_spark), to_polars(on_duckdb))
    assert len(on_spark) == 2 == on_spark.frame.count()
    assert on_spark.report.to_dict() == on_duckdb.report.to_dict()
    assert sum(i.lines_skipped for i in on_spark.report.issues) == 1


def test_a_window_prunes_the_files_spark_reads(sample, spark):
    window = {"start": "2026-11-20T05:30:00Z", "end": "2026-11-20T07:00:00Z"}
    on_spark = flowtools.load(sample.root, engine="spark", spark=spark, progress=False, **window)
    on_duckdb = flowtools.load(sample.root, progress=False, **window)
    store = PartitionStore(on_spark.store.root)
    wanted = store.files((window["start"], window["end"]))
    assert 0 < len(wanted) < len(store.files())
    read = set(on_spark.frame.inputFiles())  # the manifest also drops files of other objects
    assert read and read <= {"file://" + p for p in wanted}
    frames_equal(to_polars(on_spark), to_polars(on_duckdb))
    assert on_spark.report.to_dict() == on_duckdb.report.to_dict()


def test_generated_parquet_scenario_equals_duckdb(scenario):
    frames_equal(to_polars(scenario.spark), to_polars(scenario.duckdb))
    assert scenario.spark.report.to_dict() == scenario.duckdb.report.to_dict()


def test_direct_read_without_store_hands_the_records_to_spark(scenario, spark):
    direct = flowtools.load(scenario.root, engine="spark", spark=spark, store=False, progress=False)
    assert direct.store is None and is_spark(direct.frame)
    frames_equal(to_polars(direct), to_polars(scenario.duckdb))
    assert direct.report.records == scenario.duckdb.report.records
    # flows.sql is DuckDB SQL over the same rows, whatever the engine
    assert direct.sql("SELECT count(*) FROM flows").fetchone()[0] == len(scenario.duckdb)


def test_spark_schema_of_the_store_keeps_polars_types(sample):
    spark_types = dict(sample.spark.frame.dtypes)
    assert spark_types["start"] == "bigint" and spark_types["srcport"] == "int"
    assert spark_types["start_time"] == "timestamp"
    assert to_polars(sample.spark.frame.limit(1)).schema["start_time"] == pl.Datetime("us", "UTC")


def test_missing_pyspark_is_a_clear_error(monkeypatch):
    import sys

    from flowtools.engines import spark_session
    from flowtools.errors import UsageError

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(UsageError, match=r"flowtools\[spark\].*Java 17"):
        spark_session()
