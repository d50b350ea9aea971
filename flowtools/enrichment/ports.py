"""Service ports: names, and which ports are a service's own (the one table of both).

The port list is data shipped with the package (``flowtools/data/service-ports.csv``):
a curated few hundred common TCP/UDP ports named as in the IANA service-name registry,
plus a few names in common use that IANA registers differently (marked "de facto" in the
description, e.g. 9200 elasticsearch, 51820 wireguard). Its ``server`` column marks the
ports above 1023 that count as well known for the exposure analysis' port evidence
(:func:`server_ports`). It is read once and cached. Protocol names: :mod:`flowtools.protocols`.
"""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

import polars as pl

from flowtools.protocols import NUMBERS, protocol_name, protocol_number

__all__ = ["WELL_KNOWN_MAX", "is_well_known_service", "port_names", "protocol_name", "protocol_number",
           "server_ports", "service_name"]

#: Ports 1-1023 are well known (IANA system ports).
WELL_KNOWN_MAX = 1023
_DATA_FILE = "service-ports.csv"
_SCHEMA = {"port": pl.Int32, "protocol": pl.Int32, "service": pl.Utf8, "description": pl.Utf8}


@cache
def _rows() -> tuple[dict[str, str], ...]:
    text = resources.files("flowtools").joinpath("data", _DATA_FILE).read_text(encoding="utf-8")
    return tuple(csv.DictReader(line for line in io.StringIO(text) if not line.startswith("#")))


@cache
def _table() -> dict[tuple[int, int], tuple[str, str]]:
    return {(int(row["port"]), NUMBERS[row["protocol"]]): (row["name"], row["description"]) for row in _rows()}


@cache
def server_ports() -> tuple[int, ...]:
    """The ports above :data:`WELL_KNOWN_MAX` that are a service's own (the list's ``server``
    mark), sorted: with ports 1-1023, the "well known" ports of the exposure analysis' port
    evidence (all below the common ephemeral ranges 32768-60999 and 49152-65535, except
    WireGuard's 51820)."""
    return tuple(sorted({int(row["port"]) for row in _rows() if row["server"] == "yes"}))


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
    """True when ``port`` is well known (1-:data:`WELL_KNOWN_MAX`, or in :func:`server_ports`)
    and ``protocol`` has ports (TCP or UDP): evidence that a side using it is a server,
    as the exposure analysis reads it when TCP flags cannot tell who initiated."""
    if port is None or protocol is None or protocol_number(protocol) not in (NUMBERS["tcp"], NUMBERS["udp"]):
        return False
    return 0 < int(port) <= WELL_KNOWN_MAX or int(port) in server_ports()
