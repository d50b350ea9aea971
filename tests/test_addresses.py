"""Address classes: IPv4 and IPv6, the documentation ranges, the estate's own, invalid input."""

from __future__ import annotations

import ipaddress

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowtools.addresses import KINDS, SCHEMA, classify, in_networks, sort_key


def kinds(addresses, **kw) -> dict[str, str]:
    df = classify(addresses, **kw)
    return dict(zip(df["address"].to_list(), df["kind"].to_list(), strict=True))


@pytest.mark.parametrize(("address", "kind"), [
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.255", "private"),
    ("192.168.1.1", "private"), ("fd12:3456::1", "private"), ("fc00::1", "private"),
    ("100.64.0.1", "shared"), ("100.127.255.254", "shared"),
    ("169.254.169.254", "link_local"), ("fe80::1", "link_local"),
    ("127.0.0.1", "loopback"), ("::1", "loopback"),
    ("224.0.0.251", "multicast"), ("ff02::1", "multicast"),
    ("0.0.0.0", "unspecified"), ("::", "unspecified"),
    ("240.0.0.1", "reserved"), ("255.255.255.255", "reserved"), ("198.18.0.1", "reserved"),
    ("192.0.0.170", "reserved"), ("100::1", "reserved"),
    # documentation ranges count as internet (ipaddress says they are not global)
    ("192.0.2.1", "internet"), ("198.51.100.7", "internet"), ("203.0.113.255", "internet"),
    ("2001:db8::1", "internet"), ("2001:db8:c000::5", "internet"),
    ("52.95.128.179", "internet"), ("8.8.8.8", "internet"), ("2600:1f18::1", "internet"),
    ("172.32.0.1", "internet"), ("100.128.0.1", "internet"),
    ("::ffff:10.0.0.1", "private"), ("::ffff:192.0.2.1", "internet"),
])
def test_kinds(address, kind):
    df = classify([address])
    assert df.row(0, named=True)["kind"] == kind
    assert df.row(0, named=True)["is_internet"] == (kind == "internet")


def test_documentation_ranges_are_not_global_for_ipaddress():
    """Why the explicit rule exists."""
    assert not ipaddress.ip_address("203.0.113.5").is_global
    assert not ipaddress.ip_address("2001:db8::1").is_global


@pytest.mark.parametrize("bad", ["", "-", "not-an-ip", "10.0.0.256", "1.2.3", "2001:db8:::1", " ", "eni-0abc"])
def test_invalid_is_a_kind_not_an_exception(bad):
    row = classify([bad]).row(0, named=True)
    assert row == {"address": bad, "family": None, "kind": "invalid", "is_internet": False, "normalized": None}


def test_own_networks_and_addresses():
    got = kinds(["54.144.10.11", "54.144.10.12", "2600:1f18:1000::13", "2600:1f18:2000::1", "10.10.0.5",
                 "203.0.113.9", "203.0.113.10"],
                own_networks=["10.10.0.0/16", "2600:1f18:1000::/56", ipaddress.ip_network("203.0.113.8/30")],
                own_addresses=["54.144.10.11", "not an address"])
    assert got == {"54.144.10.11": "own", "54.144.10.12": "internet", "2600:1f18:1000::13": "own",
                   "2600:1f18:2000::1": "internet", "10.10.0.5": "private", "203.0.113.9": "own",
                   "203.0.113.10": "own"}


def test_own_networks_with_host_bits_and_many_ranges():
    nets = [f"3.{i}.0.0/16" for i in range(0, 200, 2)] + ["52.0.0.5/8"]
    got = kinds(["3.4.1.1", "3.5.1.1", "52.9.9.9", "53.0.0.1"], own_networks=nets)
    assert got == {"3.4.1.1": "own", "3.5.1.1": "internet", "52.9.9.9": "own", "53.0.0.1": "internet"}


def test_invalid_own_network_is_an_error():
    with pytest.raises(ValueError):
        classify(["10.0.0.1"], own_networks=["10.0.0.0/33"])


def test_table_shape_distinct_rows_and_normalised_form():
    df = classify(["2001:DB8:0:0::1", "2001:db8::1", None, "2001:DB8:0:0::1", "10.0.0.1"])
    assert dict(df.schema) == SCHEMA
    assert df["address"].to_list() == ["2001:DB8:0:0::1", "2001:db8::1", "10.0.0.1"]
    assert df["normalized"].to_list() == ["2001:db8::1", "2001:db8::1", "10.0.0.1"]
    assert df["family"].to_list() == ["IPv6", "IPv6", "IPv4"]
    assert classify([]).schema == pl.Schema(SCHEMA)


def test_sort_key():
    ordered = sorted(["2001:db8::1", "10.0.0.10", "bad", "10.0.0.9", "::1"], key=sort_key)
    assert ordered == ["10.0.0.9", "10.0.0.10", "::1", "2001:db8::1", "bad"]


_ipv4 = st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n)))
_ipv6 = st.integers(0, 2**128 - 1).map(lambda n: str(ipaddress.IPv6Address(n)))


@settings(max_examples=200)
@given(address=st.one_of(_ipv4, _ipv6, st.text(max_size=12)),
       nets=st.lists(st.tuples(st.one_of(_ipv4, _ipv6), st.integers(0, 128)), max_size=5))
def test_kind_agrees_with_a_direct_reading(address, nets):
    own = []
    for a, prefix in nets:
        ip = ipaddress.ip_address(a)
        own.append(ipaddress.ip_network(f"{a}/{min(prefix, ip.max_prefixlen)}", strict=False))
    row = classify([address], own_networks=own).row(0, named=True)
    assert row["kind"] in KINDS
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        assert row["kind"] == "invalid"
        return
    if ip.version == 6 and ip.ipv4_mapped is not None:  # an IPv4-mapped address is its IPv4 address
        ip = ip.ipv4_mapped
    if row["kind"] == "own":
        assert any(ip.version == n.version and ip in n for n in own)
    if row["kind"] == "internet":
        assert not any(ip.version == n.version and ip in n for n in own)
        assert ip.is_global or any(ip in ipaddress.ip_network(c) for c in (
            "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"))


@pytest.mark.parametrize("mapped,plain", [
    ("::ffff:203.0.113.9", "203.0.113.9"), ("::ffff:10.0.0.5", "10.0.0.5"), ("::ffff:3e0:0", "3.224.0.0"),
    ("::ffff:52.1.2.3", "52.1.2.3"), ("::ffff:100.64.0.1", "100.64.0.1"), ("::ffff:127.0.0.1", "127.0.0.1"),
])
def test_an_ipv4_mapped_address_is_classified_as_its_ipv4_address(mapped, plain):
    # the own networks and addresses are IPv4: the mapped form must still be "own"
    kw = {"own_networks": ["52.1.0.0/16"], "own_addresses": ["203.0.113.9"]}
    got = {r["address"]: r["kind"] for r in classify([mapped, plain], **kw).iter_rows(named=True)}
    assert got[mapped] == got[plain]
    assert in_networks([mapped], ["52.1.0.0/16"]) == in_networks([plain], ["52.1.0.0/16"])
