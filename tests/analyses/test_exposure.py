"""internet_exposure: every case of docs/design.md "Internet exposure", on both engines.

Each test runs on DuckDB and Polars (the ``exposure`` fixture) and checks that both give
identical findings. Internet peers are in the documentation ranges (which count as
internet), the estate in 10.0.0.0/8.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import duckdb
import jsonschema
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowtools.analyses import exposure as exposure_module
from flowtools.analyses.exposure import (
    COLUMNS,
    EXTRA_COLUMNS,
    findings_records,
    findings_schema,
    internet_exposure,
)
from flowtools.analyses.exposure import records as exposure_records
from flowtools.errors import UsageError

WEB, WEB_IP = "eni-0aaa0000000000001", "10.0.1.10"
APP, APP_IP = "eni-0aaa0000000000002", "10.0.2.20"
CLIENTS = [f"198.51.100.{i}" for i in range(1, 60)]


def only(rows, **match):
    """The one finding matching ``match``."""
    hits = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(hits) == 1, (match, rows)
    return hits[0]


def keys(rows):
    return [(r["interface_id"], r["protocol"], r["port"], r["status"]) for r in rows]


# -- TCP flags ----------------------------------------------------------------------------

def test_short_connection_3_19_is_exposed_high(exposure, fl):
    rows = exposure(fl.tcp(WEB, "203.0.113.5", 40001, WEB_IP, 443, t=30))
    r = only(rows)
    assert (r["interface_id"], r["port"], r["protocol"], r["status"]) == (WEB, 443, "tcp", "exposed")
    assert r["confidence"] == "high"
    assert (r["peers"], r["connections"], r["bytes_in"], r["bytes_out"]) == (1, 1, 400, 4000)
    assert r["local_ip"] == WEB_IP and r["sample_peers"] == ["203.0.113.5"]
    assert (r["first_seen"], r["last_seen"]) == ("2026-11-20T10:00:30Z", "2026-11-20T10:00:35Z")
    assert r["evidence"] == "TCP SYN from internet peer accepted, SYN-ACK sent"
    assert r["account_id"] == fl.ACCOUNT and r["port_to"] is None and r["sg_open"] is None


def test_long_connection_2_18_then_0_then_1(exposure, fl):
    records = fl.tcp(WEB, "203.0.113.5", 40001, WEB_IP, 443, client_flags=(2, 0, 0, 1),
                     server_flags=(18, 0, 0, 1))
    r = only(exposure(records))
    assert (r["status"], r["confidence"], r["connections"]) == ("exposed", "high", 1)
    assert (r["bytes_in"], r["bytes_out"]) == (4 * 400, 4 * 4000)  # flag-0 windows belong to it
    assert (r["first_seen"], r["last_seen"]) == ("2026-11-20T10:00:00Z", "2026-11-20T10:03:05Z")


def test_answered_only_with_rst_is_reachable(exposure, fl):
    records = fl.tcp(WEB, "203.0.113.5", 40001, WEB_IP, 8081, client_flags=(2,), server_flags=(4,))
    r = only(exposure(records))
    assert (r["port"], r["status"], r["confidence"]) == (8081, "reachable", "high")
    assert "answered only with RST" in r["evidence"]


def test_rejected_syns_are_blocked(exposure, fl):
    records = [rec for i, c in enumerate(CLIENTS[:3]) for rec in fl.tcp(
        WEB, c, 50000 + i, WEB_IP, 3389, client_flags=(2,), server_flags=None, client_action="REJECT")]
    r = only(exposure(records))
    assert (r["port"], r["status"], r["peers"], r["connections"]) == (3389, "blocked", 3, 3)
    assert r["evidence"] == "TCP SYN from internet peers rejected"


def test_block_public_access_reject_reason_is_named(exposure, fl):
    records = fl.tcp(WEB, "192.0.2.200", 50000, WEB_IP, 22, client_flags=(2,), server_flags=None,
                     client_action="REJECT", reject_reason="BPA")
    assert only(exposure(records))["evidence"] == "TCP SYN from internet peer rejected (VPC Block Public Access)"


def test_accepted_syn_never_answered_is_reachable(exposure, fl):
    records = fl.tcp(WEB, "203.0.113.5", 40001, WEB_IP, 9000, client_flags=(2, 2), server_flags=None)
    r = only(exposure(records))
    assert (r["port"], r["status"]) == (9000, "reachable")
    assert r["evidence"].endswith("accepted, never answered")


def test_answer_rejected_by_network_acl_is_reachable(exposure, fl):
    records = fl.tcp(WEB, "203.0.113.5", 40001, WEB_IP, 443, server_action="REJECT")
    r = only(exposure(records))
    assert r["status"] == "reachable" and "reply rejected (network ACL)" in r["evidence"]


def test_an_answer_to_a_rejected_request_is_not_exposure(exposure, fl):
    # Exposed needs the request accepted inbound *and* answered: an egress answer logged
    # while every inbound record was rejected leaves the port blocked.
    records = fl.tcp(WEB, "203.0.113.5", 40001, WEB_IP, 443, client_action="REJECT")
    assert only(exposure(records))["status"] == "blocked"


def test_status_takes_the_best_conversation(exposure, fl):
    records = (fl.tcp(WEB, "203.0.113.5", 40001, WEB_IP, 443, client_flags=(2,), server_flags=None,
                      client_action="REJECT")
               + fl.tcp(WEB, "203.0.113.6", 40002, WEB_IP, 443, client_flags=(2,), server_flags=(4,))
               + fl.tcp(WEB, "203.0.113.7", 40003, WEB_IP, 443))
    r = only(exposure(records))
    assert (r["status"], r["peers"], r["connections"]) == ("exposed", 3, 3)


def test_own_outbound_connections_are_not_exposure(exposure, fl):
    """SYN from the interface (egress 2 / ingress 18), short and long: replies to its calls."""
    records = (fl.tcp(APP, APP_IP, 41000, "192.0.2.1", 443, local="client")
               + fl.tcp(APP, APP_IP, 41001, "192.0.2.2", 443, local="client", client_flags=(2, 0, 1),
                        server_flags=(18, 0, 1)))
    assert exposure(records) == []


def test_long_inbound_connection_whose_syn_fell_before_the_window(exposure, fl):
    """Only flag-0 and FIN windows: the server port (22) is local, the client's ephemeral
    port is not; the interface did not initiate it."""
    records = fl.tcp(WEB, "192.0.2.10", 51234, WEB_IP, 22, client_flags=(0, 0, 1), server_flags=(0, 0, 1))
    r = only(exposure(records))
    assert (r["port"], r["status"], r["confidence"]) == (22, "exposed", "medium")
    assert r["evidence"] == "TCP port 22 reached by 1 peer from ephemeral ports, accepted and answered"


def test_long_outbound_connection_without_its_syn_is_not_exposure(exposure, fl):
    records = fl.tcp(APP, APP_IP, 51234, "192.0.2.1", 443, local="client",
                     client_flags=(0, 0, 1), server_flags=(0, 0, 1))
    assert exposure(records) == []


def test_flags_without_flow_direction_are_still_high(exposure, fl):
    records = fl.tcp(WEB, "203.0.113.5", 40001, WEB_IP, 443, direction=False)
    r = only(exposure(records))
    assert (r["status"], r["confidence"]) == ("exposed", "high")


# -- no flags: v2 logs, UDP, ICMP ---------------------------------------------------------

def _v2(records):
    """The same records as the default v2 format logs them: no flags, no direction."""
    return [{**r, "tcp_flags": None, "flow_direction": None, "pkt_srcaddr": None, "pkt_dstaddr": None,
             "version": 2} for r in records]


def test_v2_web_server_443_found_low_and_its_ephemeral_ports_not(exposure, fl):
    served = [rec for i, c in enumerate(CLIENTS[:40]) for rec in fl.tcp(WEB, c, 20000 + 37 * i, WEB_IP, 443)]
    calls = [rec for i in range(12) for rec in fl.tcp(
        WEB, WEB_IP, 33000 + i, f"52.216.0.{i + 1}", 443, local="client", t=7 * i)]
    rows = exposure(_v2(served + calls))
    r = only(rows)
    assert (r["port"], r["status"], r["confidence"], r["peers"]) == (443, "exposed", "low", 40)
    assert r["evidence"] == ("v2 log: TCP port 443 reached by 40 peers from ephemeral ports, accepted "
                             "and answered (direction guessed from address classes)")


def test_v2_naive_reports_the_replies_full_does_not(exposure, fl):
    served = [rec for i, c in enumerate(CLIENTS[:10]) for rec in fl.tcp(WEB, c, 20000 + i, WEB_IP, 443)]
    calls = [rec for i in range(12) for rec in fl.tcp(
        WEB, WEB_IP, 33000 + i, f"52.216.0.{i + 1}", 443, local="client")]
    lookups = [rec for i in range(6) for rec in fl.udp(WEB, WEB_IP, 45000 + i, "192.0.2.53", 53, local="client")]
    records = _v2(served + calls + lookups)
    full = exposure(records)
    naive = exposure(records, method="naive")
    assert keys(full) == [(WEB, "tcp", 443, "exposed")]
    # 1 true finding + one per own call's reply (12 TCP ports) + one per DNS answer (6 UDP ports)
    assert len(naive) == 1 + 12 + 6
    assert {(r["status"], r["confidence"]) for r in naive} == {("exposed", "low")}
    assert only(naive, port=443)["peers"] == 10
    assert all(r["bytes_out"] is None for r in naive)
    assert naive[0]["port"] == 443  # most peers first


def test_udp_service_on_a_high_port_is_exposed(exposure, fl):
    records = [rec for i, c in enumerate(["203.0.113.150", "203.0.113.151", "203.0.113.152", "203.0.113.153",
                                          "203.0.113.154"])
               for rec in fl.udp(WEB, c, 1024 + 7919 * (i + 1) % 60000, WEB_IP, 51820, t=10 * i)]
    r = only(exposure(records))
    assert (r["port"], r["protocol"], r["status"], r["confidence"], r["peers"]) == (51820, "udp", "exposed", "medium", 5)
    assert r["evidence"] == "UDP port 51820 reached by 5 peers from ephemeral ports, accepted and answered"


def test_udp_single_peer_on_a_known_service_port(exposure, fl):
    r = only(exposure(fl.udp(WEB, "203.0.113.150", 40000, WEB_IP, 51820)))
    assert (r["port"], r["status"]) == (51820, "exposed")


def test_dns_client_lookups_are_not_exposure(exposure, fl):
    records = [rec for i in range(8) for rec in fl.udp(APP, APP_IP, 40000 + 13 * i, "192.0.2.53", 53,
                                                       local="client", t=i)]
    assert exposure(records) == []
    assert exposure(_v2(records)) == []


def _same_port(fl, iface, local_ip, peers, port, *, local_first: bool, direction: bool = True):
    """UDP exchanges where both sides use ``port`` (ntpd's 123<->123, IKE's 500<->500):
    whoever sent first is the client; its record starts a second before the answer."""
    out = []
    for i, peer in enumerate(peers):
        t = 60 * i
        mine = fl.flow(iface, local_ip, peer, port, port, proto=17, t=t + (0 if local_first else 1),
                       direction="egress" if direction else None)
        theirs = fl.flow(iface, peer, local_ip, port, port, proto=17, t=t + (1 if local_first else 0),
                         direction="ingress" if direction else None)
        out += [mine, theirs]
    return out


NTP_PEERS = ["192.0.2.123", "192.0.2.124", "198.51.100.200", "198.51.100.201", "203.0.113.123"]


def test_ntp_client_querying_from_port_123_is_not_exposure(exposure, fl):
    # The same port on both sides tells nothing about who serves: the query went out first.
    records = _same_port(fl, APP, APP_IP, NTP_PEERS, 123, local_first=True)
    assert exposure(records) == []
    assert exposure(_v2(records)) == []


def test_ntp_server_answering_peers_on_port_123_is_exposed(exposure, fl):
    r = only(exposure(_same_port(fl, APP, APP_IP, NTP_PEERS, 123, local_first=False)))
    assert (r["port"], r["protocol"], r["status"], r["peers"]) == (123, "udp", "exposed", 5)
    assert "seen first" in r["evidence"]


def test_ipv6_server(exposure, fl):
    server = "2001:db8:1000::13"
    records = [rec for i in range(3) for rec in fl.tcp(WEB, f"2001:DB8:C000:0::{i + 1}", 40000 + i,
                                                       "2001:db8:1000:0:0:0:0:13", 443)]
    r = only(exposure(records))
    assert (r["port"], r["status"], r["peers"], r["local_ip"]) == (443, "exposed", 3, server)
    assert r["sample_peers"] == ["2001:db8:c000::1", "2001:db8:c000::2", "2001:db8:c000::3"]


def test_ipv6_v2_without_inventory_uses_the_interface_address(exposure, fl):
    """Both sides are global IPv6 addresses: the interface's own address is the one that
    comes back in its records."""
    server = "2600:1f18:1000::13"
    records = [rec for i in range(6) for rec in fl.tcp(WEB, f"2001:db8:c000::{i + 1}", 40000 + i, server, 443)]
    r = only(exposure(_v2(records)))
    assert (r["port"], r["local_ip"], r["confidence"]) == (443, server, "low")


def test_icmp_echo_accepted_and_answered(exposure, fl):
    records = fl.icmp(WEB, "203.0.113.180", WEB_IP) + fl.icmp(WEB, "203.0.113.181", WEB_IP, t=100)
    r = only(exposure(records))
    assert (r["protocol"], r["port"], r["status"], r["peers"]) == ("icmp", None, "exposed", 2)
    assert r["evidence"] == "ICMP from internet peers accepted and answered"


def test_icmpv6_echo(exposure, fl):
    r = only(exposure(fl.icmp(WEB, "2001:db8:c000::9", "2001:db8:1000::13", v6=True)))
    assert (r["protocol"], r["port"], r["status"]) == ("icmpv6", None, "exposed")
    assert r["evidence"] == "ICMPv6 from internet peer accepted and answered"


def test_icmp_reply_rejected_by_network_acl_is_reachable(exposure, fl):
    """AWS's ping example (docs/format.md "action and network ACLs"): request ACCEPT, reply REJECT."""
    records = fl.icmp(WEB, "203.0.113.12", "172.31.16.139", reply_action="REJECT", reply_t=67, direction=False)
    r = only(exposure(records))
    assert (r["protocol"], r["status"]) == ("icmp", "reachable")
    assert "reply rejected (network ACL)" in r["evidence"]


def test_own_ping_to_the_internet_is_not_exposure(exposure, fl):
    records = [fl.flow(APP, APP_IP, "192.0.2.9", 0, 0, proto=1, direction="egress", t=0),
               fl.flow(APP, "192.0.2.9", APP_IP, 0, 0, proto=1, direction="ingress", t=1)]
    assert exposure(records) == []


# -- forwarding interfaces, load balancers --------------------------------------------------

NAT, NAT_IP = "eni-1235b8ca123456789", "10.0.0.220"
INSTANCE, INSTANCE_IP = "eni-1111aaaa2222bbbb3", "10.0.1.5"


def _nat_example(fl):
    """docs/format.md "Addresses", AWS's NAT gateway example, with ports and flags."""
    host, port, nat_port = "203.0.113.5", 443, 61000
    return [
        # on the NAT gateway's interface
        fl.flow(NAT, INSTANCE_IP, NAT_IP, 34000, port, flags=2, pkt_src=INSTANCE_IP, pkt_dst=host),
        fl.flow(NAT, NAT_IP, host, nat_port, port, flags=2, pkt_src=NAT_IP, pkt_dst=host),
        fl.flow(NAT, host, NAT_IP, port, nat_port, flags=18, pkt_src=host, pkt_dst=NAT_IP),
        fl.flow(NAT, NAT_IP, INSTANCE_IP, port, 34000, flags=18, pkt_src=host, pkt_dst=INSTANCE_IP),
        # on the instance's own interface
        fl.flow(INSTANCE, INSTANCE_IP, host, 34000, port, flags=2, pkt_src=INSTANCE_IP, pkt_dst=host),
        fl.flow(INSTANCE, host, INSTANCE_IP, port, 34000, flags=18, pkt_src=host, pkt_dst=INSTANCE_IP),
    ]


def _unsolicited(fl, iface, ip):
    """Internet hosts probing an address; the interface logs them ACCEPTed, never answers."""
    return [fl.flow(iface, f"192.0.2.{130 + i}", ip, 40000 + i, 3389 + i, flags=2, t=i) for i in range(3)]


def test_nat_gateway_records_yield_no_findings(exposure, fl, inventory_of):
    records = _nat_example(fl)
    assert exposure(records) == []
    assert exposure(_v2(records)) == []
    inv = inventory_of(interfaces=[
        inventory_of.eni(NAT, NAT_IP, interface_type="nat_gateway",
                         description="Interface for NAT Gateway nat-0123456789abcdef0", public_ip="203.0.113.99"),
        inventory_of.eni(INSTANCE, INSTANCE_IP, instance_id="i-01234567890123456")])
    assert exposure(records + _unsolicited(fl, NAT, NAT_IP), inventory=inv) == []


@pytest.mark.parametrize("spelling", ["nat_gateway", "natGateway"])
def test_nat_gateway_from_inventory_either_spelling(exposure, fl, inventory_of, spelling):
    inv = inventory_of(interfaces=[inventory_of.eni(NAT, NAT_IP, interface_type=spelling)])
    assert exposure(_unsolicited(fl, NAT, NAT_IP), inventory=inv) == []
    assert exposure(_unsolicited(fl, NAT, NAT_IP)) != []  # the inventory is what tells


def test_nat_gateway_detected_without_inventory_from_translated_records(exposure, fl):
    """It carries inside hosts' connections to internet addresses (pkt-dstaddr): a NAT."""
    records = _nat_example(fl) + _unsolicited(fl, NAT, NAT_IP)
    assert exposure(records) == []


def test_v11_interface_type_field_marks_a_nat_gateway(exposure, fl):
    records = [{**r, "interface_type": "nat_gateway"} for r in _unsolicited(fl, NAT, NAT_IP)]
    assert exposure(records) == []


def test_transit_gateway_yields_no_findings(exposure, fl, inventory_of):
    """docs/format.md "Addresses", AWS's transit gateway example (internal), plus a TGW interface that
    carries an internet client's connection toward a server in another VPC."""
    tgw_a, tgw_b, server = "eni-11111111111111111", "eni-22222222222222222", "eni-33333333333333333"
    records = [
        fl.flow(server, "10.20.33.164", "10.40.2.236", 39812, 80, flags=3, pkt_src="10.20.33.164", pkt_dst="10.40.2.236"),
        fl.flow(server, "10.40.2.236", "10.20.33.164", 80, 39812, flags=19, pkt_src="10.40.2.236", pkt_dst="10.20.33.164"),
        fl.flow(tgw_a, "10.40.1.175", "10.40.2.236", 39812, 80, flags=3, pkt_src="10.20.33.164", pkt_dst="10.40.2.236"),
        fl.flow(tgw_b, "10.40.2.236", "10.40.2.31", 80, 39812, flags=19, pkt_src="10.40.2.236", pkt_dst="10.20.33.164"),
    ]
    assert exposure(records) == []
    carried = [fl.flow(tgw_b, "198.51.100.7", "10.40.2.31", 40000, 443, flags=2, direction="ingress"),
               fl.flow(tgw_b, "10.40.2.31", "198.51.100.7", 443, 40000, flags=18, direction="egress")]
    inv = inventory_of(interfaces=[
        inventory_of.eni(tgw_b, "10.40.2.31", interface_type="transit_gateway",
                         description="Network Interface for Transit Gateway Attachment tgw-attach-0abc")])
    assert exposure(records + carried, inventory=inv) == []


def test_load_balancer_listener_and_target_with_client_ip_preservation(exposure, fl, inventory_of):
    nlb, nlb_ip, target, target_ip = "eni-0b00000000000000a", "10.0.0.50", "eni-0b00000000000000b", "10.0.10.21"
    records = []
    for i, c in enumerate(CLIENTS[:4]):
        cport = 20000 + i
        records += fl.tcp(nlb, c, cport, nlb_ip, 443, t=i)  # front end
        records += [  # back end on the NLB: client address carried in pkt-srcaddr / pkt-dstaddr
            fl.flow(nlb, nlb_ip, target_ip, cport, 8443, flags=3, direction="egress", pkt_src=c, pkt_dst=target_ip, t=i),
            fl.flow(nlb, target_ip, nlb_ip, 8443, cport, flags=19, direction="ingress", pkt_src=target_ip, pkt_dst=c, t=i),
        ]
        records += fl.tcp(target, c, cport, target_ip, 8443, t=i)  # the target sees the client
    records += fl.tcp(target, nlb_ip, 30000, target_ip, 8443)  # health check (internal)
    inv = inventory_of(interfaces=[
        inventory_of.eni(nlb, nlb_ip, interface_type="network_load_balancer",
                         description="ELB net/api-nlb/0123456789abcdef", requester_managed=True),
        inventory_of.eni(target, target_ip, instance_id="i-0123456789abcdef0")])
    for rows in (exposure(records), exposure(records, inventory=inv)):
        assert keys(rows) == [(nlb, "tcp", 443, "exposed"), (target, "tcp", 8443, "exposed")]
        assert only(rows, interface_id=target)["peers"] == 4
    rows = exposure(records, inventory=inv)
    assert only(rows, interface_id=nlb)["resource_name"] == "api-nlb"
    assert only(rows, interface_id=nlb)["interface_type"] == "network_load_balancer"
    assert only(rows, interface_id=target)["instance_id"] == "i-0123456789abcdef0"


# -- the estate and the inventory ----------------------------------------------------------

def test_estate_own_public_ip_is_not_an_internet_peer(exposure, fl, inventory_of):
    """web-1 checked through its public address from behind the estate's NAT gateway: the
    client is the NAT gateway's Elastic IP, the estate's own."""
    nat_eip = "198.51.100.250"
    records = fl.tcp(WEB, nat_eip, 40000, WEB_IP, 443)
    assert keys(exposure(records)) == [(WEB, "tcp", 443, "exposed")]  # without inventory it looks external
    inv = inventory_of(interfaces=[
        inventory_of.eni(WEB, WEB_IP, public_ip="198.51.100.80"),
        inventory_of.eni(NAT, NAT_IP, interface_type="nat_gateway", public_ip=nat_eip)])
    assert exposure(records, inventory=inv) == []


def test_vpc_ipv6_cidr_is_own_and_orients_v2_records(exposure, fl, inventory_of):
    server = "2600:1f18:1000::13"
    records = _v2(fl.tcp(WEB, "2001:db8:c000::1", 40000, server, 443)
                  + fl.tcp(WEB, "2600:1f18:1000::99", 40001, server, 443))
    vpc = {"VpcId": "vpc-0abc", "CidrBlock": "10.0.0.0/16", "OwnerId": fl.ACCOUNT,
           "Ipv6CidrBlockAssociationSet": [{"Ipv6CidrBlock": "2600:1f18:1000::/56",
                                            "Ipv6CidrBlockState": {"State": "associated"}}]}
    r = only(exposure(records, inventory=inventory_of(vpcs=[vpc])))
    assert (r["peers"], r["sample_peers"]) == (1, ["2001:db8:c000::1"])


def test_inventory_orients_v2_records_medium(exposure, fl, inventory_of):
    records = _v2([rec for i, c in enumerate(CLIENTS[:5]) for rec in fl.tcp(WEB, c, 40000 + i, WEB_IP, 443)])
    inv = inventory_of(interfaces=[inventory_of.eni(WEB, WEB_IP, vpc_id="vpc-0web", instance_id="i-0web")],
                       instances=[{"InstanceId": "i-0web", "Tags": [{"Key": "Name", "Value": "web-1"}]}])
    r = only(exposure(records, inventory=inv))
    assert (r["confidence"], r["resource_name"], r["vpc_id"], r["instance_id"]) == ("medium", "web-1", "vpc-0web", "i-0web")
    assert r["evidence"].endswith("(direction from inventory addresses)")
    assert (r["region"], r["interface_type"]) == (fl.REGION, "interface")  # from the inventory


def test_secondary_address_is_the_local_ip(exposure, fl, inventory_of):
    secondary = "10.0.1.11"
    records = [
        fl.flow(WEB, "203.0.113.5", WEB_IP, 40000, 443, flags=2, pkt_dst=secondary, pkt_src="203.0.113.5"),
        fl.flow(WEB, WEB_IP, "203.0.113.5", 443, 40000, flags=18, pkt_src=secondary, pkt_dst="203.0.113.5"),
        *fl.tcp(WEB, "203.0.113.6", 40001, WEB_IP, 443),
        *fl.tcp(WEB, "203.0.113.7", 40002, WEB_IP, 443, direction=False),
    ]
    r = only(exposure(records))
    assert (r["local_ip"], r["connections"]) == (WEB_IP, 3)
    records = records[:2] + [{**x, "pkt_dstaddr": secondary} for x in fl.tcp(WEB, "203.0.113.6", 40001, WEB_IP, 443)[:1]]
    assert only(exposure(records))["local_ip"] == secondary


def test_unknown_account_is_replaced_from_the_inventory(exposure, fl, inventory_of):
    records = fl.tcp("eni-0e0000000000000e1", "203.0.113.5", 40000, "10.0.3.3", 443, account="unknown",
                     source_account_id="210987654321", source_region="eu-west-1")
    r = only(exposure(records))
    assert (r["account_id"], r["region"]) == ("210987654321", "eu-west-1")  # the S3 key's
    inv = inventory_of(interfaces=[
        inventory_of.eni("eni-0e0000000000000e1", "10.0.3.3", interface_type="vpc_endpoint", owner="111122223333",
                         description="VPC Endpoint Interface vpce-0123456789abcdef0", requester_managed=True)])
    r = only(exposure(records, inventory=inv))
    assert (r["account_id"], r["region"], r["resource_name"]) == ("111122223333", "eu-west-1", "vpce-0123456789abcdef0")


def test_region_vpc_and_instance_come_from_the_record_first(exposure, fl, inventory_of):
    records = fl.tcp(WEB, "203.0.113.5", 40000, WEB_IP, 443, region="ap-southeast-2", vpc_id="vpc-0rec",
                     instance_id="i-0rec", source_region="eu-west-1")
    inv = inventory_of(interfaces=[inventory_of.eni(WEB, WEB_IP, vpc_id="vpc-0inv", instance_id="i-0inv")])
    r = only(exposure(records, inventory=inv))
    assert (r["region"], r["vpc_id"], r["instance_id"]) == ("ap-southeast-2", "vpc-0rec", "i-0rec")


def test_record_fields_that_vary_within_an_interface(exposure, fl, monkeypatch):
    """Each finding reports the maximum of the record fields over its own records, also
    when an interface's records disagree (an interface moved to another instance, an
    ``unknown`` account); other interfaces keep their one value."""
    records = (fl.tcp(WEB, "203.0.113.5", 40000, WEB_IP, 443, instance_id="i-0a", account="unknown",
                      source_account_id="210987654321")
               + fl.tcp(WEB, "203.0.113.6", 40001, WEB_IP, 443, instance_id="i-0b", region="eu-west-1")
               + fl.tcp(WEB, "203.0.113.7", 40002, WEB_IP, 22, instance_id="i-0a", account="unknown",
                        source_account_id="210987654321")
               + fl.tcp(APP, "203.0.113.8", 40003, APP_IP, 8443, instance_id="i-0c", vpc_id="vpc-0app"))
    rows = exposure(records)
    https, ssh, app = only(rows, port=443), only(rows, port=22), only(rows, interface_id=APP)
    assert (https["instance_id"], https["account_id"], https["region"]) == ("i-0b", fl.ACCOUNT, "eu-west-1")
    assert (ssh["instance_id"], ssh["account_id"], ssh["region"]) == ("i-0a", "210987654321", None)
    assert (app["instance_id"], app["vpc_id"]) == ("i-0c", "vpc-0app")
    # the same when the fields of every interface are aggregated per record (many vary)
    monkeypatch.setattr(exposure_records, "MAX_VARYING", -1)
    assert findings_records(internet_exposure(fl.native(records, exposure.engine))) == rows


def test_a_forwarding_type_in_some_records_marks_the_interface(exposure, fl):
    records = _unsolicited(fl, NAT, NAT_IP)
    assert exposure(records) != []
    assert exposure(records[:1] + [{**records[1], "interface_type": "NAT_GATEWAY"}] + records[2:]) == []


def test_spellings_of_one_interface_and_address_are_one(exposure, fl):
    """Interface ids and addresses are case-insensitive, IPv6 addresses have several
    forms: the records of one conversation logged in different spellings are one."""
    v6, v6_peer = "2600:1f18:0:1::10", "2001:db8::1"
    records = [
        fl.flow(WEB, v6_peer, v6, 40000, 443, flags=2, direction="ingress"),
        fl.flow(WEB.upper(), v6.upper(), "2001:DB8:0:0::1", 443, 40000, flags=18, direction="egress", nbytes=50),
        fl.flow(WEB.upper(), "2001:0db8::1", "2600:1F18:0:1:0::10", 40000, 443, flags=0, direction="Ingress", t=60),
    ]
    r = only(exposure(records))
    assert (r["interface_id"], r["port"], r["status"], r["confidence"]) == (WEB, 443, "exposed", "high")
    assert (r["peers"], r["connections"], r["bytes_in"], r["bytes_out"]) == (1, 1, 2000, 50)
    assert (r["local_ip"], r["sample_peers"]) == (v6, [v6_peer])


def test_empty_packet_addresses_and_direction_mean_missing(exposure, fl):
    records = fl.tcp(WEB, "203.0.113.5", 40000, WEB_IP, 443, direction=False) + fl.udp(
        WEB, "198.51.100.9", 53000, WEB_IP, 5353, direction=False)
    empty = [{**r, "pkt_srcaddr": "", "pkt_dstaddr": "", "flow_direction": ""} for r in records]
    assert exposure(empty) == exposure(records) != []


def test_strings_that_are_not_addresses_are_never_peers(exposure, fl):
    records = fl.tcp(WEB, "203.0.113.5", 40000, WEB_IP, 443) + fl.tcp(WEB, "not-an-address", 40001, WEB_IP, 443)
    r = only(exposure(records))
    assert (r["peers"], r["sample_peers"]) == (1, ["203.0.113.5"])


def test_html_in_names_is_kept_unchanged(exposure, fl, inventory_of):
    name = '<script>alert("x")</script>\x1b[31m'
    inv = inventory_of(interfaces=[inventory_of.eni(WEB, WEB_IP, instance_id="i-0web")],
                       instances=[{"InstanceId": "i-0web", "Tags": [{"Key": "Name", "Value": name}]}])
    r = only(exposure(fl.tcp(WEB, "203.0.113.5", 40000, WEB_IP, 443), inventory=inv))
    assert r["resource_name"] == name


ECS_ARN = "arn:aws:ecs:us-east-1:123456789012:attachment/0b3f4c2a-1111-2222-3333-444455556666"


def _ecs_records(fl) -> list[dict]:
    """A Fargate task's interface (APP, its records naming the ECS service ``checkout``)
    and an instance's (WEB, no ECS fields), both serving the internet."""
    return (fl.tcp(APP, "203.0.113.5", 40000, APP_IP, 8080, ecs_service_name="checkout")
            + fl.tcp(WEB, "203.0.113.6", 40001, WEB_IP, 443))


def test_an_ecs_task_interface_is_named_by_its_service(exposure, fl, inventory_of):
    inv = inventory_of(interfaces=[inventory_of.eni(APP, APP_IP, description=ECS_ARN),
                                   inventory_of.eni(WEB, WEB_IP, description="web front")])
    rows = exposure(_ecs_records(fl), inventory=inv)
    assert only(rows, interface_id=APP)["resource_name"] == "checkout"  # not the attachment's ARN
    assert only(rows, interface_id=WEB)["resource_name"] == "web front"  # no ECS field: the inventory's name
    # an interface the inventory lacks stays unnamed; a better name (its Name tag) wins
    assert only(exposure(_ecs_records(fl)), interface_id=APP)["resource_name"] is None
    tagged = inventory_of(interfaces=[{**inventory_of.eni(APP, APP_IP, description=ECS_ARN),
                                       "TagSet": [{"Key": "Name", "Value": "checkout-blue"}]}])
    assert only(exposure(_ecs_records(fl), inventory=tagged), interface_id=APP)["resource_name"] == "checkout-blue"


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_enrichment_names_an_ecs_task_interface_by_its_service(fl, inventory_of, engine):
    from flowtools.enrichment.joins import enrich
    from flowtools.frames import to_polars
    inv = inventory_of(interfaces=[inventory_of.eni(APP, APP_IP, description=ECS_ARN)])
    rows = to_polars(enrich(fl.native(_ecs_records(fl), engine), inventory=inv))
    app = rows.filter(pl.col("interface_id") == APP)
    assert set(app["iface_resource_name"]) == {"checkout"}
    assert set(app.filter(pl.col("dst_address") == APP_IP)["dst_resource_name"]) == {"checkout"}
    assert set(rows.filter(pl.col("interface_id") == WEB)["iface_resource_name"]) == {None}


# -- output -------------------------------------------------------------------------------

def test_sample_peers_most_connections_ties_by_address(exposure, fl):
    counts = {"203.0.113.9": 3, "198.51.100.20": 1, "198.51.100.3": 1, "203.0.113.10": 2,
              "192.0.2.77": 1, "203.0.113.100": 1, "198.51.100.200": 2}
    records, port = [], 40000
    for peer, n in counts.items():
        for _ in range(n):
            port += 1
            records += fl.tcp(WEB, peer, port, WEB_IP, 443)
    r = only(exposure(records))
    assert r["sample_peers"] == ["203.0.113.9", "198.51.100.200", "203.0.113.10", "192.0.2.77", "198.51.100.3"]
    assert (r["peers"], r["connections"]) == (7, 11)


def test_output_columns_types_and_order(exposure, fl):
    other = "eni-0aaa0000000000000"
    records = (
        fl.tcp(WEB, "203.0.113.1", 40000, WEB_IP, 22, client_flags=(2,), server_flags=None, client_action="REJECT")
        + [x for i, c in enumerate(CLIENTS[:3]) for x in fl.tcp(WEB, c, 41000 + i, WEB_IP, 3389, client_flags=(2,),
                                                                   server_flags=None, client_action="REJECT")]
        + fl.tcp(WEB, "203.0.113.1", 40001, WEB_IP, 9000, client_flags=(2,), server_flags=None)
        + fl.icmp(WEB, "203.0.113.1", WEB_IP)
        + fl.tcp(WEB, "203.0.113.1", 40002, WEB_IP, 443)
        + fl.tcp(other, "203.0.113.1", 40003, "10.0.9.9", 443)
        + fl.udp(WEB, "203.0.113.1", 40004, WEB_IP, 53)
        + [x for i, c in enumerate(CLIENTS[:2]) for x in fl.tcp(WEB, c, 42000 + i, WEB_IP, 80)]
        + [x for i, c in enumerate(CLIENTS[:2]) for x in fl.tcp(WEB, c, 43000 + i, WEB_IP, 8080)]
    )
    records.append(fl.flow(WEB, "203.0.113.1", WEB_IP, 0, 0, proto=47, direction="ingress", action="REJECT"))
    rows = exposure(records)
    assert keys(rows) == [
        (WEB, "tcp", 80, "exposed"), (WEB, "tcp", 8080, "exposed"),
        (other, "tcp", 443, "exposed"), (WEB, "icmp", None, "exposed"), (WEB, "tcp", 443, "exposed"),
        (WEB, "udp", 53, "exposed"),
        (WEB, "tcp", 9000, "reachable"),
        (WEB, "tcp", 3389, "blocked"), (WEB, "47", 0, "blocked"), (WEB, "tcp", 22, "blocked"),
    ]
    assert all(list(r) == [*COLUMNS, *EXTRA_COLUMNS] for r in rows)
    assert all(r["aws_peers"] is None for r in rows)  # no ip_ranges given
    df = pl.DataFrame(rows)
    assert df.schema["port"] == pl.Int64 and df.schema["sample_peers"] == pl.List(pl.String)


def test_frame_types_on_each_engine(exposure, fl):
    records = fl.tcp(WEB, "203.0.113.5", 40000, WEB_IP, 443)
    frame = exposure.frame(records)
    df = frame.pl() if isinstance(frame, duckdb.DuckDBPyRelation) else frame.collect()
    assert df.columns == [*COLUMNS, *EXTRA_COLUMNS]
    expected = {"port": pl.Int32, "port_to": pl.Int32, "sg_open": pl.Boolean, "peers": pl.Int64,
                "connections": pl.Int64, "bytes_in": pl.Int64, "bytes_out": pl.Int64,
                "sample_peers": pl.List(pl.String), "status": pl.String, "protocol": pl.String,
                "aws_peers": pl.Int64}
    assert {c: df.schema[c] for c in expected} == expected
    assert isinstance(df.schema["first_seen"], pl.Datetime) and df.schema["first_seen"].time_zone is not None
    assert df["first_seen"].dt.convert_time_zone("UTC").to_list()[0].isoformat() == "2026-11-20T10:00:00+00:00"


def test_duckdb_without_replacement_scans(fl, inventory_of):
    """Side tables and materialised conversations then go through TEMP tables."""
    records = fl.tcp(WEB, "203.0.113.5", 40000, WEB_IP, 443) + fl.udp(WEB, "198.51.100.9", 53000, WEB_IP, 5353)
    inv = inventory_of(interfaces=[inventory_of.eni(WEB, WEB_IP, instance_id="i-0web")])
    con = duckdb.connect()
    con.execute("SET python_enable_replacements = false")
    rel = con.from_arrow(fl.frame(records).to_arrow())
    for method in ("full", "naive"):
        rows = findings_records(internet_exposure(rel, inventory=inv, method=method))
        assert rows == findings_records(internet_exposure(fl.native(records, "polars"), inventory=inv, method=method))
        assert rows


def test_duckdb_result_lives_on_the_input_connection(fl):
    con = duckdb.connect()
    rel = con.from_arrow(fl.frame(fl.tcp(WEB, "203.0.113.5", 40000, WEB_IP, 443)).to_arrow())
    findings = internet_exposure(rel)
    joined = findings.set_alias("f").join(rel.select("interface_id").distinct().set_alias("r"), "interface_id")
    assert joined.pl()["port"].to_list() == [443]


def test_accepts_flows_objects_and_polars_dataframes(fl):
    df = fl.frame(fl.tcp(WEB, "203.0.113.5", 40000, WEB_IP, 443))
    as_flows = SimpleNamespace(frame=df.lazy())
    assert isinstance(internet_exposure(df), pl.LazyFrame)
    assert findings_records(internet_exposure(as_flows)) == findings_records(internet_exposure(df))


def test_nodata_and_skipdata_records_are_ignored(exposure, fl):
    status = [{"version": 2, "account_id": fl.ACCOUNT, "interface_id": WEB, "start": fl.T0, "end": fl.T0 + 60,
               "log_status": s} for s in ("NODATA", "SKIPDATA")]
    assert exposure(status) == []
    assert len(exposure(status + fl.tcp(WEB, "203.0.113.5", 40000, WEB_IP, 443))) == 1


def test_unknown_method_is_a_usage_error(fl):
    with pytest.raises(UsageError, match="method must be 'full' or 'naive'"):
        internet_exposure(fl.frame([]), method="fast")


def test_findings_validate_against_the_json_schema(exposure, fl, inventory_of):
    records = (fl.tcp(WEB, "203.0.113.5", 40000, WEB_IP, 443) + fl.icmp(WEB, "203.0.113.6", WEB_IP)
               + fl.tcp(WEB, "203.0.113.5", 40001, WEB_IP, 23, client_flags=(2,), server_flags=None,
                        client_action="REJECT"))
    inv = inventory_of(interfaces=[inventory_of.eni(WEB, WEB_IP)])
    validator = jsonschema.Draft202012Validator(findings_schema())
    for kw in ({}, {"method": "naive"}, {"inventory": inv}):
        rows = exposure(records, **kw)
        assert rows
        validator.validate(json.loads(json.dumps(rows)))
    validator.validate(exposure([]))
    bad = {**rows[0], "status": "open"}
    assert not validator.is_valid([bad])


# -- properties ---------------------------------------------------------------------------

_IFACES = ["eni-0p00000000000001", "eni-0p00000000000002"]
_ADDRS = ["10.0.0.1", "10.0.0.2", "203.0.113.1", "203.0.113.2", "198.51.100.3", "2001:db8::1",
          "fd00::2", "100.64.0.1", "169.254.169.254"]
_record = st.fixed_dictionaries({
    "iface": st.sampled_from(_IFACES), "src": st.sampled_from(_ADDRS), "dst": st.sampled_from(_ADDRS),
    "sport": st.sampled_from([0, 22, 53, 443, 8443, 33000, 51820, 60000]),
    "dport": st.sampled_from([0, 22, 53, 443, 8443, 33000, 51820, 60000]),
    "proto": st.sampled_from([6, 6, 17, 1]),
    "flags": st.sampled_from([None, 0, 1, 2, 3, 4, 18, 19]),
    "action": st.sampled_from(["ACCEPT", "ACCEPT", "REJECT"]),
    "direction": st.sampled_from([None, "ingress", "egress"]),
    "t": st.integers(0, 300), "pkt": st.booleans(),
})


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(specs=st.lists(_record, max_size=12), method=st.sampled_from(["full", "full", "naive"]))
def test_engines_agree_and_findings_name_input_interfaces(fl, specs, method):
    records = [fl.flow(s["iface"], s["src"], s["dst"], s["sport"], s["dport"], proto=s["proto"],
                       flags=s["flags"] if s["proto"] == 6 else None, action=s["action"],
                       direction=s["direction"], t=s["t"],
                       pkt_src=s["src"] if s["pkt"] else None, pkt_dst=s["dst"] if s["pkt"] else None)
               for s in specs]
    duck = findings_records(internet_exposure(fl.native(records, "duckdb"), method=method))
    polars = findings_records(internet_exposure(fl.native(records, "polars"), method=method))
    assert duck == polars
    assert {r["interface_id"] for r in duck} <= {s["iface"] for s in specs}
    for r in duck:
        assert r["status"] in ("exposed", "reachable", "blocked")
        assert 1 <= len(r["sample_peers"]) <= 5 and r["peers"] >= len(r["sample_peers"])
        assert r["connections"] >= r["peers"] >= 1


def test_thresholds_are_documented():
    assert exposure_module.SERVICE_FAN_IN >= 2 and exposure_module.CLIENT_FAN_OUT >= 2
    assert 51820 in exposure_module.KNOWN_SERVICE_PORTS and 443 not in exposure_module.KNOWN_SERVICE_PORTS


@pytest.mark.parametrize("direction", [True, False])
def test_a_single_peer_on_an_unregistered_port_is_decided_by_the_ephemeral_port(exposure, fl, direction):
    """UDP 7777 (no service port, one client: no fan-in) reached from the client's ephemeral
    port 50123, the answer logged in a window that starts before the request's: who was
    seen first would say the server called the client; the ephemeral port says otherwise."""
    records = fl.udp(WEB, "198.51.100.77", 50123, WEB_IP, 7777, direction=direction, t=10)
    records[1]["start"] -= 5  # the answer's window starts first
    rows = exposure(records)
    assert [(r["port"], r["protocol"], r["status"], r["peers"]) for r in rows] == [(7777, "udp", "exposed", 1)]
    assert rows[0]["confidence"] == ("medium" if direction else "low")
    # the mirror image: the interface's own client port to a peer's unregistered port
    out = fl.udp(WEB, WEB_IP, 50123, "198.51.100.77", 7777, local="client", direction=direction, t=10)
    out[0]["start"] += 5  # its request is logged after the answer
    assert exposure(out) == []
