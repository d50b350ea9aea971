"""Watchlists: the file format, matching (most specific entry, IPv4/IPv6, mapped), hits on both engines."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from flowtools.analyses.watchlist import Watchlist, WatchlistError, watchlist_hits

TEXT = """\
# intel 2026-11-19
198.51.100.23        known C2
203.0.113.0/24, scanner farm
203.0.113.128/25\tnarrower farm
2001:db8:bad::/48
::ffff:192.0.2.0/120 mapped entry
"""


def collect(frame) -> pl.DataFrame:
    return frame.pl() if isinstance(frame, duckdb.DuckDBPyRelation) else frame.collect()


def test_the_file_format_and_the_most_specific_entry():
    wl = Watchlist.parse(TEXT)
    assert len(wl) == 5 and [e.label for e in wl.entries] == ["known C2", "scanner farm", "narrower farm", None,
                                                             "mapped entry"]
    got = {r["address"]: (r["entry"], r["label"]) for r in wl.match(
        ["198.51.100.23", "203.0.113.9", "203.0.113.200", "2001:DB8:BAD::1", "::ffff:203.0.113.9",
         "192.0.2.7", "10.0.0.1", "not an address", None]).iter_rows(named=True)}
    assert got == {
        "198.51.100.23": ("198.51.100.23", "known C2"), "203.0.113.9": ("203.0.113.0/24", "scanner farm"),
        "203.0.113.200": ("203.0.113.128/25", "narrower farm"), "2001:DB8:BAD::1": ("2001:db8:bad::/48", None),
        "::ffff:203.0.113.9": ("203.0.113.0/24", "scanner farm"),  # an IPv4-mapped address is its IPv4 address
        "192.0.2.7": ("::ffff:192.0.2.0/120", "mapped entry"),
    }


@pytest.mark.parametrize("text,message", [("10.0.0.300\n", "line 1: '10.0.0.300' is not"),
                                          ("# only\n\n", "no entries")])
def test_a_bad_watchlist_names_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "wl.txt"
    path.write_text(text)
    with pytest.raises(WatchlistError, match=message) as e:
        Watchlist.load(path)
    assert str(path) in str(e.value)


def test_hits_by_interface_direction_and_action(engine, fl):
    flow, native = fl.flow, fl.native
    web, nat = "eni-web", "eni-nat"
    records = [
        flow(web, "10.0.0.5", "198.51.100.23", 40000, 443, nbytes=500, t=0, direction="egress"),
        flow(web, "198.51.100.23", "10.0.0.5", 443, 40000, nbytes=7000, t=1, direction="ingress"),
        flow(web, "203.0.113.200", "10.0.0.5", 5555, 22, action="REJECT", nbytes=60, t=2, direction="ingress"),
        flow(web, "203.0.113.200", "10.0.0.5", 5556, 22, action="REJECT", nbytes=60, t=90, direction="ingress"),
        # the NAT gateway's private leg: the listed peer is the packet-level destination
        flow(nat, "10.0.1.9", "10.0.0.99", 41000, 443, pkt_src="10.0.1.9", pkt_dst="2001:db8:bad::7",
             nbytes=300, t=3),
        flow(web, "10.0.0.5", "8.8.8.8", 40001, 53, proto=17, nbytes=80, t=4),  # not listed
        {**flow(web, "0.0.0.0", "0.0.0.0"), "srcaddr": None, "dstaddr": None, "log_status": "NODATA",
         "bytes": None},
    ]
    hits = collect(watchlist_hits(native(records, engine), Watchlist.parse(TEXT)))
    rows = {(r["interface_id"], r["listed_address"], r["direction"], r["action"]): r
            for r in hits.iter_rows(named=True)}
    assert set(rows) == {
        (web, "198.51.100.23", "to listed", "ACCEPT"), (web, "198.51.100.23", "from listed", "ACCEPT"),
        (web, "203.0.113.200", "from listed", "REJECT"), (nat, "2001:db8:bad::7", "to listed", "ACCEPT"),
    }
    scan = rows[(web, "203.0.113.200", "from listed", "REJECT")]
    assert (scan["records"], scan["bytes"], scan["entry"], scan["label"]) == (2, 120, "203.0.113.128/25",
                                                                              "narrower farm")
    assert scan["last_seen"] > scan["first_seen"]
    assert rows[(nat, "2001:db8:bad::7", "to listed", "ACCEPT")]["local_address"] == "10.0.1.9"
    assert hits["bytes"].to_list() == sorted(hits["bytes"].to_list(), reverse=True)
    assert collect(watchlist_hits(native(records, engine), Watchlist.parse("192.0.2.1\n"))).height == 0
