"""The ground truth, computed from the scenario's groups (never from the records).

* ``exposure``: per (interface, local port, protocol) where internet hosts initiated
  conversations: ``exposed`` if any was accepted and answered, else ``reachable`` if any
  was accepted (never answered, answered with a reset, or the answer rejected by a network
  ACL), else ``blocked``. ``peers`` = distinct internet addresses, ``connections`` =
  distinct (interface, local address, local port, remote address, remote port, protocol).
* ``not_exposure``: keys the naive method ("ACCEPT, inbound, from a public ``srcaddr``,
  keyed by interface, ``dstport``, protocol") reports although nobody on the internet
  initiated anything there: replies to connections the estate opened, traffic from the
  estate's own public addresses.
* ``configured``: security-group rules admitting 0.0.0.0/0 or ::/0 on an interface that
  no internet-initiated conversation of the scenario uses.
* ``single_peer``: exposure entries (as in ``exposure``) of the groups whose records leave
  the initiator ambiguous (one internet peer, one source port, unregistered ports, no
  flags, no direction, request and reply with the same start): exposure, kept apart so
  that ``exposure`` stays what the exposure analysis decides. Exposure is
  ``exposure`` + ``single_peer``.
* ``watchlist``: per (interface, listed address, direction, action) the records, packets
  and bytes the interface logs with a watchlisted address on one side (the packet-level
  address where the flow log has ``pkt-*`` fields, else the header's).
* ``egress``: bytes leaving the estate for internet addresses, per interface of the
  sending host and destination class (the ip-ranges fixture's service, else
  ``internet``), each byte once: from the sender's own accepted egress records; a NAT
  gateway's inside leg only for a host whose own interface does not log the conversation;
  forwarding interfaces (NAT and transit gateways, load balancers) never send.
* ``scanners``: internet sources that initiated conversations with at least 5 distinct
  local ports or 3 interfaces: outcome ``answered`` (one accepted and answered),
  ``accepted`` (let in, answered at most with a reset, or the answer rejected), ``blocked``.
* ``changes`` (48 hours or more, else null): exposure keys new and gone from the first day
  to the second.
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from flowtools.enrichment.naming import resource_name
from flowtools.protocols import ICMP_PROTOCOLS, protocol_name, protocol_number
from flowtools.sample.estate import Estate, Rule
from flowtools.sample.ip_ranges import service_of
from flowtools.sample.traffic import (
    ANSWERED,
    NACL,
    NOANSWER,
    OK,
    REJECTED,
    RST,
    Col,
    Group,
    Half,
    Value,
    window_totals,
)

if TYPE_CHECKING:
    from flowtools.frames import PolarsType

_NOT_PUBLIC = [ipaddress.ip_network(c) for c in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "127.0.0.0/8", "224.0.0.0/4", "0.0.0.0/32", "255.255.255.255/32",
    "fc00::/7", "fe80::/10", "::1/128", "::/128", "ff00::/8",
)]
STATUS_ORDER = {"exposed": 0, "reachable": 1, "blocked": 2, "configured": 3}


def is_public(address: str) -> bool:
    """Globally routable by address class alone (the documentation ranges count)."""
    ip = ipaddress.ip_address(address)
    return not any(ip.version == n.version and ip in n for n in _NOT_PUBLIC)


def iso(ts: int) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _value(v: Value, dtype: PolarsType) -> pl.Expr:
    return pl.col(v.name).cast(dtype) if isinstance(v, Col) else pl.lit(v, dtype)


def _status(kinds: set[int]) -> str:
    if OK in kinds:
        return "exposed"
    if kinds - {REJECTED}:
        return "reachable"
    return "blocked"


def exposure(groups: list[Group], estate: Estate) -> tuple[list[dict], pl.DataFrame]:
    """Truth entries, and the (interface, protocol, local port) keys that internet hosts
    used (for ``configured``). Distinct peers and connections are counted exactly, as
    sets of integer codes per key: cost 8 bytes per distinct connection, one group at a
    time (never all conversations in one frame)."""
    own = set(estate.public_ips())
    codes: dict[str, int] = {}  # every address seen (a few thousand) -> a small integer
    per_key: dict[tuple[str, int, int], dict] = {}
    for g in groups:
        if not g.internet or g.conversations.height == 0:
            continue
        for e in g.exposes:
            frame = g.conversations.select(
                local_addr=_value(e.local_addr, pl.String),
                local_port=_value(e.local_port, pl.Int32),
                remote_addr=_value(e.remote_addr, pl.String),
                remote_port=_value(e.remote_port, pl.Int32),
                kind=pl.col("kind"), t0=pl.col("t0"), t1=pl.col("t1"),
            )
            remotes = frame["remote_addr"].unique().to_list()
            bad = [a for a in remotes if a in own or not is_public(a)]
            assert not bad, f"internet-initiated conversations from non-internet peers: {bad}"
            for a in remotes + frame["local_addr"].unique().to_list():
                codes.setdefault(a, len(codes))
            assert len(codes) < 2**16, "too many distinct addresses for the connection codes"
            for (port,), part in frame.partition_by("local_port", as_dict=True).items():
                remote = part["remote_addr"].replace_strict(codes, return_dtype=pl.UInt64).to_numpy()
                local = part["local_addr"].replace_strict(codes, return_dtype=pl.UInt64).to_numpy()
                conn = (local << np.uint64(48)) | (remote << np.uint64(16)) | \
                    part["remote_port"].cast(pl.UInt64).to_numpy()
                k = per_key.setdefault((e.iface, port, g.protocol), {
                    "peers": np.zeros(0, np.uint64), "connections": np.zeros(0, np.uint64), "kinds": set(),
                    "first": None, "last": None, "descriptions": set(), "local_ips": set()})
                k["peers"] = np.union1d(k["peers"], remote)
                k["connections"] = np.union1d(k["connections"], conn)
                k["kinds"] |= set(part["kind"].unique().to_list())
                first, last = (int(t) for t in part.select(pl.col("t0").min(), pl.col("t1").max()).row(0))
                k["first"] = first if k["first"] is None else min(k["first"], first)
                k["last"] = last if k["last"] is None else max(k["last"], last)
                k["descriptions"].add(g.description)
                k["local_ips"] |= set(part["local_addr"].unique().to_list())
    used = pl.DataFrame([key for key in per_key], schema={"iface": pl.String, "local_port": pl.Int32,
                                                          "protocol": pl.Int32}, orient="row")
    used = used.select("iface", "protocol", "local_port")
    entries: list[dict[str, Any]] = []
    for (key_iface, key_port, key_protocol), row in per_key.items():
        iface = estate.interfaces[key_iface]
        icmp = key_protocol in ICMP_PROTOCOLS
        since, until = iso(row["first"]), iso(row["last"])
        entries.append({
            "account_id": estate.account(key_iface),
            "region": estate.region(key_iface),
            "vpc_id": estate.vpc(key_iface).id,
            "interface_id": iface.id,
            "port": None if icmp else key_port,
            "protocol": protocol_name(key_protocol),
            "status": _status(row["kinds"]),
            "peers": len(row["peers"]),
            "connections": len(row["connections"]),
            "description": f"{'; '.join(sorted(row['descriptions']))} (internet-initiated "
                           f"conversations from {since} to {until})",
            "active_from": since,
            "active_to": until,
            # docs/design.md's naming rule (instance Name tag, else what the description names)
            "resource_name": resource_name(iface.description, instance_name=iface.instance_name,
                                           ecs_service=(iface.ecs or {}).get("ecs-service-name")) or iface.key,
            "flow_log_id": estate.flow_log(key_iface).id,
            "local_ips": sorted(row["local_ips"]),
        })
    entries.sort(key=lambda e: (STATUS_ORDER[e["status"]], -e["peers"], e["interface_id"],
                                e["protocol"], e["port"] is None, e["port"] or 0))
    return entries, used


def not_exposure(groups: list[Group], estate: Estate, exposure_entries: list[dict]) -> list[dict]:
    """What the naive method reports that is not exposure, from the groups' definitions:
    every accepted inbound half whose ``srcaddr`` is public, keyed by (interface,
    ``dstport``, protocol), minus the true exposure keys."""
    exposed = {(e["interface_id"], e["port"], e["protocol"]) for e in exposure_entries}
    public: dict[str, bool] = {}  # per source address
    frames = []
    for g in groups:
        if g.conversations.height == 0:
            continue
        for leg in g.legs:
            for half in leg.halves:
                if half.direction != "ingress":
                    continue
                accepted = pl.col("kind") != REJECTED if half.initiator else \
                    pl.col("kind").is_in((OK, RST))
                src = _value(half.src, pl.String)
                srcs = g.conversations.lazy().filter(accepted).select(src.unique()).collect().to_series()
                for a in srcs.to_list():
                    if a not in public:
                        public[a] = is_public(a)
                frames.append(g.conversations.lazy().filter(  # only the ports: few distinct rows
                    accepted & src.is_in([a for a in srcs.to_list() if public[a]])
                ).select(port=_value(half.dstport, pl.Int32)).unique().with_columns(
                    iface=pl.lit(leg.iface),
                    protocol=pl.lit(g.protocol, pl.Int32),
                    why=pl.lit(g.why or g.description),
                ).select("iface", "port", "protocol", "why").collect())
    if not frames:
        return []
    rows = pl.concat(frames).unique()
    keys: dict[tuple, str] = {}
    for row in rows.sort("iface", "protocol", "port", "why").iter_rows(named=True):
        iface = estate.interfaces[row["iface"]]
        icmp = row["protocol"] in ICMP_PROTOCOLS
        key = (iface.id, None if icmp else row["port"], protocol_name(row["protocol"]))
        if key in exposed or key in keys:
            continue
        keys[key] = row["why"]
    out = [{"interface_id": k[0], "port": k[1], "protocol": k[2], "why": w} for k, w in keys.items()]
    out.sort(key=lambda e: (e["interface_id"], e["protocol"], e["port"] or 0))
    return out


def _rule_matches(rule: Rule, protocol: int, port: int | None) -> bool:
    if rule.protocol == "-1":
        return True
    if protocol_number(rule.protocol) != protocol:
        return False
    if protocol in ICMP_PROTOCOLS or rule.from_port is None or rule.from_port == -1:
        return True
    return rule.from_port <= (port or 0) <= (rule.from_port if rule.to_port is None else rule.to_port)


def configured(estate: Estate, conv: pl.DataFrame) -> list[dict]:
    """Security-group rules open to the internet that no internet-initiated conversation
    uses (``conv``: their interface, protocol and local port, as ``exposure`` returns)."""
    used: dict[str, list[tuple[int, int]]] = {}
    if conv.height:
        for iface, proto, port in conv.select("iface", "protocol", "local_port").unique().iter_rows():
            used.setdefault(iface, []).append((proto, port))
    out = []
    for iface in estate.interfaces.values():
        for gkey in iface.groups:
            for rule in estate.groups[gkey].rules:
                if not rule.open_to_internet:
                    continue
                if any(_rule_matches(rule, p, port) for p, port in used.get(iface.key, [])):
                    continue
                ports = rule.protocol in ("tcp", "udp")
                out.append({
                    "interface_id": iface.id,
                    "port": rule.from_port if ports else None,
                    "port_to": rule.to_port if ports else None,
                    "protocol": "all" if rule.protocol == "-1" else rule.protocol,
                    "security_group_id": estate.groups[gkey].id,
                })
    out.sort(key=lambda e: (e["interface_id"], e["protocol"], e["port"] or 0))
    return out


# -- the decisions: single peer, watchlist, egress, scanners, changes ----------------------

#: Interface types that only carry other hosts' packets (never the sender of a byte).
FORWARDING = ("nat_gateway", "natGateway", "transit_gateway", "network_load_balancer")
NAT_TYPES = ("nat_gateway", "natGateway")
DAY = 24 * 3600


def split_single_peer(groups: list[Group], estate: Estate, entries: list[dict]) -> tuple[list[dict], list[dict]]:
    """``exposure``'s entries split into (the others, those of ambiguous groups)."""
    ambiguous: set[tuple[str, int | None, str]] = set()
    clear: set[tuple[str, int | None, str]] = set()
    for g in groups:
        for e in g.exposes:
            ports = g.conversations.select(_value(e.local_port, pl.Int32).unique()).to_series().to_list()
            keys = {(estate.interfaces[e.iface].id, None if g.protocol in ICMP_PROTOCOLS else p,
                     protocol_name(g.protocol)) for p in ports}
            (ambiguous if g.ambiguous else clear).update(keys)
    assert not ambiguous & clear, f"ambiguous exposure shares a key with other cases: {ambiguous & clear}"
    single = [e for e in entries if (e["interface_id"], e["port"], e["protocol"]) in ambiguous]
    return [e for e in entries if e not in single], single


def _fields(estate: Estate, iface: str) -> tuple[str, ...]:
    return estate.flow_log(iface).fields


def _logged(half: Half, estate: Estate, iface: str) -> tuple[Value, Value]:
    """The half's (source, destination) as an address-level reading sees them: the
    packet-level addresses where the flow log has them, else the header's."""
    fields = _fields(estate, iface)
    return (half.pkt_src if "pkt-srcaddr" in fields else half.src,
            half.pkt_dst if "pkt-dstaddr" in fields else half.dst)


def _recorded(g: Group, half: Half) -> tuple[pl.Expr, pl.Expr]:
    """(which conversations have records of this half, whether those records are ACCEPT)."""
    kind = pl.col("kind")
    if half.initiator:
        return pl.lit(True), kind != REJECTED
    return kind.is_in(ANSWERED), kind != NACL


def _totals(conv: pl.DataFrame, agg: int, side: str) -> pl.DataFrame:
    """``conv`` with the records, packets and bytes of one half (see ``window_totals``)."""
    records, packets, nbytes = window_totals(conv, agg, side)
    return conv.with_columns(records=pl.Series(records, dtype=pl.Int64),
                             packets=pl.Series(packets, dtype=pl.Int64), bytes=pl.Series(nbytes, dtype=pl.Int64))


def watchlist(groups: list[Group], estate: Estate, listed: tuple[tuple[str, str], ...]) -> list[dict]:
    """Per (interface, listed address, direction, action): records, packets, bytes. An
    address matches the most specific entry holding it. Only conversations with a listed
    address are expanded into windows (cost: those conversations' windows)."""
    entries = sorted(((ipaddress.ip_network(item), item, label) for item, label in listed),
                     key=lambda e: -e[0].prefixlen)
    match: dict[str, tuple[str, str] | None] = {}

    def entry(address: str) -> tuple[str, str] | None:
        if address not in match:
            ip = ipaddress.ip_address(address)
            match[address] = next(((item, label) for net, item, label in entries
                                   if net.version == ip.version and ip in net), None)
        return match[address]

    frames = []
    for g in groups:
        if g.conversations.height == 0:
            continue
        for leg in g.legs:
            for half in leg.halves:
                exists, accepted = _recorded(g, half)
                src, dst = _logged(half, estate, leg.iface)
                conv = g.conversations.filter(exists).with_columns(
                    _src=_value(src, pl.String), _dst=_value(dst, pl.String), _accept=accepted)
                for column, direction in (("_dst", "to listed"), ("_src", "from listed")):
                    hits = [a for a in conv[column].unique().to_list() if entry(a)]
                    if not hits:
                        continue
                    part = _totals(conv.filter(pl.col(column).is_in(hits)), estate.agg(leg.iface),
                                   "f" if half.initiator else "r")
                    frames.append(part.group_by(listed_address=pl.col(column), action=pl.col("_accept")).agg(
                        pl.col("records").sum(), pl.col("packets").sum(), pl.col("bytes").sum(),
                    ).with_columns(interface_id=pl.lit(estate.interfaces[leg.iface].id), direction=pl.lit(direction)))
    if not frames:
        return []
    rows = (pl.concat(frames).with_columns(action=pl.when("action").then(pl.lit("ACCEPT")).otherwise(pl.lit("REJECT")))
            .group_by("interface_id", "listed_address", "direction", "action")
            .agg(pl.col("records").sum(), pl.col("packets").sum(), pl.col("bytes").sum()))
    out = []
    for r in rows.iter_rows(named=True):
        found = entry(r["listed_address"])
        assert found is not None  # the frames hold listed addresses only
        item, label = found
        out.append({"interface_id": r["interface_id"], "listed_address": r["listed_address"], "entry": item,
                    "label": label, "direction": r["direction"], "action": r["action"],
                    "records": r["records"], "packets": r["packets"], "bytes": r["bytes"]})
    out.sort(key=lambda e: (-e["bytes"], e["interface_id"], e["listed_address"], e["direction"], e["action"]))
    return out


def egress(groups: list[Group], estate: Estate) -> list[dict]:
    """Bytes to internet addresses per (interface of the sender, via, destination class)."""
    own_nets = [ipaddress.ip_network(c) for c in estate.cidrs()]
    own = estate.public_ips()
    owner = {i.ip: i.key for i in estate.interfaces.values()}
    internet: dict[str, bool] = {}
    service: dict[str, str] = {}

    def is_internet(a: str) -> bool:
        if a not in internet:
            ip = ipaddress.ip_address(a)
            internet[a] = is_public(a) and a not in own and not any(ip.version == n.version and ip in n
                                                                    for n in own_nets)
            service[a] = service_of(a) or "internet"
        return internet[a]

    frames = []
    for g in groups:
        if g.conversations.height == 0:
            continue
        logged_by = {leg.iface for leg in g.legs}
        for leg in g.legs:
            itype = estate.interfaces[leg.iface].interface_type
            for half in leg.halves:
                exists, accepted = _recorded(g, half)
                src, dst = _logged(half, estate, leg.iface)
                if itype not in FORWARDING and half.direction == "egress":
                    sender, via = pl.lit(leg.iface), "direct"
                elif (itype in NAT_TYPES and half.direction == "ingress" and half.initiator
                      and "pkt-dstaddr" in _fields(estate, leg.iface)):
                    # a NAT gateway's inside leg: the instance's bytes, if it does not log them
                    sender = _value(src, pl.String).replace_strict(owner, default=None)
                    via = estate.interfaces[leg.iface].id
                else:
                    continue
                conv = g.conversations.filter(exists & accepted).with_columns(
                    _sender=sender, _dst=_value(dst, pl.String))
                if via != "direct":
                    conv = conv.filter(pl.col("_sender").is_not_null() & ~pl.col("_sender").is_in(list(logged_by)))
                peers = [a for a in conv["_dst"].unique().to_list() if is_internet(a)]
                if not peers or conv.height == 0:
                    continue
                part = _totals(conv.filter(pl.col("_dst").is_in(peers)), estate.agg(leg.iface),
                               "f" if half.initiator else "r")
                frames.append(part.group_by("_sender", destination=pl.col("_dst").replace_strict(service)).agg(
                    pl.col("packets").sum(), pl.col("bytes").sum()).with_columns(via=pl.lit(via)))
    if not frames:
        return []
    rows = pl.concat(frames).group_by("_sender", "via", "destination").agg(pl.col("packets").sum(),
                                                                          pl.col("bytes").sum())
    out = [{"interface_id": estate.interfaces[r["_sender"]].id, "name": r["_sender"], "via": r["via"],
            "destination": r["destination"], "bytes": r["bytes"], "packets": r["packets"]}
           for r in rows.iter_rows(named=True)]
    out.sort(key=lambda e: (-e["bytes"], e["interface_id"], e["via"], e["destination"]))
    return out


def scanners(groups: list[Group], estate: Estate, *, min_ports: int = 5, min_interfaces: int = 3) -> list[dict]:
    """Internet sources that initiated conversations with at least ``min_ports`` distinct
    local ports or ``min_interfaces`` interfaces (any protocol; ICMP's port is 0)."""
    frames = []
    for g in groups:
        if not g.internet or g.conversations.height == 0:
            continue
        for e in g.exposes:
            frames.append(g.conversations.select(
                source=_value(e.remote_addr, pl.String), port=_value(e.local_port, pl.Int32),
                interface_id=pl.lit(estate.interfaces[e.iface].id), kind=pl.col("kind")).unique())
    if not frames:
        return []
    per = pl.concat(frames).unique()
    rows = per.group_by("source").agg(
        ports=pl.col("port").n_unique(), interfaces=pl.col("interface_id").n_unique(),
        targets=pl.struct("interface_id", "port").n_unique(),
        answered=(pl.col("kind") == OK).any(), accepted=pl.col("kind").is_in((RST, NOANSWER, NACL)).any(),
    ).filter((pl.col("ports") >= min_ports) | (pl.col("interfaces") >= min_interfaces))
    out = [{"source": r["source"], "ports": r["ports"], "interfaces": r["interfaces"], "targets": r["targets"],
            "outcome": "answered" if r["answered"] else "accepted" if r["accepted"] else "blocked"}
           for r in rows.iter_rows(named=True)]
    rank = {"answered": 0, "accepted": 1, "blocked": 2}
    out.sort(key=lambda e: (rank[e["outcome"]], -e["ports"], -e["interfaces"], e["source"]))
    return out


def _keys_between(groups: list[Group], estate: Estate, lo: int, hi: int) -> dict[tuple, str]:
    """Exposure keys with an internet-initiated conversation that has records in
    [lo, hi) (records never cross a day: windows divide it), and their status there."""
    kinds: dict[tuple, set[int]] = {}
    for g in groups:
        if not g.internet or g.conversations.height == 0:
            continue
        conv = g.conversations.filter((pl.col("t0") < hi) & (pl.col("t1") >= lo))
        for e in g.exposes:
            for port, found in conv.group_by(port=_value(e.local_port, pl.Int32)).agg(
                    pl.col("kind").unique()).iter_rows():
                key = (estate.interfaces[e.iface].id, protocol_name(g.protocol),
                       None if g.protocol in ICMP_PROTOCOLS else port)
                kinds.setdefault(key, set()).update(found)
    return {k: _status(v) for k, v in kinds.items()}


def changes(groups: list[Group], estate: Estate, start: int, hours: int) -> dict | None:
    """Exposure keys new and gone from [start, start + 24 h) to [start + 24 h, start + 48 h)
    (None under 48 hours)."""
    if hours < 48:
        return None
    before = _keys_between(groups, estate, start, start + DAY)
    after = _keys_between(groups, estate, start + DAY, start + 2 * DAY)

    def rows(keys: set[tuple], statuses: dict[tuple, str], side: str) -> list[dict[str, Any]]:
        return [{"interface_id": k[0], "protocol": k[1], "port": k[2], f"status_{side}": statuses[k]}
                for k in sorted(keys, key=lambda k: (k[0], k[1], k[2] or 0))]

    return {
        "before": {"start": iso(start), "end": iso(start + DAY)},
        "after": {"start": iso(start + DAY), "end": iso(start + 2 * DAY)},
        "new": rows(after.keys() - before.keys(), after, "after"),
        "gone": rows(before.keys() - after.keys(), before, "before"),
    }
