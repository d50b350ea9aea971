"""Internet exposure: which interfaces and ports the internet really reaches (docs/design.md).

The package's modules follow the steps below: :mod:`.records` (the inputs and the eager
pass), :mod:`.orientation` (steps 1-2), :mod:`.initiator` (step 3), :mod:`.findings`
(steps 4-6 and the JSON records), :mod:`.configured` (the security groups' view) and
:mod:`.naive` (the naive method); this module runs them in order. :mod:`.oriented` runs
steps 1-3 alone for every peer, internal or internet (:func:`.initiator.initiators`, the
decision itself): the traffic analyses' conversations and ports read it.

``internet_exposure(flows)`` takes flows (a ``Flows`` or a native frame: a DuckDB relation,
a Polars LazyFrame/DataFrame) and returns a lazy frame of findings on the same engine,
one row per (interface, local port, protocol) that internet hosts started conversations
with. It is written once with Narwhals. Nothing is printed or plotted.

Cost (the plan, per DuckDB and Polars alike): two passes over the records, both at call
time, and everything else on small tables.

* The eager step (:func:`.records.address_pairs`): one hash aggregate of the records into their
  distinct (interface, addresses as logged, ``flow_direction``, attribute values), with
  record counts (a few thousand rows for millions of records), once per call. Python and
  Polars classify its addresses (:mod:`flowtools.addresses`, ip-ranges) and orient every
  pair (steps 1-2) on it, so the per-record work is a join with that side table. For a
  ``Flows`` read from the partition store the pairs add up from per-hour facts kept next
  to it (:func:`.records.window_pairs`, :mod:`flowtools.store.facts`), and so do the ECS
  service names the findings are named with: a warm run reads no record for them.
* The conversations (:func:`.initiator.group_conversations`): the records joined with their orientation,
  one hash aggregate with integer keys (interface and address ordinals), materialised in
  engine memory (:func:`flowtools.frames.materialised`): the initiator decision reads them
  four times (forwarders, fan-in, fan-out, the conversations), and DuckDB would otherwise
  recompute the records pass for each read. The internet-initiated conversations are
  materialised again, because the findings read them several times (per finding, local
  address, peer, security groups). Their size follows conversations, not records; the
  records are never collected.
* The returned frame aggregates those into findings lazily (hash aggregates, joins with
  small side tables, one rank window over the peers of each finding).

How a record is read (the steps of docs/design.md "Internet exposure"):

1. **Orientation**: ``flow_direction`` when present (``field``); else the interface's own
   addresses from the inventory (``inventory``); else address classes, an internet
   address on one side only; else the interface's most frequent address is its own
   (``guessed``, both of the last two).
2. **Peers**: the remote address is ``pkt_srcaddr`` (ingress) / ``pkt_dstaddr`` (egress)
   when present, else ``srcaddr``/``dstaddr``; internet per :func:`flowtools.addresses.classify`
   (the estate's VPC CIDRs and public IPs are not internet). Records whose *local* packet
   address is an internet address that is not the interface's (traffic carried through
   the interface: NAT gateway, transit gateway, a load balancer's back end) are not
   conversations of that interface.
3. **Initiator** per conversation (interface, local address and port, remote address and
   port, protocol), first rule that decides wins:

   * ``flags`` (TCP): a record with SYN and without ACK comes from the initiator, a
     SYN-ACK from the responder; windows with flags 0, FIN or RST inherit from the
     conversation's flagged windows.
   * ``ports``: each port scores 2 when it is a service port by fan-in (the local port is
     reached from at least :data:`SERVICE_FAN_IN` distinct remote (address, port) pairs;
     the remote (address, port) is reached from at least :data:`CLIENT_FAN_OUT` distinct
     local ports) plus 1 when it is well known (1-1023 or in
     :data:`KNOWN_SERVICE_PORTS`); the side with the higher score is the service, so a
     long connection whose SYN fell before the window is still told by its server port.
     Both sides on the same port (ntpd's 123<->123) leave it to the next rule.
   * ``first``: the direction seen first (the earlier ``start``; only one direction seen);
     ICMP seen both ways in the same second is taken as an internet host's echo request
     accepted and answered.
4. **Status** per finding key (interface, local port, protocol) over its
   internet-initiated conversations: ``exposed`` if one was accepted inbound and
   answered (an egress ACCEPT that is not only a reset, flags 4), else ``reachable`` if one was accepted inbound (or
   its reply was rejected by a network ACL, or was only a reset), else ``blocked``.
   Interfaces that only forward (NAT gateway, transit gateway: from the inventory, the
   record's ``interface_type`` (v11), or, without either, an interface that carries
   inside hosts' connections to internet addresses) yield no findings.
5. **Confidence**: ``high`` when flags decided, ``medium`` when the direction came from
   ``flow_direction`` or the inventory, ``low`` when it was guessed; a finding takes the
   best of its conversations.
6. **Counters** and columns: see :data:`COLUMNS`.

``method="naive"`` is the default v2 reading for comparison: every ACCEPTed record whose
``srcaddr`` is a public address (internet or the estate's own) is exposure of
(interface, ``dstport``, protocol), status ``exposed``, confidence ``low``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from typing import Any, Literal, NamedTuple

import narwhals as nw
import polars as pl

from flowtools.analyses.exposure.configured import configured_findings, with_sg_open
from flowtools.analyses.exposure.findings import (
    COLUMNS,
    EXTRA_COLUMNS,
    POLARS_TYPES,
    finding_keys,
    finding_parts,
    findings_of_parts,
    findings_records,
    findings_schema,
    ordered,
)
from flowtools.analyses.exposure.initiator import (
    CLIENT_FAN_OUT,
    KNOWN_SERVICE_PORTS,
    SERVICE_FAN_IN,
    WELL_KNOWN_MAX,
    decide,
    group_conversations,
)
from flowtools.analyses.exposure.naive import NAIVE_KEY, naive_conversations, naive_sides
from flowtools.analyses.exposure.orientation import ADDRESS_KEY, orient
from flowtools.analyses.exposure.records import (
    ADDRESS_COLUMNS,
    address_classes,
    keyed,
    number_interfaces,
    select_records,
    window_pairs,
)
from flowtools.analyses.exposure.split import remote_slices, split_parts
from flowtools.analyses.risk import Policy, with_risk
from flowtools.enrichment.inventory import Inventory
from flowtools.enrichment.ip_ranges import IpRanges
from flowtools.enrichment.naming import ecs_service_names
from flowtools.errors import UsageError
from flowtools.frames import materialised, side_table, to_polars
from flowtools.frames import native as native_frame

__all__ = ["BATCH_RECORDS", "CLIENT_FAN_OUT", "COLUMNS", "ENGINE_STEPS", "EXTRA_COLUMNS", "KNOWN_SERVICE_PORTS",
           "SERVICE_FAN_IN", "WELL_KNOWN_MAX", "Steps",
           "findings_records", "findings_schema", "internet_exposure"]

Method = Literal["full", "naive"]


class Steps(NamedTuple):
    """How the analysis runs its two kinds of eager step; the default runs them on the
    engine of the flows. Another executor (:mod:`flowtools.athena.exposure`) can plan the
    same analysis without running it on that engine.

    ``collect(frame)``: execute the eager address-pairs aggregate (a Narwhals lazy frame)
    and return it as a small Polars frame. ``hold(frame)``: a conversation table several
    branches read (:func:`flowtools.frames.materialised` by default), returned as a native
    lazy frame on the same engine."""

    collect: Callable[[nw.LazyFrame], pl.DataFrame]
    hold: Callable[[Any], Any]


def _collect(frame: nw.LazyFrame) -> pl.DataFrame:
    return frame.collect("polars").to_native()


#: Run every step on the engine of the flows.
ENGINE_STEPS = Steps(collect=_collect, hold=materialised)


#: Above this many records the analysis runs per batch of interfaces (see
#: :func:`internet_exposure`, "Memory"); ``$FLOWTOOLS_EXPOSURE_BATCH`` overrides it.
BATCH_RECORDS = 4_000_000
BATCH_ENV = "FLOWTOOLS_EXPOSURE_BATCH"


def batch_limit(batch_records: int | None) -> int:
    """Records per batch of interfaces: ``batch_records``, else ``$FLOWTOOLS_EXPOSURE_BATCH``,
    else :data:`BATCH_RECORDS` (0: one pass)."""
    return batch_records if batch_records is not None else int(os.environ.get(BATCH_ENV) or BATCH_RECORDS)


def internet_exposure(flows: Any, *, inventory: Inventory | None = None, method: Method = "full",
                      include_configured: bool = False, ip_ranges: IpRanges | None = None,
                      risk_policy: Policy | None = None, batch_records: int | None = None,
                      steps: Steps = ENGINE_STEPS) -> Any:
    """Findings of internet exposure, a lazy frame on the engine of ``flows``.

    ``flows``: a ``Flows`` (its ``.frame``), a ``duckdb.DuckDBPyRelation`` (the result is a
    relation on the same connection) or a ``polars.LazyFrame``/``DataFrame`` (the result
    is a ``LazyFrame``), in the canonical schema. ``inventory`` (optional) tells the
    interfaces' own addresses, the estate's VPC CIDRs and public IPs (never internet
    peers), names, types and owners. ``method``: ``"full"`` (docs/design.md steps 1-6) or
    ``"naive"`` (accepted records from public ``srcaddr``, for comparison).

    With security groups in the inventory (full method), ``sg_open`` says whether the
    interface's groups admit internet addresses on the finding's port (null when its groups
    are not in the inventory); ``include_configured=True`` adds ``configured`` findings:
    rules admitting ``0.0.0.0/0`` or ``::/0`` where no internet-initiated traffic was
    observed (see :mod:`flowtools.analyses.exposure.configured`). ``ip_ranges`` fills the extra
    column ``aws_peers``: how many of the peers are in AWS's ip-ranges (CloudFront edges,
    other AWS customers' EC2 addresses: still internet peers), null without it. Every
    finding gets a ``risk`` (and the extra ``risk_category``) from ``risk_policy``
    (default: the built-in policy, :mod:`flowtools.analyses.risk`).

    One row per finding with :data:`COLUMNS`, ordered by status (exposed, reachable,
    blocked), peers descending, interface, protocol, port (nulls last).
    :func:`findings_records` turns the result into JSON-ready dicts.

    What runs when: this call executes two passes over the flows and keeps conversation
    tables in engine memory (see the module's "Cost"); the returned frame works on those
    and on small side tables, and runs when the caller collects it.

    Memory: every step of the analysis depends only on one interface's records (its
    conversations, port evidence and orientation), so above ``batch_records`` records
    (default :data:`BATCH_RECORDS`) it runs per batch of interfaces, each batch read with
    a filter on ``interface_id`` (the partition store keeps rows sorted by interface, so a
    batch reads little more than its own row groups), and the batches' findings (small)
    are put together: the same findings, with memory bounded by one batch's conversations.
    An interface with more than ``batch_records`` records is read in that many slices of
    its remote addresses (:mod:`flowtools.analyses.exposure.split`: each slice reads the
    interface's records again), with the same findings too. ``batch_records=0``: one pass.

    ``steps`` (default :data:`ENGINE_STEPS`): how the eager steps run (see :class:`Steps`);
    with other steps, pass ``batch_records=0`` (batching reads the flows eagerly).
    """
    if method not in ("full", "naive"):
        raise UsageError(f"method must be 'full' or 'naive', not {method!r}")
    native = native_frame(flows)
    inventory = inventory if inventory is not None else Inventory.empty()
    naive = method == "naive"
    limit = batch_limit(batch_records)
    # the eager pass, once for the window (per-hour facts of the store when they apply);
    # the batches' pairs are its rows of their interfaces
    keys = NAIVE_KEY if naive else ADDRESS_KEY
    own_steps = steps is ENGINE_STEPS
    pairs = window_pairs(flows if own_steps else native, keys, facts=f"exposure-{method}-pairs-1",
                         collect=None if own_steps else steps.collect)
    # named ECS services, once (per-hour facts too): only an inventory's interfaces are named
    ecs = ecs_service_names(flows if own_steps else native) if inventory.interfaces.height else None
    run = partial(_findings_and_keys, inventory=inventory, naive=naive, ip_ranges=ip_ranges, steps=steps, ecs=ecs)
    batches = _batches_of(pairs.group_by("interface_id").agg(pl.col("n").sum()), limit)
    if batches is None:
        findings, observed = run(native, pairs)
    else:
        parts, seen = [], []
        for condition, records in batches:
            f, o = run(nw.from_native(native).filter(condition).to_native(),
                       nw.from_native(pairs).filter(condition).to_native(), slices=-(-records // limit))
            parts.append(to_polars(f))
            if o is not None:
                seen.append(to_polars(o))
        findings = nw.from_native(side_table(native, pl.concat(parts, how="vertical_relaxed")))
        observed = nw.from_native(side_table(native, pl.concat(seen, how="vertical_relaxed"))) if seen else None
    if observed is not None and include_configured:
        configured = configured_findings(observed, native, inventory, POLARS_TYPES)
        findings = nw.concat([findings.select(*POLARS_TYPES), configured.select(*POLARS_TYPES)], how="vertical")
    # the findings are small and the risk step reads them twice (its keys, then the join
    # back): held once, their plan is neither run twice nor bound again under every step
    findings = with_risk(nw.from_native(steps.hold(findings.to_native())), native, policy=risk_policy)
    return ordered(findings.select(*COLUMNS, *EXTRA_COLUMNS, "status_rank")).to_native()


def interface_batches(native: Any, limit: int) -> list[nw.Expr] | None:
    """Filters that split the flows into batches of whole interfaces of at most ``limit``
    records each (one interface larger than that is a batch of its own), or None when the
    flows hold ``limit`` records or fewer. Interfaces are grouped case-insensitively (the
    analysis lower-cases ids) in sorted order, and each filter also bounds the raw id, so a
    Parquet scan skips the row groups of other interfaces. Cost: one aggregate of
    ``interface_id`` over the flows (a column scan), its result as small as the interfaces."""
    batches = _batches(native, limit)
    return None if batches is None else [condition for condition, _ in batches]


def _batches(native: Any, limit: int) -> list[tuple[nw.Expr, int]] | None:
    """:func:`interface_batches` with each batch's record count."""
    if limit <= 0:
        return None
    return _batches_of(to_polars(nw.from_native(native).filter(~nw.col("interface_id").is_null())
                                 .group_by("interface_id").agg(nw.len().alias("n"))), limit)


def _batches_of(counts: pl.DataFrame, limit: int) -> list[tuple[nw.Expr, int]] | None:
    """Batches of whole interfaces of at most ``limit`` records from ``counts`` (records
    ``n`` per ``interface_id`` as logged), each a filter and its records; None when all
    fit in one (or ``limit`` is 0)."""
    if limit <= 0 or counts["n"].sum() <= limit:
        return None
    per = (counts.group_by(pl.col("interface_id").str.to_lowercase().alias("key"))
           .agg(pl.col("n").sum(), raw_lo=pl.col("interface_id").min(), raw_hi=pl.col("interface_id").max())
           .sort("key"))
    batches: list[tuple[nw.Expr, int]] = []
    start, total = 0, 0
    rows = per.to_dicts()
    for i, row in enumerate(rows):
        if total and total + row["n"] > limit:
            batches.append((_batch_filter(rows[start:i]), total))
            start, total = i, 0
        total += row["n"]
    batches.append((_batch_filter(rows[start:]), total))
    return batches


def _batch_filter(rows: list[dict[str, Any]]) -> nw.Expr:
    lo, hi = rows[0]["key"], rows[-1]["key"]
    raw_lo, raw_hi = min(r["raw_lo"] for r in rows), max(r["raw_hi"] for r in rows)
    iface = nw.col("interface_id")
    return (iface >= raw_lo) & (iface <= raw_hi) & (iface.str.to_lowercase() >= lo) & (
        iface.str.to_lowercase() <= hi)


def _findings_and_keys(native: Any, pairs: pl.DataFrame, *, inventory: Inventory, naive: bool,
                       ip_ranges: IpRanges | None, steps: Steps = ENGINE_STEPS, slices: int = 1,
                       ecs: pl.DataFrame | None = None) -> tuple[nw.LazyFrame, nw.LazyFrame | None]:
    """The observed findings of ``native`` (with ``sg_open``, unordered) and, with security
    groups in the inventory, their keys (for configured findings). ``pairs``: the address
    pairs of ``native``'s records (:func:`.records.window_pairs`). ``slices`` above 1:
    the conversations are read in that many slices of remote addresses (:mod:`.split`).
    ``ecs``: the named ECS services of the flows (None: read them when needed)."""

    def side(table: pl.DataFrame) -> nw.LazyFrame:
        return nw.from_native(side_table(native, table))

    keys, columns = (NAIVE_KEY, ["srcaddr", "dstaddr"]) if naive else (ADDRESS_KEY, list(ADDRESS_COLUMNS))
    records = keyed(select_records(nw.from_native(native)), keys)
    interfaces = number_interfaces(pairs)
    addresses = address_classes(pairs, columns, inventory, ip_ranges)
    table = side(interfaces.table)
    aggregated = interfaces.per_record is not None
    sides = naive_sides(pairs, addresses, interfaces) if naive else orient(pairs, addresses, interfaces, inventory)
    if slices > 1:
        parts = split_parts(records, native, remote_slices(sides, pairs, keys, slices), naive=naive,
                            per_record=interfaces.per_record, n_addresses=addresses.n_addresses,
                            interfaces=table, aggregated=aggregated)
        parts = type(parts)(*(nw.from_native(t) for t in parts))
    else:
        if naive:
            conversations = naive_conversations(records, side(sides), interfaces.per_record)
        else:
            grouped = nw.from_native(steps.hold(group_conversations(records, side(sides), interfaces.per_record)))
            conversations = decide(grouped, addresses.n_addresses, table, aggregated=aggregated)
        parts = finding_parts(nw.from_native(steps.hold(conversations)), aggregated=aggregated)
    findings = findings_of_parts(parts, native, inventory, addresses, table, aggregated=aggregated, naive=naive,
                                 aws=ip_ranges is not None, ecs=ecs)
    observed = None
    if not naive and inventory.security_groups.height:
        observed = finding_keys(parts.per_key, native, inventory, table, aggregated=aggregated, ecs=ecs)
        findings = with_sg_open(findings, native, inventory, keys=observed)
    return findings, observed
