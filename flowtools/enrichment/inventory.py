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
what is wrong. The JSON is read by :mod:`flowtools.enrichment.describe`; names come from
:mod:`flowtools.enrichment.naming`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from flowtools.aws_names import (
    INVENTORY_FILE,
    INVENTORY_FILE_PATTERN,
    INVENTORY_FILE_SUFFIX,
)
from flowtools.enrichment.describe import (
    KINDS,
    NAT_GATEWAY,
    DescribeParser,
    read_json,
)
from flowtools.enrichment.naming import resource_name
from flowtools.errors import InventoryError
from flowtools.frames import PolarsType, side_table

FILE_PATTERN = INVENTORY_FILE_PATTERN
_NAME = INVENTORY_FILE
_ANY_KIND = INVENTORY_FILE_SUFFIX

#: Interface types that only forward traffic (they yield no exposure findings); AWS's
#: ``natGateway`` is normalised to ``nat_gateway`` by the parser (:data:`INTERFACE_TYPE_ALIASES`).
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
            doc = read_json(p, m["kind"])
            DescribeParser(p, m["account"], m["region"], m["kind"], rows).parse(doc)
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
