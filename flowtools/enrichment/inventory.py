"""The AWS inventory: what ``aws ec2 describe-<kind> --output json`` prints, as tables.

Layout (docs/design.md "Enrichment", a contract): a folder, searched recursively, of files named
``<account-id>-<region>-describe-<kind>.json``, kind one of ``network-interfaces``,
``instances``, ``vpcs``, ``subnets``, ``security-groups``; account and region come from
the name. Any kind may be missing: the tables of missing kinds are empty (with their
columns), and the analyses use what is there. Other files are ignored.

Tables (Polars DataFrames, small: one row per interface, instance, ...):

``interfaces``
    ``interface_id, account_id, region, owner_id, interface_type`` (``natGateway`` is
    normalised to ``nat_gateway``), ``interface_type_raw, description, requester_managed,
    requester_id, status, private_ip`` (the primary), ``private_ips`` (all), ``public_ip``
    (of the primary address), ``public_ips`` (every ``Association.PublicIp``, per private
    address too), ``ipv6_addresses, ipv4_prefixes, ipv6_prefixes, instance_id, vpc_id,
    subnet_id, availability_zone, security_group_ids, source_dest_check, tags, name``
    (the interface's Name tag), ``instance_name`` (the instance's Name tag),
    ``resource_name`` (see :func:`resource_name`), ``source_file``.
``instances``
    ``instance_id, account_id, region, name, tags, state, instance_type, vpc_id,
    subnet_id, private_ip, public_ip, private_ips, public_ips, ipv6_addresses,
    interface_ids, source_file``.
``vpcs``
    ``vpc_id, account_id, region, owner_id, name, is_default, cidrs, ipv6_cidrs, tags,
    source_file``.
``subnets``
    ``subnet_id, vpc_id, account_id, region, name, availability_zone, cidrs, ipv6_cidrs,
    map_public_ip_on_launch, tags, source_file``.
``security_groups``
    one row per group (also groups without rules): ``group_id, group_name, description,
    vpc_id, account_id, region, owner_id, tags, source_file``.
``security_group_rules``
    one row per (rule, source): ``group_id, group_name, vpc_id, account_id, region,
    direction`` (ingress | egress), ``protocol`` (``tcp``, ``udp``, ``icmp``, ``icmpv6``,
    ``all``, or the IANA number as a string), ``protocol_raw, from_port, to_port`` (null
    for all traffic; ICMP type/code as AWS gives them), ``cidr`` (IPv4 or IPv6),
    ``source_group_id, prefix_list_id`` (exactly one of the three is set),
    ``description, source_file``.

Addresses and CIDRs are normalised (IPv6 compressed, lower case). Tags are lists of
``{key, value}`` kept exactly as AWS returned them: tag values are user-controlled (they
may hold HTML or control characters) and are escaped by whoever displays them, never here.
A malformed file raises :class:`~flowtools.errors.InventoryError` naming the file and
what is wrong.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from flowtools.aws_names import (
    DESCRIBE_KINDS,
    INVENTORY_FILE,
    INVENTORY_FILE_PATTERN,
    INVENTORY_FILE_SUFFIX,
)
from flowtools.enrichment.naming import resource_name
from flowtools.errors import InventoryError
from flowtools.frames import PolarsType, side_table
from flowtools.protocols import rule_protocol

#: kind -> the top-level key of ``aws ec2 describe-<kind> --output json``.
KINDS: dict[str, str] = {kind: key for kind, (_operation, key) in DESCRIBE_KINDS.items()}
FILE_PATTERN = INVENTORY_FILE_PATTERN
_NAME = INVENTORY_FILE
_ANY_KIND = INVENTORY_FILE_SUFFIX

#: Interface types that only forward traffic (they yield no exposure findings). AWS's SDK
#: enum says ``natGateway``; the API and real inventories say ``nat_gateway``
#: (reference §7): both are accepted and normalised to ``nat_gateway``.
NAT_GATEWAY = "nat_gateway"
INTERFACE_TYPE_ALIASES = {"natGateway": NAT_GATEWAY}
FORWARDING_TYPES = frozenset({NAT_GATEWAY, "transit_gateway", "regional_nat_gateway"})

_TAGS = pl.List(pl.Struct({"key": pl.String, "value": pl.String}))
_STRS = pl.List(pl.String)
_S, _B, _I = pl.String, pl.Boolean, pl.Int32

SCHEMAS: dict[str, dict[str, PolarsType]] = {
    "interfaces": {
        "interface_id": _S, "account_id": _S, "region": _S, "owner_id": _S, "interface_type": _S,
        "interface_type_raw": _S, "description": _S, "requester_managed": _B, "requester_id": _S,
        "status": _S, "private_ip": _S, "private_ips": _STRS, "public_ip": _S, "public_ips": _STRS,
        "ipv6_addresses": _STRS, "ipv4_prefixes": _STRS, "ipv6_prefixes": _STRS, "instance_id": _S,
        "vpc_id": _S, "subnet_id": _S, "availability_zone": _S, "security_group_ids": _STRS,
        "source_dest_check": _B, "tags": _TAGS, "name": _S, "instance_name": _S,
        "resource_name": _S, "source_file": _S,
    },
    "instances": {
        "instance_id": _S, "account_id": _S, "region": _S, "name": _S, "tags": _TAGS, "state": _S,
        "instance_type": _S, "vpc_id": _S, "subnet_id": _S, "private_ip": _S, "public_ip": _S,
        "private_ips": _STRS, "public_ips": _STRS, "ipv6_addresses": _STRS, "interface_ids": _STRS,
        "source_file": _S,
    },
    "vpcs": {
        "vpc_id": _S, "account_id": _S, "region": _S, "owner_id": _S, "name": _S, "is_default": _B,
        "cidrs": _STRS, "ipv6_cidrs": _STRS, "tags": _TAGS, "source_file": _S,
    },
    "subnets": {
        "subnet_id": _S, "vpc_id": _S, "account_id": _S, "region": _S, "name": _S,
        "availability_zone": _S, "cidrs": _STRS, "ipv6_cidrs": _STRS,
        "map_public_ip_on_launch": _B, "tags": _TAGS, "source_file": _S,
    },
    "security_groups": {
        "group_id": _S, "group_name": _S, "description": _S, "vpc_id": _S, "account_id": _S,
        "region": _S, "owner_id": _S, "tags": _TAGS, "source_file": _S,
    },
    "security_group_rules": {
        "group_id": _S, "group_name": _S, "vpc_id": _S, "account_id": _S, "region": _S,
        "direction": _S, "protocol": _S, "protocol_raw": _S, "from_port": _I, "to_port": _I,
        "cidr": _S, "source_group_id": _S, "prefix_list_id": _S, "description": _S,
        "source_file": _S,
    },
}
TABLES: tuple[str, ...] = tuple(SCHEMAS)

_DEAD_CIDR_STATES = {"disassociated", "failed"}

# -- the inventory ------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Inventory:
    """An AWS inventory: interfaces, instances, VPCs, subnets, security-group rules.

    Build it with :meth:`load` (a folder of AWS CLI JSON files) or :meth:`empty`. The
    tables are Polars DataFrames; :meth:`frame` gives one as a native frame next to a
    flows frame (same engine, same DuckDB connection) for joins.
    """

    interfaces: pl.DataFrame = field(default_factory=lambda: _empty("interfaces"))
    instances: pl.DataFrame = field(default_factory=lambda: _empty("instances"))
    vpcs: pl.DataFrame = field(default_factory=lambda: _empty("vpcs"))
    subnets: pl.DataFrame = field(default_factory=lambda: _empty("subnets"))
    security_groups: pl.DataFrame = field(default_factory=lambda: _empty("security_groups"))
    security_group_rules: pl.DataFrame = field(default_factory=lambda: _empty("security_group_rules"))
    files: tuple[str, ...] = ()
    kinds: frozenset[str] = frozenset()  # the kinds for which at least one file was read

    @classmethod
    def empty(cls) -> Inventory:
        """An inventory without any file: every table empty."""
        return cls()

    @classmethod
    def load(cls, path: str | os.PathLike) -> Inventory:
        """Read every ``<account-id>-<region>-describe-<kind>.json`` under ``path``.

        ``path`` is a folder (searched recursively) or one such file. Files are read in
        path order; an interface, instance, VPC, subnet or group found in two files is kept
        once (the first). Raises :class:`InventoryError` when ``path`` does not exist,
        holds no inventory file, or a file is malformed (not JSON, not the shape the AWS CLI
        prints, an id missing, an address that is not an address); the message names the
        file. Everything is read into memory (inventories are small: a few MB of JSON for
        thousands of interfaces).
        """
        root = Path(path)
        if not root.exists():
            raise InventoryError(f"{root}: inventory folder not found")
        if root.is_file():
            candidates = [root]
        else:
            candidates = sorted(p for p in root.rglob("*.json") if p.is_file())
        rows: dict[str, list[dict]] = {t: [] for t in (*TABLES, "_instance_interfaces")}
        files: list[str] = []
        kinds: set[str] = set()
        for p in candidates:
            m = _NAME.match(p.name)
            if m is None:
                if _ANY_KIND.search(p.name):
                    raise InventoryError(
                        f"{p}: the file name must be {FILE_PATTERN} (a 12-digit account id and a "
                        f"region such as us-east-1), e.g. 123456789012-us-east-1-describe-vpcs.json")
                if root.is_file():
                    raise InventoryError(f"{p}: not an inventory file (expected {FILE_PATTERN})")
                continue
            doc = _read_json(p, m["kind"])
            _Parser(p, m["account"], m["region"], m["kind"], rows).parse(doc)
            files.append(str(p))
            kinds.add(m["kind"])
        if not files:
            raise InventoryError(
                f"{root}: no inventory files found (expected {FILE_PATTERN}, kind one of "
                f"{', '.join(KINDS)}, as written by `flowtools inventory` or the AWS CLI)")
        rows["interfaces"].extend(rows.pop("_instance_interfaces"))
        tables = {t: _frame(t, r) for t, r in rows.items()}
        tables["interfaces"] = _with_names(tables["interfaces"], tables["instances"])
        return cls(**tables, files=tuple(files), kinds=frozenset(kinds))

    # -- views used by the analyses ------------------------------------------------------

    def table(self, name: str) -> pl.DataFrame:
        """One table by name (``interfaces``, ``instances``, ``vpcs``, ``subnets``,
        ``security_groups``, ``security_group_rules``)."""
        if name not in SCHEMAS:
            raise ValueError(f"unknown inventory table {name!r}; one of {', '.join(TABLES)}")
        return getattr(self, name)

    def frame(self, name: str, like: Any) -> Any:
        """The table ``name`` as a native frame on the engine of ``like`` (a Flows object or
        a native frame: a DuckDB relation gives a relation on the same connection, Polars a
        ``LazyFrame``), ready to join. Pass ``duckdb.connect()``-style connections too."""
        return side_table(like, self.table(name))

    def own_networks(self) -> list[str]:
        """The estate's CIDRs (IPv4 and IPv6 of every VPC and subnet), normalised."""
        nets: set[str] = set()
        for df in (self.vpcs, self.subnets):
            for col in ("cidrs", "ipv6_cidrs"):
                nets.update(df[col].explode().drop_nulls().to_list())
        return sorted(nets)

    def own_addresses(self) -> list[str]:
        """The estate's public addresses: every public and Elastic IP of an interface or
        instance in the inventory, normalised."""
        out: set[str] = set()
        for df in (self.interfaces, self.instances):
            out.update(df["public_ips"].explode().drop_nulls().to_list())
        return sorted(out)

    def interface_addresses(self) -> pl.DataFrame:
        """The interfaces' own private addresses, long form: ``interface_id``, ``address``
        (every private IPv4 and every IPv6 address, normalised), ``family``."""
        df = self.interfaces
        v4 = df.select("interface_id", address=pl.col("private_ips")).explode("address")
        v6 = df.select("interface_id", address=pl.col("ipv6_addresses")).explode("address")
        return pl.concat([
            v4.with_columns(family=pl.lit("IPv4")),
            v6.with_columns(family=pl.lit("IPv6")),
        ]).drop_nulls("address").unique(maintain_order=True)

    def __repr__(self) -> str:
        return (f"Inventory(files={len(self.files)}, interfaces={self.interfaces.height}, "
                f"instances={self.instances.height}, vpcs={self.vpcs.height}, "
                f"subnets={self.subnets.height}, security_groups={self.security_groups.height}, "
                f"security_group_rules={self.security_group_rules.height})")


def _empty(name: str) -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMAS[name])


def _frame(name: str, rows: list[dict]) -> pl.DataFrame:
    df = pl.DataFrame(rows, schema=SCHEMAS[name], orient="row") if rows else _empty(name)
    key = {"interfaces": "interface_id", "instances": "instance_id", "vpcs": "vpc_id",
           "subnets": "subnet_id", "security_groups": "group_id"}.get(name)
    return df.unique(subset=key, keep="first", maintain_order=True) if key else df


def _with_names(interfaces: pl.DataFrame, instances: pl.DataFrame) -> pl.DataFrame:
    """Fill ``instance_name`` (from the instances' Name tags) and ``resource_name``."""
    names = dict(zip(instances["instance_id"].to_list(), instances["name"].to_list(), strict=True))
    inst = [names.get(i) if i else None for i in interfaces["instance_id"].to_list()]
    res = [resource_name(d, instance_name=n, interface_name=t) for d, n, t in zip(
        interfaces["description"].to_list(), inst, interfaces["name"].to_list(), strict=True)]
    return interfaces.with_columns(instance_name=pl.Series(inst, dtype=pl.String),
                                   resource_name=pl.Series(res, dtype=pl.String))


def _read_json(path: Path, kind: str) -> Any:
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


class _Parser:
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
