"""Address classes for IPv4 and IPv6: private, shared, link-local, ..., the estate's own, internet.

Classification runs in Python with :mod:`ipaddress` over DISTINCT addresses (a side table
that is joined back to the records), never per record: its cost follows the number of
distinct addresses, not the number of records.

The classes (column ``kind``), checked in this order:

=============  ==========================================================================
invalid        not an IPv4 or IPv6 address (an exception is never raised for data)
unspecified    ``0.0.0.0``, ``::``
loopback       ``127.0.0.0/8``, ``::1``
link_local     ``169.254.0.0/16``, ``fe80::/10``
multicast      ``224.0.0.0/4``, ``ff00::/8``
shared         ``100.64.0.0/10`` (RFC 6598, carrier-grade NAT)
private        RFC 1918 (``10/8``, ``172.16/12``, ``192.168/16``) and IPv6 ULA ``fc00::/7``
own            globally routable but the estate's own: inside ``own_networks`` (VPC CIDRs)
               or one of ``own_addresses`` (public and Elastic IPs of the inventory)
internet       globally routable; the documentation ranges ``192.0.2.0/24``,
               ``198.51.100.0/24``, ``203.0.113.0/24`` and ``2001:db8::/32`` count as
               internet although :mod:`ipaddress` says they are not global, so AWS's own
               examples and test data behave like real traffic
reserved       any other address :mod:`ipaddress` does not call global (``240.0.0.0/4``,
               the broadcast address, ``198.18.0.0/15``, ``192.0.0.0/24``, ...)
=============  ==========================================================================

IPv4-mapped IPv6 addresses
--------------------------
An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, RFC 4291 section 2.5.5.2) *is* the IPv4
address it carries, everywhere flowtools classifies addresses: its class here, its AWS
service and region (:mod:`flowtools.enrich.ip_ranges`) and whether it is the estate's own.
:func:`unmap` is the one place that says so; every classifier calls it.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable
from typing import Literal

import polars as pl

Kind = Literal["private", "shared", "link_local", "loopback", "multicast", "unspecified",
               "reserved", "own", "internet", "invalid"]

#: Every value of ``kind``; ``internet`` is the only one that is internet.
KINDS: tuple[str, ...] = ("private", "shared", "link_local", "loopback", "multicast", "unspecified",
                          "reserved", "own", "internet", "invalid")

#: The address-class table's columns and types.
SCHEMA: dict[str, pl.DataType] = {
    "address": pl.String,  # the input string, unchanged (the join key)
    "family": pl.String,  # "IPv4" | "IPv6" (as the flow-log field `type`); null when invalid
    "kind": pl.String,
    "is_internet": pl.Boolean,
    "normalized": pl.String,  # compressed, lower case; null when invalid
}

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

#: RFC 5737 / RFC 3849 documentation ranges: internet for flowtools (see the module doc).
DOCUMENTATION_NETWORKS: tuple[_Network, ...] = tuple(ipaddress.ip_network(c) for c in (
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32"))
SHARED_NETWORK = ipaddress.ip_network("100.64.0.0/10")
PRIVATE_NETWORKS: tuple[_Network, ...] = tuple(ipaddress.ip_network(c) for c in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))


def parse(address: str | None) -> _Address | None:
    """The address as an :mod:`ipaddress` object, or None when it is not an address."""
    if not isinstance(address, str):
        return None
    try:
        return ipaddress.ip_address(address.strip())
    except ValueError:
        return None


def unmap(ip: _Address) -> _Address:
    """The IPv4 address inside an IPv4-mapped IPv6 address; any other address unchanged."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def normalize(address: str | None) -> str | None:
    """Compressed, lower-case form (``2001:DB8:0::1`` -> ``2001:db8::1``); None when invalid."""
    ip = parse(address)
    return None if ip is None else str(ip)


def sort_key(address: str | None) -> tuple[int, int, str]:
    """A total order on address strings: IPv4 before IPv6, numerically; invalid last."""
    ip = parse(address)
    if ip is None:
        return (9, 0, address or "")
    return (ip.version, int(ip), str(ip))


class _Ranges:
    """Non-overlapping sorted integer ranges per IP version, for fast membership tests."""

    def __init__(self, networks: Iterable[str | _Network]) -> None:
        by_version: dict[int, list[_Network]] = {4: [], 6: []}
        for n in networks:
            net = n if isinstance(n, ipaddress.IPv4Network | ipaddress.IPv6Network) else \
                ipaddress.ip_network(str(n).strip(), strict=False)
            by_version[net.version].append(net)
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, nets in by_version.items():
            collapsed = list(ipaddress.collapse_addresses(nets))  # sorted, merged
            self._starts[version] = [int(n.network_address) for n in collapsed]
            self._ends[version] = [int(n.broadcast_address) for n in collapsed]

    def __contains__(self, ip: _Address) -> bool:
        starts = self._starts[ip.version]
        i = bisect.bisect_right(starts, int(ip)) - 1
        return i >= 0 and int(ip) <= self._ends[ip.version][i]


def _kind(ip: _Address, own_networks: _Ranges, own_addresses: set[_Address]) -> str:
    ip = unmap(ip)
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link_local"
    if ip.is_multicast:
        return "multicast"
    if ip.version == 4 and ip in SHARED_NETWORK:
        return "shared"
    if any(ip.version == n.version and ip in n for n in PRIVATE_NETWORKS):
        return "private"
    if ip in own_addresses or ip in own_networks:
        return "own"
    if any(ip.version == n.version and ip in n for n in DOCUMENTATION_NETWORKS):
        return "internet"
    if not ip.is_global:
        return "reserved"
    return "internet"


def classify(addresses: Iterable[str | None], *, own_networks: Iterable[str | _Network] = (),
             own_addresses: Iterable[str] = ()) -> pl.DataFrame:
    """Classify distinct addresses: one row per distinct input string (nulls are skipped).

    Columns: ``address`` (the input, unchanged: the key to join back on), ``family``
    (``IPv4``/``IPv6``, null when invalid), ``kind`` (see the module doc), ``is_internet``
    (``kind == "internet"``), ``normalized`` (compressed lower case, null when invalid).

    ``own_networks`` are CIDRs of the estate (VPC IPv4 and IPv6 CIDRs), ``own_addresses``
    its public and Elastic IPs; a globally routable address in either is ``own``, not
    ``internet``. Unparseable strings get kind ``invalid`` (never an exception); an
    invalid ``own_networks`` entry raises ``ValueError`` (it is the caller's input).

    Cost: Python over the distinct values (about a microsecond each), membership in the
    own networks by binary search. Pass distinct values: this is a side table.
    """
    ranges = _Ranges(own_networks)
    own = {unmap(ip) for ip in (parse(a) for a in own_addresses) if ip is not None}
    seen: set[str] = set()
    rows: dict[str, list] = {c: [] for c in SCHEMA}
    for a in addresses:
        if a is None or a in seen:
            continue
        seen.add(a)
        ip = parse(a)
        if ip is None:
            family, kind, norm = None, "invalid", None
        else:
            family, kind, norm = f"IPv{ip.version}", _kind(ip, ranges, own), str(ip)
        rows["address"].append(a)
        rows["family"].append(family)
        rows["kind"].append(kind)
        rows["is_internet"].append(kind == "internet")
        rows["normalized"].append(norm)
    return pl.DataFrame(rows, schema=SCHEMA)


def in_networks(addresses: Iterable[str | None], networks: Iterable[str | _Network]) -> list[bool]:
    """For each address, whether it lies in one of ``networks`` (False for nulls and
    strings that are not addresses). Binary search over the collapsed networks."""
    ranges = _Ranges(networks)
    out = []
    for a in addresses:
        ip = parse(a)
        out.append(ip is not None and unmap(ip) in ranges)
    return out
