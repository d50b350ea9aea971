"""Inventory.load: AWS CLI JSON files into tables; malformed input names the file."""

from __future__ import annotations

import duckdb
import polars as pl
import pytest

from flowtools.enrichment.inventory import SCHEMAS, Inventory, resource_name
from flowtools.errors import FlowtoolsError, InventoryError
from flowtools.frames import side_table


@pytest.fixture
def inv(inventory_dir) -> Inventory:
    return Inventory.load(inventory_dir)


def by_id(df: pl.DataFrame, key: str) -> dict[str, dict]:
    return {r[key]: r for r in df.iter_rows(named=True)}


def test_loads_every_kind_recursively_and_ignores_other_files(docs, inv):
    assert len(inv.files) == 6
    assert inv.kinds == {"network-interfaces", "instances", "vpcs", "subnets", "security-groups"}
    for name, schema in SCHEMAS.items():
        assert dict(inv.table(name).schema) == schema
    assert sorted(inv.vpcs["vpc_id"]) == ["vpc-0eu000000000001", "vpc-0prod00000000001"]
    eu = by_id(inv.vpcs, "vpc_id")["vpc-0eu000000000001"]
    assert (eu["account_id"], eu["region"]) == (docs.OTHER_ACCOUNT, "eu-west-1")  # from the file name


def test_interfaces_addresses_and_attachment(docs, inv):
    web = by_id(inv.interfaces, "interface_id")["eni-0web0000000000001"]
    assert (web["account_id"], web["region"], web["owner_id"]) == (docs.ACCOUNT, "us-east-1", docs.ACCOUNT)
    assert web["private_ip"] == "10.10.0.11" and web["private_ips"] == ["10.10.0.11", "10.10.0.12"]
    assert web["public_ip"] == "54.144.10.11" and web["public_ips"] == ["54.144.10.11", "54.144.10.99"]
    assert web["ipv6_addresses"] == ["2600:1f18:1000::13"]  # compressed, lower case
    assert (web["instance_id"], web["vpc_id"], web["subnet_id"]) == (
        "i-0web0000000000001", "vpc-0prod00000000001", "subnet-0pub000000000001")
    assert web["security_group_ids"] == ["sg-0web0000000000001"]
    assert web["requester_managed"] is False and web["name"] == "web-1 eni"


def test_both_nat_gateway_spellings_are_normalised_and_the_raw_kept(inv):
    enis = by_id(inv.interfaces, "interface_id")
    a, b = enis["eni-0nat0000000000001"], enis["eni-0nat0000000000002"]
    assert (a["interface_type"], a["interface_type_raw"]) == ("nat_gateway", "nat_gateway")
    assert (b["interface_type"], b["interface_type_raw"]) == ("nat_gateway", "natGateway")
    assert a["requester_managed"] is True and a["requester_id"] == "440000000000"


def test_resource_names(inv):
    names = dict(zip(inv.interfaces["interface_id"], inv.interfaces["resource_name"], strict=True))
    assert names == {
        "eni-0web0000000000001": "web-1",  # the instance's Name tag wins
        "eni-0nat0000000000001": "nat-0123456789abcdef0",
        "eni-0nat0000000000002": "nat-0fedcba9876543210",
        "eni-0nlb0000000000001": "api-nlb",
        "eni-0alb0000000000001": "shop-alb",
        "eni-0elb0000000000001": "classic-web",
        "eni-0vpce000000000001": "vpce-0123456789abcdef0",
        "eni-0lambda0000000001": "order-processor",
        "eni-0rds0000000000001": "RDSNetworkInterface",
        "eni-0web0000000000002": "web-1",  # only described inside describe-instances
    }


@pytest.mark.parametrize(("description", "expected"), [
    ("Interface for NAT Gateway nat-0abc", "nat-0abc"),
    ("ELB net/api-nlb/0123456789abcdef", "api-nlb"),
    ("ELB app/my-alb/50dc6c495c0c9188", "my-alb"),
    ("ELB gwy/inspection/0123", "inspection"),
    ("ELB legacy-elb", "legacy-elb"),
    ("VPC Endpoint Interface vpce-0a1b2c3d", "vpce-0a1b2c3d"),
    ("AWS Lambda VPC ENI-my-func-name-1a2b3c4d-5e6f-7a8b-9c0d-1e2f3a4b5c6d", "my-func-name"),
    ("AWS Lambda VPC ENI-short", "short"),
    ("Network Interface for Transit Gateway Attachment tgw-attach-0abc", "tgw-attach-0abc"),
    ("", None), (None, None), ("my own description", "my own description"),
])
def test_resource_name_from_descriptions(description, expected):
    assert resource_name(description) == expected


def test_resource_name_order():
    assert resource_name("ELB net/a/1", instance_name="box") == "box"
    assert resource_name("ELB net/a/1", interface_name="tagged") == "a"
    assert resource_name("", interface_name="tagged") == "tagged"


def test_tags_are_kept_unchanged(docs, inv):
    web = by_id(inv.interfaces, "interface_id")["eni-0web0000000000001"]
    assert {"key": "Note", "value": docs.HTML_TAG} in web["tags"]
    inst = by_id(inv.instances, "instance_id")["i-0web0000000000001"]
    assert inst["name"] == "web-1" and {"key": "Owner", "value": docs.HTML_TAG} in inst["tags"]


def test_instances(inv):
    inst = by_id(inv.instances, "instance_id")["i-0web0000000000001"]
    assert inst["interface_ids"] == ["eni-0web0000000000001", "eni-0web0000000000002"]
    assert inst["private_ips"] == ["10.10.0.11", "10.10.0.13"]
    assert (inst["public_ip"], inst["state"], inst["instance_type"]) == ("54.144.10.11", "running", "t3.small")


def test_vpcs_subnets_and_own_networks(inv):
    vpc = by_id(inv.vpcs, "vpc_id")["vpc-0prod00000000001"]
    assert vpc["cidrs"] == ["10.10.0.0/16", "100.64.0.0/16"]  # the disassociated one left out
    assert vpc["ipv6_cidrs"] == ["2600:1f18:1000::/56"] and vpc["name"] == "prod"
    subnet = by_id(inv.subnets, "subnet_id")["subnet-0pub000000000001"]
    assert (subnet["cidrs"], subnet["name"], subnet["map_public_ip_on_launch"]) == (["10.10.0.0/24"], "public-a", True)
    assert inv.own_networks() == ["10.10.0.0/16", "10.10.0.0/24", "100.64.0.0/16", "172.16.0.0/16",
                                  "2600:1f18:1000::/56", "2600:1f18:1000::/64"]
    assert inv.own_addresses() == ["54.144.10.11", "54.144.10.99", "54.144.20.5"]


def test_interface_addresses(inv):
    own = inv.interface_addresses()
    web = own.filter(pl.col("interface_id") == "eni-0web0000000000001")
    assert sorted(web["address"]) == ["10.10.0.11", "10.10.0.12", "2600:1f18:1000::13"]


def test_security_group_rules_one_row_per_rule_and_source(inv):
    rules = inv.security_group_rules
    https = rules.filter((pl.col("direction") == "ingress") & (pl.col("from_port") == 443))
    assert sorted(https["cidr"]) == ["0.0.0.0/0", "10.0.0.0/8", "::/0"]
    assert https["protocol"].unique().to_list() == ["tcp"]
    assert https.filter(pl.col("cidr") == "0.0.0.0/0")["description"].to_list() == ["https"]
    everything = rules.filter(pl.col("protocol_raw") == "-1")
    assert everything.select("direction", "protocol", "from_port", "to_port", "cidr", "source_group_id",
                             "prefix_list_id").rows() == [
        ("ingress", "all", None, None, None, "sg-0bastion000000001", None),
        ("ingress", "all", None, None, None, None, "pl-0abc"),
        ("egress", "all", None, None, "0.0.0.0/0", None, None),
    ]
    icmp = rules.filter(pl.col("protocol") == "icmp").row(0, named=True)
    assert (icmp["from_port"], icmp["to_port"], icmp["cidr"]) == (8, -1, "203.0.113.0/24")


def test_missing_kinds_are_fine(docs, tmp_path):
    folder = tmp_path / "only-vpcs"
    docs.write(folder, f"{docs.ACCOUNT}-us-east-1-describe-vpcs.json", docs.VPCS)
    inv = Inventory.load(folder)
    assert inv.kinds == {"vpcs"} and inv.interfaces.height == 0 and inv.security_group_rules.height == 0
    assert dict(inv.interfaces.schema) == SCHEMAS["interfaces"]
    assert inv.own_addresses() == [] and inv.interface_addresses().height == 0


def test_single_file_path(docs, tmp_path):
    path = docs.write(tmp_path, f"{docs.ACCOUNT}-us-east-1-describe-network-interfaces.json", docs.NETWORK_INTERFACES)
    assert Inventory.load(path).interfaces.height == len(docs.NETWORK_INTERFACES["NetworkInterfaces"])


def test_empty_inventory_object():
    inv = Inventory.empty()
    assert inv.interfaces.height == 0 and inv.own_networks() == [] and "interfaces=0" in repr(inv)


# -- errors ---------------------------------------------------------------------------------

def _load_error(docs, tmp_path, name, doc=None, raw=None) -> str:
    folder = tmp_path / "bad"
    path = docs.write(folder, name, doc, raw=raw)
    with pytest.raises(InventoryError) as e:
        Inventory.load(folder)
    assert isinstance(e.value, FlowtoolsError)
    assert str(path) in str(e.value)
    return str(e.value)


def test_malformed_json_names_the_file_and_the_place(docs, tmp_path):
    msg = _load_error(docs, tmp_path, f"{docs.ACCOUNT}-us-east-1-describe-vpcs.json", raw='{"Vpcs": [\n  {"VpcId": "vpc-1",}\n]}')
    assert "not valid JSON" in msg and "line 2" in msg and "describe-vpcs" in msg


def test_wrong_shape_names_the_expected_key(docs, tmp_path):
    msg = _load_error(docs, tmp_path, f"{docs.ACCOUNT}-us-east-1-describe-subnets.json", {"Vpcs": []})
    assert "expected an object with 'Subnets'" in msg
    msg = _load_error(docs, tmp_path, f"{docs.ACCOUNT}-us-east-1-describe-subnets.json", [1, 2])
    assert "found list" in msg


def test_bad_address_names_the_interface(docs, tmp_path):
    doc = {"NetworkInterfaces": [{"NetworkInterfaceId": "eni-0bad", "PrivateIpAddress": "10.0.0.300"}]}
    msg = _load_error(docs, tmp_path, f"{docs.ACCOUNT}-us-east-1-describe-network-interfaces.json", doc)
    assert "NetworkInterfaces[0] (eni-0bad)" in msg and "'10.0.0.300' is not an IP address" in msg


def test_missing_id_and_wrong_types(docs, tmp_path):
    msg = _load_error(docs, tmp_path, f"{docs.ACCOUNT}-us-east-1-describe-vpcs.json", {"Vpcs": [{"CidrBlock": "10.0.0.0/16"}]})
    assert "Vpcs[0]: VpcId is missing" in msg
    msg = _load_error(docs, tmp_path, f"{docs.ACCOUNT}-us-east-1-describe-vpcs.json", {"Vpcs": [{"VpcId": "vpc-1", "CidrBlock": "10.0.0.0/99"}]})
    assert "is not a CIDR block" in msg
    msg = _load_error(docs, tmp_path, f"{docs.ACCOUNT}-us-east-1-describe-vpcs.json", {"Vpcs": ["vpc-1"]})
    assert "Vpcs[0]: expected an object" in msg
    msg = _load_error(docs, tmp_path, f"{docs.ACCOUNT}-us-east-1-describe-vpcs.json", {"Vpcs": [{"VpcId": "vpc-1", "Tags": [{"Key": 1}]}]})
    assert "Tags[0]" in msg


def test_bad_file_name_for_a_known_kind(docs, tmp_path):
    msg = _load_error(docs, tmp_path, "prod-describe-vpcs.json", docs.VPCS)
    assert "<account-id>-<region>-describe-<kind>.json" in msg


def test_not_utf8(docs, tmp_path):
    folder = tmp_path / "bin"
    folder.mkdir()
    path = folder / f"{docs.ACCOUNT}-us-east-1-describe-vpcs.json"
    path.write_bytes(b'{"Vpcs": ["\xff\xfe"]}')
    with pytest.raises(InventoryError, match="not UTF-8"):
        Inventory.load(folder)


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(InventoryError, match="inventory folder not found"):
        Inventory.load(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.json").write_text("{}")
    with pytest.raises(InventoryError, match="no inventory files found"):
        Inventory.load(tmp_path / "empty")


# -- native frames --------------------------------------------------------------------------

def test_frame_on_the_same_duckdb_connection(inv):
    con = duckdb.connect()
    flows = con.sql("SELECT 'eni-0web0000000000001' AS interface_id, 443 AS dstport")
    interfaces = inv.frame("interfaces", flows)
    assert isinstance(interfaces, duckdb.DuckDBPyRelation)
    joined = flows.set_alias("f").join(interfaces.set_alias("i"), "interface_id")
    assert joined.select("resource_name", "private_ips").fetchall() == [("web-1", ["10.10.0.11", "10.10.0.12"])]
    assert inv.frame("vpcs", con).pl()["vpc_id"].len() == 2


def test_frame_on_polars(inv):
    lf = inv.frame("security_group_rules", pl.LazyFrame({"interface_id": ["eni-1"]}))
    assert isinstance(lf, pl.LazyFrame) and lf.collect().height == inv.security_group_rules.height
    with pytest.raises(ValueError, match="unknown inventory table"):
        inv.table("routes")


def test_side_table_without_replacement_scans():
    """A connection that disables replacement scans gets a TEMP table instead."""
    con = duckdb.connect()
    con.execute("SET python_enable_replacements = false")
    rel = con.sql("SELECT 'a' AS k")
    side = side_table(rel, pl.DataFrame({"k": ["a", "b"], "tags": [["x"], []]}))
    assert rel.set_alias("l").join(side.set_alias("r"), "k").fetchall() == [("a", ["x"])]


def test_side_table_rejects_other_frames():
    with pytest.raises(TypeError, match="side_table"):
        side_table([1, 2], pl.DataFrame({"a": [1]}))
