"""Exposure, enrichment and the traffic analyses on Spark DataFrames: the same Narwhals
code as DuckDB, identical results."""

from __future__ import annotations

import pytest
from flowlog_files import frames_equal

import flowtools
from flowtools.analyses import findings_records, traffic
from flowtools.frames import is_spark, to_polars


def _findings(flows, s) -> list[dict]:
    result = flowtools.internet_exposure(flows, inventory=s.inventory, ip_ranges=s.ip_ranges,
                                         include_configured=True)
    assert is_spark(result) == (flows.engine == "spark")
    return findings_records(result)


def test_exposure_on_the_sample_is_identical_to_duckdb(sample):
    on_spark = _findings(sample.spark, sample)
    assert on_spark and on_spark == _findings(sample.duckdb, sample)


def test_exposure_on_a_generated_scenario_matches_duckdb_and_truth(scenario):
    on_spark = _findings(scenario.spark, scenario)
    assert on_spark == _findings(scenario.duckdb, scenario)
    observed = {(f["interface_id"], f["port"], f["protocol"]) for f in on_spark if f["status"] != "configured"}
    truth = scenario.truth["exposure"] + scenario.truth["single_peer"]
    assert observed == {(e["interface_id"], e["port"], e["protocol"]) for e in truth}


def test_naive_exposure_on_spark(scenario):
    naive = [findings_records(flowtools.internet_exposure(f, method="naive")) for f in (scenario.spark, scenario.duckdb)]
    assert naive[0] and naive[0] == naive[1]


@pytest.mark.parametrize("data", ["sample", "scenario"])
def test_enrichment_is_identical_to_duckdb(data, request):
    s = request.getfixturevalue(data)
    kw = {"inventory": s.inventory, "ip_ranges": s.ip_ranges}
    on_spark = flowtools.enrich(s.spark, **kw)
    assert is_spark(on_spark)
    frames_equal(to_polars(on_spark), to_polars(flowtools.enrich(s.duckdb, **kw)))


def test_traffic_analyses_are_identical_to_duckdb(scenario):
    kw = {"inventory": scenario.inventory, "ip_ranges": scenario.ip_ranges}
    enriched = {e: flowtools.enrich(getattr(scenario, e), **kw) for e in ("spark", "duckdb")}
    interface = scenario.truth["exposure"][0]["interface_id"]
    runs = {
        "timeseries": lambda e: traffic.timeseries(getattr(scenario, e)),
        "rejects": lambda e: traffic.rejects(getattr(scenario, e)),
        "scanners": lambda e: traffic.scanners(getattr(scenario, e)),
        "top_talkers": lambda e: traffic.top_talkers(enriched[e]),
        "aws_services": lambda e: traffic.aws_services(enriched[e]),
        "ports": lambda e: traffic.ports(getattr(scenario, e), interfaces=[interface], inventory=scenario.inventory),
    }
    for name, run in runs.items():
        a, b = to_polars(run("spark")), to_polars(run("duckdb"))
        assert a.height, name
        assert a.columns == b.columns, name
        frames_equal(a, b, sort_by=a.columns[:1])


def test_cli_exposure_engine_spark(scenario, spark, capsys):
    """``flowtools exposure SOURCE --engine spark`` (on the session already active) prints
    the same JSON findings as the DuckDB engine."""
    import json

    from flowtools.cli import main

    out = {}
    for engine in ("spark", "duckdb"):
        assert main(["exposure", str(scenario.root), "--engine", engine, "--format", "json",
                     "--inventory", str(scenario.root / "inventory")]) == 0
        out[engine] = json.loads(capsys.readouterr().out)
    assert out["spark"] and out["spark"] == out["duckdb"]
