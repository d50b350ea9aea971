"""What changed between two sets of findings: new, gone, changed; saved files; windows of the sample."""

from __future__ import annotations

import json

import polars as pl
import pytest

import flowtools
from flowtools.analyses import change
from flowtools.analyses.exposure import findings_records


def findings(rows: list[dict]) -> pl.DataFrame:
    base = {"account_id": "111111111111", "region": "us-east-1", "vpc_id": "vpc-1", "resource_name": None,
            "port_to": None, "risk": "low"}
    return pl.DataFrame([base | r for r in rows])


def test_new_gone_and_changed_with_the_reason():
    before = findings([
        {"interface_id": "eni-a", "protocol": "tcp", "port": 22, "status": "reachable", "peers": 3, "risk": "high"},
        {"interface_id": "eni-a", "protocol": "tcp", "port": 443, "status": "exposed", "peers": 370},
        {"interface_id": "eni-b", "protocol": "icmp", "port": None, "status": "exposed", "peers": 10},
        {"interface_id": "eni-c", "protocol": "udp", "port": 53, "status": "blocked", "peers": 2},
        {"interface_id": "eni-d", "protocol": "tcp", "port": 8000, "port_to": 8100, "status": "configured",
         "peers": 0},
    ])
    after = findings([
        {"interface_id": "eni-a", "protocol": "tcp", "port": 22, "status": "exposed", "peers": 3, "risk": "critical"},
        {"interface_id": "eni-a", "protocol": "tcp", "port": 443, "status": "exposed", "peers": 365},  # noise
        {"interface_id": "eni-b", "protocol": "icmp", "port": None, "status": "exposed", "peers": 40},
        {"interface_id": "eni-d", "protocol": "tcp", "port": 8000, "port_to": 8100, "status": "configured",
         "peers": 0},
        {"interface_id": "eni-e", "protocol": "tcp", "port": 3306, "status": "exposed", "peers": 1,
         "risk": "critical"},
    ])
    got = change.changes(before, after)
    assert got.columns == list(change.COLUMNS)
    rows = {(r["interface_id"], r["port"]): r for r in got.iter_rows(named=True)}
    assert set(rows) == {("eni-a", 22), ("eni-b", None), ("eni-c", 53), ("eni-e", 3306)}
    assert got["change"].to_list() == ["new", "changed", "changed", "gone"]  # new, changed, gone
    assert rows[("eni-a", 22)]["what"] == "status reachable -> exposed; risk high -> critical"
    assert rows[("eni-b", None)]["what"] == "peers 10 -> 40"
    assert rows[("eni-c", 53)]["status_after"] is None
    assert rows[("eni-c", 53)]["what"] == "no longer seen (was blocked)"
    assert rows[("eni-e", 3306)]["status_before"] is None and rows[("eni-e", 3306)]["peers_after"] == 1
    assert change.changes(after, after).height == 0
    assert change.changes(before, after, peers_factor=5).filter(pl.col("interface_id") == "eni-b").height == 0


def test_saved_json_results_compare_like_frames(tmp_path):
    before = findings([{"interface_id": "eni-a", "protocol": "tcp", "port": 22, "status": "blocked", "peers": 9}])
    after = findings([{"interface_id": "eni-a", "protocol": "tcp", "port": 22, "status": "exposed", "peers": 9}])
    for name, frame in (("a.json", before), ("b.json", after)):
        (tmp_path / name).write_text(json.dumps(frame.to_dicts()))
    old_format = [{k: v for k, v in r.items() if k != "risk"} for r in before.to_dicts()]  # before `risk`
    (tmp_path / "old.json").write_text(json.dumps(old_format))
    got = change.changes(change.read_findings(tmp_path / "a.json"), change.read_findings(tmp_path / "b.json"))
    assert got.select("change", "status_before", "status_after").rows() == [("changed", "blocked", "exposed")]
    assert change.read_findings(tmp_path / "old.json")["risk"].to_list() == [None]


@pytest.mark.parametrize("text,message", [
    ("{", "not JSON"), ('{"a": 1}', "not a JSON array of findings"),
    ('[{"interface_id": "eni-a"}]', "finding #1 has no protocol, port, status, peers"),
])
def test_a_bad_findings_file_names_the_file(tmp_path, text, message):
    path = tmp_path / "f.json"
    path.write_text(text)
    with pytest.raises(change.FindingsFileError, match=message) as e:
        change.read_findings(path)
    assert str(path) in str(e.value)
    with pytest.raises(change.FindingsFileError, match="not found"):
        change.read_findings(tmp_path / "missing.json")


def test_two_windows_of_the_sample_agree_with_set_arithmetic(sample_dir, engine):
    inventory = flowtools.Inventory.load(sample_dir / "inventory")
    truth = json.loads((sample_dir / "truth.json").read_text())
    day = truth["window"]["start"][:10]
    halves = [(f"{day}T06:00Z", f"{day}T09:00Z"), (f"{day}T09:00Z", f"{day}T12:00Z")]  # three hours each: enough
    sides = []
    for lo, hi in halves:
        flows = flowtools.load(sample_dir, start=lo, end=hi, engine=engine)
        sides.append(findings_records(flowtools.internet_exposure(flows, inventory=inventory)))
    got = change.changes(pl.DataFrame(sides[0]), pl.DataFrame(sides[1]))

    def key(r):
        return (r["interface_id"], r["protocol"], r["port"], r["port_to"])

    a, b = {key(r): r for r in sides[0]}, {key(r): r for r in sides[1]}
    by_change = {c: {key(r) for r in got.iter_rows(named=True) if r["change"] == c} for c in change.CHANGES}
    assert by_change["new"] == set(b) - set(a) and by_change["gone"] == set(a) - set(b)
    both = set(a) & set(b)
    assert by_change["changed"] == {k for k in both if a[k]["status"] != b[k]["status"] or a[k].get("risk") != b[k].get("risk") or (
        a[k]["peers"] != b[k]["peers"] and max(a[k]["peers"], b[k]["peers"]) >= 2 * min(a[k]["peers"], b[k]["peers"]))}
    assert got.height > 0  # three hours differ from the next three in the sample
