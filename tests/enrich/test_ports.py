"""Port service names and protocol names."""

from __future__ import annotations

import re

import polars as pl
import pytest

from flowtools.enrichment.ports import (
    is_well_known_service,
    port_names,
    protocol_name,
    protocol_number,
    service_name,
)


def test_port_names_frame():
    df = port_names()
    assert df.schema == pl.Schema({"port": pl.Int32, "protocol": pl.Int32, "service": pl.Utf8,
                                   "description": pl.Utf8})
    assert df.height >= 200
    assert df.select(pl.struct("port", "protocol").is_unique().all()).item()
    assert set(df["protocol"].unique()) == {6, 17}
    assert df["port"].is_between(1, 65535).all()
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]*", s) for s in df["service"])
    assert df["description"].str.len_chars().min() > 0
    assert df.equals(df.sort("port", "protocol"))


@pytest.mark.parametrize("port,protocol,name", [
    (22, 6, "ssh"), (53, 17, "domain"), (53, 6, "domain"), (80, 6, "http"), (123, 17, "ntp"),
    (443, 6, "https"), (443, 17, "https"), (3389, 6, "ms-wbt-server"), (5432, 6, "postgresql"),
    (3306, 6, "mysql"), (6379, 6, "redis"), (8080, 6, "http-alt"), (8443, 6, "https-alt"),
    (51820, 17, "wireguard"), (1194, 17, "openvpn"), (1194, 6, "openvpn"), (500, 17, "isakmp"),
    (4500, 17, "ipsec-nat-t"), (27017, 6, "mongodb"), (9200, 6, "elasticsearch"), (445, 6, "microsoft-ds"),
    (25, 6, "smtp"), (161, 17, "snmp"), (2049, 6, "nfs"), (1433, 6, "ms-sql-s"),
])
def test_common_ports(port, protocol, name):
    assert service_name(port, protocol) == name
    assert is_well_known_service(port, protocol)


def test_the_rdp_description_says_rdp():
    row = port_names().filter((pl.col("port") == 3389) & (pl.col("protocol") == 6)).row(0, named=True)
    assert "RDP" in row["description"]


def test_lookups_by_name_and_unknowns():
    assert service_name(443, "tcp") == service_name(443, "TCP") == service_name(443, "6") == "https"
    assert service_name(123, "udp") == "ntp" and service_name(123, "tcp") is None
    assert service_name(40001, 6) is None and not is_well_known_service(40001, 6)
    assert service_name(None, 6) is None and service_name(80, None) is None
    assert service_name(0, 1) is None and service_name(80, "gre") is None
    assert not is_well_known_service(None, None)


def test_protocol_names():
    assert [protocol_name(n) for n in (6, 17, 1, 58, 47, 132)] == ["tcp", "udp", "icmp", "icmpv6", "47", "132"]
    assert protocol_number("tcp") == 6 and protocol_number(" ICMPv6 ") == 58 and protocol_number("47") == 47
    assert protocol_number("gre") is None and protocol_number(17) == 17


def test_joins_with_flows():
    flows = pl.DataFrame({"dstport": [443, 53, 40001], "protocol": [6, 17, 6]},
                         schema={"dstport": pl.Int32, "protocol": pl.Int32})
    joined = flows.join(port_names(), left_on=["dstport", "protocol"], right_on=["port", "protocol"], how="left")
    assert joined.sort("dstport")["service"].to_list() == ["domain", "https", None]
