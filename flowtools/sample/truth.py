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
    """Truth entries and the internet-initiated conversations behind them."""
    frames = []
    for g in groups:
        if not g.internet or g.conversations.height == 0:
            continue
        for e in g.exposes:
            frames.append(g.conversations.select(
                iface=pl.lit(e.iface),
                protocol=pl.lit(g.protocol, pl.Int32),
                local_addr=_value(e.local_addr, pl.String),
                local_port=_value(e.local_port, pl.Int32),
                remote_addr=_value(e.remote_addr, pl.String),
                remote_port=_value(e.remote_port, pl.Int32),
                kind=pl.col("kind"), t0=pl.col("t0"), t1=pl.col("t1"),
                description=pl.lit(g.description),
            ))
    if not frames:
        return [], pl.DataFrame()
    conv = pl.concat(frames)
    own = set(estate.public_ips())
    remotes = conv["remote_addr"].unique().to_list()
    bad = [a for a in remotes if a in own or not is_public(a)]
    assert not bad, f"internet-initiated conversations from non-internet peers: {bad}"
    per_key = conv.group_by("iface", "local_port", "protocol").agg(
        peers=pl.col("remote_addr").n_unique(),
        connections=pl.struct("local_addr", "remote_addr", "remote_port").n_unique(),
        kinds=pl.col("kind").unique(),
        first=pl.col("t0").min(),
        last=pl.col("t1").max(),
        descriptions=pl.col("description").unique(maintain_order=True),
        local_ips=pl.col("local_addr").unique(maintain_order=True),
    )
    entries = []
    for row in per_key.iter_rows(named=True):
        iface = estate.interfaces[row["iface"]]
        icmp = row["protocol"] in (ICMP, ICMPV6)
        first, last = iso(row["first"]), iso(row["last"])
        entries.append({
            "account_id": estate.account(row["iface"]),
            "region": estate.region(row["iface"]),
            "vpc_id": estate.vpc(row["iface"]).id,
            "interface_id": iface.id,
            "port": None if icmp else row["local_port"],
            "protocol": PROTOCOL_NAMES[row["protocol"]],
            "status": _status(set(row["kinds"])),
            "peers": row["peers"],
            "connections": row["connections"],
            "description": f"{'; '.join(sorted(row['descriptions']))} (internet-initiated "
                           f"conversations from {first} to {last})",
            "active_from": first,
            "active_to": last,
            # DESIGN's naming rule (instance Name tag, else what the description names)
            "resource_name": resource_name(iface.description, instance_name=iface.instance_name) or iface.key,
            "flow_log_id": estate.flow_logs[iface.flow_log].id,
            "local_ips": sorted(row["local_ips"]),
        })
    entries.sort(key=lambda e: (STATUS_ORDER[e["status"]], -e["peers"], e["interface_id"],
                                e["protocol"], e["port"] is None, e["port"] or 0))
    return entries, conv


def not_exposure(groups: list[Group], estate: Estate, exposure_entries: list[dict]) -> list[dict]:
    """What the naive method reports that is not exposure, from the groups' definitions:
    every accepted inbound half whose ``srcaddr`` is public, keyed by (interface,
    ``dstport``, protocol), minus the true exposure keys."""
    exposed = {(e["interface_id"], e["port"], e["protocol"]) for e in exposure_entries}
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
                frames.append(g.conversations.filter(accepted).select(
                    iface=pl.lit(leg.iface),
                    src=_value(half.src, pl.String),
                    port=_value(half.dstport, pl.Int32),
                    protocol=pl.lit(g.protocol, pl.Int32),
                    why=pl.lit(g.why or g.description),
                ).unique())
    if not frames:
        return []
    rows = pl.concat(frames).unique()
    public = {a: is_public(a) for a in rows["src"].unique().to_list()}
    keys: dict[tuple, str] = {}
    for row in rows.sort("iface", "protocol", "port", "why").iter_rows(named=True):
        if not public[row["src"]]:
            continue
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
    """Security-group rules open to the internet that no internet-initiated conversation uses."""
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
