"""Exposure and the security groups: ``sg_open`` on observed findings, and ``configured``
findings (a rule admitting ``0.0.0.0/0`` or ``::/0`` on an interface where no
internet-initiated traffic was observed in the window): what config-only tools and
flow-only tools each miss.

Security groups alone over-state reachability: network ACLs, route tables and whether the
interface has a public address also decide. The evidence of ``configured`` findings says
so and names the interface's public IP, or its absence. The rules come from
:mod:`flowtools.enrichment.security_groups`; everything is computed in Python over the
(small) inventory and joined lazily to the findings frame, whose engine it keeps.
"""

from __future__ import annotations

from typing import Any

import narwhals as nw
import polars as pl

from flowtools.analyses.exposure.initiator import CONFIGURED
from flowtools.enrichment.inventory import FORWARDING_TYPES, Inventory
from flowtools.enrichment.security_groups import covers, ingress_rules, known_interfaces
from flowtools.frames import side_table

__all__ = ["configured_findings", "with_sg_open"]


def with_sg_open(findings: nw.LazyFrame, native: Any, inventory: Inventory,
                 keys: nw.LazyFrame | None = None) -> nw.LazyFrame:
    """Fill ``sg_open`` of observed findings: true when one of the interface's security
    groups has an ingress rule admitting internet addresses on the finding's protocol and
    port, false when none does, null when the interface's groups are not in the inventory.

    ``keys``: the findings' (``interface_id``, ``protocol``, ``port``) when the caller has
    them from a cheaper plan; without it they are read from ``findings``, which a lazy
    engine then computes twice (DuckDB does not share subplans between branches)."""
    known = known_interfaces(inventory)
    if not known:
        return findings
    rules = nw.from_native(side_table(native, ingress_rules(inventory).filter(pl.col("r_internet"))))
    keys = (findings if keys is None else keys).select("interface_id", "protocol", "port").unique()
    open_keys = (keys.join(rules, on="interface_id", how="inner")
                 .filter(covers(nw.col("protocol"), nw.col("port")))
                 .select("interface_id", "protocol", _port_key=nw.col("port").fill_null(-1))
                 .unique().with_columns(_sg_open=nw.lit(True)))
    known_table = pl.DataFrame({"interface_id": known, "_sg_known": [True] * len(known)})
    known_frame = nw.from_native(side_table(native, known_table))
    return (findings.with_columns(_port_key=nw.col("port").fill_null(-1))
            .join(open_keys, on=["interface_id", "protocol", "_port_key"], how="left")
            .join(known_frame, on="interface_id", how="left")
            .with_columns(sg_open=nw.when(nw.col("_sg_known").fill_null(False))
                          .then(nw.col("_sg_open").fill_null(False)).otherwise(nw.lit(None, nw.Boolean)))
            .drop("_port_key", "_sg_open", "_sg_known"))


def _describe_rule(protocol: str, port: int | None, port_to: int | None) -> str:
    if protocol == "all":
        return "all traffic"
    if port is None:
        return protocol.upper() if protocol.startswith("icmp") else f"protocol {protocol}"
    ports = str(port) if port_to in (None, port) else f"{port}-{port_to}"
    return f"{protocol.upper()} {ports}"


def _candidates(inventory: Inventory, columns: dict[str, Any]) -> pl.DataFrame:
    """One row per (interface, protocol, port range) that a rule opens to 0.0.0.0/0 or ::/0,
    in the output columns of exposure plus ``status_rank`` and the ``r_*`` rule columns."""
    rules = ingress_rules(inventory).filter(pl.col("r_world"))
    interfaces = inventory.interfaces.filter(
        ~pl.col("interface_type").fill_null("interface").is_in(list(FORWARDING_TYPES)))
    rules = rules.join(interfaces.select("interface_id"), on="interface_id", how="semi")
    if rules.height == 0:
        return pl.DataFrame(schema={"_cand": pl.Int64, **columns})
    icmp = pl.col("r_protocol").str.starts_with("icmp")
    rules = rules.with_columns(
        port=pl.when(icmp | (pl.col("r_protocol") == "all")).then(None).otherwise(pl.col("r_from")),
        port_to=pl.when(icmp | (pl.col("r_protocol") == "all")).then(None).otherwise(pl.col("r_to")),
    )
    grouped = rules.group_by("interface_id", "r_protocol", "port", "port_to", maintain_order=True).agg(
        r_from=pl.col("r_from").first(), r_to=pl.col("r_to").first(),
        groups=pl.concat_str("group_id", pl.lit(" ("), pl.col("group_name").fill_null(""), pl.lit(")")).unique(
            maintain_order=True),
        cidrs=pl.col("cidr").unique(maintain_order=True).sort(),
    )
    meta = inventory.interfaces.select(
        "interface_id", account_id=pl.coalesce("owner_id", "account_id"), region=pl.col("region"),
        vpc_id=pl.col("vpc_id"), instance_id=pl.col("instance_id"), resource_name=pl.col("resource_name"),
        interface_type=pl.col("interface_type"),
        local_ip=pl.coalesce(pl.col("private_ip"), pl.col("ipv6_addresses").list.first()),
        public_ip=pl.col("public_ip"))
    df = grouped.join(meta, on="interface_id", how="left")
    rows = []
    for r in df.iter_rows(named=True):
        what = _describe_rule(r["r_protocol"], r["port"], r["port_to"])
        reach = (f"the interface has public IP {r['public_ip']}" if r["public_ip"] else
                 "the interface has no public IP, so the internet reaches it only through a load balancer "
                 "or another forwarder")
        evidence = (f"security group {', '.join(r['groups'])} admits {' and '.join(r['cidrs'])} on {what}; "
                    f"no internet-initiated traffic observed in the window. Security groups alone over-state "
                    f"reachability (network ACLs and routes also decide): {reach}")
        rows.append({**r, "evidence": evidence})
    out = pl.DataFrame(rows, infer_schema_length=None).with_row_index("_cand").with_columns(
        pl.col("_cand").cast(pl.Int64),
        protocol=pl.col("r_protocol"), status=pl.lit("configured"), status_rank=pl.lit(CONFIGURED),
        sg_open=pl.lit(True), peers=pl.lit(0), connections=pl.lit(0), bytes_in=pl.lit(0), bytes_out=pl.lit(0),
        first_seen=pl.lit(None), last_seen=pl.lit(None), confidence=pl.lit(None),
        sample_peers=pl.lit([], dtype=pl.List(pl.String)), aws_peers=pl.lit(None),
    )
    return out.select(pl.col(c).cast(t) for c, t in {"_cand": pl.Int64, **columns}.items())


def configured_findings(findings: nw.LazyFrame, native: Any, inventory: Inventory,
                        columns: dict[str, Any]) -> nw.LazyFrame:
    """``configured`` findings: rules admitting ``0.0.0.0/0`` or ``::/0`` (one row per
    interface, protocol and port range, both address families merged) where the findings
    show no internet-initiated traffic on a port the rule covers. ``findings`` needs only
    ``interface_id``, ``protocol`` and ``port`` (the keys of the observed findings are
    enough). ``columns`` maps the output columns (with ``status_rank``) to their Polars
    types."""
    candidates = _candidates(inventory, columns)
    cand = nw.from_native(side_table(native, candidates))
    rules = nw.from_native(side_table(native, candidates.select(
        "_cand", "interface_id", r_protocol=pl.col("protocol"),
        r_from=pl.col("port"), r_to=pl.col("port_to"))))
    observed = (findings.select("interface_id", "protocol", "port")
                .join(rules, on="interface_id", how="inner")
                .filter(covers(nw.col("protocol"), nw.col("port")))
                .select("_cand").unique())
    return cand.join(observed, on="_cand", how="anti").drop("_cand")
