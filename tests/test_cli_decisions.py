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


def test_watchlist_egress_and_scanners_on_the_sample(sample_dir, findings_all, tmp_path, capsys):
    peer = next(p for e in findings_all if e["status"] == "exposed" for p in e["sample_peers"])
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


@pytest.fixture(scope="module")
def findings_all(sample_dir):
    """Every finding of the sample (configured included), as the CLI prints them."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(io.StringIO()):
        assert main(["exposure", str(sample_dir), "--inventory", str(sample_dir / "inventory"),
                     "--include-configured", "--format", "json"]) == 0
    return json.loads(out.getvalue())


def test_every_finding_has_a_risk_after_sample_peers(findings_all):
    from flowtools.analyses.risk import LEVELS

    assert findings_all and all(r["risk"] in LEVELS for r in findings_all)
    keys = list(findings_all[0])
    assert keys.index("risk") == keys.index("sample_peers") + 1  # the contract: right after sample_peers
    ssh = [r for r in findings_all if r["status"] == "exposed" and r["port"] == 22]
    assert ssh and all(r["risk"] == "critical" and r["risk_category"] == "remote administration" for r in ssh)
    assert all(r["risk"] == "low" for r in findings_all if r["status"] == "blocked")


def test_filters_and_the_fail_on_gate(sample_dir, findings_all, capsys):
    """Two runs: each filter option once, and --fail-on judging the filtered findings only."""
    base = ["exposure", sample_dir, "--inventory", sample_dir / "inventory", "--include-configured",
            "--format", "json"]
    levels = ("critical", "high", "medium", "low")

    def keys(rows):
        return sorted((r["interface_id"], r["protocol"], r["port"], r["status"]) for r in rows)

    # --status and --risk; --fail-on critical does not trip: the filters left no critical finding
    assert any(r["risk"] == "critical" for r in findings_all)
    code, out, err = run(capsys, *base, "--status", "configured,blocked", "--risk", "high,low", "--fail-on", "critical")
    expect = [r for r in findings_all if r["status"] in ("configured", "blocked") and r["risk"] in ("high", "low")]
    assert expect and keys(json.loads(out)) == keys(expect)
    assert code == 0 and "--fail-on" not in err
    # --ports; --fail-on at the worst risk among those findings trips (exit 3, the findings still printed)
    expect = [r for r in findings_all if r["protocol"] == "all" or r["port"] is not None and (
        20 <= r["port"] <= 23 or r["port"] <= 8050 <= (r["port_to"] or r["port"]))]
    worst = min(expect, key=lambda r: levels.index(r["risk"]))["risk"]
    code, out, err = run(capsys, *base, "--ports", "20-23,8050", "--fail-on", worst)
    assert keys(json.loads(out)) == keys(expect)
    assert code == 3 and f"--fail-on {worst}:" in err
    assert run(capsys, *base, "--ports", "99999")[0] == 2
    assert run(capsys, *base, "--status", "open")[0] == 2


def test_a_risk_policy_file_changes_the_risk(sample_dir, tmp_path, capsys):
    policy = tmp_path / "policy.toml"
    policy.write_text('[[category]]\nname = "web"\nexposed = "critical"\n')
    code, out, _ = run(capsys, "exposure", sample_dir, "--inventory", sample_dir / "inventory", "--format", "json",
                       "--risk-policy", policy, "--ports", "443")
    rows = json.loads(out)
    assert code == 0 and rows and all(r["risk"] == "critical" for r in rows if r["status"] == "exposed")
    code, out, _ = run(capsys, "risk-policy", policy)
    assert code == 0 and "web: critical / low / low / low" in out
    code, _, err = run(capsys, "exposure", sample_dir, "--risk-policy", tmp_path / "none.toml")
    assert code == 1 and "risk policy file not found" in err
