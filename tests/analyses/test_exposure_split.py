"""An interface larger than a batch is read in slices of its remote addresses
(flowtools.analyses.exposure.split), with exactly the findings of one pass."""

from __future__ import annotations

import json

import narwhals as nw
import polars as pl
import pytest

import flowtools
from flowtools.analyses import exposure as exposure_package
from flowtools.analyses.exposure import findings_records
from flowtools.sample import generate


@pytest.fixture
def slices_seen(monkeypatch) -> list[int]:
    """How many slices each split interface was read in (the split runs, and how often)."""
    seen: list[int] = []
    real = exposure_package.split_parts

    def spy(records, native, sides, **kw):
        seen.append(len(sides))
        return real(records, native, sides, **kw)

    monkeypatch.setattr(exposure_package, "split_parts", spy)
    return seen


#: The whole flows as one batch, read in this many slices of remote addresses: every
#: interface of a scenario split at once (NAT gateways, load balancers, services with few
#: peers), for the cost of a few passes.
SLICES = 4


def _run(flows, inventory, batch_records, method="full"):
    return findings_records(flowtools.internet_exposure(flows, inventory=inventory, method=method,
                                                        include_configured=method == "full",
                                                        batch_records=batch_records))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory):
    """A generated scenario other than the embedded sample (its own seed), and its truth."""
    root = tmp_path_factory.mktemp("split-scenario")
    generate(root, seed=11, hours=3, scale=0.3)
    return root, json.loads((root / "truth.json").read_text())


@pytest.mark.parametrize("which", ["sample", "scenario"])
def test_split_interfaces_give_the_findings_of_one_pass(which, sample_runs, scenario, engine, slices_seen,
                                                        monkeypatch):
    if which == "sample":  # the sample's one-pass findings are computed once per session
        truth, flows, inventory = sample_runs.truth, sample_runs.flows(engine), sample_runs.inventory
        whole = {m: sample_runs.findings(engine, m) for m in ("full", "naive")}
    else:
        root, truth = scenario
        flows = flowtools.load(root, engine=engine, progress=False)
        inventory = flowtools.Inventory.load(root / "inventory")
        whole = {m: _run(flows, inventory, 0, m) for m in ("full", "naive")}
        assert not slices_seen
    monkeypatch.setattr(exposure_package, "_batches_of",
                        lambda counts, limit: [(~nw.col("interface_id").is_null(), SLICES * limit)])
    split = {m: _run(flows, inventory, 1000, m) for m in ("full", "naive")}
    assert slices_seen == [SLICES, SLICES]
    assert split == whole
    # and they are the truth's findings (statuses, peers, connections)
    expected = {(e["interface_id"], e["port"], e["protocol"]): e for e in truth["exposure"] + truth["single_peer"]}
    observed = {(f["interface_id"], f["port"], f["protocol"]): f for f in split["full"] if f["status"] != "configured"}
    assert set(observed) == set(expected)
    for k, e in expected.items():
        assert (observed[k]["status"], observed[k]["peers"], observed[k]["connections"]) == (
            e["status"], e["peers"], e["connections"]), k


def test_fan_in_spread_over_slices_still_decides(fl, exposure, slices_seen):
    """No flags, both ports ephemeral, the interface's reply logged first: only the fan-in
    of local port 40000 (4 remote peers, one per slice) says the peers are its clients."""
    records = []
    for i in range(4):
        peer = f"198.51.100.{10 + i}"
        records.append(fl.flow("eni-lb", "10.0.0.5", peer, 40000, 50000 + i, t=10 * i))  # egress first
        records.append(fl.flow("eni-lb", peer, "10.0.0.5", 50000 + i, 40000, t=10 * i + 1))
        records.append(fl.flow("eni-lb", peer, "10.0.0.5", 50000 + i, 40000, t=10 * i + 2))
    records += fl.udp("eni-other", "203.0.113.9", 40001, "10.0.0.6", 53)  # a second batch
    whole = exposure(records, batch_records=0)
    assert [(f["interface_id"], f["port"], f["peers"]) for f in whole] == [("eni-lb", 40000, 4), ("eni-other", 53, 1)]
    assert "port 40000 reached by 4 peers" in whole[0]["evidence"]
    split = findings_records(exposure.frame(records, batch_records=3))
    assert slices_seen == [4]
    assert split == whole


def test_remote_slices_cut_by_records_and_keep_an_ordinal_whole():
    from flowtools.analyses.exposure.split import remote_slices

    side = pl.DataFrame({"k": ["a", "b", "c", "d", "e"], "remote_ord": [0, 1, 1, 2, 3]})
    pairs = pl.DataFrame({"k": ["a", "b", "c", "d", "e"], "n": [10, 5, 5, 1, 9]})
    parts = remote_slices(side, pairs, ["k"], 3)
    assert [sorted(p["k"].to_list()) for p in parts] == [["a"], ["b", "c"], ["d", "e"]]
    assert remote_slices(side, pairs, ["k"], 1)[0].height == 5
