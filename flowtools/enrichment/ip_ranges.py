"""AWS's published address ranges (``ip-ranges.json``): load, cache, classify addresses.

Format (docs/format.md): ``syncToken`` (publication time, Unix seconds as a string),
``createDate`` (``YYYY-MM-DD-hh-mm-ss`` UTC), ``prefixes[]`` (``ip_prefix``, ``region``,
``network_border_group``, ``service``) and ``ipv6_prefixes[]`` (``ipv6_prefix``, ...).
``AMAZON`` contains every range, so an address's answer is its most specific non-AMAZON
service, with AMAZON only when nothing more specific matches (as the flow-log field
``pkt-*-aws-service`` shows one code for overlapping ranges).

The file is only ever downloaded when asked (``flowtools ip-ranges update``) into the cache
(``~/.cache/flowtools/ip-ranges.json``; ``FLOWTOOLS_CACHE_DIR`` sets the folder).
"""

from __future__ import annotations

import ipaddress
import json
import os
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from flowtools import addresses
from flowtools.errors import FlowtoolsError
from flowtools.sources.cache import cache_dir

DEFAULT_URL = "https://ip-ranges.amazonaws.com/ip-ranges.json"
CACHE_FILE = "ip-ranges.json"
#: The catch-all service: every range is in it, so it is only the fallback answer.
AMAZON = "AMAZON"
DOWNLOAD_TIMEOUT = 30.0  # seconds; the file is ~2 MB

CLASSIFY_SCHEMA = {
    "address": pl.Utf8,
    "aws_service": pl.Utf8,
    "aws_region": pl.Utf8,
    "aws_network_border_group": pl.Utf8,
    "aws_prefix": pl.Utf8,
}


class IpRangesError(FlowtoolsError):
    """An ip-ranges.json file is missing, malformed, or could not be downloaded."""


def cache_path() -> Path:
    """Where ``flowtools ip-ranges update`` puts ip-ranges.json."""
    return cache_dir() / CACHE_FILE


@dataclass(frozen=True, slots=True)
class Prefix:
    """One entry of the file."""

    prefix: str
    service: str
    region: str | None
    network_border_group: str | None


# For one IP version: [(prefix length, {network >> host bits: [most specific non-AMAZON, AMAZON]})],
# longest prefix first. An address is looked up once per distinct prefix length.
_Table = list[tuple[int, dict[int, list[Prefix | None]]]]


class IpRanges:
    """AWS ip-ranges: ``IpRanges.load(path)``, ``IpRanges.cached()``, then ``classify``."""

    def __init__(self, document: dict[str, Any], *, source: str | None = None):
        """Validate a parsed ip-ranges.json document and index its prefixes.

        Raises ``IpRangesError`` naming ``source`` when the shape is not AWS's.
        """
        where = source or "ip-ranges document"
        if not isinstance(document, dict):
            raise IpRangesError(f"{where} is not AWS ip-ranges.json: expected a JSON object")
        for key in ("syncToken", "createDate", "prefixes"):
            if key not in document:
                raise IpRangesError(f"{where} is not AWS ip-ranges.json: missing {key!r}")
        self.source = source
        self.sync_token = str(document["syncToken"])
        self.create_date = str(document["createDate"])
        self._entries: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, Prefix]] = []
        for list_key, prefix_key in (("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")):
            items = document.get(list_key, [])
            if not isinstance(items, list):
                raise IpRangesError(f"{where} is not AWS ip-ranges.json: {list_key!r} is not a list")
            for i, item in enumerate(items):
                try:
                    text, service = item[prefix_key], item["service"]
                    network = ipaddress.ip_network(text, strict=False)
                except (KeyError, TypeError, ValueError) as e:
                    raise IpRangesError(
                        f"{where}: {list_key}[{i}] is not a valid entry ({e!r}): {item!r}"
                    ) from None
                entry = Prefix(str(network), str(service), item.get("region"), item.get("network_border_group"))
                self._entries.append((network, entry))
        self._tables = {4: self._index(4), 6: self._index(6)}
        self._array_cache: dict[int, list] = {}

    def _index(self, version: int) -> _Table:
        by_length: dict[int, dict[int, list[Prefix | None]]] = {}
        bits = 32 if version == 4 else 128
        for network, entry in self._entries:
            if network.version != version:
                continue
            key = int(network.network_address) >> (bits - network.prefixlen)
            slot = by_length.setdefault(network.prefixlen, {}).setdefault(key, [None, None])
            i = 1 if entry.service == AMAZON else 0
            if slot[i] is None:  # same prefix listed for two services: the first in the file wins
                slot[i] = entry
        return sorted(by_length.items(), reverse=True)

    def _arrays(self, version: int) -> list[tuple[int, Any, list[Prefix | None], list[Prefix | None]]]:
        """Per prefix length (longest first): sorted keys as a numpy array, and the entries
        (most specific non-AMAZON, AMAZON) in the same order. IPv6 keys are the upper 64
        bits, so only prefix lengths up to /64 (all AWS publishes) are here."""
        cached = self._array_cache.get(version)
        if cached is None:
            import numpy as np

            cached = []
            for length, table in self._tables[version]:
                if version == 6 and length > 64:
                    continue
                keys = sorted(table)
                cached.append((length, np.array(keys, dtype=np.uint64), [table[k][0] for k in keys],
                               [table[k][1] for k in keys]))
            self._array_cache[version] = cached
        return cached

    def _classify_values(self, version: int, values: list[int]) -> list[Prefix | None]:
        """The entry of each address value: numpy ``searchsorted`` once per prefix length."""
        import numpy as np

        n = len(values)
        found: list[Prefix | None] = [None] * n
        fallback: list[Prefix | None] = [None] * n
        # IPv6 prefixes longer than /64 (none in AWS's file today) go through the dict tables.
        long_tables = [(length, table) for length, table in self._tables[version] if version == 6 and length > 64]
        pending = np.ones(n, dtype=bool)
        if long_tables:
            for i, value in enumerate(values):
                entry = _best(long_tables, value, 128)
                if entry is not None and entry.service != AMAZON:
                    found[i] = entry
                    pending[i] = False
                elif entry is not None:
                    fallback[i] = entry
        top = np.array([v >> 64 for v in values] if version == 6 else values, dtype=np.uint64)
        bits = 64 if version == 6 else 32
        for length, keys, services, amazons in self._arrays(version):
            rows = np.flatnonzero(pending)
            if rows.size == 0:
                break
            shift = bits - length
            probe = top[rows] >> np.uint64(shift) if shift < 64 else np.zeros(rows.size, dtype=np.uint64)
            pos = np.minimum(np.searchsorted(keys, probe), len(keys) - 1)
            hit = keys[pos] == probe
            for row, p in zip(rows[hit].tolist(), pos[hit].tolist(), strict=True):
                if services[p] is not None:
                    found[row] = services[p]
                    pending[row] = False
                elif fallback[row] is None:
                    fallback[row] = amazons[p]
        return [f if f is not None else fb for f, fb in zip(found, fallback, strict=True)]

    # -- constructors ---------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike) -> IpRanges:
        """Read an ip-ranges.json file (AWS's format; any size AWS publishes fits in memory)."""
        p = Path(path).expanduser()
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise IpRangesError(f"ip-ranges file not found: {p}") from None
        except OSError as e:
            raise IpRangesError(f"cannot read ip-ranges file {p}: {e.strerror or e}") from None
        try:
            document = json.loads(text)
        except json.JSONDecodeError as e:
            raise IpRangesError(f"{p} is not valid JSON (line {e.lineno}): {e.msg}") from None
        return cls(document, source=str(p))

    @classmethod
    def cached(cls) -> IpRanges:
        """The copy ``flowtools ip-ranges update`` downloaded; a clear error when there is none."""
        p = cache_path()
        if not p.exists():
            raise IpRangesError(
                f"no cached ip-ranges.json at {p}: run `flowtools ip-ranges update` to download "
                f"AWS's file ({DEFAULT_URL}), or pass --ip-ranges PATH"
            )
        return cls.load(p)

    # -- what is in it --------------------------------------------------------------------

    @property
    def create_time(self) -> datetime | None:
        """``createDate`` as a UTC datetime (None if it does not parse)."""
        try:
            return datetime.strptime(self.create_date, "%Y-%m-%d-%H-%M-%S").replace(tzinfo=UTC)
        except ValueError:
            return None

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"IpRanges(syncToken={self.sync_token!r}, createDate={self.create_date!r}, prefixes={len(self)})"

    def counts(self) -> dict[str, int]:
        """Number of IPv4 and IPv6 entries (``{"ipv4": n, "ipv6": m}``)."""
        v4 = sum(1 for n, _ in self._entries if n.version == 4)
        return {"ipv4": v4, "ipv6": len(self._entries) - v4}

    def services(self) -> list[str]:
        """The distinct service names, sorted."""
        return sorted({e.service for _, e in self._entries})

    def prefixes(self) -> pl.DataFrame:
        """Every entry as a frame: prefix, ip_version, service, region, network_border_group."""
        return pl.DataFrame(
            {
                "prefix": [e.prefix for _, e in self._entries],
                "ip_version": [n.version for n, _ in self._entries],
                "service": [e.service for _, e in self._entries],
                "region": [e.region for _, e in self._entries],
                "network_border_group": [e.network_border_group for _, e in self._entries],
            },
            schema={"prefix": pl.Utf8, "ip_version": pl.Int8, "service": pl.Utf8, "region": pl.Utf8,
                    "network_border_group": pl.Utf8},
        )

    # -- classification -------------------------------------------------------------------

    def lookup(self, address: str) -> Prefix | None:
        """The entry that classifies one address (see ``classify``), or None."""
        parsed = _parse(address)
        if parsed is None:
            return None
        version, value = parsed
        return _best(self._tables[version], value, 32 if version == 4 else 128)

    def classify(self, addresses: Iterable[str | None]) -> pl.DataFrame:
        """AWS service and region of each DISTINCT address string (IPv4 and IPv6).

        Returns one row per distinct non-null input string, in order of first appearance:
        ``address`` (the string as given, to join back on), ``aws_service`` (the most
        specific non-AMAZON service; ``AMAZON`` only when nothing more specific matches),
        ``aws_region``, ``aws_network_border_group`` and ``aws_prefix`` (the matched
        prefix). Addresses outside every range, and strings that are not addresses, get
        nulls. IPv4-mapped IPv6 addresses (``::ffff:a.b.c.d``) are looked up as IPv4.

        Cost: one parse per distinct address (Python's ``ipaddress``), then per distinct
        prefix length (~25 for IPv4, ~20 for IPv6) one vectorised ``searchsorted`` over the
        addresses still without a non-AMAZON match; never a join of addresses with prefixes
        (~1 s per 250 000 distinct addresses). Pass distinct addresses (e.g. ``flows.select(peer).unique()``)
        rather than every record, and join the result back.
        """
        distinct = list(dict.fromkeys(a for a in addresses if a is not None))
        found: list[Prefix | None] = [None] * len(distinct)
        parsed = [_parse(a) for a in distinct]
        for version in (4, 6):
            rows = [i for i, p in enumerate(parsed) if p is not None and p[0] == version]
            if rows:
                values = [p[1] for i in rows if (p := parsed[i]) is not None]
                for row, entry in zip(rows, self._classify_values(version, values), strict=True):
                    found[row] = entry
        return pl.DataFrame(
            {
                "address": distinct,
                "aws_service": [e.service if e else None for e in found],
                "aws_region": [e.region if e else None for e in found],
                "aws_network_border_group": [e.network_border_group if e else None for e in found],
                "aws_prefix": [e.prefix if e else None for e in found],
            },
            schema=CLASSIFY_SCHEMA,
        )


def _parse(text: str) -> tuple[int, int] | None:
    """(IP version, integer value) of an address string; None when it is not one."""
    ip = addresses.parse(text)
    if ip is None:
        return None
    ip = addresses.unmap(ip)  # an IPv4-mapped IPv6 address is its IPv4 address
    return ip.version, int(ip)


def _best(table: _Table, value: int, bits: int) -> Prefix | None:
    fallback = None
    for length, entries in table:
        slot = entries.get(value >> (bits - length))
        if slot is not None:
            if slot[0] is not None:
                return slot[0]
            fallback = fallback or slot[1]
    return fallback


def update(url: str = DEFAULT_URL, dest: str | os.PathLike | None = None, *,
           timeout: float = DOWNLOAD_TIMEOUT) -> IpRanges:
    """Download ip-ranges.json to ``dest`` (default: the cache) and return it loaded.

    The download is validated (JSON in AWS's shape) before it replaces ``dest``, and the
    replacement is atomic, so a failed or partial download never leaves a broken cache.
    ``url`` may also be a ``file://`` URL (e.g. an internal mirror's copy).
    """
    target = Path(dest).expanduser() if dest is not None else cache_path()
    request = urllib.request.Request(url, headers={"User-Agent": "flowtools"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            data = response.read()
    except urllib.error.HTTPError as e:
        raise IpRangesError(f"downloading {url} failed: HTTP {e.code} {e.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as e:
        reason = getattr(e, "reason", None) or e
        raise IpRangesError(f"cannot download {url}: {reason}") from None
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise IpRangesError(f"{url} did not return JSON ({e}); the cache was left unchanged") from None
    ranges = IpRanges(document, source=url)  # validates before anything is written
    if len(ranges) == 0:
        raise IpRangesError(f"{url} returned an ip-ranges.json without prefixes; the cache was left unchanged")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    ranges.source = str(target)
    return ranges
