"""The AWS CLI's ``describe-<kind> --output json`` documents read into rows: one parser
per kind (network interfaces, instances, VPCs, subnets, security groups), each raising
:class:`~flowtools.errors.InventoryError` that names the file and the place
(``NetworkInterfaces[3] (eni-0abc).PrivateIpAddresses[1]``) and what is wrong.

The rows are dicts in the columns of :data:`flowtools.enrichment.inventory.SCHEMAS`;
:class:`~flowtools.enrichment.inventory.Inventory` turns them into tables.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from flowtools.aws_names import DESCRIBE_KINDS
from flowtools.errors import InventoryError
from flowtools.protocols import rule_protocol

__all__ = ["INTERFACE_TYPE_ALIASES", "KINDS", "NAT_GATEWAY", "DescribeParser", "read_json"]

#: kind -> the top-level key of ``aws ec2 describe-<kind> --output json``.
KINDS: dict[str, str] = {kind: key for kind, (_operation, key) in DESCRIBE_KINDS.items()}
#: A NAT gateway's interface type. AWS's SDK enum says ``natGateway``; the API and real
#: inventories say ``nat_gateway`` (docs/format.md): both are accepted and normalised to it.
NAT_GATEWAY = "nat_gateway"
INTERFACE_TYPE_ALIASES = {"natGateway": NAT_GATEWAY}
_DEAD_CIDR_STATES = {"disassociated", "failed"}


def read_json(path: Path, kind: str) -> Any:
    """The JSON document of ``path``, or an InventoryError naming the file and the cause."""
    what = f"what `aws ec2 describe-{kind} --output json` prints"
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InventoryError(f"{path}: cannot read the file ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise InventoryError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start}); expected {what}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InventoryError(
            f"{path}: not valid JSON ({e.msg} at line {e.lineno} column {e.colno}); expected {what}") from None


class DescribeParser:
    """Turns one document into rows, raising InventoryError with the file and the place."""

    def __init__(self, path: Path, account: str, region: str, kind: str, rows: dict[str, list[dict]]) -> None:
        self.path, self.account, self.region, self.kind, self.rows = path, account, region, kind, rows

    def fail(self, where: str, what: str) -> InventoryError:
        return InventoryError(f"{self.path}: {where}: {what}")

    def parse(self, doc: Any) -> None:
        key = KINDS[self.kind]
        if not isinstance(doc, dict) or key not in doc:
            found = f"an object with keys {sorted(doc)[:5]}" if isinstance(doc, dict) else type(doc).__name__
            raise InventoryError(
                f"{self.path}: expected an object with {key!r} (what `aws ec2 describe-{self.kind} "
                f"--output json` prints), found {found}")
        items = self.items(doc, key, key)
        handlers: dict[str, Callable[[dict, str], Any]] = {
            "network-interfaces": self.interface, "instances": self.reservation, "vpcs": self.vpc,
            "subnets": self.subnet, "security-groups": self.group}
        handler = handlers[self.kind]
        for i, item in enumerate(items):
            handler(item, f"{key}[{i}]")

    # -- generic helpers ------------------------------------------------------------------

    def items(self, obj: dict, key: str, where: str) -> list[dict]:
        value = obj.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(where, f"expected a list, found {type(value).__name__}")
        for i, v in enumerate(value):
            if not isinstance(v, dict):
                raise self.fail(f"{where}[{i}]", f"expected an object, found {type(v).__name__}")
        return value

    def obj(self, obj: dict, key: str, where: str) -> dict:
        value = obj.get(key)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{where}.{key}", f"expected an object, found {type(value).__name__}")
        return value

    def text(self, obj: dict, key: str, where: str, *, required: bool = False) -> str | None:
        value = obj.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(where, f"{key} is missing")
            return None
        if not isinstance(value, str):
            raise self.fail(where, f"{key} should be a string, found {value!r}")
        return value

    def flag(self, obj: dict, key: str, where: str) -> bool | None:
        value = obj.get(key)
        if value is None or isinstance(value, bool):
            return value
        raise self.fail(where, f"{key} should be true or false, found {value!r}")

    def port(self, obj: dict, key: str, where: str) -> int | None:
        value = obj.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(where, f"{key} should be an integer, found {value!r}")
        return value

    def address(self, obj: dict, key: str, where: str) -> str | None:
        value = self.text(obj, key, where)
        if value is None:
            return None
        try:
            return str(ipaddress.ip_address(value.strip()))
        except ValueError:
            raise self.fail(where, f"{key} {value!r} is not an IP address") from None

    def cidr(self, obj: dict, key: str, where: str) -> str | None:
        value = self.text(obj, key, where)
        if value is None:
            return None
        try:
            return str(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise self.fail(where, f"{key} {value!r} is not a CIDR block") from None

    def tags(self, obj: dict, key: str, where: str) -> list[dict]:
        out = []
        for i, t in enumerate(self.items(obj, key, f"{where}.{key}")):
            k, v = t.get("Key"), t.get("Value")
            if not isinstance(k, str) or not (v is None or isinstance(v, str)):
                raise self.fail(f"{where}.{key}[{i}]", "a tag needs a string Key and Value")
            out.append({"key": k, "value": v})
        return out

    @staticmethod
    def tag(tags: list[dict], key: str = "Name") -> str | None:
        return next((t["value"] for t in tags if t["key"] == key), None)

    def place(self) -> dict[str, str]:
        return {"account_id": self.account, "region": self.region, "source_file": str(self.path)}

    # -- kinds ----------------------------------------------------------------------------

    def interface(self, d: dict, where: str, *, instance_id: str | None = None,
                  owner: str | None = None) -> dict:
        eni = self.text(d, "NetworkInterfaceId", where, required=True)
        where = f"{where} ({eni})"
        raw_type = self.text(d, "InterfaceType", where)
        primary = self.address(d, "PrivateIpAddress", where)
        private_ips: list[str] = [primary] if primary else []
        public_ips: list[str] = []
        assoc = self.obj(d, "Association", where)
        public_ip = self.address(assoc, "PublicIp", f"{where}.Association")
        for i, p in enumerate(self.items(d, "PrivateIpAddresses", f"{where}.PrivateIpAddresses")):
            w = f"{where}.PrivateIpAddresses[{i}]"
            ip = self.address(p, "PrivateIpAddress", w)
            if ip and ip not in private_ips:
                private_ips.append(ip)
            pub = self.address(self.obj(p, "Association", w), "PublicIp", f"{w}.Association")
            if pub:
                if pub not in public_ips:
                    public_ips.append(pub)
                if public_ip is None and (p.get("Primary") is True or ip == primary):
                    public_ip = pub
        if public_ip and public_ip not in public_ips:
            public_ips.insert(0, public_ip)
        ipv6 = []
        for i, a in enumerate(self.items(d, "Ipv6Addresses", f"{where}.Ipv6Addresses")):
            ip = self.address(a, "Ipv6Address", f"{where}.Ipv6Addresses[{i}]")
            if ip and ip not in ipv6:
                ipv6.append(ip)
        prefixes4 = [c for i, p in enumerate(self.items(d, "Ipv4Prefixes", f"{where}.Ipv4Prefixes"))
                     if (c := self.cidr(p, "Ipv4Prefix", f"{where}.Ipv4Prefixes[{i}]"))]
        prefixes6 = [c for i, p in enumerate(self.items(d, "Ipv6Prefixes", f"{where}.Ipv6Prefixes"))
                     if (c := self.cidr(p, "Ipv6Prefix", f"{where}.Ipv6Prefixes[{i}]"))]
        groups = [g for i, x in enumerate(self.items(d, "Groups", f"{where}.Groups"))
                  if (g := self.text(x, "GroupId", f"{where}.Groups[{i}]"))]
        tags = self.tags(d, "TagSet", where) or self.tags(d, "Tags", where)
        attachment = self.obj(d, "Attachment", where)
        row = {
            **self.place(),
            "interface_id": eni,
            "owner_id": self.text(d, "OwnerId", where) or owner,
            "interface_type": INTERFACE_TYPE_ALIASES.get(raw_type, raw_type) if raw_type else None,
            "interface_type_raw": raw_type,
            "description": self.text(d, "Description", where),
            "requester_managed": self.flag(d, "RequesterManaged", where),
            "requester_id": self.text(d, "RequesterId", where),
            "status": self.text(d, "Status", where),
            "private_ip": primary or (private_ips[0] if private_ips else None),
            "private_ips": private_ips,
            "public_ip": public_ip,
            "public_ips": public_ips,
            "ipv6_addresses": ipv6,
            "ipv4_prefixes": prefixes4,
            "ipv6_prefixes": prefixes6,
            "instance_id": self.text(attachment, "InstanceId", f"{where}.Attachment") or instance_id,
            "vpc_id": self.text(d, "VpcId", where),
            "subnet_id": self.text(d, "SubnetId", where),
            "availability_zone": self.text(d, "AvailabilityZone", where),
            "security_group_ids": groups,
            "source_dest_check": self.flag(d, "SourceDestCheck", where),
            "tags": tags,
            "name": self.tag(tags),
            "instance_name": None,
            "resource_name": None,
        }
        if instance_id is None:
            self.rows["interfaces"].append(row)
        return row

    def reservation(self, r: dict, where: str) -> None:
        owner = self.text(r, "OwnerId", where)
        for i, d in enumerate(self.items(r, "Instances", f"{where}.Instances")):
            self.instance(d, f"{where}.Instances[{i}]", owner)

    def instance(self, d: dict, where: str, owner: str | None) -> None:
        iid = self.text(d, "InstanceId", where, required=True)
        where = f"{where} ({iid})"
        tags = self.tags(d, "Tags", where)
        enis = [self.interface(e, f"{where}.NetworkInterfaces[{i}]", instance_id=iid, owner=owner)
                for i, e in enumerate(self.items(d, "NetworkInterfaces", f"{where}.NetworkInterfaces"))]
        primary = self.address(d, "PrivateIpAddress", where)
        public = self.address(d, "PublicIpAddress", where)
        private_ips = _unique([primary, *(ip for e in enis for ip in e["private_ips"])])
        public_ips = _unique([public, *(ip for e in enis for ip in e["public_ips"])])
        ipv6 = _unique([self.address(d, "Ipv6Address", where), *(ip for e in enis for ip in e["ipv6_addresses"])])
        self.rows["instances"].append({
            **self.place(),
            "instance_id": iid,
            "name": self.tag(tags),
            "tags": tags,
            "state": self.text(self.obj(d, "State", where), "Name", f"{where}.State"),
            "instance_type": self.text(d, "InstanceType", where),
            "vpc_id": self.text(d, "VpcId", where),
            "subnet_id": self.text(d, "SubnetId", where),
            "private_ip": primary,
            "public_ip": public,
            "private_ips": private_ips,
            "public_ips": public_ips,
            "ipv6_addresses": ipv6,
            "interface_ids": [e["interface_id"] for e in enis],
        })
        # Interfaces described only inside describe-instances still count; they are added
        # after every describe-network-interfaces row (the first row per interface wins).
        self.rows["_instance_interfaces"].extend(enis)

    def vpc(self, d: dict, where: str) -> None:
        vid = self.text(d, "VpcId", where, required=True)
        where = f"{where} ({vid})"
        cidrs = _unique([self.cidr(d, "CidrBlock", where), *(
            self.cidr(a, "CidrBlock", f"{where}.CidrBlockAssociationSet[{i}]")
            for i, a in enumerate(self.items(d, "CidrBlockAssociationSet", f"{where}.CidrBlockAssociationSet"))
            if _alive(a, "CidrBlockState"))])
        cidrs6 = _unique([
            self.cidr(a, "Ipv6CidrBlock", f"{where}.Ipv6CidrBlockAssociationSet[{i}]")
            for i, a in enumerate(self.items(d, "Ipv6CidrBlockAssociationSet", f"{where}.Ipv6CidrBlockAssociationSet"))
            if _alive(a, "Ipv6CidrBlockState")])
        tags = self.tags(d, "Tags", where)
        self.rows["vpcs"].append({
            **self.place(), "vpc_id": vid, "owner_id": self.text(d, "OwnerId", where),
            "name": self.tag(tags), "is_default": self.flag(d, "IsDefault", where),
            "cidrs": cidrs, "ipv6_cidrs": cidrs6, "tags": tags,
        })

    def subnet(self, d: dict, where: str) -> None:
        sid = self.text(d, "SubnetId", where, required=True)
        where = f"{where} ({sid})"
        cidrs6 = _unique([
            self.cidr(a, "Ipv6CidrBlock", f"{where}.Ipv6CidrBlockAssociationSet[{i}]")
            for i, a in enumerate(self.items(d, "Ipv6CidrBlockAssociationSet", f"{where}.Ipv6CidrBlockAssociationSet"))
            if _alive(a, "Ipv6CidrBlockState")])
        tags = self.tags(d, "Tags", where)
        self.rows["subnets"].append({
            **self.place(), "subnet_id": sid, "vpc_id": self.text(d, "VpcId", where),
            "name": self.tag(tags), "availability_zone": self.text(d, "AvailabilityZone", where),
            "cidrs": _unique([self.cidr(d, "CidrBlock", where)]), "ipv6_cidrs": cidrs6,
            "map_public_ip_on_launch": self.flag(d, "MapPublicIpOnLaunch", where), "tags": tags,
        })

    def group(self, d: dict, where: str) -> None:
        gid = self.text(d, "GroupId", where, required=True)
        where = f"{where} ({gid})"
        base = {**self.place(), "group_id": gid, "group_name": self.text(d, "GroupName", where),
                "vpc_id": self.text(d, "VpcId", where)}
        self.rows["security_groups"].append({
            **base, "description": self.text(d, "Description", where),
            "owner_id": self.text(d, "OwnerId", where), "tags": self.tags(d, "Tags", where)})
        for direction, key in (("ingress", "IpPermissions"), ("egress", "IpPermissionsEgress")):
            for i, rule in enumerate(self.items(d, key, f"{where}.{key}")):
                self.rule(base, direction, rule, f"{where}.{key}[{i}]")

    def rule(self, base: dict, direction: str, rule: dict, where: str) -> None:
        raw = rule.get("IpProtocol")
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str) or not raw:
            raise self.fail(where, f"IpProtocol should be a string such as 'tcp' or '-1', found {raw!r}")
        proto = rule_protocol(raw)
        ports = {"from_port": self.port(rule, "FromPort", where), "to_port": self.port(rule, "ToPort", where)}
        if proto == "all":
            ports = {"from_port": None, "to_port": None}
        common = {**base, "direction": direction, "protocol": proto, "protocol_raw": raw, **ports}
        none = {"cidr": None, "source_group_id": None, "prefix_list_id": None}
        out = self.rows["security_group_rules"]
        for key, item_key, col in (("IpRanges", "CidrIp", "cidr"), ("Ipv6Ranges", "CidrIpv6", "cidr"),
                                   ("UserIdGroupPairs", "GroupId", "source_group_id"),
                                   ("PrefixListIds", "PrefixListId", "prefix_list_id")):
            for i, r in enumerate(self.items(rule, key, f"{where}.{key}")):
                w = f"{where}.{key}[{i}]"
                value = self.cidr(r, item_key, w) if col == "cidr" else self.text(r, item_key, w)
                if value is None:
                    continue
                out.append({**common, **none, col: value, "description": self.text(r, "Description", w)})


def _alive(association: dict, state_key: str) -> bool:
    state = association.get(state_key)
    return not (isinstance(state, dict) and state.get("State") in _DEAD_CIDR_STATES)


def _unique(values: Iterable[str | None]) -> list[str]:
    out: list[str] = []
    for v in values:
        if v and v not in out:
            out.append(v)
    return out
