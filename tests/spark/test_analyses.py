"""Exposure, enrichment and the traffic analyses on Spark DataFrames: the same Narwhals
code as DuckDB, identical results. They run on the generated scenario (a whole day of the
sample estate's cases, see ``conftest.scenario``): each Spark analysis costs tens of
seconds of planning and jobs whatever the size of its input, so each runs once."""

from __future__ import annotations

import json

from flowlog_files import frames_equal

import flowtools
from flowtools.analyses import findings_records, traffic
from flowtools.analyses.egress import egress
from flowtools.analyses.scanning import scanner_outcomes
from flowtools.analyses.watchlist import Watchlist, watchlist_hits
from flowtools.frames import is_spark, to_polars


def _findings(flows, s) -> list[dict]:
    result = flowtools.internet_exposure(flows, inventory=s.inventory, ip_ranges=s.ip_ranges,
                                         include_configured=True)
    assert is_spark(result) == (flows.engine == "spark")
    return findings_records(result)


def test_exposure_matches_duckdb_and_the_truth(scenario):
    on_spark = _findings(scenario.spark, scenario)
    assert on_spark == _findings(scenario.duckdb, scenario)
    observed = {(f["interface_id"], f["port"], f["protocol"]) for f in on_spark if f["status"] != "configured"}
    truth = scenario.truth["exposure"] + scenario.truth["single_peer"]
    assert scenario.truth["single_peer"], "the scenario must hold a single-peer service"
    assert observed == {(e["interface_id"], e["port"], e["protocol"]) for e in truth}
    configured = {(f["interface_id"], f["port"], f["protocol"]) for f in on_spark if f["status"] == "configured"}
    assert configured == {(e["interface_id"], e["port"], e["protocol"]) for e in scenario.truth["configured"]}


def test_cli_naive_exposure_engine_spark(scenario, capsys):
    """``flowtools exposure SOURCE --engine spark --method naive`` (on the session already
    active) prints the same JSON findings as the DuckDB engine: the CLI's engine option and
    the v2 reading on Spark in one run."""
    from flowtools.cli import main

    out = {}
    for engine in ("spark", "duckdb"):
        assert main(["exposure", str(scenario.root), "--engine", engine, "--method", "naive", "--format", "json",
                     "--inventory", str(scenario.root / "inventory")]) == 0
        out[engine] = json.loads(capsys.readouterr().out)
    assert out["spark"] and out["spark"] == out["duckdb"]


def test_enrichment_and_traffic_analyses_are_identical_to_duckdb(scenario):
    """Enrichment, the traffic analyses and the decision analyses (egress, watchlist,
    scanner outcomes) give DuckDB's rows on Spark; each has rows on the scenario."""
    kw = {"inventory": scenario.inventory, "ip_ranges": scenario.ip_ranges}
    enriched = {e: flowtools.enrich(getattr(scenario, e), **kw) for e in ("spark", "duckdb")}
    assert is_spark(enriched["spark"])
    frames_equal(to_polars(enriched["spark"]), to_polars(enriched["duckdb"]))
    interface = scenario.truth["exposure"][0]["interface_id"]
    watchlist = Watchlist.load(scenario.root / "watchlist.txt")
    runs = {
        "timeseries": lambda e: traffic.timeseries(getattr(scenario, e)),
        "rejects": lambda e: traffic.rejects(getattr(scenario, e)),
        "scanners": lambda e: traffic.scanners(getattr(scenario, e)),
        "top_talkers": lambda e: traffic.top_talkers(enriched[e]),
        "aws_services": lambda e: traffic.aws_services(enriched[e]),
        "ports": lambda e: traffic.ports(getattr(scenario, e), interfaces=[interface], inventory=scenario.inventory),
        "egress": lambda e: egress(getattr(scenario, e), **kw),
        "watchlist": lambda e: watchlist_hits(getattr(scenario, e), watchlist, inventory=scenario.inventory),
        "scanner outcomes": lambda e: scanner_outcomes(getattr(scenario, e), inventory=scenario.inventory),
    }
    for name, run in runs.items():
        a, b = to_polars(run("spark")), to_polars(run("duckdb"))
        assert a.height, name
        assert a.columns == b.columns, name
        frames_equal(a, b, sort_by=a.columns[:1])
