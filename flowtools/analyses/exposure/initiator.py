"""Exposure, step 3: conversations (the records joined with their orientation, one hash
aggregate) and who initiated each (flags, then ports, then who was seen first), with the
status and confidence of the internet-initiated ones."""

from __future__ import annotations

import narwhals as nw

from flowtools.analyses.exposure.orientation import (
    ADDRESS_KEY,
    DIRECTION_FROM_FIELD,
    DIRECTION_FROM_INVENTORY,
)
from flowtools.analyses.exposure.records import (
    ATTRIBUTES,
    attribute_aggregates,
    col,
    conversation_port,
    forwarding,
    lit,
)
from flowtools.enrichment.ports import WELL_KNOWN_MAX, server_ports
from flowtools.protocols import ICMP_PROTOCOLS, TCP

#: A local port reached from at least this many distinct remote (address, port) pairs is
#: a service port (port evidence, used when TCP flags cannot decide).
SERVICE_FAN_IN = 4
#: A remote (address, port) reached from at least this many distinct local ports is a
#: service the interface calls (a client's lookups from random ports to a resolver).
CLIENT_FAN_OUT = 4
#: Ephemeral (client) ports: Linux's default range 32768-60999 and IANA's 49152-65535,
#: together. A port in it facing a port outside it (and not a known service port) is the
#: client's side (docs/format.md, "Ports"): stronger evidence than who was seen first.
EPHEMERAL_MIN, EPHEMERAL_MAX = 32768, 65535
#: Ports above 1023 that count as well known for port evidence (with 1-:data:`WELL_KNOWN_MAX`):
#: the ``server`` mark of the shipped port list (:func:`flowtools.enrichment.ports.server_ports`).
KNOWN_SERVICE_PORTS: tuple[int, ...] = server_ports()

#: How a conversation's initiator was decided (``how``; higher is stronger; the naive
#: method decides nothing).
NOT_DECIDED, DECIDED_FIRST, DECIDED_BY_PORTS, DECIDED_BY_FLAGS = 0, 1, 2, 3
#: A conversation's confidence (``confidence_rank``): low, medium, high.
CONFIDENCE_LOW, CONFIDENCE_MEDIUM, CONFIDENCE_HIGH = 1, 2, 3
#: A finding's status (``status_rank``; lower is worse): exposed, reachable, blocked, and
#: ``configured`` (from the security groups, nothing observed).
EXPOSED, REACHABLE, BLOCKED, CONFIGURED = 0, 1, 2, 3

#: A conversation: the interface and the addresses by ordinal (one per lower-cased
#: interface id; one per normalized address, one for strings that are not addresses), so
#: the key holds no strings.
CONVERSATION = ["interface", "local_ord", "local_port", "remote_ord", "remote_port", "protocol"]


def _bit(expr: nw.Expr, value: int) -> nw.Expr:
    """Whether the flag ``value`` (a power of two) is set: ``x mod 2v >= v`` (floor modulo)."""
    return (expr % (2 * value) >= value).fill_null(False)


def group_conversations(records: nw.LazyFrame, orientation: nw.LazyFrame, per_record: nw.Expr | None) -> nw.LazyFrame:
    """Conversations: the records joined with their orientation (one join with a small
    side table on :data:`ADDRESS_KEY`; records that cannot be oriented drop out), then one
    hash aggregate with integer keys. With the orientation read from :func:`address_pairs`,
    these are the two per-record steps of the full method."""
    ingress = col("_ingress")
    egress = ~ingress
    flags = col("tcp_flags")
    tcp = (col("protocol") == TCP) & ~flags.is_null()
    syn, ack = _bit(flags, 2), _bit(flags, 16)
    # per-record facts computed once (DuckDB evaluates each aggregate's input on its own)
    oriented = records.join(orientation, on=ADDRESS_KEY, how="left").filter(~ingress.is_null()).with_columns(
        local_port=conversation_port(nw.when(ingress).then(col("dstport")).otherwise(col("srcport"))),
        remote_port=conversation_port(nw.when(ingress).then(col("srcport")).otherwise(col("dstport"))),
        _syn=tcp & syn & ~ack, _synack=tcp & syn & ack, _rst=tcp & (flags == 4),
        _accept=col("action") == "ACCEPT", _reject=col("action") == "REJECT",
    )
    syn_only, syn_ack, rst_only, accept, reject = (col(c) for c in ("_syn", "_synack", "_rst", "_accept", "_reject"))
    start = col("start")
    vr = nw.when(ingress).then(syn_only).otherwise(syn_ack)  # the remote SYN or the local SYN-ACK
    vl = nw.when(ingress).then(syn_ack).otherwise(syn_only)
    forwarder = ingress & col("carried") & ~col("remote_inet") & syn_only
    if per_record is not None:
        forwarder = forwarder | (per_record & forwarding(col("interface_type")))
    conv = oriented.group_by([*CONVERSATION, "carried"]).agg(
        vr=vr.any(), vl=vl.any(),
        t_vr=nw.when(vr).then(start).min(), t_vl=nw.when(vl).then(start).min(),
        first_in=nw.when(ingress).then(start).min(), first_out=nw.when(egress).then(start).min(),
        in_acc=(ingress & accept).any(), out_ans=(egress & accept & ~rst_only).any(),
        out_synack=(egress & accept & syn_ack).any(), out_rst=(egress & accept & rst_only).any(),
        out_rej=(egress & reject).any(), bpa=(ingress & reject & (col("reject_reason") == "BPA").fill_null(False)).any(),
        forwarder=forwarder.any(),
        has_flags=(~flags.is_null()).any(), has_field=(col("dir_source") == DIRECTION_FROM_FIELD).any(),
        bytes_in=nw.when(ingress).then(col("bytes")).otherwise(lit(0)).sum(),
        bytes_out=nw.when(egress).then(col("bytes")).otherwise(lit(0)).sum(),
        records=nw.len(), packets=col("packets").sum(), accepted=accept.cast(nw.Int64).sum(),
        first_seen=col("start_time").min(), last_seen=col("end_time").max(),
        dir_source=col("dir_source").min(),
        remote_inet=col("remote_inet").any(), remote_aws=col("remote_aws").any(),
        **attribute_aggregates(per_record),
    )
    return conv.with_columns(*(col(c).cast(nw.Int64) for c in ("bytes_in", "bytes_out", "records", "packets",
                                                               "accepted")))


def _service_score(port: str, fan: str, threshold: int) -> nw.Expr:
    p = col(port)
    known = (p > 0) & ((p <= WELL_KNOWN_MAX) | p.is_in(list(KNOWN_SERVICE_PORTS)))
    return (nw.when(col(fan) >= threshold).then(lit(2)).otherwise(lit(0))
            + nw.when(known).then(lit(1)).otherwise(lit(0)))


def _ephemeral(port: str) -> nw.Expr:
    """Whether ``port`` is in the ephemeral range and not a known service port."""
    p = col(port)
    return ((p >= EPHEMERAL_MIN) & (p <= EPHEMERAL_MAX) & ~p.is_in(list(KNOWN_SERVICE_PORTS))).fill_null(False)


def _distinct_count(frame: nw.LazyFrame, keys: list[str], values: list[str], name: str) -> nw.LazyFrame:
    """``keys`` and how many distinct ``values`` each has: two hash aggregates (cheaper than
    a ``COUNT(DISTINCT) OVER`` window, seconds per million rows on DuckDB)."""
    return frame.group_by(*keys, *values).agg(_n=nw.len()).group_by(*keys).agg(**{name: nw.len()})


def decide(conversations: nw.LazyFrame, n_addresses: int, interfaces: nw.LazyFrame, *,
            aggregated: bool, fan_in: nw.LazyFrame | None = None) -> nw.LazyFrame:
    """Exposure's step 3: :func:`initiators`, keeping the internet-initiated conversations
    of the interface's own traffic (not carried) on interfaces not seen forwarding, with
    the columns the findings read (and ``fan_hyp`` when ``fan_in`` has it)."""
    decided = initiators(conversations, n_addresses, interfaces, fan_in=fan_in)
    extra = ("fan_hyp",) if "fan_hyp" in decided.collect_schema().names() else ()
    return decided.filter(
        ~col("carried") & (col("initiator") == "remote") & col("remote_inet") & ~col("interface_forwards")
    ).select(*_DECIDED, *extra, *(ATTRIBUTES if aggregated else ()))


def fan_in_counts(conversations: nw.LazyFrame, n_addresses: int) -> nw.LazyFrame:
    """Fan-in: per (``interface``, ``protocol``, ``local_port``), how many distinct remote
    (address, port) pairs the interface's own (not carried) conversations have; a string
    that is not an address (no normalized form) makes one value whatever its port, as a
    null does. Counts of conversations with disjoint remote addresses add up. Cost: two
    hash aggregates of the conversations."""
    invalid = n_addresses - 1
    own = conversations.filter(~col("carried")).with_columns(
        _rkey_port=nw.when(col("remote_ord") == invalid).then(lit(-1)).otherwise(col("remote_port")))
    return _distinct_count(own, ["interface", "protocol", "local_port"], ["remote_ord", "_rkey_port"], "fan_in")


def initiators(conversations: nw.LazyFrame, n_addresses: int, interfaces: nw.LazyFrame, *,
               fan_in: nw.LazyFrame | None = None) -> nw.LazyFrame:
    """Who initiated each conversation of :func:`group_conversations`, for any peer
    (internet or internal) and carried traffic too: every input row and column, plus
    ``initiator`` (``"remote"``, ``"local"``, null when no rule decides), ``how``
    (:data:`DECIDED_BY_FLAGS`, :data:`DECIDED_BY_PORTS`, :data:`DECIDED_FIRST`, null),
    ``confidence_rank``, ``status_rank`` (as seen from the local side),
    ``remote_ephemeral``, ``fan_in``/``fan_out`` and ``interface_forwards``.

    The rules, first that decides wins: TCP flags (SYN / SYN-ACK, the earlier when both);
    port evidence (fan-in/fan-out of the interface's own conversations and well-known
    ports, then the ephemeral-port rule); who was seen first. ``conversations`` is read
    four times (forwarding interfaces, fan-in, fan-out, the conversations): materialise it
    first. ``interfaces`` (:attr:`Interfaces.table`) tells the interfaces whose records all
    have a forwarding ``interface_type``. Cost: hash aggregates and joins on the
    conversations (never the records).

    ``fan_in`` (optional) replaces the fan-in computed from ``conversations``
    (:func:`fan_in_counts`): a table of (``interface``, ``protocol``, ``local_port``,
    ``fan_in``) and any other columns, joined as it is (a key with several rows repeats its
    conversations: :mod:`.split` decides a slice of an interface under both outcomes of
    its fan-in that way)."""
    forwarding = nw.concat([
        conversations.filter(col("forwarder")).select("interface"),
        interfaces.filter(col("forwards").fill_null(False)).select("interface"),
    ], how="vertical").group_by("interface").agg(_n=nw.len()).select("interface", interface_forwards=lit(True))
    # fan-in/out count distinct remote / local (address, port) pairs of the interface's own
    # conversations; a string that is not an address (no normalized form) makes one value
    # whatever its port, as a null does
    invalid = n_addresses - 1
    own = conversations.filter(~col("carried")).with_columns(
        _lkey_port=nw.when(col("local_ord") == invalid).then(lit(-1)).otherwise(col("local_port")),
    )
    if fan_in is None:
        fan_in = fan_in_counts(conversations, n_addresses)
    fan_out = _distinct_count(own, ["interface", "protocol", "remote_ord", "remote_port"],
                              ["local_ord", "_lkey_port"], "fan_out")
    own = (conversations.join(forwarding, on="interface", how="left")
           .join(fan_in, on=["interface", "protocol", "local_port"], how="left")
           .join(fan_out, on=["interface", "protocol", "remote_ord", "remote_port"], how="left")
           .with_columns(interface_forwards=col("interface_forwards").fill_null(False)))
    vr, vl = col("vr"), col("vl")
    flags_decision = (
        nw.when(vr & ~vl).then(lit("remote"))
        .when(vl & ~vr).then(lit("local"))
        .when(vr & vl & (col("t_vr") < col("t_vl"))).then(lit("remote"))
        .when(vr & vl & (col("t_vl") < col("t_vr"))).then(lit("local"))
    )
    icmp = col("protocol").is_in(list(ICMP_PROTOCOLS))
    # The same port on both sides (ntpd's 123<->123, IKE's 500<->500) says nothing about
    # which side serves: who was seen first decides.
    ports_usable = ~icmp & ((col("local_port") != 0) | (col("remote_port") != 0)) & (
        col("local_port") != col("remote_port"))
    lscore = _service_score("local_port", "fan_in", SERVICE_FAN_IN)
    rscore = _service_score("remote_port", "fan_out", CLIENT_FAN_OUT)
    lephemeral, rephemeral = _ephemeral("local_port"), _ephemeral("remote_port")
    port_decision = (
        nw.when(ports_usable & (lscore > rscore)).then(lit("remote"))
        .when(ports_usable & (rscore > lscore)).then(lit("local"))
        # no fan-in/out or service port to go by: the side on an ephemeral port is the client
        .when(ports_usable & rephemeral & ~lephemeral).then(lit("remote"))
        .when(ports_usable & lephemeral & ~rephemeral).then(lit("local"))
    )
    fi, fo = col("first_in"), col("first_out")
    first_decision = (
        nw.when(~fi.is_null() & (fo.is_null() | (fi < fo))).then(lit("remote"))
        .when(~fo.is_null() & (fi.is_null() | (fo < fi))).then(lit("local"))
        .when(icmp & (fi == fo) & col("in_acc")).then(lit("remote"))
    )
    decided = own.with_columns(
        _flags=flags_decision, _ports=port_decision, _first=first_decision,
    ).with_columns(
        initiator=nw.coalesce(col("_flags"), col("_ports"), col("_first")),
        how=nw.when(~col("_flags").is_null()).then(lit(DECIDED_BY_FLAGS))
        .when(~col("_ports").is_null()).then(lit(DECIDED_BY_PORTS))
        .when(~col("_first").is_null()).then(lit(DECIDED_FIRST)),
    ).with_columns(
        confidence_rank=nw.when(col("how") == DECIDED_BY_FLAGS).then(lit(CONFIDENCE_HIGH))
        .when(col("dir_source") >= DIRECTION_FROM_INVENTORY).then(lit(CONFIDENCE_MEDIUM))
        .otherwise(lit(CONFIDENCE_LOW)),
        status_rank=nw.when(col("in_acc") & col("out_ans")).then(lit(EXPOSED))  # accepted inbound and answered
        .when(col("in_acc") | col("out_rst") | col("out_rej")).then(lit(REACHABLE)).otherwise(lit(BLOCKED)),
        remote_ephemeral=(col("remote_port") > WELL_KNOWN_MAX) & ~col("remote_port").is_in(list(KNOWN_SERVICE_PORTS)),
    )
    return decided.drop("_flags", "_ports", "_first")


#: What the findings read of a decided conversation (besides :data:`ATTRIBUTES` when
#: they are aggregated per record).
_DECIDED = ("interface", "local_port", "protocol", "local_ord", "remote_ord", "remote_port", "status_rank",
            "confidence_rank", "how", "dir_source", "bytes_in", "bytes_out", "first_seen", "last_seen", "has_flags",
            "has_field", "out_synack", "out_rst", "out_rej", "bpa", "remote_ephemeral", "remote_aws")
