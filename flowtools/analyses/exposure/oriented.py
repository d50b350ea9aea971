"""Every conversation with its initiator and responder, for any peer: the exposure
analysis' steps 1-3 (:mod:`.records`, :mod:`.orientation`, :mod:`.initiator`) without its
internet-only filter, decoded to addresses and interface ids. The traffic analyses
(:func:`flowtools.analyses.traffic.conversations`, :func:`~flowtools.analyses.traffic.ports`)
read it, so they orient a conversation exactly as exposure does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import narwhals as nw

from flowtools.analyses.exposure.initiator import (
    DECIDED_BY_FLAGS,
    DECIDED_BY_PORTS,
    DECIDED_FIRST,
    group_conversations,
    initiators,
)
from flowtools.analyses.exposure.orientation import ADDRESS_KEY, orient
from flowtools.analyses.exposure.records import (
    ADDRESS_COLUMNS,
    address_classes,
    address_pairs,
    col,
    keyed,
    lit,
    number_interfaces,
    select_records,
)
from flowtools.enrichment.inventory import Inventory
from flowtools.frames import materialised, side_table
from flowtools.protocols import ICMP_PROTOCOLS

__all__ = ["ORIENTED_COLUMNS", "oriented_conversations"]

#: The columns of :func:`oriented_conversations`, in order. ``initiator``/``responder``
#: are addresses (normalized, ``pkt_*`` first), ``initiator_port``/``service_port``
#: their ports (the service port is the responder's; null for ICMP); ``initiated`` is
#: ``inbound`` (the remote side initiated: the interface serves) or ``outbound``;
#: ``decided_by`` is ``flags``, ``ports``, ``first`` or ``undecided`` (no rule decided:
#: the side on the higher port is taken as the initiator, the remote one on a tie);
#: ``bytes_sent``/``bytes_received`` are the initiator's sent and received bytes, as the
#: interface logged them; ``accepted`` counts the ACCEPT records; ``carried``: traffic
#: the interface carries for others (NAT gateway, load balancer back end).
ORIENTED_COLUMNS: tuple[str, ...] = (
    "interface_id", "initiator", "initiator_port", "responder", "service_port", "protocol", "initiated",
    "decided_by", "records", "packets", "bytes", "bytes_sent", "bytes_received", "accepted", "first", "last",
    "carried",
)


def oriented_conversations(flows: Any, *, interfaces: Sequence[str] | None = None,
                           inventory: Inventory | None = None) -> nw.LazyFrame:
    """Each conversation (interface, both addresses and ports, protocol) of ``flows`` with
    who initiated it, decided as the exposure analysis decides (TCP flags; then port
    evidence: fan-in/fan-out, well-known ports, the ephemeral-port rule; then who was seen
    first), for internet and internal peers alike: a Narwhals lazy frame on the engine of
    ``flows`` with :data:`ORIENTED_COLUMNS`, unordered.

    ``interfaces`` (optional, case-insensitive) keeps only those interfaces' records
    (filtered first, so the passes below read only them). ``inventory`` (optional) tells
    the interfaces' own addresses, used to orient records without ``flow_direction``.
    Records whose direction cannot be told, and records without traffic (NODATA,
    SKIPDATA), are left out.

    Cost: runs at call time, like exposure's full method: one eager aggregate of the
    records into distinct address pairs, then one hash aggregate into conversations held
    in engine memory (:func:`flowtools.frames.materialised`); the returned frame works on
    those and small side tables. The records are never collected.
    """
    lf = nw.from_native(flows) if not isinstance(flows, nw.LazyFrame) else flows
    inventory = inventory if inventory is not None else Inventory.empty()
    records = select_records(lf)
    if interfaces is not None:
        records = records.filter(col("interface_id").str.to_lowercase().is_in([i.lower() for i in interfaces]))
    records = keyed(records.filter(~col("bytes").is_null()), ADDRESS_KEY)
    native = lf.to_native()

    def side(table: Any) -> nw.LazyFrame:
        return nw.from_native(side_table(native, table))

    pairs = address_pairs(records, ADDRESS_KEY)
    numbered = number_interfaces(pairs)
    addresses = address_classes(pairs, list(ADDRESS_COLUMNS), inventory, None)
    orientation = side(orient(pairs, addresses, numbered, inventory))
    grouped = nw.from_native(materialised(group_conversations(records, orientation, None)))
    decided = initiators(grouped, addresses.n_addresses, side(numbered.table))

    address = side(addresses.addresses)
    remote_first = (
        nw.when(col("initiator") == "remote").then(lit(True))
        .when(col("initiator") == "local").then(lit(False))
        .otherwise(col("remote_port") >= col("local_port"))
    )
    how = (nw.when(col("how") == DECIDED_BY_FLAGS).then(lit("flags"))
           .when(col("how") == DECIDED_BY_PORTS).then(lit("ports"))
           .when(col("how") == DECIDED_FIRST).then(lit("first"))
           .otherwise(lit("undecided")))

    def pick(remote: str, local: str) -> nw.Expr:
        return nw.when(col("_remote_first")).then(col(remote)).otherwise(col(local))

    icmp = col("protocol").is_in(list(ICMP_PROTOCOLS))
    out = (decided.with_columns(_remote_first=remote_first)
           .join(address.select(remote_ord=col("ordinal"), _remote=col("address")), on="remote_ord", how="left")
           .join(address.select(local_ord=col("ordinal"), _local=col("address")), on="local_ord", how="left")
           .join(side(numbered.table.select("interface", "interface_id")), on="interface", how="left"))
    return out.select(
        "interface_id",
        initiator=pick("_remote", "_local"),
        initiator_port=nw.when(icmp).then(lit(None, nw.Int32)).otherwise(pick("remote_port", "local_port")),
        responder=pick("_local", "_remote"),
        service_port=nw.when(icmp).then(lit(None, nw.Int32)).otherwise(pick("local_port", "remote_port")),
        protocol=col("protocol"),
        initiated=nw.when(col("_remote_first")).then(lit("inbound")).otherwise(lit("outbound")),
        decided_by=how,
        records=col("records"), packets=col("packets"),
        bytes=col("bytes_in") + col("bytes_out"),
        bytes_sent=pick("bytes_in", "bytes_out"), bytes_received=pick("bytes_out", "bytes_in"),
        accepted=col("accepted"),
        first=col("first_seen"), last=col("last_seen"), carried=col("carried"),
    )
