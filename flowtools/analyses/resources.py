"""Which interfaces a resource is: ``resolve(inventory, flows, query)``.

Flow logs are per interface (``interface_id``); people name resources by instance id,
Name tag or address. :func:`resolve` turns one such query into the interface ids to
look at (notebook ``04_investigate_resource`` and :mod:`flowtools.analyses.traffic`'s
``interfaces=`` arguments take them).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

import narwhals as nw
import polars as pl

from flowtools import frames
from flowtools.errors import UsageError

if TYPE_CHECKING:
    from flowtools import Inventory

__all__ = ["resolve"]


def _address_forms(text: str) -> list[str] | None:
    """The spellings of an address: normalised first (compressed, lower case, as the
    inventory holds it), then exploded and as given; None when ``text`` is not an IP
    address."""
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    return list(dict.fromkeys([ip.compressed, ip.exploded, text]))


def _flow_interfaces(flows: Any, condition: nw.Expr) -> list[str]:
    """Distinct ``interface_id`` of the records matching ``condition`` (one filtered
    aggregate over the records, on the flows' engine)."""
    lf = frames.lazy(flows)
    found = (lf.filter(condition & ~nw.col("interface_id").is_null())
             .group_by("interface_id").agg(nw.len()).select("interface_id").collect("polars").to_native())
    return sorted(found["interface_id"].to_list())


def _has(flows: Any, column: str) -> bool:
    return column in frames.lazy(flows).collect_schema().names()


def resolve(inventory: Inventory | None, flows: Any, query: str) -> list[str]:
    """The interface ids (sorted) of the resource ``query`` names.

    ``query`` is one of (case-insensitive):

    * an interface id (``eni-...``): itself, when the inventory or the flows know it;
    * an instance id (``i-...``): the instance's interfaces in the inventory, else the
      interfaces whose records carry that ``instance-id`` (format v3+);
    * an IP address (IPv4 or IPv6, any spelling): the interfaces holding it as a private,
      public (Elastic) or IPv6 address in the inventory; else the interfaces whose
      records show it as their own address (the destination of ``ingress`` and the
      source of ``egress`` records: ``flow-direction``, format v5+; records without the
      field are not used, since either side could be the interface's);
    * anything else: a name, matched against the inventory's ``resource_name`` (the
      instance's Name tag, a load balancer's or NAT gateway's name...), the interface's
      and the instance's Name tags.

    ``inventory`` and ``flows`` (a ``Flows``, a DuckDB relation or a Polars frame) may be
    None. Cost: the inventory lookups are on its small tables; the flows fallbacks filter
    the records once (one aggregate), only when the inventory has no answer. Raises
    :class:`UsageError` naming what was searched when nothing matches.
    """
    text = str(query).strip()
    lowered = text.lower()
    forms = _address_forms(text)
    # What to search: the inventory's interfaces (a small table) with a Polars predicate,
    # then the records (one filtered aggregate) when they have the column the query needs.
    on_flows: tuple[str, str, nw.Expr] | None  # (what, column needed, predicate)
    if lowered.startswith(("eni-", "i-")):
        column = "interface_id" if lowered.startswith("eni-") else "instance_id"
        on_inventory = (f"the inventory's {column}", pl.col(column).str.to_lowercase() == lowered)
        on_flows = (f"the flows' {column}", column, nw.col(column).str.to_lowercase() == lowered)
    elif forms is not None:
        on_inventory = ("the inventory's private, public and IPv6 addresses",
                        pl.any_horizontal([pl.col(c).list.contains(forms[0])
                                           for c in ("private_ips", "public_ips", "ipv6_addresses")]))
        on_flows = ("the interfaces' own addresses in the flows (flow-direction)", "flow_direction",
                    ((nw.col("flow_direction") == "ingress") & nw.col("dstaddr").is_in(forms))
                    | ((nw.col("flow_direction") == "egress") & nw.col("srcaddr").is_in(forms)))
    else:
        on_inventory = ("the inventory's resource names and Name tags",
                        pl.any_horizontal([pl.col(c).str.to_lowercase() == lowered
                                           for c in ("resource_name", "name", "instance_name")]))
        on_flows = None
    searched = []
    if inventory is not None:
        searched.append(on_inventory[0])
        found = sorted(set(inventory.interfaces.filter(on_inventory[1])["interface_id"].to_list()))
        if found:
            return found
    if flows is not None and on_flows is not None and _has(flows, on_flows[1]):
        searched.append(on_flows[0])
        found = _flow_interfaces(flows, on_flows[2])
        if found:
            return found
    missing = [w for w, given in (("no inventory", inventory), ("no flows", flows)) if given is None]
    raise UsageError(f"no interface matches {text!r}: searched {' and '.join(searched) or 'nothing'}"
                     + (f" ({' and '.join(missing)} given)" if missing else ""))
