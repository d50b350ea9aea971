"""Conversations and how interfaces record them: vectorised expansion into flow records.

A :class:`Group` is a batch of conversations of one kind (one row each: client and server
address and port, start, end, outcome, bytes each way) and the *legs* that observe them:
one leg per network interface the packets cross. A leg has two *halves*, the client->server
packets and the server->client packets, each saying which conversation column (or
constant) goes into ``srcaddr``, ``dstaddr``, ``pkt-srcaddr``, ... on that interface.

Expansion cuts every conversation into the interface's aggregation windows and writes one
record per window and half, with TCP flags OR-ed per window as AWS does: a short
connection is 3 (SYN|FIN) from the client and 19 (SYN-ACK|FIN) from the server; a long
one 2/18 in its first window, 0/0 in the middle ones and 1/1 in the last.
All of it is numpy/Polars over whole batches: no per-record Python.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from flowtools.protocols import TCP

if TYPE_CHECKING:
    from flowtools.frames import PolarsType

# Outcomes of a conversation (column ``kind``).
OK = 0  # accepted and answered
RST = 1  # accepted, answered only with a reset
NOANSWER = 2  # accepted, never answered
NACL = 3  # accepted, the answer rejected by a stateless network ACL
REJECTED = 4  # rejected inbound
ANSWERED = (OK, RST, NACL)  # kinds whose responder sends packets

FIN, SYN, RST_FLAG, SYN_ACK = 1, 2, 4, 18

#: Columns of the internal record frame (AWS column names, plus ``iface``).
RECORD_SCHEMA: dict[str, PolarsType] = {
    "iface": pl.String,
    "srcaddr": pl.String,
    "dstaddr": pl.String,
    "srcport": pl.Int32,
    "dstport": pl.Int32,
    "protocol": pl.Int32,
    "packets": pl.Int64,
    "bytes": pl.Int64,
    "start": pl.Int64,
    "end": pl.Int64,
    "action": pl.String,
    "log_status": pl.String,
    "tcp_flags": pl.Int32,
    "type": pl.String,
    "pkt_srcaddr": pl.String,
    "pkt_dstaddr": pl.String,
    "flow_direction": pl.String,
    "traffic_path": pl.Int32,
    "reject_reason": pl.String,
}

#: Conversation columns every group has.
CONVERSATION_SCHEMA: dict[str, PolarsType] = {
    "c_addr": pl.String, "c_port": pl.Int32, "s_addr": pl.String, "s_port": pl.Int32,
    "t0": pl.Int64, "t1": pl.Int64, "closed": pl.Boolean, "kind": pl.Int8,
    "pk_f": pl.Int64, "by_f": pl.Int64, "pk_r": pl.Int64, "by_r": pl.Int64,
}


@dataclass(frozen=True)
class Col:
    """A reference to a conversation column (as opposed to a constant)."""

    name: str


C_ADDR, C_PORT, S_ADDR, S_PORT = Col("c_addr"), Col("c_port"), Col("s_addr"), Col("s_port")
Value = Col | str | int | None


@dataclass(frozen=True)
class Half:
    """One direction of a conversation as one interface records it."""

    direction: str  # ingress | egress, relative to the interface
    src: Value
    dst: Value
    srcport: Value
    dstport: Value
    pkt_src: Value
    pkt_dst: Value
    initiator: bool  # packets of the side that opened the conversation
    traffic_path: int | None = None


@dataclass(frozen=True)
class Leg:
    iface: str
    halves: tuple[Half, ...]


@dataclass(frozen=True)
class Exposure:
    """Where an internet-initiated group counts: the server side on one interface."""

    iface: str
    local_addr: Value = S_ADDR
    local_port: Value = S_PORT
    remote_addr: Value = C_ADDR
    remote_port: Value = C_PORT


@dataclass
class Group:
    """A batch of conversations of one kind and the interfaces that record them."""

    name: str
    protocol: int
    conversations: pl.DataFrame
    legs: list[Leg]
    description: str
    internet: bool = False  # initiated by internet hosts
    exposes: list[Exposure] = field(default_factory=list)
    why: str | None = None  # why inbound replies are not exposure (for the naive method)
    reject_reason: str | None = None  # v8 reject-reason on REJECT records
    ipv6: bool = False
    #: Exposure whose initiator the records leave ambiguous: the truth lists it in
    #: ``single_peer`` rather than ``exposure`` (see ``truth``).
    ambiguous: bool = False


# -- leg builders -------------------------------------------------------------------------

def server_leg(iface: str, *, tp: int | None = 1, client: Value = C_ADDR, client_port: Value = C_PORT,
               server: Value = S_ADDR, server_port: Value = S_PORT) -> Leg:
    """The server's own interface: requests arrive (ingress), answers leave (egress)."""
    return Leg(iface, (
        Half("ingress", client, server, client_port, server_port, client, server, True),
        Half("egress", server, client, server_port, client_port, server, client, False, tp),
    ))


def client_leg(iface: str, *, tp: int | None = 1, client: Value = C_ADDR, server: Value = S_ADDR,
               server_port: Value = S_PORT) -> Leg:
    """The client's own interface: requests leave (egress, with a traffic path), answers arrive."""
    return Leg(iface, (
        Half("egress", client, server, C_PORT, server_port, client, server, True, tp),
        Half("ingress", server, client, server_port, C_PORT, server, client, False),
    ))


def nat_legs(iface: str, nat_ip: str, *, server: Value = S_ADDR) -> list[Leg]:
    """A NAT gateway's interface (AWS's worked example): the inside leg keeps the
    instance's address in ``srcaddr`` and the internet host in ``pkt-dstaddr``; the outside
    leg is the translated one (source = the NAT's private address, port ``nat_port``)."""
    nat_port = Col("nat_port")
    inside = Leg(iface, (
        Half("ingress", C_ADDR, nat_ip, C_PORT, S_PORT, C_ADDR, server, True),
        Half("egress", nat_ip, C_ADDR, S_PORT, C_PORT, server, C_ADDR, False, 1),
    ))
    outside = Leg(iface, (
        Half("egress", nat_ip, server, nat_port, S_PORT, nat_ip, server, True, 2),
        Half("ingress", server, nat_ip, S_PORT, nat_port, server, nat_ip, False),
    ))
    return [inside, outside]


def hop_in_leg(iface: str, hop_ip: str, *, server: Value = S_ADDR) -> Leg:
    """A forwarding interface (transit gateway) on the client's side: packets addressed
    onwards enter it (``dstaddr`` = the hop, ``pkt-dstaddr`` = the real destination)."""
    return Leg(iface, (
        Half("ingress", C_ADDR, hop_ip, C_PORT, S_PORT, C_ADDR, server, True),
        Half("egress", hop_ip, C_ADDR, S_PORT, C_PORT, server, C_ADDR, False, 1),
    ))


def hop_out_leg(iface: str, hop_ip: str, *, server: Value = S_ADDR, server_port: Value = S_PORT,
                tp: int = 1) -> Leg:
    """A forwarding interface on the server's side (transit gateway attachment, a load
    balancer's back end with client IP preservation): ``srcaddr`` = the hop,
    ``pkt-srcaddr`` = the real client (AWS's transit gateway example)."""
    return Leg(iface, (
        Half("egress", hop_ip, server, C_PORT, server_port, C_ADDR, server, True, tp),
        Half("ingress", server, hop_ip, server_port, C_PORT, server, C_ADDR, False),
    ))


# -- expansion ----------------------------------------------------------------------------

def _expr(v: Value, dtype: PolarsType) -> pl.Expr:
    if isinstance(v, Col):
        return pl.col(v.name).cast(dtype)
    return pl.lit(v, dtype)


def _windows(conv: pl.DataFrame, agg: int, ends: tuple[int, int] | None = None) -> pl.DataFrame:
    """One row per (conversation, aggregation window), with the window's start and end,
    each side's TCP flags and the window's share of the conversation (``frac``); with
    ``ends=(a, b)`` only the windows whose end is in [a, b), in the same order."""
    t0 = conv["t0"].to_numpy()
    t1 = conv["t1"].to_numpy()
    k0, k1 = t0 // agg, t1 // agg
    nw = (k1 - k0 + 1).astype(np.int64)
    idx = np.repeat(np.arange(len(conv)), nw)
    offsets = np.cumsum(nw) - nw
    pos = np.arange(idx.size) - np.repeat(offsets, nw)
    wstart = (k0[idx] + pos) * agg
    end = np.minimum(t1[idx], wstart + agg - 1)
    if ends is not None:
        keep = (end >= ends[0]) & (end < ends[1])
        idx, pos, wstart, end = idx[keep], pos[keep], wstart[keep], end[keep]
    start = np.maximum(t0[idx], wstart)
    first = pos == 0
    closing = (pos == nw[idx] - 1) & conv["closed"].to_numpy()[idx]
    kind = conv["kind"].to_numpy()[idx]
    frac = (end - start + 1) / (t1 - t0 + 1)[idx]
    f_init = np.where(first & closing, SYN | FIN, np.where(first, SYN, np.where(closing, FIN, 0)))
    f_init = np.where(np.isin(kind, (RST, NOANSWER, REJECTED)), SYN, f_init)
    f_resp = np.where(first & closing, SYN_ACK | FIN, np.where(first, SYN_ACK, np.where(closing, FIN, 0)))
    f_resp = np.where(kind == RST, RST_FLAG, f_resp)
    return conv[idx].with_columns(
        start=pl.Series(start, dtype=pl.Int64), end=pl.Series(end, dtype=pl.Int64),
        flags_f=pl.Series(f_init, dtype=pl.Int32), flags_r=pl.Series(f_resp, dtype=pl.Int32),
        frac=pl.Series(frac, dtype=pl.Float64),
    )


def expand(group: Group, agg_of: Callable[[str], int], *, rows: np.ndarray | None = None,
           ends: tuple[int, int] | None = None) -> pl.DataFrame:
    """The records of a group, on every interface that sees it (``agg_of(iface)`` gives
    the interface's aggregation interval in seconds): of every conversation, or of the
    conversations at positions ``rows`` (increasing); with ``ends=(a, b)`` only the records
    whose ``end`` is in [a, b). Whatever the restriction, the records come in the order
    they have among all the group's records (so slices of them sort as the whole does)."""
    conv = group.conversations if rows is None else group.conversations[rows]
    if conv.height == 0:
        return pl.DataFrame(schema=RECORD_SCHEMA)
    out = []
    windows: dict[int, pl.DataFrame] = {}
    family = "IPv6" if group.ipv6 else "IPv4"
    kind = pl.col("kind")
    for leg in group.legs:
        agg = agg_of(leg.iface)
        if agg not in windows:
            windows[agg] = _windows(conv, agg, ends)
        windowed = windows[agg]
        for half in leg.halves:
            side = "f" if half.initiator else "r"
            packets = pl.max_horizontal(pl.lit(1), (pl.col(f"pk_{side}") * pl.col("frac")).round())
            packets = packets.cast(pl.Int64)
            nbytes = pl.max_horizontal(packets * 40, (pl.col(f"by_{side}") * pl.col("frac")).round())
            if half.initiator:
                rejected = kind == REJECTED
            else:
                answered = windowed.filter(kind.is_in(ANSWERED))
                rejected = kind == NACL
            action = pl.when(rejected).then(pl.lit("REJECT")).otherwise(pl.lit("ACCEPT"))
            reason = (pl.when(rejected).then(pl.lit(group.reject_reason)).otherwise(None)
                      if group.reject_reason else pl.lit(None))
            flags = pl.col(f"flags_{side}") if group.protocol == TCP else pl.lit(0)
            tp = half.traffic_path if half.direction == "egress" else None
            frame = (windowed if half.initiator else answered).select(
                iface=pl.lit(leg.iface, pl.String),
                srcaddr=_expr(half.src, pl.String),
                dstaddr=_expr(half.dst, pl.String),
                srcport=_expr(half.srcport, pl.Int32),
                dstport=_expr(half.dstport, pl.Int32),
                protocol=pl.lit(group.protocol, pl.Int32),
                packets=packets,
                bytes=nbytes.cast(pl.Int64),
                start=pl.col("start"),
                end=pl.col("end"),
                action=action.cast(pl.String),
                log_status=pl.lit("OK", pl.String),
                tcp_flags=flags.cast(pl.Int32),
                type=pl.lit(family, pl.String),
                pkt_srcaddr=_expr(half.pkt_src, pl.String),
                pkt_dstaddr=_expr(half.pkt_dst, pl.String),
                flow_direction=pl.lit(half.direction, pl.String),
                traffic_path=pl.lit(tp, pl.Int32),
                reject_reason=reason.cast(pl.String),
            )
            out.append(frame)
    return pl.concat(out)


def window_totals(conv: pl.DataFrame, agg: int, side: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per conversation, what one half (``side``: ``"f"`` the initiator's packets, ``"r"``
    the responder's) adds up to on an interface with aggregation interval ``agg``: the
    number of records, their packets and their bytes, exactly as :func:`expand` writes
    them (the same windows, fractions and rounding), for the ground truth. numpy only:
    cost about 50 bytes per (conversation, window)."""
    t0 = conv["t0"].to_numpy()
    t1 = conv["t1"].to_numpy()
    k0, k1 = t0 // agg, t1 // agg
    nw = (k1 - k0 + 1).astype(np.int64)
    idx = np.repeat(np.arange(len(conv)), nw)
    offsets = np.cumsum(nw) - nw
    wstart = (k0[idx] + np.arange(idx.size) - np.repeat(offsets, nw)) * agg
    end = np.minimum(t1[idx], wstart + agg - 1)
    start = np.maximum(t0[idx], wstart)
    frac = (end - start + 1) / (t1 - t0 + 1)[idx]
    packets = np.maximum(1, np.round(conv[f"pk_{side}"].to_numpy()[idx] * frac)).astype(np.int64)
    nbytes = np.maximum(packets * 40, np.round(conv[f"by_{side}"].to_numpy()[idx] * frac)).astype(np.int64)
    if idx.size == 0:
        zero = np.zeros(len(conv), dtype=np.int64)
        return zero, zero.copy(), zero.copy()
    return (nw, np.add.reduceat(packets, offsets).astype(np.int64),
            np.add.reduceat(nbytes, offsets).astype(np.int64))


def status_records(iface: str, starts: np.ndarray, agg: int, status: str) -> pl.DataFrame:
    """NODATA / SKIPDATA records: only the interface, the window and the status."""
    n = len(starts)
    data = {c: pl.Series(c, [None] * n, dtype=t) for c, t in RECORD_SCHEMA.items()}
    data["iface"] = pl.Series("iface", [iface] * n, dtype=pl.String)
    data["start"] = pl.Series("start", starts, dtype=pl.Int64)
    data["end"] = pl.Series("end", starts + agg - 1, dtype=pl.Int64)
    data["log_status"] = pl.Series("log_status", [status] * n, dtype=pl.String)
    return pl.DataFrame(data)


def slice_rows(conv: pl.DataFrame, origin: int, size: int, count: int,
               reach: int) -> tuple[np.ndarray, np.ndarray]:
    """Which conversations have records whose ``end`` falls in each time slice.

    Slice ``k`` covers record ends in [origin + k*size - reach, origin + (k+1)*size)
    (``reach``: how far before its slice a record may end and still belong to it). Returns
    ``(rows, bounds)``: slice ``k``'s conversations are ``rows[bounds[k]:bounds[k+1]]``, in
    increasing order. Cost: 4 bytes per conversation and slice it touches.
    """
    t0 = conv["t0"].to_numpy()
    t1 = conv["t1"].to_numpy()
    first = np.clip((t0 - origin) // size, 0, count - 1)
    last = np.clip((t1 + reach - origin) // size, first, count - 1)
    span = last - first + 1
    idx = np.repeat(np.arange(conv.height, dtype=np.int64), span)
    offsets = np.cumsum(span) - span
    sid = np.repeat(first, span) + np.arange(idx.size) - np.repeat(offsets, span)
    order = np.argsort(sid, kind="stable")  # stable: rows stay increasing within a slice
    rows = idx[order].astype(np.int32 if conv.height < 2**31 else np.int64)
    bounds = np.searchsorted(sid[order], np.arange(count + 1))
    return rows, bounds
