"""Scanners that got an answer: answered rank first, resets are not answers, clients are not scanners."""

from __future__ import annotations

import duckdb
import polars as pl

from flowtools.analyses.scanning import scanner_outcomes

WEB, WEB_IP = "eni-web", "10.0.0.5"
DB = [("eni-db1", "10.0.1.1"), ("eni-db2", "10.0.1.2"), ("eni-db3", "10.0.1.3")]


def collect(frame) -> pl.DataFrame:
    return frame.pl() if isinstance(frame, duckdb.DuckDBPyRelation) else frame.collect()


def probe(fl, iface, scanner, local, port, *, action="REJECT", reply_flags=None, t=0, direction=True):
    """One probe and, when ``reply_flags`` is given, the interface's answer."""
    d = {"direction": "ingress"} if direction else {}
    out = [fl.flow(iface, scanner, local, 40000 + port % 1000, port, flags=2, action=action, t=t, **d)]
    if reply_flags is not None:
        r = {"direction": "egress"} if direction else {}
        out.append(fl.flow(iface, local, scanner, port, 40000 + port % 1000, flags=reply_flags, t=t, **r))
    return out


def records(fl, *, direction=True):
    out = []
    for i, port in enumerate((21, 23, 25, 110, 143, 3306)):  # blocked everywhere
        out += probe(fl, WEB, "198.51.100.1", WEB_IP, port, t=i, direction=direction)
    for i, port in enumerate((22, 80, 3389, 5900, 8080)):  # ssh accepted and answered with SYN-ACK
        ok = port == 22
        out += probe(fl, WEB, "198.51.100.2", WEB_IP, port, action="ACCEPT" if ok else "REJECT",
                     reply_flags=18 if ok else None, t=i, direction=direction)
    for i, (iface, ip) in enumerate(DB):  # 3389 let in on three hosts, each answers with a reset
        out += probe(fl, iface, "203.0.113.3", ip, 3389, action="ACCEPT", reply_flags=4, t=i, direction=direction)
    out += probe(fl, WEB, "203.0.113.50", WEB_IP, 443, action="ACCEPT", reply_flags=18, direction=direction)  # a client
    return out


def test_answered_scanners_rank_first(fl, engine):
    got = collect(scanner_outcomes(fl.native(records(fl), engine)))
    assert got["source"].to_list() == ["198.51.100.2", "203.0.113.3", "198.51.100.1"]
    rows = {r["source"]: r for r in got.iter_rows(named=True)}
    answered = rows["198.51.100.2"]
    assert (answered["outcome"], answered["answered"], answered["accepted"], answered["rejected"]) == (
        "answered", 1, 1, 4)
    assert answered["answered_targets"] == [f"{WEB}:22"] and answered["ports"] == 5
    reset = rows["203.0.113.3"]
    assert (reset["outcome"], reset["interfaces"], reset["accepted"], reset["answered"]) == ("accepted", 3, 3, 0)
    assert reset["answered_targets"] is None
    blocked = rows["198.51.100.1"]
    assert (blocked["outcome"], blocked["ports"], blocked["attempts"]) == ("blocked", 6, 6)


def test_without_flow_direction_the_internet_source_decides(fl, engine):
    got = collect(scanner_outcomes(fl.native(records(fl, direction=False), engine)))
    assert dict(zip(got["source"], got["outcome"], strict=True)) == {
        "198.51.100.2": "answered", "203.0.113.3": "accepted", "198.51.100.1": "blocked"}
    assert collect(scanner_outcomes(fl.native(records(fl), engine), min_ports=100, min_interfaces=100)).height == 0
