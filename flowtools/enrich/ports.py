"""Service names for ports and names for IP protocol numbers.

The port list is data shipped with the package (``flowtools/data/service-ports.csv``):
a curated few hundred common TCP/UDP ports named as in the IANA service-name registry,
plus a few names in common use that IANA registers differently (marked "de facto" in the
description, e.g. 9200 elasticsearch, 51820 wireguard). It is read once and cached.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

import polars as pl

#: IANA protocol numbers of the protocols flow logs mostly show.
PROTOCOL_NUMBERS = {"icmp": 1, "tcp": 6, "udp": 17, "icmpv6": 58}
PROTOCOL_NAMES = {v: k for k, v in PROTOCOL_NUMBERS.items()}

_DATA_FILE = "service-ports.csv"
_SCHEMA = {"port": pl.Int32, "protocol": pl.Int32, "service": pl.Utf8, "description": pl.Utf8}


def protocol_name(number: int) -> str:
    """``"tcp"``, ``"udp"``, ``"icmp"``, ``"icmpv6"`` for 6, 17, 1, 58; else the number as a string."""
    return PROTOCOL_NAMES.get(number, str(number))


def protocol_number(protocol: int | str) -> int | None:
    """The IANA number of ``6``/``"6"``/``"tcp"``/``"TCP"``; None when unknown."""
    if isinstance(protocol, int):
        return protocol
    text = protocol.strip().lower()
    if text.isdigit():
        return int(text)
    return PROTOCOL_NUMBERS.get(text)


@cache
def _table() -> dict[tuple[int, int], tuple[str, str]]:
    text = resources.files("flowtools").joinpath("data", _DATA_FILE).read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#"))
    table: dict[tuple[int, int], tuple[str, str]] = {}
    for row in rows:
        table[(int(row["port"]), PROTOCOL_NUMBERS[row["protocol"]])] = (row["name"], row["description"])
    return table


def port_names() -> pl.DataFrame:
    """The port list as a frame to join on: ``port`` (int32), ``protocol`` (int32, IANA
    number: 6 tcp, 17 udp), ``service`` (IANA service name), ``description``.

    A few hundred rows, sorted by port and protocol; built from the shipped CSV each call
    (cheap), so callers may modify the frame they get.
    """
    items = sorted(_table().items())
    return pl.DataFrame(
        {
            "port": [k[0] for k, _ in items],
            "protocol": [k[1] for k, _ in items],
            "service": [v[0] for _, v in items],
            "description": [v[1] for _, v in items],
        },
        schema=_SCHEMA,
    )


def service_name(port: int | None, protocol: int | str | None) -> str | None:
    """The service name of a TCP/UDP port (``service_name(443, 6) == "https"``,
    ``service_name(53, "udp") == "domain"``); None for unknown pairs, ICMP, or nulls."""
    if port is None or protocol is None:
        return None
    number = protocol_number(protocol)
    entry = _table().get((int(port), number)) if number is not None else None
    return entry[0] if entry else None


def is_well_known_service(port: int | None, protocol: int | str | None) -> bool:
    """True when (port, protocol) is a service port in the curated list: evidence that a
    side listening on it is a server (used when TCP flags cannot tell who initiated)."""
    return service_name(port, protocol) is not None
