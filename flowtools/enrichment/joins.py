"""Names on every flow: the inventory, AWS ip-ranges and port names joined to the records.

``enrich(flows, inventory=..., ip_ranges=...)`` returns the flows (same engine, lazy) with
the columns of :data:`ENRICHED_COLUMNS` added. Each side of a record is its packet's
original endpoint: ``pkt_srcaddr``/``pkt_dstaddr`` when the log has them (the inside host
behind a NAT gateway, the client behind a load balancer), else ``srcaddr``/``dstaddr``.

How: the flows' DISTINCT addresses are read once (one pass over four columns) and
classified in Python: address class (:mod:`flowtools.addresses`), the inventory interface
that owns the address, AWS service and region (:class:`~flowtools.enrichment.ip_ranges.IpRanges`).
That side table, the interface table and the port names are joined back lazily, so the
cost follows distinct addresses, not records. An ECS task's interface is named by its
service (``ecs_service_name`` of its records, v7) when the inventory has no better name
(:func:`flowtools.enrichment.naming.resource_names`): one more aggregate over the records
when there is an inventory and the column, its result as small as the interfaces. Written once with Narwhals: DuckDB
relations and Polars frames give the same rows.
"""

from __future__ import annotations

from typing import Any

import narwhals as nw
import polars as pl

from flowtools import frames
from flowtools.addresses import classify, in_networks
from flowtools.enrichment.inventory import Inventory
from flowtools.enrichment.ip_ranges import IpRanges
from flowtools.enrichment.naming import ECS_SCHEMA, ecs_service_names, resource_id, resource_names
from flowtools.enrichment.ports import port_names
from flowtools.frames import PolarsType, side_table

__all__ = ["ENRICHED_COLUMNS", "SCOPES", "enrich", "resource_id"]

#: Values of ``src_scope``/``dst_scope``: ``interface`` (an interface of the inventory),
#: ``estate`` (inside the estate's VPC CIDRs or one of its public IPs, interface unknown),
#: ``internet`` (globally routable, not ours), ``internal`` (private, shared, link-local
#: and other non-internet addresses outside the estate's CIDRs); null for no address.
SCOPES = ("interface", "estate", "internet", "internal")

_SIDE_COLUMNS: dict[str, PolarsType] = {
    "address": pl.String,  # the side's address as enrichment saw it (pkt_* first)
    "scope": pl.String,
    "interface_id": pl.String,
    "resource_id": pl.String,
    "resource_name": pl.String,
    "interface_type": pl.String,
    "instance_id": pl.String,
    "account_id": pl.String,
    "vpc_id": pl.String,
    "vpc_name": pl.String,
    "subnet_id": pl.String,
    "subnet_name": pl.String,
    "public_ip": pl.String,
    "aws_service": pl.String,
    "aws_region": pl.String,
}
#: The columns ``enrich`` adds, in order: ``iface_*`` describe the interface that logged
#: the record (``interface_id``); ``src_*``/``dst_*`` each side (see :data:`SCOPES`);
#: ``srcport_service``/``dstport_service`` the IANA service names of the ports (TCP/UDP);
#: ``ip_ranges_sync_token`` the ip-ranges file used (null without one).
ENRICHED_COLUMNS: tuple[str, ...] = (
    "iface_resource_id", "iface_resource_name", "iface_type", "iface_vpc_name", "iface_subnet_name",
    "iface_public_ip",
    *(f"src_{c}" for c in _SIDE_COLUMNS), *(f"dst_{c}" for c in _SIDE_COLUMNS),
    "srcport_service", "dstport_service", "ip_ranges_sync_token",
)

def _interface_table(inventory: Inventory, ecs: pl.DataFrame) -> pl.DataFrame:
    """One row per interface of the inventory: the side columns (without
    ``address``/``scope``/``aws_*``); ``resource_name`` as :func:`resource_names` decides
    (an ECS task's interface by its service, from ``ecs``)."""
    iface = inventory.interfaces
    named = resource_names(iface, ecs)
    iface = iface.with_columns(_lowered=pl.col("interface_id").str.to_lowercase()).join(
        named.rename({"interface_id": "_lowered", "resource_name": "_named"}), on="_lowered", how="left")
    names = {"vpc": dict(zip(inventory.vpcs["vpc_id"].to_list(), inventory.vpcs["name"].to_list(), strict=True)),
             "subnet": dict(zip(inventory.subnets["subnet_id"].to_list(), inventory.subnets["name"].to_list(),
                                strict=True))}
    rows = {
        "interface_id": iface["interface_id"].to_list(),
        "resource_id": [resource_id(d, instance_id=i, interface_id=e) for d, i, e in iface.select(
            "description", "instance_id", "interface_id").iter_rows()],
        "resource_name": iface["_named"].to_list(),
        "interface_type": iface["interface_type"].to_list(),
        "instance_id": iface["instance_id"].to_list(),
        "account_id": iface.select(pl.coalesce("owner_id", "account_id")).to_series().to_list(),
        "vpc_id": iface["vpc_id"].to_list(),
        "vpc_name": [names["vpc"].get(v) for v in iface["vpc_id"].to_list()],
        "subnet_id": iface["subnet_id"].to_list(),
        "subnet_name": [names["subnet"].get(s) for s in iface["subnet_id"].to_list()],
        "public_ip": iface["public_ip"].to_list(),
    }
    return pl.DataFrame(rows, schema={c: pl.String for c in rows})


def _owners(inventory: Inventory, interfaces: pl.DataFrame) -> pl.DataFrame:
    """address (normalised) -> the one interface that has it, private, IPv6 or public.
    Addresses held by two interfaces (the same private range in two VPCs) are left out:
    naming either would be a guess."""
    iface = inventory.interfaces
    long = pl.concat([
        iface.select("interface_id", address=pl.col(c)).explode("address")
        for c in ("private_ips", "ipv6_addresses", "public_ips")
    ]).drop_nulls("address").unique()
    unique = long.filter(pl.len().over("address") == 1)
    return unique.join(interfaces, on="interface_id", how="left")


def _address_table(addresses: list[str], inventory: Inventory, ip_ranges: IpRanges | None,
                   interfaces: pl.DataFrame) -> pl.DataFrame:
    classes = classify(addresses, own_networks=inventory.own_networks(), own_addresses=inventory.own_addresses())
    inside = in_networks(classes["normalized"].to_list(), inventory.own_networks())
    classes = classes.with_columns(in_estate=pl.Series(inside, dtype=pl.Boolean))
    table = classes.join(_owners(inventory, interfaces).rename({"address": "normalized"}),
                         on="normalized", how="left")
    if ip_ranges is not None:
        services = ip_ranges.classify(addresses).select("address", "aws_service", "aws_region")
        table = table.join(services, on="address", how="left")
    else:
        table = table.with_columns(aws_service=pl.lit(None, pl.String), aws_region=pl.lit(None, pl.String))
    scope = (pl.when(pl.col("interface_id").is_not_null()).then(pl.lit("interface"))
             .when((pl.col("kind") == "own") | pl.col("in_estate")).then(pl.lit("estate"))
             .when(pl.col("kind") == "internet").then(pl.lit("internet"))
             .when(pl.col("kind") == "invalid").then(pl.lit(None, pl.String))
             .otherwise(pl.lit("internal")))
    rest = [pl.col(c) for c in _SIDE_COLUMNS if c not in ("address", "scope")]
    return table.select(pl.col("address").alias("_key"), pl.col("normalized").alias("address"),
                        scope.alias("scope"), *rest)


def enrich(flows: Any, *, inventory: Inventory | None = None, ip_ranges: IpRanges | None = None) -> Any:
    """The flows with names on both sides: a lazy frame on the engine of ``flows`` (a
    ``Flows``, a DuckDB relation or a Polars frame) with every input column and
    :data:`ENRICHED_COLUMNS`.

    ``inventory`` names interfaces, instances, VPCs and subnets and tells the estate's own
    addresses; ``ip_ranges`` the AWS service and region of public addresses (falling back
    to ``pkt_src_aws_service``/``pkt_dst_aws_service`` when the log has them). Both are
    optional: without them the columns they fill are null, and the scope of an address
    is told from its class alone. Values come unchanged from the inventory (tags are
    user-controlled: escape them when rendering).
    """
    native = frames.native(flows)
    inventory = inventory if inventory is not None else Inventory.empty()
    lf = nw.from_native(native)
    present = set(lf.collect_schema().names())
    for c, dtype in (("pkt_srcaddr", nw.String), ("pkt_dstaddr", nw.String), ("pkt_src_aws_service", nw.String),
                     ("pkt_dst_aws_service", nw.String), ("vpc_id", nw.String), ("subnet_id", nw.String)):
        if c not in present:
            lf = lf.with_columns(nw.lit(None, dtype).alias(c))
    out = lf.with_columns(_src=nw.coalesce(nw.col("pkt_srcaddr"), nw.col("srcaddr")),
                          _dst=nw.coalesce(nw.col("pkt_dstaddr"), nw.col("dstaddr")),
                          _iface=nw.col("interface_id").str.to_lowercase())

    distinct = nw.concat([out.select(a=nw.col("_src")), out.select(a=nw.col("_dst"))], how="vertical")
    # group_by, not unique(): Narwhals' DuckDB unique() is a row_number() window over every record
    addresses = (distinct.filter(~nw.col("a").is_null()).group_by("a").agg(nw.len().alias("_n"))
                 .collect("polars").get_column("a").to_list())
    # interfaces -> ECS service (v7 field), a small table; only needed to name inventory interfaces
    ecs = ecs_service_names(lf) if inventory.interfaces.height else pl.DataFrame(schema=ECS_SCHEMA)
    interfaces = _interface_table(inventory, ecs)
    table = _address_table(addresses, inventory, ip_ranges, interfaces)
    side = nw.from_native(side_table(native, table))
    for s in ("src", "dst"):
        out = out.join(side.rename({c: f"{s}_{c}" for c in table.columns if c != "_key"} | {"_key": f"_{s}"}),
                       on=f"_{s}", how="left")
        out = out.with_columns(nw.coalesce(nw.col(f"{s}_aws_service"), nw.col(f"pkt_{s}_aws_service"))
                               .alias(f"{s}_aws_service"))

    iface = interfaces.select(
        _iface=pl.col("interface_id").str.to_lowercase(), iface_resource_id="resource_id",
        iface_resource_name="resource_name", iface_type="interface_type", iface_vpc_name="vpc_name",
        iface_subnet_name="subnet_name", iface_public_ip="public_ip")
    out = out.join(nw.from_native(side_table(native, iface)), on="_iface", how="left")
    if inventory.vpcs.height or inventory.subnets.height:  # the record's own vpc/subnet when the inventory lacks the interface
        vpcs = inventory.vpcs.select("vpc_id", _vpc_name="name").unique("vpc_id")
        subnets = inventory.subnets.select("subnet_id", _subnet_name="name").unique("subnet_id")
        out = (out.join(nw.from_native(side_table(native, vpcs)), on="vpc_id", how="left")
               .join(nw.from_native(side_table(native, subnets)), on="subnet_id", how="left")
               .with_columns(iface_vpc_name=nw.coalesce(nw.col("iface_vpc_name"), nw.col("_vpc_name")),
                             iface_subnet_name=nw.coalesce(nw.col("iface_subnet_name"), nw.col("_subnet_name")))
               .drop("_vpc_name", "_subnet_name"))

    ports = port_names().select("port", "protocol", "service")
    pside = nw.from_native(side_table(native, ports))
    for p in ("srcport", "dstport"):
        out = out.join(pside.rename({"port": p, "service": f"{p}_service"}), on=[p, "protocol"], how="left")
    token = ip_ranges.sync_token if ip_ranges is not None else None
    out = out.with_columns(ip_ranges_sync_token=nw.lit(token, nw.String))
    inputs = [c for c in nw.from_native(native).collect_schema().names()]
    return out.select(*inputs, *ENRICHED_COLUMNS).to_native()
