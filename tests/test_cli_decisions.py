"""The decision commands: diff (files and windows, --fail-on exit 3), watchlist, egress, scanners."""

from __future__ import annotations

import json

import pytest

from flowtools.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def finding(**kw):
    base = {"account_id": "111111111111", "region": "us-east-1", "vpc_id": "vpc-1", "interface_id": "eni-a",
            "resource_name": "web", "protocol": "tcp", "port": 22, "port_to": None, "status": "blocked",
            "peers": 4, "risk": "low"}
    return base | kw


def test_diff_of_two_saved_results_and_the_fail_on_gate(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps([finding(), finding(interface_id="eni-b", port=443, status="exposed", peers=100)]))
    b.write_text(json.dumps([finding(status="exposed", risk="critical"),
                             finding(interface_id="eni-c", port=3306, status="reachable", risk="high", peers=1)]))
    code, out, err = run(capsys, "diff", a, b, "--format", "json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["change"], r["interface_id"]) for r in rows] == [("new", "eni-c"), ("changed", "eni-a"),
                                                              ("gone", "eni-b")]
    assert "1 new, 1 changed, 1 gone" in err
    assert run(capsys, "diff", a, b, "--fail-on", "critical")[0] == 3
    assert run(capsys, "diff", a, a, "--fail-on", "low")[0] == 0
    code, _, err = run(capsys, "diff", a, tmp_path / "missing.json")
    assert code == 1 and "findings file not found" in err
    assert run(capsys, "diff", a, b, "--start", "-1d")[0] == 2


def test_diff_of_two_windows_of_a_source(sample_dir, capsys):
    truth = json.loads((sample_dir / "truth.json").read_text())
    middle = truth["window"]["start"][:10] + "T12:00Z"
    code, out, err = run(capsys, "diff", sample_dir, "--start", middle, "--end", truth["window"]["end"],
                         "--inventory", sample_dir / "inventory", "--format", "json")
    assert code == 0, err
    assert f"[{truth['window']['start']}, {middle[:-1]}:00Z) -> [{middle[:-1]}:00Z" in err
    assert {r["change"] for r in json.loads(out)} <= {"new", "gone", "changed"}
    assert run(capsys, "diff", sample_dir, "--start", middle)[0] == 2  # the window needs both ends


def test_watchlist_egress_and_scanners_on_the_sample(sample_dir, tmp_path, capsys):
    code, out, _ = run(capsys, "exposure", sample_dir, "--inventory", sample_dir / "inventory", "--format", "json")
    peer = next(p for e in json.loads(out) if e["status"] == "exposed" for p in e["sample_peers"])
    watch = tmp_path / "watch.txt"
    watch.write_text(f"# test\n{peer} a listed peer\n")
    code, out, err = run(capsys, "watchlist", sample_dir, "--watchlist", watch, "--format", "json",
                         "--inventory", sample_dir / "inventory")
    assert code == 0, err
    rows = json.loads(out)
    assert rows and {r["listed_address"] for r in rows} == {peer} and {r["label"] for r in rows} == {"a listed peer"}
    assert run(capsys, "watchlist", sample_dir, "--watchlist", watch, "--fail-on-hit")[0] == 3
    code, out, _ = run(capsys, "egress", sample_dir, "--inventory", sample_dir / "inventory", "--ip-ranges",
                       sample_dir / "ip-ranges.json", "--format", "json")
    assert code == 0 and json.loads(out) and all(r["bytes_out"] > 0 for r in json.loads(out))
    code, out, _ = run(capsys, "scanners", sample_dir, "--inventory", sample_dir / "inventory", "--format", "json")
    assert code == 0 and {r["outcome"] for r in json.loads(out)} <= {"answered", "accepted", "blocked"}


@pytest.mark.parametrize("argv,message", [
    (["watchlist", "{d}", "--watchlist", "{d}/none.txt"], "watchlist file not found"),
])
def test_errors_name_the_file(sample_dir, capsys, argv, message):
    code, _, err = run(capsys, *[a.format(d=sample_dir) for a in argv])
    assert code == 1 and message in err
