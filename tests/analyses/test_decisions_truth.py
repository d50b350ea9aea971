"""The decision analyses on the sample scenario against its ground truth (truth.json).

The generator computes, from its own conversations, what each analysis must find: the
watchlist hits (``watchlist``, with ``watchlist.txt`` next to the logs), the bytes each
host sends to the internet (``egress``), the internet sources that probe many ports or
interfaces and what answered them (``scanners``), the exposure that is new and gone from
one day to the next (``changes``, in a 48-hour sample) and a single-peer UDP service
(``single_peer``). The analyses never read truth.json. Every check runs on both engines.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

import flowtools
from flowtools.analyses.change import changes
from flowtools.analyses.egress import egress
from flowtools.analyses.scanning import scanner_outcomes
from flowtools.analyses.watchlist import Watchlist, watchlist_hits
from flowtools.sample import generate

ENGINES = ("duckdb", "polars")


def collect(frame) -> pl.DataFrame:
    """A lazy result of either engine as a Polars DataFrame (checked to be lazy)."""
    if hasattr(frame, "pl"):
        return frame.pl()
    assert isinstance(frame, pl.LazyFrame)
    return frame.collect()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def truth(sample_runs) -> dict:
    return sample_runs.truth


@pytest.fixture(scope="module")
def inventory(sample_runs) -> flowtools.Inventory:
    return sample_runs.inventory


@pytest.fixture(scope="module", params=ENGINES)
def engine_name(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def flows(sample_runs, engine_name) -> flowtools.Flows:
    """The whole sample (loaded once per engine for the session: tests/conftest.py)."""
    return sample_runs.flows(engine_name)


# -- watchlist ----------------------------------------------------------------------------

def test_watchlist_hits_are_the_truth(flows, sample_dir, truth):
    watchlist = Watchlist.load(sample_dir / "watchlist.txt")
    hits = collect(watchlist_hits(flows, watchlist))
    key = ["interface_id", "listed_address", "direction", "action"]
    got = hits.group_by(*key, "entry", "label").agg(pl.col("records", "packets", "bytes").sum())
    expected = {tuple(e[k] for k in key): (e["entry"], e["label"], e["records"], e["packets"], e["bytes"])
                for e in truth["watchlist"]}
    assert {tuple(r[k] for k in key): (r["entry"], r["label"], r["records"], r["packets"], r["bytes"])
            for r in got.iter_rows(named=True)} == expected
    # the cases behind it: a beacon to the C2 host through the NAT gateway (seen on the
    # instance and on the gateway, both ways), a listed scanner answered and rejected
    names = {i["interface_id"]: i["name"] for i in truth["interfaces"]}
    c2 = {(names[k[0]], k[2], k[3]) for k in expected if k[1] == "192.0.2.66"}
    assert c2 == {(n, d, "ACCEPT") for n in ("app-2", "nat-prod") for d in ("to listed", "from listed")}
    assert {k[3] for k in expected if k[1] == "192.0.2.100"} == {"ACCEPT", "REJECT"}
    assert {e["entry"] for e in truth["watchlist"]} == {"192.0.2.66", "192.0.2.100", "192.0.2.240/28"}


# -- egress -------------------------------------------------------------------------------

def test_egress_per_sender_is_the_truth(flows, inventory, sample_dir, truth):
    ranges = flowtools.IpRanges.load(sample_dir / "ip-ranges.json")
    out = collect(egress(flows, inventory=inventory, ip_ranges=ranges))
    key = ["interface_id", "via", "destination"]
    got = out.group_by(key).agg(pl.col("bytes_out").sum(), pl.col("packets_out").sum())
    assert {tuple(r[k] for k in key): (r["bytes_out"], r["packets_out"]) for r in got.iter_rows(named=True)} == {
        tuple(e[k] for k in key): (e["bytes"], e["packets"]) for e in truth["egress"]}
    # counted once: never on a NAT gateway, transit gateway or load balancer, and the
    # instances behind the NAT gateway (logged by both) are in it with their own bytes
    types = {i["interface_id"]: i["interface_type"] for i in truth["interfaces"]}
    names = {i["interface_id"]: i["name"] for i in truth["interfaces"]}
    senders = set(out["interface_id"].to_list())
    assert not {types[s] for s in senders} - {"interface"}
    assert {"app-1", "app-2", "ecs-node", "ci-runner"} <= {names[s] for s in senders}
    assert {"S3", "CLOUDFRONT", "AMAZON", "internet"} <= {e["destination"] for e in truth["egress"]}


def test_egress_behind_a_nat_gateway_is_the_instances_counted_once(flows, inventory, sample_dir, truth):
    """Case 19: batch-1 and batch-2 log nothing themselves (no flow log covers their subnet);
    nat-prod logs both legs of their connections. Their bytes are theirs (through the inside
    leg's ``srcaddr``), via the gateway, once: the outside leg carries the same bytes again."""
    ranges = flowtools.IpRanges.load(sample_dir / "ip-ranges.json")
    out = collect(egress(flows, inventory=inventory, ip_ranges=ranges))
    ids = {i["name"]: i["interface_id"] for i in truth["interfaces"]}
    nat = ids["nat-prod"]
    expected = {(e["name"], e["destination"]): e["bytes"] for e in truth["egress"] if e["via"] == nat}
    assert set(expected) == {("batch-1", "internet"), ("batch-1", "S3"), ("batch-2", "internet")}
    assert {i["flow_log_id"] for i in truth["interfaces"] if i["name"].startswith("batch-")} == {None}
    via_nat = out.filter(pl.col("via") == nat)
    names = {v: k for k, v in ids.items()}
    got = via_nat.group_by("interface_id", "destination").agg(pl.col("bytes_out").sum())
    assert {(names.get(r["interface_id"]), r["destination"]): r["bytes_out"] for r in got.iter_rows(named=True)} \
        == expected
    batch_ips = {i["private_ip"] for i in truth["interfaces"] if i["name"].startswith("batch-")}
    assert set(via_nat["local_address"]) == batch_ips
    assert nat not in set(out["interface_id"].drop_nulls())  # never the gateway's own


# -- scanners -----------------------------------------------------------------------------

def test_scanners_and_their_outcomes_are_the_truth(flows, inventory, truth):
    out = collect(scanner_outcomes(flows, inventory=inventory))
    columns = ("ports", "interfaces", "targets", "outcome")
    assert {r["source"]: tuple(r[c] for c in columns) for r in out.iter_rows(named=True)} == {
        e["source"]: tuple(e[c] for c in columns) for e in truth["scanners"]}
    outcomes = {e["source"]: e["outcome"] for e in truth["scanners"]}
    assert outcomes["192.0.2.100"] == "answered"  # SSH answered among many closed ports
    assert "blocked" in outcomes.values()  # scanners that are only ever rejected stay listed
    answered = out.filter(pl.col("source") == "192.0.2.100")["answered_targets"].to_list()
    web_legacy = next(i["interface_id"] for i in truth["interfaces"] if i["name"] == "web-legacy")
    assert answered == [[f"{web_legacy}:22"]]


# -- a single-peer service on an unregistered UDP port -----------------------------------

def test_the_single_peer_service_is_exposed(sample_runs, engine_name, truth):
    (entry,) = truth["single_peer"]
    found = {(f["interface_id"], f["port"], f["protocol"]): f
             for f in sample_runs.findings(engine_name) if f["status"] != "configured"}
    f = found[(entry["interface_id"], entry["port"], entry["protocol"])]
    assert (f["status"], f["peers"], f["connections"]) == (entry["status"], entry["peers"], entry["connections"])
    assert "port" in f["evidence"] or "ephemeral" in f["evidence"]  # decided by port evidence, not by flags


def test_the_single_peer_case_is_what_it_says(truth):
    (entry,) = truth["single_peer"]
    assert (entry["protocol"], entry["port"], entry["status"], entry["peers"], entry["connections"]) == (
        "udp", 7777, "exposed", 1, 1)
    log = {i["interface_id"]: i["flow_log_id"] for i in truth["interfaces"]}[entry["interface_id"]]
    fmt = next(f["log_format"] for f in truth["flow_logs"] if f["flow_log_id"] == log).split()
    assert "flow-direction" not in fmt and "tcp-flags" not in fmt
    assert (entry["interface_id"], 7777, "udp") not in {(e["interface_id"], e["port"], e["protocol"])
                                                       for e in truth["exposure"] + truth["not_exposure"]}


# -- changes between two days -------------------------------------------------------------

@pytest.fixture(scope="module")
def two_days(tmp_path_factory) -> tuple[Path, dict]:
    """48 hours at a small scale: reports goes live on day 2; the preview site and the
    long SFTP session exist on day 1 only."""
    out = tmp_path_factory.mktemp("two-days")
    generate(out, seed=3, hours=48, scale=0.1)
    return out, json.loads((out / "truth.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("engine", ENGINES)
def test_changes_from_day_one_to_day_two_are_the_truth(two_days, engine):
    root, truth = two_days
    inventory = flowtools.Inventory.load(root / "inventory")
    days = truth["changes"]
    findings = [flowtools.internet_exposure(
        flowtools.load(root, start=at(days[side]["start"]), end=at(days[side]["end"]), engine=engine,
                       progress=False), inventory=inventory) for side in ("before", "after")]
    diff = changes(*findings)
    key = ("interface_id", "protocol", "port")
    for change, status in (("new", "status_after"), ("gone", "status_before")):
        got = diff.filter(pl.col("change") == change)
        assert {tuple(r[k] for k in key): r[status] for r in got.iter_rows(named=True)} == {
            tuple(e[k] for k in key): e[status] for e in days[change]}, change
    names = {i["interface_id"]: i["name"] for i in truth["interfaces"]}
    assert ("reports", "tcp", 8000, "exposed") in {(names[e["interface_id"]], e["protocol"], e["port"],
                                                    e["status_after"]) for e in days["new"]}
    assert {("web-2", 8080), ("bastion", 2222)} <= {(names[e["interface_id"]], e["port"]) for e in days["gone"]}


def test_a_day_has_no_changes_truth(truth):
    assert truth["changes"] is None  # a 24-hour sample has no second day
