"""resolve(inventory, flows, query): the interfaces of a resource named by interface id,
instance id, address or name; the sample's inventory against truth.json, and the flows'
fallbacks (no inventory) on both engines."""

from __future__ import annotations

import ipaddress
import json
from collections import Counter

import pytest
from flowlog_files import SAMPLES

import flowtools
from flowtools.analyses.resources import resolve
from flowtools.errors import UsageError


@pytest.fixture(scope="module")
def sample(sample_dir):
    """The sample's inventory and its truth's interfaces."""
    truth = json.loads((sample_dir / "truth.json").read_text())
    return flowtools.Inventory.load(SAMPLES / "inventory"), truth["interfaces"]


def test_the_sample_inventory_resolves_every_interface_by_id_and_address(sample):
    inventory, interfaces = sample
    for i in interfaces:
        expected = [i["interface_id"]]
        assert resolve(inventory, None, i["interface_id"].upper()) == expected
        for address in (i["private_ip"], i["public_ip"], i["ipv6"]):
            if address:
                assert resolve(inventory, None, address) == expected, address
                assert resolve(inventory, None, ipaddress.ip_address(address).exploded.upper()) == expected


def test_names_are_the_inventorys_resource_names_and_a_shared_name_gives_every_interface(sample):
    inventory, interfaces = sample
    truth = {i["name"]: i["interface_id"] for i in interfaces}
    assert resolve(inventory, None, " WEB-1 ") == [truth["web-1"]]  # the instance's Name tag
    assert resolve(inventory, None, "api-nlb") == [truth["nlb"]]  # from the description "ELB net/api-nlb/..."
    by_name = Counter(inventory.interfaces["resource_name"].to_list())
    shared = [n for n, count in by_name.items() if count == 2]
    assert shared and resolve(inventory, None, shared[0]) == sorted(
        inventory.interfaces.filter(inventory.interfaces["resource_name"] == shared[0])["interface_id"].to_list())


def test_an_instance_id_gives_the_instances_interfaces(sample):
    inventory, interfaces = sample
    web_2 = next(i["interface_id"] for i in interfaces if i["name"] == "web-2")
    assert resolve(inventory, None, "i-0f3fbbf9971257c25") == [web_2]  # web-2's instance in the inventory


@pytest.fixture
def records(fl) -> list[dict]:
    """eni-a (10.0.0.5, i-aaa) serves 203.0.113.5; eni-b (i-bbb) receives from eni-a's
    address; eni-c has an IPv6 address; eni-d logs without flow-direction."""
    f = fl.flow
    return [
        f("eni-a", "203.0.113.5", "10.0.0.5", 40000, 443, direction="ingress", instance_id="i-aaa"),
        f("eni-a", "10.0.0.5", "203.0.113.5", 443, 40000, direction="egress", instance_id="i-aaa"),
        f("eni-b", "10.0.0.5", "10.0.0.9", 40001, 80, direction="ingress", instance_id="i-bbb"),
        f("eni-c", "2001:db8::8", "2001:db8::5", 40002, 22, direction="ingress"),
        f("eni-d", "10.0.0.77", "203.0.113.9", 40003, 443),
    ]


@pytest.mark.parametrize("engine", ["duckdb", "polars"])
def test_without_an_inventory_the_flows_answer(fl, records, engine):
    flows = fl.native(records, engine)
    assert resolve(None, flows, "ENI-A") == ["eni-a"]
    assert resolve(None, flows, "i-bbb") == ["eni-b"]
    assert resolve(None, flows, "10.0.0.5") == ["eni-a"]  # its own address; eni-b only saw it as a peer
    assert resolve(None, flows, "2001:0db8:0000:0000:0000:0000:0000:0005") == ["eni-c"]  # any spelling
    with pytest.raises(UsageError, match=r"no interface matches '10\.0\.0\.77': searched the interfaces' own "
                                         r"addresses in the flows \(flow-direction\) \(no inventory given\)"):
        resolve(None, flows, "10.0.0.77")  # only in a record without flow-direction: either side could be it
    with pytest.raises(UsageError, match=r"'web-1': searched nothing \(no inventory given\)"):
        resolve(None, flows, "web-1")  # names need the inventory


def test_the_inventory_answers_first_then_the_flows(fl, records, sample):
    inventory, interfaces = sample
    flows = fl.native(records, "duckdb")
    web_1 = next(i for i in interfaces if i["name"] == "web-1")
    assert resolve(inventory, flows, web_1["private_ip"]) == [web_1["interface_id"]]
    assert resolve(inventory, flows, "eni-a") == ["eni-a"]  # not in the inventory: the flows know it
    with pytest.raises(UsageError, match=r"'eni-0000': searched the inventory's interface_id and the flows' "
                                         r"interface_id$"):
        resolve(inventory, flows, "eni-0000")
    with pytest.raises(UsageError, match=r"'nobody': searched the inventory's resource names and Name tags "
                                         r"\(no flows given\)"):
        resolve(inventory, None, "nobody")
