"""Egress to the internet: direct, through a NAT gateway attributed to the instance, counted once."""

from __future__ import annotations

import duckdb
import polars as pl
from polars.testing import assert_frame_equal

from flowtools import IpRanges
from flowtools.analyses.egress import egress
from flowtools.analyses.exposure import interface_batches

NAT, NAT_IP = "eni-nat", "10.0.0.220"
APP1, APP1_IP = "eni-app1", "10.0.1.5"  # behind the NAT; its subnet logs too
APP2, APP2_IP = "eni-app2", "10.0.2.6"  # behind the NAT; its subnet does not log
WEB, WEB_IP = "eni-web", "10.0.3.7"  # public IP, direct to the internet
API, S3_IP = "203.0.113.5", "52.95.7.10"


def collect(frame) -> pl.DataFrame:
    return frame.pl() if isinstance(frame, duckdb.DuckDBPyRelation) else frame.collect()


def nat_conversation(fl, host: str, sport: int, remote: str, nbytes: int, *, own_log: str | None, t: int = 0):
    """One TCP connection from ``host`` through the NAT gateway, as every interface logs it."""
    f = fl.flow
    out = [
        # the gateway: inside leg (instance -> gateway, pkt-dstaddr = internet), outside leg, replies
        f(NAT, host, NAT_IP, sport, 443, pkt_src=host, pkt_dst=remote, nbytes=nbytes, t=t),
        f(NAT, NAT_IP, remote, 61000 + sport % 100, 443, pkt_src=NAT_IP, pkt_dst=remote, nbytes=nbytes, t=t),
        f(NAT, remote, NAT_IP, 443, 61000 + sport % 100, pkt_src=remote, pkt_dst=NAT_IP, nbytes=9000, t=t),
        f(NAT, NAT_IP, host, 443, sport, pkt_src=remote, pkt_dst=host, nbytes=9000, t=t),
    ]
    if own_log:  # the instance's own interface: egress to the internet host, and the answer
        out += [f(own_log, host, remote, sport, 443, pkt_src=host, pkt_dst=remote, nbytes=nbytes, t=t,
                  direction="egress", traffic_path=1),
                f(own_log, remote, host, 443, sport, pkt_src=remote, pkt_dst=host, nbytes=9000, t=t,
                  direction="ingress")]
    return out


def records(fl):
    f = fl.flow
    return [
        *nat_conversation(fl, APP1_IP, 40001, API, 1000, own_log=APP1),
        *nat_conversation(fl, APP1_IP, 40002, API, 2000, own_log=APP1, t=60),
        *nat_conversation(fl, APP2_IP, 40003, S3_IP, 5000, own_log=None),
        f(WEB, WEB_IP, API, 50000, 443, nbytes=700, direction="egress", traffic_path=8),
        f(WEB, API, WEB_IP, 443, 50000, nbytes=100, direction="ingress"),
        f(WEB, "198.51.100.7", WEB_IP, 5555, 443, nbytes=300, direction="ingress"),  # inbound: not egress
        f(WEB, WEB_IP, "10.0.1.5", 50001, 8080, nbytes=444, direction="egress"),  # internal: not egress
    ]


def test_each_byte_is_counted_once_from_the_host_that_sent_it(fl, inventory_of, engine):
    inventory = inventory_of(interfaces=[
        fl_eni(inventory_of, NAT, NAT_IP, interface_type="nat_gateway",
               description="Interface for NAT Gateway nat-0abc"),
        fl_eni(inventory_of, APP1, APP1_IP), fl_eni(inventory_of, APP2, APP2_IP),
        fl_eni(inventory_of, WEB, WEB_IP, public_ip="54.1.2.3"),
    ])
    got = collect(egress(fl.native(records(fl), engine), inventory=inventory))
    rows = {(r["interface_id"], r["via"], r["destination"]): r for r in got.iter_rows(named=True)}
    assert set(rows) == {(APP1, "direct", "internet"), (APP2, NAT, "internet"), (WEB, "direct", "internet")}
    assert rows[(APP1, "direct", "internet")]["bytes_out"] == 3000  # not 6000 or 9000: its own log counts
    assert rows[(APP1, "direct", "internet")]["conversations"] == 2
    assert rows[(APP2, NAT, "internet")]["bytes_out"] == 5000 and rows[(APP2, NAT, "internet")]["local_address"] == \
        APP2_IP
    assert rows[(WEB, "direct", "internet")]["bytes_out"] == 700
    assert got["bytes_out"].sum() == 3000 + 5000 + 700  # the NAT's outside leg is never counted
    assert got["bytes_out"].to_list() == sorted(got["bytes_out"].to_list(), reverse=True)


def test_aws_destinations_by_service_and_without_an_inventory(fl, engine):
    ranges = IpRanges({"syncToken": "1", "createDate": "2026-11-19-00-00-00", "ipv6_prefixes": [],
                       "prefixes": [{"ip_prefix": "52.95.7.0/24", "region": "us-east-1", "service": "S3",
                                     "network_border_group": "us-east-1"}]})
    got = collect(egress(fl.native(records(fl), engine), ip_ranges=ranges))
    s3 = got.filter(pl.col("destination") == "S3")
    # without an inventory the gateway is known from its inside legs, and app2's interface is
    # unknown (its own subnet does not log): the address is kept
    assert s3.select("interface_id", "local_address", "via", "aws_region", "bytes_out").rows() == [
        (None, APP2_IP, NAT, "us-east-1", 5000)]
    assert got.filter(pl.col("destination") == "internet")["bytes_out"].sum() == 3000 + 700


def test_balancers_transit_gateways_rejects_and_records_without_direction(fl, inventory_of, engine):
    """A load balancer's answer counts only when no target logged it; a transit gateway,
    a REJECTed record and inbound bytes never count; without flow-direction an egress
    record is one whose source is not internet."""
    nlb, tgw, target, old = "eni-nlb", "eni-tgw", "eni-target", "eni-old"
    inventory = inventory_of(interfaces=[
        fl_eni(inventory_of, nlb, "10.0.4.10", interface_type="network_load_balancer"),
        fl_eni(inventory_of, tgw, "10.0.5.1", interface_type="transit_gateway"),
        fl_eni(inventory_of, target, "10.0.4.20"), fl_eni(inventory_of, old, "10.0.6.6"),
    ])
    f = fl.flow
    got = collect(egress(fl.native([
        # answered by the target itself (client IP preservation): the target's, not the balancer's
        f(target, "10.0.4.20", "198.51.100.9", 443, 50123, nbytes=800),
        f(nlb, "10.0.4.10", "198.51.100.9", 443, 50123, nbytes=800),
        f(nlb, "10.0.4.10", "198.51.100.10", 443, 50124, nbytes=600),  # no target logged it
        f(nlb, "198.51.100.10", "10.0.4.10", 50124, 443, nbytes=50),  # inbound
        f(tgw, "10.0.5.5", API, 40000, 443, nbytes=999),  # forwarded by the transit gateway
        f(old, "10.0.6.6", API, 40001, 443, nbytes=321),
        f(old, "10.0.6.6", API, 40002, 443, nbytes=321),
        f(old, "10.0.6.6", API, 40003, 443, nbytes=77, action="REJECT"),
        f(old, API, "10.0.6.6", 443, 40001, nbytes=5000),  # the answer: inbound
    ], engine), inventory=inventory))
    assert got.select("interface_id", "via", "destination", "bytes_out", "conversations", "peers").rows() == [
        (target, "direct", "internet", 800, 1, 1), (old, "direct", "internet", 642, 2, 1),
        (nlb, "direct", "internet", 600, 1, 1)]


def in_order(frame: pl.DataFrame) -> pl.DataFrame:
    """Rows in one order (the result's order leaves ties of its sort keys to the engine)."""
    return frame.sort(frame.columns, nulls_last=True)


def fl_eni(inventory_of, *args, **kw):
    return inventory_of.eni(*args, **kw)


def test_batches_of_interfaces_give_the_one_pass_result(fl, inventory_of, engine):
    """Run per batch of whole interfaces (``batch_records=1``: one interface a batch, each
    in slices of one internet address), the NAT gateway's inside legs, the instance's own
    log of them, the balancer and its target are grouped in different batches and matched
    after: the same rows as one pass."""
    nlb, target = "eni-nlb", "eni-target"
    inventory = inventory_of(interfaces=[
        fl_eni(inventory_of, NAT, NAT_IP, interface_type="nat_gateway"),
        fl_eni(inventory_of, APP1, APP1_IP), fl_eni(inventory_of, APP2, APP2_IP),
        fl_eni(inventory_of, WEB, WEB_IP, public_ip="54.1.2.3"),
        fl_eni(inventory_of, nlb, "10.0.4.10", interface_type="network_load_balancer"),
        fl_eni(inventory_of, target, "10.0.4.20"),
    ])
    f = fl.flow
    flows = fl.native([
        *records(fl),
        f(target, "10.0.4.20", "198.51.100.9", 443, 50123, nbytes=800),
        f(nlb, "10.0.4.10", "198.51.100.9", 443, 50123, nbytes=800),  # the target logged it
        f(nlb, "10.0.4.10", "198.51.100.10", 443, 50124, nbytes=600),
        f(None, "10.0.7.7", API, 40100, 443, nbytes=55),  # no interface: in no batch, no sender's
        f(WEB, WEB_IP, API, None, None, proto=1, nbytes=66),  # no ports: counts as one conversation
        f(WEB, WEB_IP, S3_IP, None, None, proto=1, nbytes=77),
    ], engine)
    assert len(interface_batches(flows, 1)) == 5  # app2 does not log
    one_pass = collect(egress(flows, inventory=inventory, batch_records=0))
    batched = collect(egress(flows, inventory=inventory, batch_records=1))
    assert_frame_equal(in_order(batched), in_order(one_pass))
    rows = {(r["interface_id"], r["via"]): r for r in batched.iter_rows(named=True)}
    assert rows[(APP2, NAT)]["bytes_out"] == 5000 and rows[(APP1, "direct")]["bytes_out"] == 3000
    assert rows[(nlb, "direct")]["bytes_out"] == 600 and None not in {k[0] for k in rows}
    assert rows[(WEB, "direct")]["conversations"] == 2  # 50000->443, and the port-less ones as one


def test_batched_sample_is_the_one_pass_result(sample_runs, engine):
    """The sample (NAT gateways, balancers, AWS destinations) in several batches of whole
    interfaces: every conversation in exactly one batch, so the same rows as one pass."""
    flows, inventory = sample_runs.flows(engine), sample_runs.inventory
    ranges = IpRanges.load(sample_runs.root / "ip-ranges.json")
    assert len(interface_batches(flows.frame, 40_000)) >= 3
    one_pass = collect(egress(flows, inventory=inventory, ip_ranges=ranges, batch_records=0))
    batched = collect(egress(flows, inventory=inventory, ip_ranges=ranges, batch_records=40_000))
    assert (one_pass["via"] != "direct").any() and one_pass.height > 10
    assert_frame_equal(in_order(batched), in_order(one_pass))
