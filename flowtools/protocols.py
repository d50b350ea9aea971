"""IP protocol numbers and the names flowtools shows for them: the one table.

Flow logs record the IANA protocol number (``protocol``: 6); findings, security-group rules
and figures name the common ones (``tcp``). Other numbers are shown as the number.
"""

from __future__ import annotations

__all__ = ["ICMP", "ICMPV6", "ICMP_PROTOCOLS", "NAMES", "NUMBERS", "TCP", "UDP", "protocol_name",
           "protocol_number", "rule_protocol"]

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
#: IANA number -> name, for the protocols flow logs mostly show.
NAMES: dict[int, str] = {TCP: "tcp", UDP: "udp", ICMP: "icmp", ICMPV6: "icmpv6"}
#: Name -> IANA number.
NUMBERS: dict[str, int] = {v: k for k, v in NAMES.items()}
#: The protocols without ports (flow logs show 0 0, or type and code).
ICMP_PROTOCOLS: tuple[int, ...] = (ICMP, ICMPV6)


def protocol_name(number: int) -> str:
    """``"tcp"``, ``"udp"``, ``"icmp"``, ``"icmpv6"`` for 6, 17, 1, 58; else the number as a string."""
    return NAMES.get(number, str(number))


def protocol_number(protocol: int | str) -> int | None:
    """The IANA number of ``6``/``"6"``/``"tcp"``/``"TCP"``; None when unknown."""
    if isinstance(protocol, int):
        return protocol
    text = protocol.strip().lower()
    if text.isdigit():
        return int(text)
    return NUMBERS.get(text)


def rule_protocol(raw: str) -> str:
    """A security-group rule's ``IpProtocol`` as flowtools names it: ``"-1"`` -> ``"all"``,
    a known number or name -> its name (``"6"``, ``"TCP"`` -> ``"tcp"``), anything else
    lower-cased as given (``"47"``, ``"gre"``)."""
    text = raw.strip().lower()
    if text == "-1":
        return "all"
    number = protocol_number(text)
    return NAMES[number] if number in NAMES else text
