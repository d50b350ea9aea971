"""Exposure on the sample scenario (data/samples) against its ground truth (truth.json).

The generator writes, next to the logs, what really is exposure (``exposure``: status,
peers, connections per interface/port/protocol), what only looks like it in a v2 reading
(``not_exposure``: replies to the estate's own connections) and which security-group
openings saw no traffic (``configured``). The analysis never reads truth.json.
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout
from datetime import datetime, timedelta

import jsonschema
import pytest
from flowlog_files import SAMPLES

import flowtools
from flowtools.analyses import findings_records, findings_schema
from flowtools.analyses.exposure import records as exposure_records
from flowtools.cli import main

pytestmark = pytest.mark.usefixtures("sample_dir")
_STATUS_ORDER = {"exposed": 0, "reachable": 1, "blocked": 2, "configured": 3}


def key(entry: dict) -> tuple:
    return entry["interface_id"], entry["port"], entry["protocol"]


@pytest.fixture(scope="module")
def truth(sample_runs) -> dict:
    return sample_runs.truth


@pytest.fixture(scope="module")
def inventory(sample_runs) -> flowtools.Inventory:
    return sample_runs.inventory


@pytest.fixture(scope="module", params=["duckdb", "polars"])
def engine_name(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def flows(sample_runs, engine_name) -> flowtools.Flows:
    """The whole sample (loaded once per engine for the session: tests/conftest.py)."""
    return sample_runs.flows(engine_name)


@pytest.fixture(scope="module")
def findings(sample_runs, engine_name) -> dict[str, list[dict]]:
    return {method: sample_runs.findings(engine_name, method) for method in ("full", "naive")}


def test_full_method_reports_exactly_the_ground_truth(findings, truth):
    observed = {key(f): f for f in findings["full"] if f["status"] != "configured"}
    # the single-peer service on an unregistered port (decided by the client's ephemeral port)
    expected = {key(e): e for e in truth["exposure"] + truth["single_peer"]}
    assert set(observed) == set(expected)
    for k, e in expected.items():
        f = observed[k]
        for column in ("status", "peers", "connections", "account_id", "region", "vpc_id", "resource_name"):
            assert f[column] == e[column], (k, column)
        assert f["local_ip"] in e["local_ips"], k


def test_no_reply_to_an_outbound_connection_is_reported(findings, truth):
    replies = {key(e) for e in truth["not_exposure"]}
    assert replies, "the scenario must contain replies to outbound connections"
    assert not replies & {key(f) for f in findings["full"]}


def test_naive_method_reports_the_replies_as_false_positives(findings, truth):
    naive = {key(f) for f in findings["naive"]}
    # single_peer is exposure too (kept apart in truth.json: it is decided by port evidence alone)
    real = {key(e) for e in truth["exposure"] + truth["single_peer"]}
    false_positives = naive - real
    # every finding of the naive reading that is not exposure is one of the scenario's
    # replies to the estate's own connections, and all of those are reported
    assert false_positives == {key(e) for e in truth["not_exposure"]}
    assert len(false_positives) > 10 * len(real)
    assert all(f["status"] == "exposed" and f["confidence"] == "low" for f in findings["naive"])


def test_configured_findings_are_the_unobserved_security_group_openings(findings, truth):
    configured = [f for f in findings["full"] if f["status"] == "configured"]
    assert {(f["interface_id"], f["protocol"], f["port"], f["port_to"]) for f in configured} == {
        (c["interface_id"], c["protocol"], c["port"], c["port_to"]) for c in truth["configured"]}
    for f in configured:
        assert f["sg_open"] is True and f["peers"] == f["connections"] == 0 and f["confidence"] is None
        assert f["sample_peers"] == [] and f["first_seen"] is None and f["local_ip"]
        assert "over-state" in f["evidence"]
    assert findings["full"][-len(configured):] == configured  # configured come last


def test_record_fields_read_per_interface_or_per_record_agree(flows, inventory, findings, monkeypatch):
    """The sample's interfaces have one account, region, VPC, instance and type each, so
    they are read per interface; aggregating them over every record gives the same."""
    monkeypatch.setattr(exposure_records, "MAX_VARYING", -1)
    for method in ("full", "naive"):
        assert findings_records(flowtools.internet_exposure(
            flows, inventory=inventory, method=method, include_configured=method == "full")) == findings[method]


def test_findings_are_in_the_contract_order(findings):
    rows = findings["full"]
    order = [(_STATUS_ORDER[r["status"]], -r["peers"], r["interface_id"], r["protocol"],
              r["port"] is None, r["port"] or 0) for r in rows]
    assert order == sorted(order)


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_a_window_that_excludes_a_service_does_not_report_it(truth, inventory):
    day_start, day_end = (_at(t) for t in (truth["window"]["start"], truth["window"]["end"]))
    # services that stopped at least an hour before the end of the scenario
    ended = [e for e in truth["exposure"] if _at(e["active_to"]) + timedelta(hours=1) < day_end]
    assert ended
    entry = max(ended, key=lambda e: e["active_to"])
    after = _at(entry["active_to"]) + timedelta(minutes=15)
    flows = flowtools.load(SAMPLES, start=after, end=day_end, engine="polars", progress=False)
    assert key(entry) not in {key(f) for f in findings_records(flowtools.internet_exposure(flows, inventory=inventory))}
    during = flowtools.load(SAMPLES, start=_at(entry["active_from"]), end=_at(entry["active_to"]) + timedelta(seconds=1),
                            engine="polars", progress=False)
    got = {key(f): f for f in findings_records(flowtools.internet_exposure(during, inventory=inventory))}
    assert got[key(entry)]["status"] == entry["status"]
    assert day_start <= _at(entry["active_from"])


#: A few hours of the sample, for the CLI runs whose point is the output's shape (a whole
#: sample's exposure is the slow part of a run).
HOURS = ("--start", "2026-11-20T06:00Z", "--end", "2026-11-20T09:00Z")


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_json_validates_against_the_schema_in_the_repository(truth):
    code, out, err = run_cli("exposure", str(SAMPLES), "--format", "json", "--inventory",
                             str(SAMPLES / "inventory"), "--ip-ranges", str(SAMPLES / "ip-ranges.json"),
                             "--include-configured")
    assert code == 0, err
    rows = json.loads(out)  # stdout holds the JSON alone; the summary went to stderr
    jsonschema.Draft202012Validator(findings_schema()).validate(rows)
    schema_file = json.loads((SAMPLES.parent.parent / "flowtools" / "schemas" / "exposure.schema.json").read_text())
    assert schema_file == findings_schema()
    assert {r["status"] for r in rows} == {"exposed", "reachable", "blocked", "configured"}
    assert any(r["aws_peers"] for r in rows)  # --ip-ranges: peers in AWS ranges are counted
    assert "record(s)" in err
    # without an inventory: no names, still valid
    code, out, _ = run_cli("exposure", str(SAMPLES), "--format", "json", "--engine", "polars", *HOURS)
    bare = json.loads(out)
    assert code == 0 and bare
    jsonschema.Draft202012Validator(findings_schema()).validate(bare)
    assert all(r["resource_name"] is None and r["sg_open"] is None for r in bare)


def test_cli_table_fits_100_columns_and_csv_has_the_contract_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    code, out, _ = run_cli("exposure", str(SAMPLES), "--inventory", str(SAMPLES / "inventory"))
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 100
    header = lines[0].split()
    assert header[:3] == ["risk", "status", "interface_id"] and "peers" in header and "port" in header
    assert lines[2].split()[1] == "exposed" and lines[2].split()[0] in ("critical", "high", "medium", "low")
    # tag values are user-controlled: a terminal table never carries their control characters
    assert all(ch.isprintable() for line in lines for ch in line)
    assert '<b>legacy</b> "ftp"?w' in out  # the sample's Name tag holds a tab
    code, out, _ = run_cli("exposure", str(SAMPLES), "--format", "csv", *HOURS)
    assert out.splitlines()[0].split(",")[:23] == list(flowtools.analyses.exposure.COLUMNS)
