"""One home per domain fact: what is internet, protocol names, service ports, AWS name
shapes, naming rules, comma lists, progress bars. These facts used to be written in several
modules and disagreed (198.18.0.0/15 was "reserved" for the address classes but internet
for security-group rules; the exposure analysis and the port list had different service
ports); these tests hold the single definitions and check the copies are gone."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path

import pytest

import flowtools
from flowtools import addresses, aws_names, protocols
from flowtools.analyses import exposure
from flowtools.enrichment import collect, describe, inventory, naming, ports, security_groups

PACKAGE = Path(flowtools.__file__).resolve().parent


def _sources(exclude: tuple[str, ...] = ()) -> dict[str, str]:
    return {str(p.relative_to(PACKAGE)): p.read_text(encoding="utf-8") for p in sorted(PACKAGE.rglob("*.py"))
            if not str(p.relative_to(PACKAGE)).startswith(exclude)}


# -- what is internet -----------------------------------------------------------------------

@pytest.mark.parametrize("cidr", ["198.18.0.0/15", "198.19.255.0/24", "192.0.0.0/29", "240.0.0.0/4", "0.0.0.0/8",
                                  "100.64.0.0/10", "10.0.0.0/8", "fd00::/8", "fe80::/64", "2001::/32"])
def test_a_range_the_address_classes_call_not_internet_admits_no_internet(cidr):
    net = ipaddress.ip_network(cidr)
    classes = addresses.classify([str(net.network_address), str(net.broadcast_address)])
    assert not classes["is_internet"].any()
    assert security_groups.admits_internet(cidr) is False
    assert addresses.holds_internet(cidr) is False


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.7/32",
                                  "2001:db8::/32", "54.0.0.0/8", "198.16.0.0/13", "192.0.0.0/23"])
def test_a_range_with_an_internet_address_admits_the_internet(cidr):
    assert security_groups.admits_internet(cidr) is True


def test_the_table_agrees_with_the_address_classes_at_every_boundary():
    for kind, nets in addresses.NOT_INTERNET.items():
        for net in nets:
            for ip in (net.network_address, net.broadcast_address):
                row = addresses.classify([str(ip)]).row(0, named=True)
                assert row["kind"] != "internet", (kind, net, ip)
                # the neighbours just outside are internet unless another range holds them
                for near in (int(ip) - 1, int(ip) + 1):
                    if 0 <= near < 2 ** ip.max_prefixlen:
                        other = ipaddress.ip_address(near) if ip.version == 4 else ipaddress.IPv6Address(near)
                        single = f"{other}/{ip.max_prefixlen}"
                        assert addresses.holds_internet(single) is addresses.classify([str(other)])["is_internet"][0]


def test_the_table_is_what_ipaddress_calls_not_global():
    """The ranges are fixed in flowtools; on this Python they match :mod:`ipaddress`
    (multicast and the documentation ranges aside: multicast is its own class, and the
    documentation ranges count as internet)."""
    for kind, nets in addresses.NOT_INTERNET.items():
        if kind == "multicast":
            continue
        for net in nets:
            for ip in (net.network_address, net.broadcast_address):
                assert not ip.is_global, (kind, net, ip)


# -- protocols, service ports ---------------------------------------------------------------

def test_one_protocol_table():
    assert ports.protocol_name is protocols.protocol_name and ports.protocol_number is protocols.protocol_number
    assert describe.rule_protocol is protocols.rule_protocol  # security-group rules as the inventory reads them
    assert [protocols.rule_protocol(p) for p in ("-1", "6", "TCP", "58", "icmpv6", "47", "gre")] == [
        "all", "tcp", "tcp", "icmpv6", "icmpv6", "47", "gre"]
    copies = [path for path, text in _sources().items()
              if path != "protocols.py" and re.search(r'"icmpv6"\s*:\s*58|58\s*:\s*"icmpv6"', text)]
    assert copies == []


_PROTOCOL_NAMES = {"tcp", "udp", "icmp", "icmpv6"}
_PROTOCOL_SYMBOLS = {"TCP", "UDP", "ICMP", "ICMPV6"}


def _protocol_copies(text: str) -> list[str]:
    """What in a module's code writes a protocol fact of its own: a dict pairing a protocol's
    name with its number (or with one of the names ``TCP``/``UDP``/``ICMP``/``ICMPV6``),
    either way round, or an assignment of a number to one of those names."""
    import ast

    def name_of(node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.lower() in _PROTOCOL_NAMES:
            return node.value
        return None

    def number_of(node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in protocols.NAMES:
            return str(node.value)
        symbol = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        return symbol if symbol in _PROTOCOL_SYMBOLS else None

    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Dict):
            for k, v in zip(node.keys, node.values, strict=True):
                if (name_of(k) and number_of(v)) or (number_of(k) and name_of(v)):
                    found.append((node.lineno, "a protocol map"))
                    break
        elif isinstance(node, ast.Assign):
            targets = [t for target in node.targets
                       for t in (target.elts if isinstance(target, ast.Tuple) else [target])]
            if any(isinstance(t, ast.Name) and t.id in _PROTOCOL_SYMBOLS for t in targets):
                found.append((node.lineno, "protocol numbers of its own"))
    return [f"line {line}: {what}" for line, what in sorted(found)]


def test_no_protocol_table_outside_protocols_py():
    """The sample used to keep its own number -> name map and rule-name -> number map."""
    assert _protocol_copies('NAMES = {TCP: "tcp"}\nRULES = {"icmpv6": 58}\nTCP, UDP = 6, 17\n') == [
        "line 1: a protocol map", "line 2: a protocol map", "line 3: protocol numbers of its own"]
    assert _protocol_copies('PORTS = {"tcp": 443}\nSTATES = {"ok": 6}\n') == []
    copies = {path: found for path, text in _sources().items()
              if path != "protocols.py" and (found := _protocol_copies(text))}
    assert copies == {}


def test_one_list_of_service_ports():
    assert exposure.KNOWN_SERVICE_PORTS == ports.server_ports()
    assert exposure.WELL_KNOWN_MAX == ports.WELL_KNOWN_MAX
    named = set(ports.port_names()["port"].to_list())
    assert set(ports.server_ports()) <= named  # every server port has a name
    for port in (22, 443, 1023, *ports.server_ports()):
        assert ports.is_well_known_service(port, "tcp") and ports.is_well_known_service(port, 17)
    for port in (1024, 40001, 1900):  # 1900 is named (ssdp) but a client-side port often enough
        assert not ports.is_well_known_service(port, "tcp")
    assert not ports.is_well_known_service(443, "icmp")


# -- AWS names ------------------------------------------------------------------------------

def test_one_list_of_describe_kinds():
    from flowtools.sample import inventory as sample_inventory

    assert list(inventory.KINDS) == list(collect.KINDS) == list(aws_names.DESCRIBE_KINDS)
    assert set(sample_inventory.KINDS) == set(aws_names.DESCRIBE_KINDS)
    assert {k: v[1] for k, v in collect.KINDS.items()} == inventory.KINDS


@pytest.mark.parametrize(("name", "ok"), [
    ("us-east-1", True), ("us-gov-west-1", True), ("ap-southeast-5", True), ("eu-central-2", True),
    ("us-east", False), ("US-EAST-1", False), ("useast1", False), ("us-east-1a", False)])
def test_one_region_pattern(name, ok):
    assert bool(aws_names.REGION_NAME.match(name)) is ok
    file = aws_names.inventory_file_name("123456789012", name, "vpcs")
    assert bool(aws_names.INVENTORY_FILE.match(file)) is ok


def test_no_other_region_pattern():
    copies = [path for path, text in _sources(exclude=("sample/",)).items()
              if path != "aws_names.py" and ("[a-z]{2}(" in text or "o-[a-z0-9]" in text)]
    assert copies == []


# -- naming, comma lists, progress bars -----------------------------------------------------

@pytest.mark.parametrize(("description", "rid", "name"), [
    ("Interface for NAT Gateway nat-0abc", "nat-0abc", "nat-0abc"),
    ("ELB app/web-alb/0123abcd", "app/web-alb/0123abcd", "web-alb"),
    ("ELB classic-lb", "classic-lb", "classic-lb"),
    ("VPC Endpoint Interface vpce-0abc", "vpce-0abc", "vpce-0abc"),
    ("Network Interface for Transit Gateway Attachment tgw-attach-0abc", "tgw-attach-0abc", "tgw-attach-0abc"),
    ("AWS Lambda VPC ENI-resize-1f2e3d4c-0000-1111-2222-333344445555", "resize", "resize"),
    ("AWS Lambda VPC ENI-resize", "eni-1", "resize"),
    ("arn:aws:ecs:us-east-1:123456789012:attachment/abc", "arn:aws:ecs:us-east-1:123456789012:attachment/abc",
     "arn:aws:ecs:us-east-1:123456789012:attachment/abc"),
    ("my own interface", "eni-1", "my own interface"),
])
def test_one_table_of_naming_rules(description, rid, name):
    from flowtools.enrichment.joins import resource_id

    assert resource_id is naming.resource_id and inventory.resource_name is naming.resource_name
    assert naming.resource_id(description, interface_id="eni-1") == rid
    assert naming.resource_name(description) == name


def test_one_comma_list_parser_and_one_progress_bar():
    from flowtools.options import comma_list

    assert comma_list(" a, b,,c ") == ["a", "b", "c"] and comma_list(["x ", ""]) == ["x"]
    assert comma_list("") is None and comma_list(None) is None
    sources = _sources()
    assert [p for p, t in sources.items() if "def _csv_list" in t or 'split(",")' in t and p != "options.py"
            and p != "report/render.py"] == []
    # bars: flowtools/progress.py; flows.py, sources/ are another change's files
    bars = [p for p, t in _sources(exclude=("flows.py", "sources/")).items()
            if "import tqdm" in t and p != "progress.py"]
    assert bars == []


# -- one key grammar ----------------------------------------------------------------------------

_GRAMMAR_MARKERS = ("AWSLogs", "vpcflowlogs", "aws-account-id", "aws-service", "aws-region", "year=", "month=",
                    "day=", "hour=", r"\d{", "[0-9]{", "o-[")


def _code_strings(text: str) -> list[str]:
    """The string constants of a module's code (docstrings left out)."""
    import ast

    tree = ast.parse(text)
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and id(node) not in docstrings]


def test_the_s3_listing_has_no_key_grammar_of_its_own():
    """layout.py (with aws_names.py) is the one home of the key grammar: the S3 modules walk
    it (layout.next_segment) and write no folder names, patterns or state machine of their own."""
    s3_modules = {p: t for p, t in _sources().items() if re.fullmatch(r"sources/s3(_\w+)?\.py", p)}
    assert {"sources/s3.py", "sources/s3_listing.py"} <= set(s3_modules)
    copies = {p: [s for s in _code_strings(t) if any(m in s for m in _GRAMMAR_MARKERS)]
              for p, t in s3_modules.items()}
    assert {p: found for p, found in copies.items() if found} == {}
    compiled = {p: re.findall(r"re\.compile\(", t) for p, t in s3_modules.items()}
    assert sum(len(v) for v in compiled.values()) == 1 and compiled["sources/s3_client.py"]  # the s3:// URI only
    assert [p for p, t in s3_modules.items() if "_child_state" in t or "_initial_state" in t] == []
    assert "next_segment" in s3_modules["sources/s3_listing.py"]


def test_the_key_grammar_takes_its_names_from_aws_names():
    from flowtools import layout

    after_service = layout.Segment("service", "vpcflowlogs")
    for name in ("us-gov-west-1", "ap-southeast-5", "us-east", "useast1", "US-EAST-1"):
        seg = layout.next_segment(after_service, name)
        assert (seg is not None) is bool(aws_names.REGION_NAME.match(name)), name
    for name in ("123456789012", "12345678901", "o-abc123def4", "o-ab"):
        seg = layout.next_segment(layout.Segment("awslogs", "AWSLogs"), name)
        ok = aws_names.ACCOUNT_ID.match(name) or aws_names.ORGANIZATION_ID.match(name)
        assert (seg is not None) is bool(ok), name
    grammar = (PACKAGE / "layout" / "keys.py").read_text(encoding="utf-8")
    assert "aws_names import" in grammar
    assert not [p.name for p in (PACKAGE / "layout").glob("*.py") if r"\d{12}" in p.read_text(encoding="utf-8")]
