"""Watchlists: which interfaces talked to listed addresses, in which direction, with what result.

A watchlist is a small text file, one entry per line: an address or a CIDR (IPv4 or
IPv6), optionally followed by a label (after a comma, a tab or spaces); ``#`` starts a
comment; blank lines are skipped::

    # threat intel, 2026-11-19
    198.51.100.23        known C2
    203.0.113.0/24, scanner farm
    2001:db8:bad::/48    tor exit nodes

``watchlist_hits(flows, watchlist)`` returns one row per interface, listed address,
direction and action: ``interface_id, local_address, listed_address, entry, label,
direction`` (``to listed``: the listed address was the destination — the interface
sent to it; ``from listed``: it was the source — it sent to the interface), ``action``
(``ACCEPT``/``REJECT``), ``records, packets, bytes, first_seen, last_seen``; ordered by
bytes descending. A record's addresses are its packet-level ones where logged
(``pkt-srcaddr``/``pkt-dstaddr``: the host behind a NAT gateway, the client behind a load
balancer), else ``srcaddr``/``dstaddr``; an address matches the most specific entry that
holds it (an IPv4-mapped IPv6 address matches as its IPv4 address).

Join the result with :func:`flowtools.enrich`-style names through ``interface_id``, or
pass ``inventory=`` to get ``resource_id``/``resource_name``/``interface_type``.

Cost: matching runs in Python over the DISTINCT addresses of the flows (a side table),
then one join and one aggregate on the engine: it follows distinct addresses, not records.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import narwhals as nw
import polars as pl

from flowtools import addresses, frames
from flowtools.errors import FlowtoolsError

__all__ = ["Watchlist", "WatchlistError", "watchlist_hits"]

_SPLIT = re.compile(r"[,\t ]+")


class WatchlistError(FlowtoolsError):
    """A watchlist file that cannot be used (names the file and the line)."""


@dataclass(frozen=True)
class Entry:
    network: ipaddress.IPv4Network | ipaddress.IPv6Network
    text: str  # as written (the CIDR or address)
    label: str | None


class Watchlist:
    """Parsed watchlist entries (see the module doc for the file format)."""

    def __init__(self, entries: list[Entry], source: str = "watchlist"):
        self.entries = entries
        self.source = source
        # most specific first: a lookup takes the first entry holding the address
        self._by_length = sorted(entries, key=lambda e: (-e.network.prefixlen, e.network.version))

    @classmethod
    def parse(cls, text: str, source: str = "watchlist") -> Watchlist:
        entries = []
        for n, raw in enumerate(text.splitlines(), start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            first, _, rest = line.partition(",") if "," in line else (None, None, None)
            if first is None:
                parts = _SPLIT.split(line, maxsplit=1)
                first, rest = parts[0], parts[1] if len(parts) > 1 else ""
            item, label = first.strip(), (rest or "").strip() or None
            try:
                network = ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise WatchlistError(f"{source}, line {n}: {item!r} is not an IPv4/IPv6 address or CIDR "
                                     "(one entry per line: ADDRESS-or-CIDR [label])") from None
            if network.version == 6 and network.prefixlen >= 96 and network.network_address.ipv4_mapped:
                mapped = network.network_address.ipv4_mapped
                network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}", strict=False)
            entries.append(Entry(network, item, label))
        return cls(entries, source)

    @classmethod
    def load(cls, path: str | Path) -> Watchlist:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise WatchlistError(f"{p}: watchlist file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise WatchlistError(f"{p}: cannot read the watchlist ({e})") from None
        wl = cls.parse(text, str(p))
        if not wl.entries:
            raise WatchlistError(f"{p}: no entries (one address or CIDR per line, optional label)")
        return wl

    def __len__(self) -> int:
        return len(self.entries)

    def match(self, values: list[str | None]) -> pl.DataFrame:
        """The listed entry of each distinct address that lies in one: ``address, entry,
        label`` (addresses in no entry are left out)."""
        rows: dict[str, list] = {"address": [], "entry": [], "label": []}
        for value in dict.fromkeys(v for v in values if v is not None):
            ip = addresses.parse(value)
            if ip is None:
                continue
            ip = addresses.unmap(ip)
            for e in self._by_length:
                if e.network.version == ip.version and ip in e.network:
                    rows["address"].append(value)
                    rows["entry"].append(e.text)
                    rows["label"].append(e.label)
                    break
        return pl.DataFrame(rows, schema={"address": pl.String, "entry": pl.String, "label": pl.String})


def watchlist_hits(flows: Any, watchlist: Watchlist, *, inventory: Any = None) -> Any:
    """Traffic between the flows' interfaces and listed addresses (see the module doc).

    ``flows``: a ``Flows`` or a native frame; the result is a lazy frame on its engine.
    ``inventory`` (optional) adds ``resource_id``, ``resource_name``, ``interface_type``.
    """
    native = frames.native(flows)
    lf = nw.from_native(native)
    src = nw.coalesce(nw.col("pkt_srcaddr"), nw.col("srcaddr"))
    dst = nw.coalesce(nw.col("pkt_dstaddr"), nw.col("dstaddr"))
    records = lf.filter(~nw.col("srcaddr").is_null()).select(
        "interface_id", "action", "packets", "bytes", "start_time", "end_time", src=src, dst=dst)
    distinct = nw.from_native(frames.materialised(
        nw.concat([records.select(address="src"), records.select(address="dst")], how="vertical")
        .group_by("address").agg(nw.len().alias("_n")).drop("_n")
    ))
    listed = watchlist.match(_column(distinct, "address"))
    table = nw.from_native(frames.side_table(native, listed))
    ends = []
    for listed_col, local_col, direction in (("dst", "src", "to listed"), ("src", "dst", "from listed")):
        ends.append(
            records.join(table, left_on=listed_col, right_on="address", how="inner")
            .select("interface_id", "action", "packets", "bytes", "start_time", "end_time", "entry", "label",
                    listed_address=nw.col(listed_col), local_address=nw.col(local_col),
                    direction=nw.lit(direction))
        )
    hits = (
        nw.concat(ends, how="vertical")
        .group_by("interface_id", "local_address", "listed_address", "entry", "label", "direction", "action")
        .agg(records=nw.len().cast(nw.Int64), packets=nw.col("packets").sum().cast(nw.Int64),
             bytes=nw.col("bytes").sum().cast(nw.Int64), first_seen=nw.col("start_time").min(),
             last_seen=nw.col("end_time").max())
    )
    if inventory is not None and getattr(inventory, "interfaces", None) is not None and inventory.interfaces.height:
        names = inventory.interfaces.select(
            "interface_id", resource_id=pl.coalesce("instance_id", "interface_id"),
            resource_name="resource_name", interface_type="interface_type")
        hits = hits.join(nw.from_native(frames.side_table(native, names)), on="interface_id", how="left")
    return hits.sort(["bytes", "interface_id", "listed_address", "direction", "action"],
                     descending=[True, False, False, False, False]).to_native()


def _column(frame: Any, name: str) -> list[Any]:
    """One column of a small materialised frame as a Python list (any engine)."""
    return frames.to_polars(frame)[name].to_list()
