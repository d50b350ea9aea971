"""The security-group view of exposure: what the configuration admits from the internet.

Flow logs tell what the internet *did* reach; security groups tell what it *could*
reach. This module reads the inventory's rules: which ingress rules admit internet
addresses (:func:`ingress_rules`, :func:`admits_internet`), which interfaces have all
their groups known (:func:`known_interfaces`), and whether a rule covers a protocol and
port (:func:`covers`). The exposure analysis joins them to its findings
(:mod:`flowtools.analyses.exposure.configured`). Computed in Python over the (small)
inventory.
"""

from __future__ import annotations

import narwhals as nw
import polars as pl

from flowtools.addresses import holds_internet
from flowtools.enrichment.inventory import Inventory

__all__ = ["WORLD", "admits_internet", "covers", "ingress_rules", "known_interfaces"]

#: The CIDRs that admit the whole internet; a rule with one of these makes a ``configured``
#: finding when nothing was observed.
WORLD = ("0.0.0.0/0", "::/0")

def admits_internet(cidr: str | None) -> bool:
    """Whether a rule's CIDR holds any internet address (:func:`flowtools.addresses.holds_internet`:
    the same rule as the address classes): ``0.0.0.0/0``, ``::/0`` and any public range
    (an office's ``198.51.100.0/24``) do; ``10.0.0.0/8`` does not."""
    return holds_internet(cidr)


_RULES_SCHEMA = {
    "interface_id": pl.String, "group_id": pl.String, "group_name": pl.String, "r_protocol": pl.String,
    "r_from": pl.Int32, "r_to": pl.Int32, "cidr": pl.String, "r_internet": pl.Boolean, "r_world": pl.Boolean,
}


def ingress_rules(inventory: Inventory) -> pl.DataFrame:
    """Ingress rules with a CIDR source, per interface: ``interface_id, group_id,
    group_name, r_protocol`` (``tcp``, ``udp``, ``icmp``, ``icmpv6``, ``all`` or a number),
    ``r_from, r_to`` (null for all traffic), ``cidr, r_internet`` (the CIDR holds internet
    addresses), ``r_world`` (``0.0.0.0/0`` or ``::/0``)."""
    interfaces = inventory.interfaces.select("interface_id", group_id=pl.col("security_group_ids")).explode("group_id")
    rules = inventory.security_group_rules.filter(
        (pl.col("direction") == "ingress") & pl.col("cidr").is_not_null())
    if interfaces.height == 0 or rules.height == 0:
        return pl.DataFrame(schema=_RULES_SCHEMA)
    cidrs = rules["cidr"].unique().to_list()
    internet = pl.DataFrame({"cidr": cidrs, "r_internet": [admits_internet(c) for c in cidrs]},
                            schema={"cidr": pl.String, "r_internet": pl.Boolean})
    return (interfaces.join(rules, on="group_id", how="inner")
            .join(internet, on="cidr", how="left")
            .select("interface_id", "group_id", "group_name", r_protocol=pl.col("protocol"),
                    r_from=pl.col("from_port"), r_to=pl.col("to_port"), cidr=pl.col("cidr"),
                    r_internet=pl.col("r_internet"), r_world=pl.col("cidr").is_in(list(WORLD)))
            .cast(_RULES_SCHEMA))  # type: ignore[arg-type]


def known_interfaces(inventory: Inventory) -> list[str]:
    """Interfaces whose security groups are all in the inventory (so ``sg_open`` can say
    false). Interfaces without groups (NAT gateways, some load balancers) are not."""
    groups = set(inventory.security_groups["group_id"].to_list())
    if not groups:
        return []
    out = []
    for iface, ids in inventory.interfaces.select("interface_id", "security_group_ids").iter_rows():
        if ids and all(g in groups for g in ids):
            out.append(iface)
    return out


def covers(protocol: nw.Expr, port: nw.Expr) -> nw.Expr:
    """A rule (``r_*`` columns) admits ``protocol``/``port`` (port null for ICMP)."""
    r_protocol, r_from, r_to = nw.col("r_protocol"), nw.col("r_from"), nw.col("r_to")
    in_range = port.is_null() | r_from.is_null() | (r_from < 0) | ((r_from <= port) & (port <= r_to))
    return (r_protocol == "all") | ((r_protocol == protocol) & in_range)
