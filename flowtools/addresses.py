"""What is internet: address classes for IPv4 and IPv6 (private, shared, link-local, ..., the estate's own, internet).

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
reserved       the other special-purpose ranges that are not globally routable
               (``0.0.0.0/8``, ``192.0.0.0/29``, ``192.0.0.170/31``, ``198.18.0.0/15``
               (benchmarking), ``240.0.0.0/4`` with the broadcast address, ``100::/64``,
               ``2001::/23``)
=============  ==========================================================================

These ranges are one table, :data:`NOT_INTERNET` (fixed here rather than taken from
:mod:`ipaddress`, whose notion of "global" changes between Python versions): addresses
are classified by it (:func:`classify`) and security-group CIDRs are judged by it
(:func:`holds_internet`), so the two never disagree.

IPv4-mapped IPv6 addresses
--------------------------
An IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, RFC 4291 section 2.5.5.2) *is* the IPv4
address it carries, everywhere flowtools classifies addresses: its class here, its AWS
service and region (:mod:`flowtools.enrichment.ip_ranges`), whether it is the estate's own,
and watchlist entries. :func:`unmap` is the one place that says so; every classifier calls it.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable

import polars as pl

from flowtools.frames import PolarsType

#: Every value of ``kind``; ``internet`` is the only one that is internet.
KINDS: tuple[str, ...] = ("private", "shared", "link_local", "loopback", "multicast", "unspecified",
                          "reserved", "own", "internet", "invalid")

#: The address-class table's columns and types.
SCHEMA: dict[str, PolarsType] = {
    "address": pl.String,  # the input string, unchanged (the join key)
    "family": pl.String,  # "IPv4" | "IPv6" (as the flow-log field `type`); null when invalid
    "kind": pl.String,
    "is_internet": pl.Boolean,
    "normalized": pl.String,  # compressed, lower case; null when invalid
}

_Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_Network = ipaddress.IPv4Network | ipaddress.IPv6Network

def _networks(*cidrs: str) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


#: The address ranges that are not internet, by kind, in the order they are checked (an
#: address takes the first kind whose ranges hold it; ``own`` and the documentation ranges
#: are checked between ``private`` and ``reserved``).
NOT_INTERNET: dict[str, tuple[_Network, ...]] = {
    "unspecified": _networks("0.0.0.0/32", "::/128"),
    "loopback": _networks("127.0.0.0/8", "::1/128"),
    "link_local": _networks("169.254.0.0/16", "fe80::/10"),
    "multicast": _networks("224.0.0.0/4", "ff00::/8"),
    "shared": _networks("100.64.0.0/10"),  # RFC 6598, carrier-grade NAT
    "private": _networks("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"),  # RFC 1918, ULA
    "reserved": _networks("0.0.0.0/8", "192.0.0.0/29", "192.0.0.170/31", "198.18.0.0/15", "240.0.0.0/4",
                          "100::/64", "2001::/23"),
}
#: RFC 5737 / RFC 3849 documentation ranges: internet for flowtools (see the module doc).
DOCUMENTATION_NETWORKS: tuple[_Network, ...] = _networks(
    "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")


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
            collapsed = list(ipaddress.collapse_addresses(nets))  # type: ignore[type-var]  # one version per list; sorted, merged
            self._starts[version] = [int(n.network_address) for n in collapsed]
            self._ends[version] = [int(n.broadcast_address) for n in collapsed]

    def __contains__(self, ip: _Address) -> bool:
        starts = self._starts[ip.version]
        i = bisect.bisect_right(starts, int(ip)) - 1
        return i >= 0 and int(ip) <= self._ends[ip.version][i]

    def covers(self, net: _Network) -> bool:
        """Whether every address of ``net`` is in these ranges."""
        start, end = int(net.network_address), int(net.broadcast_address)
        starts, ends = self._starts[net.version], self._ends[net.version]
        i = bisect.bisect_right(starts, start) - 1
        if i < 0 or ends[i] < start:
            return False
        reach = ends[i]
        while reach < end and i + 1 < len(starts) and starts[i + 1] <= reach + 1:  # adjacent ranges
            i += 1
            reach = max(reach, ends[i])
        return reach >= end

    def overlaps(self, net: _Network) -> bool:
        """Whether any address of ``net`` is in these ranges."""
        start, end = int(net.network_address), int(net.broadcast_address)
        starts, ends = self._starts[net.version], self._ends[net.version]
        i = bisect.bisect_right(starts, end) - 1
        return i >= 0 and ends[i] >= start


_BEFORE_OWN = ("unspecified", "loopback", "link_local", "multicast", "shared", "private")
_RANGES = {kind: _Ranges(nets) for kind, nets in NOT_INTERNET.items()}
_DOCUMENTATION = _Ranges(DOCUMENTATION_NETWORKS)
_ALL_NOT_INTERNET = _Ranges([n for nets in NOT_INTERNET.values() for n in nets])


def _kind(ip: _Address, own_networks: _Ranges, own_addresses: set[_Address]) -> str:
    ip = unmap(ip)
    for kind in _BEFORE_OWN:
        if ip in _RANGES[kind]:
            return kind
    if ip in own_addresses or ip in own_networks:
        return "own"
    if ip in _DOCUMENTATION:
        return "internet"
    if ip in _RANGES["reserved"]:
        return "reserved"
    return "internet"


def holds_internet(cidr: str | None) -> bool:
    """Whether a CIDR (a security-group rule's source) holds any internet address by the
    rule of :func:`classify` (:data:`NOT_INTERNET`, documentation ranges are internet):
    ``0.0.0.0/0``, ``::/0`` and any public range (an office's ``198.51.100.0/24``) do;
    ``10.0.0.0/8``, ``100.64.0.0/10`` and ``198.18.0.0/15`` do not. None or a string
    that is not a CIDR: False."""
    if not cidr:
        return False
    try:
        net = ipaddress.ip_network(cidr.strip(), strict=False)
    except ValueError:
        return False
    return _DOCUMENTATION.overlaps(net) or not _ALL_NOT_INTERNET.covers(net)


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
