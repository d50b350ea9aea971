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
"""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import numpy as np
import polars as pl

from flowtools.enrichment.naming import resource_name
from flowtools.sample.estate import Estate, Rule
from flowtools.sample.traffic import (
    ICMP,
    ICMPV6,
    OK,
    PROTOCOL_NAMES,
    REJECTED,
    RST,
    Col,
    Group,
    Value,
)

_NOT_PUBLIC = [ipaddress.ip_network(c) for c in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "127.0.0.0/8", "224.0.0.0/4", "0.0.0.0/32", "255.255.255.255/32",
    "fc00::/7", "fe80::/10", "::1/128", "::/128", "ff00::/8",
)]
STATUS_ORDER = {"exposed": 0, "reachable": 1, "blocked": 2, "configured": 3}
_RULE_PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}


def is_public(address: str) -> bool:
    """Globally routable by address class alone (the documentation ranges count)."""
    ip = ipaddress.ip_address(address)
    return not any(ip.version == n.version and ip in n for n in _NOT_PUBLIC)


def iso(ts: int) -> str:
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _value(v: Value, dtype: pl.DataType) -> pl.Expr:
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
                first, last = int(part["t0"].min()), int(part["t1"].max())
                k["first"] = first if k["first"] is None else min(k["first"], first)
                k["last"] = last if k["last"] is None else max(k["last"], last)
                k["descriptions"].add(g.description)
                k["local_ips"] |= set(part["local_addr"].unique().to_list())
    used = pl.DataFrame([key for key in per_key], schema={"iface": pl.String, "local_port": pl.Int32,
                                                          "protocol": pl.Int32}, orient="row")
    used = used.select("iface", "protocol", "local_port")
    entries = []
    for (key_iface, key_port, key_protocol), row in per_key.items():
        iface = estate.interfaces[key_iface]
        icmp = key_protocol in (ICMP, ICMPV6)
        first, last = iso(row["first"]), iso(row["last"])
        entries.append({
            "account_id": estate.account(key_iface),
            "region": estate.region(key_iface),
            "vpc_id": estate.vpc(key_iface).id,
            "interface_id": iface.id,
            "port": None if icmp else key_port,
            "protocol": PROTOCOL_NAMES[key_protocol],
            "status": _status(row["kinds"]),
            "peers": len(row["peers"]),
            "connections": len(row["connections"]),
            "description": f"{'; '.join(sorted(row['descriptions']))} (internet-initiated "
                           f"conversations from {first} to {last})",
            "active_from": first,
            "active_to": last,
            # docs/design.md's naming rule (instance Name tag, else what the description names)
            "resource_name": resource_name(iface.description, instance_name=iface.instance_name) or iface.key,
            "flow_log_id": estate.flow_logs[iface.flow_log].id,
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
        icmp = row["protocol"] in (ICMP, ICMPV6)
        key = (iface.id, None if icmp else row["port"], PROTOCOL_NAMES[row["protocol"]])
        if key in exposed or key in keys:
            continue
        keys[key] = row["why"]
    out = [{"interface_id": k[0], "port": k[1], "protocol": k[2], "why": w} for k, w in keys.items()]
    out.sort(key=lambda e: (e["interface_id"], e["protocol"], e["port"] or 0))
    return out


def _rule_matches(rule: Rule, protocol: int, port: int | None) -> bool:
    if rule.protocol == "-1":
        return True
    if _RULE_PROTOCOLS.get(rule.protocol) != protocol:
        return False
    if protocol in (ICMP, ICMPV6) or rule.from_port in (None, -1):
        return True
    return rule.from_port <= (port or 0) <= rule.to_port


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
