"""A small ``ip-ranges.json`` fixture in AWS's format, covering the scenario's AWS peers.

Ranges overlap as in the real file: every range is in ``AMAZON``, and the specific
services (S3, EC2, CLOUDFRONT, ...) repeat some of them; one range is only ``AMAZON``.
The estate's own public IPs lie in the EC2 ranges (as real Elastic IPs do).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

SYNC_TOKEN = "1795089600"  # 2026-11-19T12:00:00Z
CREATE_DATE = "2026-11-19-12-00-00"

# (prefix, region, service); AMAZON entries are added for every prefix.
_V4 = (
    ("52.216.0.0/15", "us-east-1", "S3"),
    ("3.5.0.0/19", "us-east-1", "S3"),
    ("52.218.0.0/17", "eu-west-1", "S3"),
    ("54.144.0.0/14", "us-east-1", "EC2"),
    ("34.240.0.0/13", "eu-west-1", "EC2"),
    ("13.32.0.0/15", "GLOBAL", "CLOUDFRONT"),
    ("3.218.180.0/22", "us-east-1", "DYNAMODB"),
    ("54.243.31.192/26", "us-east-1", "ROUTE53_HEALTHCHECKS"),
    ("3.224.0.0/12", "us-east-1", None),  # only in AMAZON
)
_V6 = (
    ("2600:1fa0:8000::/39", "us-east-1", "S3"),
    ("2600:1f18::/33", "us-east-1", "EC2"),
    ("2600:9000::/28", "GLOBAL", "CLOUDFRONT"),
)


def document() -> dict:
    """The fixture as the parsed JSON document."""
    prefixes, prefixes6 = [], []
    for cidr, region, service in _V4:
        for s in ("AMAZON", service) if service else ("AMAZON",):
            prefixes.append({"ip_prefix": cidr, "region": region, "service": s,
                             "network_border_group": region})
    for cidr, region, service in _V6:
        for s in ("AMAZON", service) if service else ("AMAZON",):
            prefixes6.append({"ipv6_prefix": cidr, "region": region, "service": s,
                              "network_border_group": region})
    return {"syncToken": SYNC_TOKEN, "createDate": CREATE_DATE, "prefixes": prefixes,
            "ipv6_prefixes": prefixes6}


@lru_cache(maxsize=1)
def _networks() -> tuple[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str], ...]:
    nets = [(ipaddress.ip_network(c), s or "AMAZON") for c, _, s in _V4 + _V6]
    return tuple(sorted(nets, key=lambda n: -n[0].prefixlen))


def service_of(address: str) -> str | None:
    """The most specific non-AMAZON service of an address (what ``pkt-*-aws-service``
    shows), ``AMAZON`` for AMAZON-only ranges, ``None`` outside AWS."""
    ip = ipaddress.ip_address(address)
    for net, service in _networks():
        if ip.version == net.version and ip in net:
            return service
    return None
