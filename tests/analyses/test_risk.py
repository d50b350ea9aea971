"""Risk of findings: the policy applied on both engines, ranges, evidence, overrides, filters."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from flowtools.analyses import risk
from flowtools.errors import UsageError

SCHEMA = {"interface_id": pl.String, "protocol": pl.String, "port": pl.Int32, "port_to": pl.Int32,
          "status": pl.String, "peers": pl.Int64, "bytes_in": pl.Int64}


def frame(rows: list[tuple], engine: str):
    df = pl.DataFrame(rows, schema=SCHEMA, orient="row")
    if engine == "polars":
        return df.lazy()
    con = duckdb.connect()
    con.register("findings_in", df.to_arrow())
    return con.table("findings_in")


def collect(native) -> pl.DataFrame:
    df = native.pl() if isinstance(native, duckdb.DuckDBPyRelation) else native.collect()
    return df.sort("interface_id", "protocol", "port", "status", nulls_last=True)


def test_every_category_port_and_status_gets_the_policys_level(engine):
    policy = risk.default_policy()
    rows, expected = [], {}
    for c in policy.categories:
        for proto, lo, hi in c.ports:
            for port in {lo, hi}:
                for status in risk.STATUSES:
                    key = f"eni-{c.name}-{proto}-{port}-{status}"
                    rows.append((key, proto, port, None, status, 50, 10))
                    expected[key] = (c.levels[status], c.name)
    got = collect(risk.assess(frame(rows, engine)))
    assert got.height == len(rows)
    for r in got.iter_rows(named=True):
        assert (r["risk"], r["risk_category"]) == expected[r["interface_id"]], r


def test_ports_outside_every_category_take_the_default_and_evidence_raises_them(engine):
    policy = risk.default_policy()
    big = policy.bulk_bytes
    rows = [
        ("eni-a", "udp", 7777, None, "exposed", 1, big),  # one peer sent a lot: high
        ("eni-b", "udp", 7777, None, "exposed", policy.few_peers + 1, big),  # many peers: default
        ("eni-c", "tcp", 7777, None, "exposed", 1, big - 1),  # not enough bytes: default
        ("eni-d", "tcp", 7777, None, "reachable", 1, big),  # not answered: default of reachable
        ("eni-e", "icmp", None, None, "exposed", 3, None),
        ("eni-f", "tcp", 22, None, "exposed", 1, big),  # a category decides: never lowered
    ]
    got = {r["interface_id"]: r for r in collect(risk.assess(frame(rows, engine))).iter_rows(named=True)}
    assert got["eni-a"]["risk"] == "high" and got["eni-a"]["risk_category"] is None
    assert got["eni-b"]["risk"] == policy.default["exposed"]
    assert got["eni-c"]["risk"] == policy.default["exposed"]
    assert got["eni-d"]["risk"] == policy.default["reachable"]
    assert got["eni-e"]["risk"] == policy.default["exposed"] and got["eni-e"]["risk_category"] is None
    assert got["eni-f"]["risk"] == "critical" and got["eni-f"]["risk_category"] == "remote administration"


def test_a_configured_range_or_all_traffic_rule_takes_the_worst_port_it_opens(engine):
    rows = [
        ("eni-r1", "tcp", 30000, 30100, "configured", 0, 0),  # no category inside
        ("eni-r2", "tcp", 3300, 3310, "configured", 0, 0),  # holds 3306 (MySQL)
        ("eni-r3", "udp", 3300, 3310, "configured", 0, 0),  # UDP: MySQL is TCP
        ("eni-r4", "all", None, None, "configured", 0, 0),
        ("eni-r5", "tcp", 0, 65535, "configured", 0, 0),
    ]
    got = {r["interface_id"]: r for r in collect(risk.assess(frame(rows, engine))).iter_rows(named=True)}
    assert got["eni-r1"]["risk"] == "low" and got["eni-r1"]["risk_category"] is None
    assert (got["eni-r2"]["risk"], got["eni-r2"]["risk_category"]) == ("high", "database or cache")
    assert got["eni-r3"]["risk"] == "low"
    first = risk.default_policy().categories[0].name  # equal levels: the first category listed
    assert (got["eni-r4"]["risk"], got["eni-r4"]["risk_category"]) == ("high", first)
    assert (got["eni-r5"]["risk"], got["eni-r5"]["risk_category"]) == ("high", first)


def test_a_users_policy_overrides_by_name_and_adds_categories(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('[default]\nexposed = "low"\n\n[thresholds]\nfew_peers = 0\n\n'
                    '[[category]]\nname = "web"\nexposed = "medium"\n\n'
                    '[[category]]\nname = "game servers"\nports = ["udp/7777-7780"]\n'
                    'exposed = "high"\nreachable = "medium"\nblocked = "low"\nconfigured = "medium"\n')
    policy = risk.load_policy(path)
    web = next(c for c in policy.categories if c.name == "web")
    assert web.levels["exposed"] == "medium" and web.ports == next(
        c for c in risk.default_policy().categories if c.name == "web").ports  # ports kept
    assert policy.default["exposed"] == "low" and policy.default["reachable"] == "low"
    assert policy.few_peers == 0 and policy.source == str(path)
    rows = [("eni-w", "tcp", 443, None, "exposed", 9, 0), ("eni-g", "udp", 7778, None, "exposed", 9, 0),
            ("eni-o", "tcp", 9999, None, "exposed", 9, 0)]
    got = {r["interface_id"]: r["risk"] for r in collect(risk.assess(frame(rows, "polars"), policy=policy))
           .iter_rows(named=True)}
    assert got == {"eni-w": "medium", "eni-g": "high", "eni-o": "low"}
    assert "game servers" in policy.describe()


@pytest.mark.parametrize("text,message", [
    ('[[category]]\nname = "x"\nports = ["tcp/99999"]\nexposed = "high"\nreachable = "high"\n'
     'blocked = "low"\nconfigured = "low"\n', r"category 'x': bad port 'tcp/99999'"),
    ('[[category]]\nname = "x"\nports = ["tcp/1"]\nexposed = "severe"\n', r"exposed = 'severe' is not one of"),
    ('[[category]]\nname = "x"\nports = ["tcp/1"]\nexposed = "high"\n', r"no level for reachable, blocked"),
    ('[thresholds]\nfew_peers = -1\n', r"\[thresholds\]: few_peers = -1"),
    ('[colours]\nred = 1\n', r"unknown table\(s\) colours"),
    ('not toml [', r"not valid TOML"),
])
def test_a_bad_policy_file_names_the_file_and_the_entry(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(risk.RiskPolicyError, match=message) as e:
        risk.load_policy(path)
    assert str(e.value).startswith(str(path))
    with pytest.raises(risk.RiskPolicyError, match="not found"):
        risk.load_policy(tmp_path / "missing.toml")


def test_select_by_status_risk_and_ports(engine):
    rows = [("eni-1", "tcp", 22, None, "exposed", 1, 0), ("eni-2", "tcp", 443, None, "exposed", 9, 0),
            ("eni-3", "tcp", 30000, 30100, "configured", 0, 0), ("eni-4", "all", None, None, "configured", 0, 0),
            ("eni-5", "icmp", None, None, "blocked", 2, 0)]
    assessed = risk.assess(frame(rows, engine))

    def ids(**kw):
        return sorted(collect(risk.select(assessed, **kw))["interface_id"].to_list())

    assert ids(status=["configured"]) == ["eni-3", "eni-4"]
    assert ids(risk=list(risk.at_least("high"))) == ["eni-1", "eni-4"]
    assert ids(ports=risk.parse_ports("22,30050")) == ["eni-1", "eni-3", "eni-4"]
    assert ids(ports=risk.parse_ports("30101-31000")) == ["eni-4"]
    assert ids() == [f"eni-{i}" for i in range(1, 6)]
    with pytest.raises(UsageError, match="unknown status"):
        risk.select(assessed, status=["open"])
    with pytest.raises(UsageError, match="bad port '70000'"):
        risk.parse_ports("22,70000")
    with pytest.raises(UsageError, match="unknown risk level 'severe'"):
        risk.at_least("severe")
    assert risk.at_least("medium") == ("critical", "high", "medium")
