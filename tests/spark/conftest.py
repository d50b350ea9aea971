"""Spark fixtures: ONE local SparkSession for the whole run, and flows loaded once.

The session is ``local[2]`` with the small-data settings
(:data:`flowtools.engines.SPARK_SMALL_DATA_CONFIG`: one shuffle partition, no adaptive
execution, no whole-stage code generation) and no web UI. Starting it costs about
10 s (a JVM); every Spark test shares it and the flows below, which are loaded once per
run on both engines (Spark and DuckDB, the reference). Skipped as a whole when pyspark
is not installed (it is in the ``test`` extra: CI runs these tests).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from flowlog_files import SAMPLES

import flowtools

pytest.importorskip("pyspark")


#: The test JVM: a short life of small jobs, so the JIT's client compiler only and the serial
#: collector (measured on 2 cores: the Spark tests cost 79 CPU s instead of 113, same wall).
TEST_JVM = {"spark.driver.memory": "1g",
            "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC"}


@pytest.fixture(scope="session")
def spark():
    from flowtools.engines import SPARK_SMALL_DATA_CONFIG, spark_session

    session = spark_session(master="local[2]", config={**SPARK_SMALL_DATA_CONFIG, **TEST_JVM})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def sample(spark) -> SimpleNamespace:
    """The embedded sample (data/samples) on Spark and on DuckDB, its inventory and ip-ranges."""
    if not (SAMPLES / "truth.json").exists():
        pytest.fail("data/samples is missing: run `make samples`")
    return SimpleNamespace(
        root=SAMPLES,
        spark=flowtools.load(SAMPLES, engine="spark", spark=spark, progress=False),
        duckdb=flowtools.load(SAMPLES, progress=False),
        inventory=flowtools.Inventory.load(SAMPLES / "inventory"),
        ip_ranges=flowtools.IpRanges.load(SAMPLES / "ip-ranges.json"),
    )


@pytest.fixture(scope="session")
def scenario(spark, tmp_path_factory) -> SimpleNamespace:
    """A generated day of the sample estate at 5 % of the sample's traffic (seed 5, Parquet
    flow logs: the sample is text) with its truth, on Spark and on DuckDB. A whole day has
    every case of the generator (single-peer services, scanners, NAT gateways, load
    balancers) at a tenth of the sample's records: Spark's cost per analysis is its plan,
    not the rows, so the analyses run on this scenario rather than on the sample."""
    import json

    from flowtools.sample import generate

    root = Path(tmp_path_factory.mktemp("spark-scenario"))
    generate(root, seed=5, hours=24, scale=0.05, fmt="parquet")
    return SimpleNamespace(
        root=root,
        truth=json.loads((root / "truth.json").read_text()),
        spark=flowtools.load(root, engine="spark", spark=spark, progress=False),
        duckdb=flowtools.load(root, progress=False),
        inventory=flowtools.Inventory.load(root / "inventory"),
        ip_ranges=flowtools.IpRanges.load(root / "ip-ranges.json"),
    )
