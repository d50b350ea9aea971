"""flowtools.enrich (names on both sides of every flow) and the security-group view of exposure."""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest
from flowlog_files import SAMPLES

import flowtools
from flowtools.enrichment.joins import ENRICHED_COLUMNS, resource_id
from flowtools.enrichment.security_groups import admits_internet

TRICKY = '<img src=x onerror=alert(1)> "web"\t\x1b[31m&amp;'
WEB, NAT, OTHER = "eni-0web0000000000001", "eni-0nat0000000000001", "eni-0dup0000000000001"


def ip_ranges(tmp_path) -> flowtools.IpRanges:
    doc = {"syncToken": "1763600000", "createDate": "2026-11-20-00-00-00",
           "prefixes": [
               {"ip_prefix": "52.0.0.0/8", "region": "us-east-1", "service": "AMAZON", "network_border_group": "us-east-1"},
               {"ip_prefix": "52.94.0.0/16", "region": "us-east-1", "service": "S3", "network_border_group": "us-east-1"},
               {"ip_prefix": "198.51.100.0/24", "region": "GLOBAL", "service": "CLOUDFRONT",
                "network_border_group": "GLOBAL"}],
           "ipv6_prefixes": [
               {"ipv6_prefix": "2600:1f00::/24", "region": "us-east-1", "service": "AMAZON",
                "network_border_group": "us-east-1"},
               {"ipv6_prefix": "2600:1f18::/32", "region": "us-east-1", "service": "EC2",
                "network_border_group": "us-east-1"}]}
    path = tmp_path / "ip-ranges.json"
    path.write_text(json.dumps(doc))
    return flowtools.IpRanges.load(path)


@pytest.fixture
def estate(inventory_of):
    web = inventory_of.eni(WEB, "10.0.1.10", public_ip="54.1.2.3", instance_id="i-0web", ipv6=("2600:1f18::10",))
    web["TagSet"] = [{"Key": "Name", "Value": "web-eni"}]
    nat = inventory_of.eni(NAT, "10.0.0.5", interface_type="nat_gateway", public_ip="54.9.9.9",
                           description="Interface for NAT Gateway nat-0abc123")
    twin_a = inventory_of.eni("eni-0twa0000000000001", "172.31.0.9", vpc_id="vpc-0aaa")
    twin_b = inventory_of.eni("eni-0twb0000000000001", "172.31.0.9", vpc_id="vpc-0bbb")
    instance = {"InstanceId": "i-0web", "Tags": [{"Key": "Name", "Value": TRICKY}], "VpcId": "vpc-0abc",
                "SubnetId": "subnet-0abc", "PrivateIpAddress": "10.0.1.10", "NetworkInterfaces": []}
    vpc = {"VpcId": "vpc-0abc", "CidrBlock": "10.0.0.0/16", "OwnerId": "123456789012",
           "Tags": [{"Key": "Name", "Value": "prod"}]}
    subnets = {"Subnets": [{"SubnetId": "subnet-0abc", "VpcId": "vpc-0abc", "CidrBlock": "10.0.1.0/24",
                            "Tags": [{"Key": "Name", "Value": "public-a"}]}]}
    return inventory_of(interfaces=[web, nat, twin_a, twin_b], instances=[instance], vpcs=[vpc], subnets=subnets)


def records(fl):
    return [
        # an internet client to the web server (CLOUDFRONT range), and the answer
        fl.flow(WEB, "198.51.100.7", "10.0.1.10", 50000, 443, flags=2, direction="ingress", vpc_id="vpc-0abc"),
        fl.flow(WEB, "10.0.1.10", "198.51.100.7", 443, 50000, flags=18, direction="egress", vpc_id="vpc-0abc"),
        # the web server's own call to S3 through the NAT gateway, as the NAT gateway logs it
        fl.flow(NAT, "10.0.0.5", "52.94.1.1", 40000, 443, pkt_src="10.0.1.10", pkt_dst="52.94.1.1",
                direction="egress", vpc_id="vpc-0abc"),
        # a peer that only the record names (pkt-dst-aws-service), outside the ip-ranges file
        fl.flow(WEB, "10.0.1.10", "192.0.2.44", 40001, 443, pkt_dst_aws_service="DYNAMODB", direction="egress"),
        # IPv6 to an EC2 address; an address two interfaces share; a private peer not ours
        fl.flow(WEB, "2600:1F18::10", "2600:1f18::99", 40002, 53, proto=17, direction="egress"),
        fl.flow(WEB, "172.31.0.9", "10.0.1.10", 40003, 22, direction="ingress"),
        fl.flow(WEB, "192.168.7.7", "10.0.1.10", 40004, 5432, direction="ingress", vpc_id="vpc-0abc"),
    ]


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_names_on_both_sides(fl, estate, tmp_path, engine):
    frame = flowtools.enrich(fl.native(records(fl), engine), inventory=estate, ip_ranges=ip_ranges(tmp_path))
    assert isinstance(frame, duckdb.DuckDBPyRelation if engine == "duckdb" else pl.LazyFrame)
    df = frame.pl() if engine == "duckdb" else frame.collect()
    assert df.columns[-len(ENRICHED_COLUMNS):] == list(ENRICHED_COLUMNS)
    rows = {(r["srcport"], r["dstport"]): r for r in df.iter_rows(named=True)}

    inbound = rows[(50000, 443)]
    assert inbound["src_scope"] == "internet" and inbound["src_aws_service"] == "CLOUDFRONT"
    assert inbound["src_aws_region"] == "GLOBAL" and inbound["dstport_service"] == "https"
    assert inbound["dst_scope"] == "interface" and inbound["dst_interface_id"] == WEB
    assert inbound["dst_resource_name"] == TRICKY  # the Name tag, unchanged: HTML, tab, escape sequence
    assert inbound["dst_resource_id"] == "i-0web" and inbound["dst_public_ip"] == "54.1.2.3"
    assert (inbound["dst_vpc_name"], inbound["dst_subnet_name"]) == ("prod", "public-a")
    assert inbound["iface_resource_name"] == TRICKY and inbound["iface_type"] == "interface"
    assert inbound["ip_ranges_sync_token"] == "1763600000"

    nat = rows[(40000, 443)]  # the inside host behind the NAT gateway, from pkt-srcaddr
    assert nat["src_resource_name"] == TRICKY and nat["src_address"] == "10.0.1.10"
    assert nat["iface_resource_name"] == "nat-0abc123" and nat["iface_resource_id"] == "nat-0abc123"
    assert nat["iface_type"] == "nat_gateway" and nat["iface_public_ip"] == "54.9.9.9"
    assert nat["dst_aws_service"] == "S3" and nat["dst_scope"] == "internet"

    assert rows[(40001, 443)]["dst_aws_service"] == "DYNAMODB"  # fallback to the record's field
    v6 = rows[(40002, 53)]
    assert v6["src_interface_id"] == WEB and v6["src_address"] == "2600:1f18::10"  # normalised, then joined
    assert v6["dst_aws_service"] == "EC2" and v6["dstport_service"] == "domain"
    shared = rows[(40003, 22)]
    assert shared["src_interface_id"] is None and shared["src_scope"] == "internal"  # two owners: no guess
    private = rows[(40004, 5432)]
    assert private["src_scope"] == "internal" and private["dst_scope"] == "interface"
    assert private["dstport_service"] == "postgresql"


def test_engines_agree_on_the_sample(sample_dir):
    inv, ranges = flowtools.Inventory.load(SAMPLES / "inventory"), flowtools.IpRanges.load(SAMPLES / "ip-ranges.json")
    out = []
    for engine in ("duckdb", "polars"):
        flows = flowtools.load(SAMPLES, engine=engine, start="2026-11-20T10:00Z", end="2026-11-20T12:00Z",
                               progress=False)
        frame = flowtools.enrich(flows, inventory=inv, ip_ranges=ranges)
        df = frame.pl() if engine == "duckdb" else frame.collect()
        df = df.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))
        out.append(df.sort(df.columns, nulls_last=True))
    assert out[0].height == len(flows) > 1000
    assert out[0].equals(out[1])
    names = set(out[0]["iface_resource_name"].drop_nulls())
    assert {"web-1", "api-nlb"} <= names
    assert out[0].filter(pl.col("src_scope") == "internet")["src_aws_service"].drop_nulls().len() > 0


def test_without_inventory_or_ip_ranges_scopes_come_from_address_classes(fl):
    df = flowtools.enrich(fl.native(records(fl), "polars")).collect()
    rows = {(r["srcport"], r["dstport"]): r for r in df.iter_rows(named=True)}
    assert rows[(50000, 443)]["src_scope"] == "internet" and rows[(50000, 443)]["dst_scope"] == "internal"
    assert df["src_resource_name"].null_count() == df.height and df["ip_ranges_sync_token"].null_count() == df.height
    assert rows[(40001, 443)]["dst_aws_service"] == "DYNAMODB"


@pytest.mark.parametrize(("description", "expected"), [
    ("Interface for NAT Gateway nat-0abc", "nat-0abc"),
    ("ELB net/api-nlb/0123456789abcdef", "net/api-nlb/0123456789abcdef"),
    ("ELB classic-lb", "classic-lb"),
    ("VPC Endpoint Interface vpce-0123", "vpce-0123"),
    ("AWS Lambda VPC ENI-my-fn-0f0e0d0c-1111-2222-3333-444455556666", "my-fn"),
    ("something else", "eni-1"),
])
def test_resource_id(description, expected):
    assert resource_id(description, interface_id="eni-1") == expected
    assert resource_id(description, instance_id="i-1", interface_id="eni-1") == "i-1"


@pytest.mark.parametrize(("cidr", "admits"), [
    ("0.0.0.0/0", True), ("::/0", True), ("198.51.100.0/24", True), ("54.0.0.0/8", True),
    ("10.0.0.0/8", False), ("10.1.0.0/16", False), ("fd00::/8", False), ("192.168.1.1/32", False),
    ("100.64.0.0/10", False), (None, False), ("nonsense", False)])
def test_admits_internet(cidr, admits):
    assert admits_internet(cidr) is admits


# -- security groups: sg_open and configured --------------------------------------------------

def group(gid, *rules):
    perms = []
    for proto, lo, hi, cidrs in rules:
        perm = {"IpProtocol": proto, "IpRanges": [{"CidrIp": c} for c in cidrs if ":" not in c],
                "Ipv6Ranges": [{"CidrIpv6": c} for c in cidrs if ":" in c], "UserIdGroupPairs": [],
                "PrefixListIds": []}
        if proto != "-1":
            perm.update(FromPort=lo, ToPort=hi)
        perms.append(perm)
    return {"GroupId": gid, "GroupName": gid.removeprefix("sg-"), "Description": "", "VpcId": "vpc-0abc",
            "OwnerId": "123456789012", "IpPermissions": perms, "IpPermissionsEgress": []}


@pytest.fixture
def sg_estate(inventory_of):
    web = inventory_of.eni(WEB, "10.0.1.10", public_ip="54.1.2.3")
    web["Groups"] = [{"GroupId": "sg-web", "GroupName": "web"}, {"GroupId": "sg-admin", "GroupName": "admin"}]
    private = inventory_of.eni("eni-0prv0000000000001", "10.0.2.20")
    private["Groups"] = [{"GroupId": "sg-app", "GroupName": "app"}]
    unknown = inventory_of.eni("eni-0unk0000000000001", "10.0.3.30")
    unknown["Groups"] = [{"GroupId": "sg-elsewhere", "GroupName": "x"}]
    groups = {"SecurityGroups": [
        group("sg-web", ("tcp", 443, 443, ["0.0.0.0/0", "::/0"]), ("tcp", 8000, 8100, ["0.0.0.0/0"]),
              ("icmp", 8, -1, ["0.0.0.0/0"])),
        group("sg-admin", ("tcp", 22, 22, ["198.51.100.0/24"])),
        group("sg-app", ("-1", None, None, ["0.0.0.0/0"]), ("tcp", 5432, 5432, ["10.0.0.0/16"])),
    ]}
    return inventory_of(interfaces=[web, private, unknown], **{"security-groups": groups})


def test_sg_open_and_configured(exposure, fl, sg_estate):
    recs = [
        *fl.tcp(WEB, "203.0.113.5", 50000, "10.0.1.10", 443),   # allowed by 0.0.0.0/0
        *fl.tcp(WEB, "198.51.100.9", 50001, "10.0.1.10", 22),   # allowed by the office range
        *fl.tcp(WEB, "203.0.113.6", 50002, "10.0.1.10", 3389, server_flags=None, client_action="REJECT",
                client_flags=(2,)),                              # nothing admits it: blocked
        *fl.tcp(WEB, "203.0.113.7", 50003, "10.0.1.10", 8050),  # inside the 8000-8100 rule
        *fl.tcp("eni-0unk0000000000001", "203.0.113.8", 50004, "10.0.3.30", 443),
    ]
    rows = exposure(recs, inventory=sg_estate, include_configured=True)
    by = {(r["interface_id"], r["protocol"], r["port"], r["status"]): r for r in rows}
    assert by[(WEB, "tcp", 443, "exposed")]["sg_open"] is True
    assert by[(WEB, "tcp", 22, "exposed")]["sg_open"] is True
    assert by[(WEB, "tcp", 3389, "blocked")]["sg_open"] is False
    assert by[(WEB, "tcp", 8050, "exposed")]["sg_open"] is True
    assert by[("eni-0unk0000000000001", "tcp", 443, "exposed")]["sg_open"] is None  # its group is not known
    configured = [r for r in rows if r["status"] == "configured"]
    assert [(r["interface_id"], r["protocol"], r["port"], r["port_to"]) for r in configured] == [
        ("eni-0prv0000000000001", "all", None, None),  # observed traffic on 443 and 8050 hides those rules
        (WEB, "icmp", None, None),
    ]
    app = configured[0]
    assert app["local_ip"] == "10.0.2.20" and "no public IP" in app["evidence"] and "sg-app" in app["evidence"]
    assert "public IP 54.1.2.3" in configured[1]["evidence"]
    assert [r["status"] for r in exposure(recs, inventory=sg_estate)].count("configured") == 0


def test_configured_rule_with_a_port_range_and_both_families_is_one_finding(exposure, fl, sg_estate):
    rows = exposure([*fl.tcp(WEB, "203.0.113.5", 50000, "10.0.1.10", 443)], inventory=sg_estate,
                    include_configured=True)
    configured = {(r["interface_id"], r["protocol"], r["port"], r["port_to"]) for r in rows
                  if r["status"] == "configured"}
    assert (WEB, "tcp", 8000, 8100) in configured
    assert (WEB, "tcp", 443, 443) not in configured  # observed
    assert not any(r["port"] == 22 for r in rows if r["status"] == "configured")  # not 0.0.0.0/0
