"""Exposure, steps 4-6: findings from the internet-initiated conversations (status,
confidence, counters, peers, evidence), the inventory's names, the output order, and the
output as JSON-ready records."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any, NamedTuple

import narwhals as nw
import polars as pl

from flowtools.analyses.exposure.initiator import (
    CONFIDENCE_HIGH,
    CONFIDENCE_MEDIUM,
    DECIDED_BY_FLAGS,
    DECIDED_BY_PORTS,
    EXPOSED,
    REACHABLE,
)
from flowtools.analyses.exposure.orientation import DIRECTION_FROM_INVENTORY, DIRECTION_GUESSED
from flowtools.analyses.exposure.records import (
    ATTRIBUTES,
    Addresses,
    attribute_aggregates,
    col,
    forwarding,
    lit,
)
from flowtools.enrichment.inventory import Inventory
from flowtools.enrichment.naming import ecs_service_names, resource_names
from flowtools.frames import side_table, to_polars
from flowtools.protocols import ICMP, ICMP_PROTOCOLS, ICMPV6, NAMES, TCP

#: Evidence says "from ephemeral ports" when at least this share of a finding's
#: conversations come from remote ports that are neither well known nor known services.
EPHEMERAL_SHARE = 0.9

#: The output columns (the JSON contract of docs/design.md), in order, with their types:
#: strings unless noted; ``port``/``port_to`` int32 (``port`` null for ICMP, ``port_to``
#: null except for ``configured``), ``sg_open`` boolean (null: filled by enrichment),
#: ``peers``/``connections``/``bytes_in``/``bytes_out`` int64, ``first_seen``/``last_seen``
#: UTC timestamps, ``sample_peers`` a list of strings (the 5 peers with most connections,
#: ties by address).
COLUMNS: tuple[str, ...] = (
    "account_id", "region", "vpc_id", "interface_id", "instance_id", "resource_name",
    "interface_type", "local_ip", "port", "port_to", "protocol", "status", "sg_open", "peers",
    "connections", "bytes_in", "bytes_out", "first_seen", "last_seen", "confidence", "evidence",
    "sample_peers", "risk",
)
#: Columns after the contract's: ``aws_peers`` (int64), how many peers are in AWS's
#: ip-ranges (null without ``ip_ranges``); ``risk_category``, the port category that
#: decided ``risk`` (:mod:`flowtools.analyses.risk`; null for other ports).
EXTRA_COLUMNS: tuple[str, ...] = ("aws_peers", "risk_category")
SAMPLE_PEERS = 5
#: Polars types of :data:`COLUMNS` (and the internal ``status_rank``), for side tables;
#: ``risk`` is not among them: it is added last (:func:`flowtools.analyses.risk.with_risk`).
POLARS_TYPES: dict[str, Any] = {
    **{c: pl.String for c in COLUMNS if c != "risk"},
    "port": pl.Int32, "port_to": pl.Int32, "sg_open": pl.Boolean, "peers": pl.Int64,
    "connections": pl.Int64, "bytes_in": pl.Int64, "bytes_out": pl.Int64,
    "first_seen": pl.Datetime("us", "UTC"), "last_seen": pl.Datetime("us", "UTC"),
    "sample_peers": pl.List(pl.String), "aws_peers": pl.Int64, "status_rank": pl.Int32,
}


def findings_records(frame: Any) -> list[dict[str, Any]]:
    """Materialise findings into JSON-ready dicts (the CLI's json/csv rows).

    Keys are :data:`COLUMNS` in order (extra columns of ``frame`` follow); timestamps
    become ``2026-11-20T10:00:00Z`` strings, ``sample_peers`` a list, unknown values None.
    This executes the frame.
    """
    df = to_polars(frame)
    names = [c for c in COLUMNS if c in df.columns] + [c for c in df.columns if c not in COLUMNS]
    # timestamps formatted by Polars, then one conversion to dicts (no Python per value:
    # the naive method gives tens of thousands of findings)
    stamps = {c: pl.col(c).dt.convert_time_zone("UTC") if getattr(t, "time_zone", None) else pl.col(c)
              for c, t in df.schema.items() if isinstance(t, pl.Datetime)}
    return df.select(names).with_columns(
        **{c: e.dt.strftime(_TIMESTAMP_FORMAT) for c, e in stamps.items()}).to_dicts()


def findings_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :func:`findings_records`' output, shipped as
    ``flowtools/schemas/exposure.schema.json``."""
    text = resources.files("flowtools").joinpath("schemas", "exposure.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

def _score(count: nw.Expr, ordinal: str, n_addresses: int) -> nw.Expr:
    """``count`` and, for ties, ``ordinal`` (ascending; ordinals are below ``n_addresses``)
    as one integer, higher is better: one integer per address, so ranks by it are the same
    on every engine (DuckDB has no ``order_by`` windows in Narwhals), and the ordinal is
    ``n_addresses - score % (n_addresses + 1)``."""
    big = lit(n_addresses + 1, nw.Int64)
    return count.cast(nw.Int64) * big + (big - 1 - col(ordinal).fill_null(n_addresses).cast(nw.Int64))


def _protocol_name() -> nw.Expr:
    p = col("protocol")
    expr = nw.when(p == TCP).then(lit("tcp"))
    for number, name in NAMES.items():
        if number != TCP:
            expr = expr.when(p == number).then(lit(name))
    return expr.otherwise(p.cast(nw.String))


def _plural(count: str, word: str) -> nw.Expr:
    return nw.concat_str([col(count).cast(nw.String), lit(" "), lit(word),
                          nw.when(col(count) == 1).then(lit("")).otherwise(lit("s"))])


def _evidence(naive: bool) -> nw.Expr:
    """Short human text: how the finding's best conversations were decided, and how they ended."""
    if naive:
        return nw.concat_str([
            lit("naive reading: accepted from "), _plural("peers", "public address"),
            lit(" to this port (replies to the resource's own connections not told apart)")])
    status, how = col("status_rank"), col("best_how")
    outcome = (
        nw.when((status == EXPOSED) & col("any_synack")).then(lit("accepted, SYN-ACK sent"))
        .when(status == EXPOSED).then(lit("accepted and answered"))
        .when((status == REACHABLE) & col("any_rej_reply")).then(lit("accepted, reply rejected (network ACL)"))
        .when((status == REACHABLE) & col("any_rst")).then(lit("accepted, answered only with RST"))
        .when(status == REACHABLE).then(lit("accepted, never answered"))
        .when(col("any_bpa")).then(lit("rejected (VPC Block Public Access)"))
        .otherwise(lit("rejected"))
    )
    proto = nw.when(col("protocol") == ICMP).then(lit("ICMP")).when(col("protocol") == ICMPV6).then(
        lit("ICMPv6")).otherwise(_protocol_name().str.to_uppercase())
    peers = nw.when(col("peers") == 1).then(lit("internet peer")).otherwise(lit("internet peers"))
    log = nw.when(~col("any_flags") & ~col("any_field")).then(lit("v2 log: ")).when(
        ~col("any_flags") & (col("protocol") == TCP)).then(lit("no TCP flags: ")).otherwise(lit(""))
    method = (
        nw.when(how == DECIDED_BY_FLAGS).then(nw.concat_str([lit("TCP SYN from "), peers, lit(" ")]))
        .when(how == DECIDED_BY_PORTS).then(nw.concat_str([
            log, proto, lit(" port "), col("local_port").cast(nw.String), lit(" reached by "),
            _plural("peers", "peer"),
            nw.when(col("ephemeral_share") >= EPHEMERAL_SHARE).then(lit(" from ephemeral ports, ")).otherwise(lit(", "))]))
        .when(col("protocol").is_in(list(ICMP_PROTOCOLS))).then(nw.concat_str([log, proto, lit(" from "), peers, lit(" ")]))
        .otherwise(nw.concat_str([log, proto, lit(" from "), peers, lit(" seen first, ")]))
    )
    direction = (nw.when(col("best_dir") == DIRECTION_FROM_INVENTORY).then(lit(" (direction from inventory addresses)"))
                 .when(col("best_dir") == DIRECTION_GUESSED).then(lit(" (direction guessed from address classes)"))
                 .otherwise(lit("")))
    return nw.concat_str([method, outcome, direction])


def _method_rank() -> nw.Expr:
    """A conversation's method as one integer that orders like the tuple (``confidence_rank``,
    ``how``, ``dir_source``): its maximum over a finding's conversations is the method of
    the best of them (confidence first, then flags > ports > first, then the best direction
    source) in one aggregate. Each part is below 10 (:data:`CONFIDENCE_HIGH`,
    :data:`DECIDED_BY_FLAGS`, :data:`DIRECTION_FROM_FIELD`); :func:`_method_of_rank` reads
    the parts back."""
    return (col("confidence_rank") * 10 + col("how")) * 10 + col("dir_source")


def _method_of_rank(rank: str) -> dict[str, nw.Expr]:
    """The named columns ``best_confidence``, ``best_how``, ``best_dir`` of a
    :func:`_method_rank` column."""
    return {"best_dir": col(rank) % 10, "best_how": (col(rank) // 10) % 10, "best_confidence": col(rank) // 100}


#: Findings are computed per (interface ordinal, local port, protocol number).
FINDING_KEY = ["interface", "local_port", "protocol"]
_FINDING_KEY = FINDING_KEY


def _with_attributes(findings: nw.LazyFrame, interfaces: nw.LazyFrame, aggregated: bool) -> nw.LazyFrame:
    """The interface id and :data:`ATTRIBUTES` of each row: the interface's own values
    where they do not vary, else the row's aggregated ones (see :func:`number_interfaces`)."""
    side = interfaces.select("interface", "interface_id", *(col(a).alias(f"_{a}") for a in ATTRIBUTES))
    findings = findings.join(side, on="interface", how="left")
    return findings.with_columns(**{a: nw.coalesce(col(a), col(f"_{a}")) if aggregated else col(f"_{a}")
                                    for a in ATTRIBUTES}).drop(*(f"_{a}" for a in ATTRIBUTES))


class Parts(NamedTuple):
    """A finding's aggregates over its conversations, in a form that merges: the parts of
    disjoint sets of conversations (a split interface's slices of remote addresses,
    :mod:`.split`) add up by :func:`merge_parts` to the parts of their union. ``key`` is
    :data:`FINDING_KEY` and any extra columns the conversations were grouped by."""

    #: Per key: ``status_rank`` (min), ``connections`` (count), ``bytes_in``/``bytes_out``
    #: (sums), ``first_seen`` (min), ``last_seen`` (max), ``best`` (max of the method
    #: rank), ``any_*`` flags, ``ephemeral`` (how many from ephemeral remote ports) and the
    #: aggregated :data:`ATTRIBUTES` (max) when they are per record.
    per_key: Any
    #: Per key and local address ordinal: ``_n`` conversations.
    per_local: Any
    #: Per key and remote address ordinal: ``_n`` conversations, ``_aws`` (any).
    per_peer: Any


#: How :func:`merge_parts` combines the columns of :attr:`Parts.per_key` (Polars).
_MERGE: dict[str, str] = {
    "status_rank": "min", "connections": "sum", "bytes_in": "sum", "bytes_out": "sum", "first_seen": "min",
    "last_seen": "max", "best": "max", "any_flags": "any", "any_field": "any", "any_synack": "any",
    "any_rst": "any", "any_rej_reply": "any", "any_bpa": "any", "ephemeral": "sum",
    **{a: "max" for a in ATTRIBUTES},
}


def finding_parts(conv: nw.LazyFrame, *, aggregated: bool, extra: tuple[str, ...] = ()) -> Parts:
    """The :class:`Parts` of the (materialised) internet-initiated conversations, grouped by
    :data:`FINDING_KEY` and ``extra``: three hash aggregates, lazy."""
    key = [*FINDING_KEY, *extra]
    per_key = conv.group_by(key).agg(
        status_rank=col("status_rank").min(),
        connections=nw.len(),
        bytes_in=col("bytes_in").sum(), bytes_out=col("bytes_out").sum(),
        first_seen=col("first_seen").min(), last_seen=col("last_seen").max(),
        best=_method_rank().max(),
        any_flags=col("has_flags").any(), any_field=col("has_field").any(),
        any_synack=col("out_synack").any(), any_rst=col("out_rst").any(),
        any_rej_reply=col("out_rej").any(), any_bpa=col("bpa").any(),
        ephemeral=col("remote_ephemeral").cast(nw.Int64).sum(),
        **attribute_aggregates(lit(True) if aggregated else None, col),
    )
    per_local = conv.group_by(*key, "local_ord").agg(_n=nw.len())
    per_peer = conv.group_by(*key, "remote_ord").agg(_n=nw.len(), _aws=col("remote_aws").any())
    return Parts(per_key, per_local, per_peer)


def merge_parts(parts: list[Parts], key: list[str]) -> Parts:
    """The parts of the union of disjoint sets of conversations, from each set's parts
    (Polars frames, ``key`` as in :func:`finding_parts`): one aggregate per table, eager,
    on tables the size of the findings and their peers."""
    def merged(tables: list[Any], by: list[str], aggs: dict[str, str]) -> pl.DataFrame:
        frame = pl.concat(tables, how="vertical_relaxed")
        return frame.group_by(by).agg(getattr(pl.col(c), how)() for c, how in aggs.items() if c in frame.columns)

    return Parts(merged([p.per_key for p in parts], key, _MERGE),
                 merged([p.per_local for p in parts], [*key, "local_ord"], {"_n": "sum"}),
                 merged([p.per_peer for p in parts], [*key, "remote_ord"], {"_n": "sum", "_aws": "any"}))


def build_findings(conv: nw.LazyFrame, native: Any, inventory: Inventory, addresses: Addresses,
              interfaces: nw.LazyFrame, *, aggregated: bool, naive: bool, aws: bool) -> nw.LazyFrame:
    """Findings from the (materialised) internet-initiated conversations, read three
    times (:func:`finding_parts`), then :func:`findings_of_parts`."""
    return findings_of_parts(finding_parts(conv, aggregated=aggregated), native, inventory, addresses, interfaces,
                             aggregated=aggregated, naive=naive, aws=aws)


def findings_of_parts(parts: Parts, native: Any, inventory: Inventory, addresses: Addresses,
                      interfaces: nw.LazyFrame, *, aggregated: bool, naive: bool, aws: bool,
                      ecs: pl.DataFrame | None = None) -> nw.LazyFrame:
    """Findings from their :class:`Parts` (Narwhals lazy frames keyed by
    :data:`FINDING_KEY`): per finding key; ``local_ip``, the local address of most
    conversations; ``peers``, ``aws_peers`` and ``sample_peers`` (one rank window over the
    peers). Addresses and interface ids are decoded from their ordinals on these small
    results. ``ecs``: the flows' :func:`~flowtools.enrichment.naming.ecs_service_names`
    when the caller has them (else read from ``native`` when the inventory has interfaces)."""
    n_addresses = addresses.n_addresses
    findings = parts.per_key.with_columns(
        ephemeral_share=col("ephemeral").cast(nw.Float64) / col("connections").cast(nw.Float64))
    findings = _with_attributes(findings, interfaces, aggregated)
    big = n_addresses + 1
    address = nw.from_native(side_table(native, addresses.addresses))
    local = (parts.per_local
             .with_columns(_score=_score(col("_n"), "local_ord", n_addresses))
             .group_by(_FINDING_KEY).agg(_score=col("_score").max())
             .with_columns(ordinal=lit(big - 1, nw.Int64) - col("_score") % big)
             .join(address.select("ordinal", local_ip=col("address")), on="ordinal", how="left")
             .select(*_FINDING_KEY, "local_ip"))
    peers = (parts.per_peer
             .with_columns(_rank=_score(col("_n"), "remote_ord", n_addresses)
                           .rank(method="dense", descending=True).over(*_FINDING_KEY))
             .join(address.select(remote_ord=col("ordinal"), _addr=col("address")), on="remote_ord", how="left")
             .group_by(_FINDING_KEY).agg(
                 peers=nw.len(), aws_peers=col("_aws").cast(nw.Int64).sum(),
                 **{f"_p{i}": nw.when(col("_rank") == i).then(col("_addr")).max()
                    for i in range(1, SAMPLE_PEERS + 1)}))
    findings = (findings.join(local, on=_FINDING_KEY, how="left").join(peers, on=_FINDING_KEY, how="left")
                .with_columns(sample_peers=nw.concat_str(
                    [col(f"_p{i}") for i in range(1, SAMPLE_PEERS + 1)], separator=";", ignore_nulls=True,
                ).str.split(";")))
    findings = findings.with_columns(
        **_method_of_rank("best"),
    )
    findings = _with_inventory(findings, native, inventory, ecs)
    status = nw.when(col("status_rank") == EXPOSED).then(lit("exposed")).when(col("status_rank") == REACHABLE).then(
        lit("reachable")).otherwise(lit("blocked"))
    confidence = nw.when(col("best_confidence") == CONFIDENCE_HIGH).then(lit("high")).when(
        col("best_confidence") == CONFIDENCE_MEDIUM).then(lit("medium")).otherwise(lit("low"))
    out = findings.with_columns(
        port=_finding_port(),
        protocol_name=_protocol_name(),
        status=status,
        confidence=confidence,
        evidence=_evidence(naive),
    ).select(
        "status_rank",
        account_id=nw.coalesce(col("account"), col("inv_owner"), col("src_account")),
        region=nw.coalesce(col("region"), col("inv_region")),
        vpc_id=nw.coalesce(col("vpc_id"), col("inv_vpc_id")),
        interface_id=col("interface_id"),
        instance_id=nw.coalesce(col("instance_id"), col("inv_instance_id")),
        resource_name=col("inv_resource_name"),
        interface_type=_interface_type(),
        local_ip=col("local_ip"),
        port=col("port"),
        port_to=lit(None, nw.Int32),
        protocol=col("protocol_name"),
        status=col("status"),
        sg_open=lit(None, nw.Boolean),
        peers=col("peers").cast(nw.Int64),
        connections=col("connections").cast(nw.Int64),
        bytes_in=col("bytes_in").cast(nw.Int64),
        bytes_out=lit(None, nw.Int64) if naive else col("bytes_out").cast(nw.Int64),  # naive: replies unknown
        first_seen=col("first_seen"),
        last_seen=col("last_seen"),
        confidence=col("confidence"),
        evidence=col("evidence"),
        sample_peers=col("sample_peers"),
        aws_peers=col("aws_peers").cast(nw.Int64) if aws else lit(None, nw.Int64),
    )
    if not naive:  # the naive reading does not know what forwards
        out = out.filter(~forwarding(col("interface_type")))
    return out.with_columns(status_rank=col("status_rank").cast(nw.Int32))


def _finding_port() -> nw.Expr:
    """The output ``port``: the local port, null for ICMP."""
    icmp = col("protocol").is_in(list(ICMP_PROTOCOLS))
    return nw.when(icmp).then(lit(None, nw.Int32)).otherwise(col("local_port")).cast(nw.Int32)


def _interface_type() -> nw.Expr:
    return nw.coalesce(col("inv_interface_type"), col("record_type"))


def finding_keys(per_key: nw.LazyFrame, native: Any, inventory: Inventory, interfaces: nw.LazyFrame, *,
                  aggregated: bool, ecs: pl.DataFrame | None = None) -> nw.LazyFrame:
    """The full method's findings as (``interface_id``, ``protocol`` name, ``port``), the
    keys the security-group step needs, from :attr:`Parts.per_key` (already one row per
    key): the findings frame is then read once, not once per use."""
    keys = per_key.select(*_FINDING_KEY, *(ATTRIBUTES if aggregated else ()))
    keys = _with_inventory(_with_attributes(keys, interfaces, aggregated), native, inventory, ecs)
    return keys.filter(~forwarding(_interface_type())).select(
        "interface_id", protocol=_protocol_name(), port=_finding_port())


def ordered(findings: nw.LazyFrame) -> nw.LazyFrame:
    """The contract's order: status, peers descending, interface, protocol, port (nulls last)."""
    return findings.sort(
        ["status_rank", "peers", "interface_id", "protocol", "port"],
        descending=[False, True, False, False, False], nulls_last=True,
    ).drop("status_rank")


def _with_inventory(findings: nw.LazyFrame, native: Any, inventory: Inventory,
                    ecs: pl.DataFrame | None = None) -> nw.LazyFrame:
    """Join what the inventory knows of each interface (``inv_*`` columns, null without an
    inventory). An interface described as ``Interface for NAT Gateway ...`` counts as a NAT
    gateway whatever its type says (the findings of forwarding types are dropped later)."""
    names = ["inv_owner", "inv_region", "inv_vpc_id", "inv_instance_id", "inv_resource_name",
             "inv_interface_type"]
    interfaces = inventory.interfaces
    # the name: the inventory's, or an ECS task's service (v7 field) when it has no better
    # one (one aggregate over the records when the column is there; interfaces-sized)
    if interfaces.height == 0:
        return findings.with_columns(**{n: lit(None, nw.String) for n in names})
    named = resource_names(interfaces, ecs_service_names(native) if ecs is None else ecs).rename({"resource_name": "inv_resource_name"})
    named_side = nw.from_native(side_table(native, named))
    nat_description = interfaces["description"].fill_null("").str.starts_with("Interface for NAT Gateway")
    table = interfaces.select(
        "interface_id",
        inv_owner=pl.coalesce("owner_id", "account_id"),
        inv_region=pl.col("region"),
        inv_vpc_id=pl.col("vpc_id"),
        inv_instance_id=pl.col("instance_id"),
        inv_interface_type=pl.when(nat_description & pl.col("interface_type").fill_null("interface").eq("interface"))
        .then(pl.lit("nat_gateway")).otherwise(pl.col("interface_type")),
    )
    return (findings.join(nw.from_native(side_table(native, table)), on="interface_id", how="left")
            .join(named_side, on="interface_id", how="left"))
