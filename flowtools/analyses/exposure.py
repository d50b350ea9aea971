"""Internet exposure: which interfaces and ports the internet really reaches (DESIGN.md).

``internet_exposure(flows)`` takes flows (a ``Flows`` or a native frame: a DuckDB relation,
a Polars LazyFrame/DataFrame) and returns a lazy frame of findings on the same engine,
one row per (interface, local port, protocol) that internet hosts started conversations
with. It is written once with Narwhals. Nothing is printed or plotted.

Cost (the plan, per DuckDB and Polars alike): two passes over the records, both at call
time, and everything else on small tables.

* The eager step (:func:`_address_pairs`): one hash aggregate of the records into their
  distinct (interface, addresses as logged, ``flow_direction``, attribute values), with
  record counts (a few thousand rows for millions of records). Python and Polars classify
  its addresses (:mod:`flowtools.addresses`, ip-ranges) and orient every pair (steps 1-2)
  on it, so the per-record work is a join with that side table.
* The conversations (:func:`_conversations`): the records joined with their orientation,
  one hash aggregate with integer keys (interface and address ordinals), materialised in
  engine memory (:func:`flowtools.enrichment.materialised`): the initiator decision reads them
  four times (forwarders, fan-in, fan-out, the conversations), and DuckDB would otherwise
  recompute the records pass for each read. The internet-initiated conversations are
  materialised again, because the findings read them several times (per finding, local
  address, peer, security groups). Their size follows conversations, not records; the
  records are never collected.
* The returned frame aggregates those into findings lazily (hash aggregates, joins with
  small side tables, one rank window over the peers of each finding).

How a record is read (the steps of DESIGN.md "Internet exposure"):

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

import json
from collections.abc import Callable
from importlib import resources
from typing import Any, Literal, NamedTuple

import narwhals as nw
import polars as pl

from flowtools.addresses import classify, sort_key
from flowtools.enrichment.inventory import FORWARDING_TYPES, Inventory
from flowtools.enrichment.ip_ranges import IpRanges
from flowtools.enrichment.ports import WELL_KNOWN_MAX, server_ports
from flowtools.enrichment.security_groups import configured_findings, with_sg_open
from flowtools.errors import UsageError
from flowtools.frames import materialised, side_table, to_polars
from flowtools.frames import native as native_frame
from flowtools.protocols import ICMP, ICMPV6, NAMES, TCP

__all__ = ["COLUMNS", "findings_records", "findings_schema", "internet_exposure"]

Method = Literal["full", "naive"]

#: A local port reached from at least this many distinct remote (address, port) pairs is
#: a service port (port evidence, used when TCP flags cannot decide).
SERVICE_FAN_IN = 4
#: A remote (address, port) reached from at least this many distinct local ports is a
#: service the interface calls (a client's lookups from random ports to a resolver).
CLIENT_FAN_OUT = 4
#: Ports above 1023 that count as well known for port evidence (with 1-:data:`WELL_KNOWN_MAX`):
#: the ``server`` mark of the shipped port list (:func:`flowtools.enrichment.ports.server_ports`).
KNOWN_SERVICE_PORTS: tuple[int, ...] = server_ports()
#: Evidence says "from ephemeral ports" when at least this share of a finding's
#: conversations come from remote ports that are neither well known nor known services.
EPHEMERAL_SHARE = 0.9

#: The output columns (the JSON contract of DESIGN.md), in order, with their types:
#: strings unless noted; ``port``/``port_to`` int32 (``port`` null for ICMP, ``port_to``
#: null except for ``configured``), ``sg_open`` boolean (null: filled by enrichment),
#: ``peers``/``connections``/``bytes_in``/``bytes_out`` int64, ``first_seen``/``last_seen``
#: UTC timestamps, ``sample_peers`` a list of strings (the 5 peers with most connections,
#: ties by address).
COLUMNS: tuple[str, ...] = (
    "account_id", "region", "vpc_id", "interface_id", "instance_id", "resource_name",
    "interface_type", "local_ip", "port", "port_to", "protocol", "status", "sg_open", "peers",
    "connections", "bytes_in", "bytes_out", "first_seen", "last_seen", "confidence", "evidence",
    "sample_peers",
)
#: Columns after the contract's: ``aws_peers`` (int64), how many peers are in AWS's
#: ip-ranges (null without ``ip_ranges``).
EXTRA_COLUMNS: tuple[str, ...] = ("aws_peers",)
SAMPLE_PEERS = 5
#: Polars types of :data:`COLUMNS` (and the internal ``status_rank``), for side tables.
_POLARS_TYPES: dict[str, Any] = {
    **{c: pl.String for c in COLUMNS},
    "port": pl.Int32, "port_to": pl.Int32, "sg_open": pl.Boolean, "peers": pl.Int64,
    "connections": pl.Int64, "bytes_in": pl.Int64, "bytes_out": pl.Int64,
    "first_seen": pl.Datetime("us", "UTC"), "last_seen": pl.Datetime("us", "UTC"),
    "sample_peers": pl.List(pl.String), "aws_peers": pl.Int64, "status_rank": pl.Int32,
}

_RECORD_COLUMNS: dict[str, Any] = {
    "account_id": nw.String, "interface_id": nw.String, "srcaddr": nw.String,
    "dstaddr": nw.String, "srcport": nw.Int32, "dstport": nw.Int32, "protocol": nw.Int32,
    "bytes": nw.Int64, "start": nw.Int64, "action": nw.String, "vpc_id": nw.String,
    "instance_id": nw.String, "tcp_flags": nw.Int32, "pkt_srcaddr": nw.String,
    "pkt_dstaddr": nw.String, "region": nw.String, "flow_direction": nw.String,
    "reject_reason": nw.String, "interface_type": nw.String, "start_time": nw.Datetime("us", "UTC"),
    "end_time": nw.Datetime("us", "UTC"), "source_account_id": nw.String, "source_region": nw.String,
}
#: Address columns of a record and the prefix of their classified columns.
_ADDRESSES = {"srcaddr": "src", "dstaddr": "dst", "pkt_srcaddr": "psrc", "pkt_dstaddr": "pdst"}
_FORWARDING_RECORD_TYPES = sorted({t.lower() for t in FORWARDING_TYPES} | {"natgateway"})


def col(name: str) -> nw.Expr:
    return nw.col(name)


def lit(value: Any, dtype: Any = None) -> nw.Expr:
    return nw.lit(value, dtype=dtype)


# -- entry points -------------------------------------------------------------------------

def internet_exposure(flows: Any, *, inventory: Inventory | None = None, method: Method = "full",
                      include_configured: bool = False, ip_ranges: IpRanges | None = None) -> Any:
    """Findings of internet exposure, a lazy frame on the engine of ``flows``.

    ``flows``: a ``Flows`` (its ``.frame``), a ``duckdb.DuckDBPyRelation`` (the result is a
    relation on the same connection) or a ``polars.LazyFrame``/``DataFrame`` (the result
    is a ``LazyFrame``), in the canonical schema. ``inventory`` (optional) tells the
    interfaces' own addresses, the estate's VPC CIDRs and public IPs (never internet
    peers), names, types and owners. ``method``: ``"full"`` (DESIGN.md steps 1-6) or
    ``"naive"`` (accepted records from public ``srcaddr``, for comparison).

    With security groups in the inventory (full method), ``sg_open`` says whether the
    interface's groups admit internet addresses on the finding's port (null when its groups
    are not in the inventory); ``include_configured=True`` adds ``configured`` findings:
    rules admitting ``0.0.0.0/0`` or ``::/0`` where no internet-initiated traffic was
    observed (see :mod:`flowtools.enrichment.security_groups`). ``ip_ranges`` fills the extra
    column ``aws_peers``: how many of the peers are in AWS's ip-ranges (CloudFront edges,
    other AWS customers' EC2 addresses: still internet peers), null without it.

    One row per finding with :data:`COLUMNS`, ordered by status (exposed, reachable,
    blocked), peers descending, interface, protocol, port (nulls last).
    :func:`findings_records` turns the result into JSON-ready dicts.

    What runs when: this call executes two passes over the flows and keeps conversation
    tables in engine memory (see the module's "Cost"); the returned frame works on those
    and on small side tables, and runs when the caller collects it.
    """
    if method not in ("full", "naive"):
        raise UsageError(f"method must be 'full' or 'naive', not {method!r}")
    native = native_frame(flows)
    inventory = inventory if inventory is not None else Inventory.empty()
    naive = method == "naive"

    def side(table: pl.DataFrame) -> nw.LazyFrame:
        return nw.from_native(side_table(native, table))

    keys, columns = (_NAIVE_KEY, ["srcaddr", "dstaddr"]) if naive else (_ADDRESS_KEY, list(_ADDRESSES))
    records = _keyed(_records(nw.from_native(native)), keys)
    pairs = _address_pairs(records, keys)  # the eager pass
    interfaces = _interfaces(pairs)
    addresses = _address_classes(pairs, columns, inventory, ip_ranges)
    table = side(interfaces.table)
    aggregated = interfaces.per_record is not None
    if naive:
        sides = side(_naive_sides(pairs, addresses, interfaces))
        conversations = _naive_conversations(records, sides, interfaces.per_record)
    else:
        orientation = side(_orientation(pairs, addresses, interfaces, inventory))
        conversations = nw.from_native(materialised(_conversations(records, orientation, interfaces.per_record)))
        conversations = _decide(conversations, addresses.n_addresses, table, aggregated=aggregated)
    conversations = nw.from_native(materialised(conversations))
    findings = _findings(conversations, native, inventory, addresses, table, aggregated=aggregated, naive=naive,
                         aws=ip_ranges is not None)
    if not naive and inventory.security_groups.height:
        observed = _finding_keys(conversations, native, inventory, table, aggregated=aggregated)
        findings = with_sg_open(findings, native, inventory, keys=observed)
        if include_configured:
            configured = configured_findings(observed, native, inventory, _POLARS_TYPES)
            findings = nw.concat([findings.select(*_POLARS_TYPES), configured.select(*_POLARS_TYPES)],
                                 how="vertical")
    return _ordered(findings).to_native()


def findings_records(frame: Any) -> list[dict[str, Any]]:
    """Materialise findings into JSON-ready dicts (the CLI's json/csv rows).

    Keys are :data:`COLUMNS` in order (extra columns of ``frame`` follow); timestamps
    become ``2026-11-20T10:00:00Z`` strings, ``sample_peers`` a list, unknown values None.
    This executes the frame.
    """
    df = to_polars(frame)
    names = [c for c in COLUMNS if c in df.columns] + [c for c in df.columns if c not in COLUMNS]
    # timestamps formatted by Polars, then one conversion to dicts (no Python per value:
    # the naive method gives tens of thousands of findings)
    stamps = {c: pl.col(c).dt.convert_time_zone("UTC") if getattr(t, "time_zone", None) else pl.col(c)
              for c, t in df.schema.items() if isinstance(t, pl.Datetime)}
    return df.select(names).with_columns(
        **{c: e.dt.strftime(_TIMESTAMP_FORMAT) for c, e in stamps.items()}).to_dicts()


def findings_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of :func:`findings_records`' output, shipped as
    ``flowtools/schemas/exposure.schema.json``."""
    text = resources.files("flowtools").joinpath("schemas", "exposure.schema.json").read_text(encoding="utf-8")
    return json.loads(text)


# -- inputs ---------------------------------------------------------------------------------

_TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def _records(lf: nw.LazyFrame) -> nw.LazyFrame:
    """The columns the analysis reads (missing ones as typed nulls), traffic records only
    (NODATA/SKIPDATA and records without addresses carry no conversation). Values stay as
    logged: interface ids and addresses are case-insensitive, but they are lower-cased on
    the small eager tables, never per record."""
    present = set(lf.collect_schema().names())
    exprs = [col(c) if c in present else lit(None, t).alias(c) for c, t in _RECORD_COLUMNS.items()]
    return lf.select(exprs).filter(
        ~col("interface_id").is_null() & ~col("srcaddr").is_null() & ~col("dstaddr").is_null()
        & ~col("protocol").is_null() & ~col("action").is_null()
    )


#: What a finding reports from the other fields of its records (the maximum over them).
#: In flow logs they are one value per interface: the analysis reads them per interface
#: when the eager pass shows that, and aggregates them per record only for interfaces with
#: several values (string aggregates over every record are among the dearest steps).
_ATTRIBUTES = ("account", "src_account", "region", "vpc_id", "instance_id", "record_type")


def _attribute(name: str) -> nw.Expr:
    """The record's value of the attribute ``name`` (see :data:`_ATTRIBUTES`)."""
    return {
        "account": nw.when(col("account_id") != "unknown").then(col("account_id")),
        "src_account": col("source_account_id"),
        "region": nw.coalesce(col("region"), col("source_region")),
        "vpc_id": col("vpc_id"), "instance_id": col("instance_id"), "record_type": col("interface_type"),
    }[name]


def _forwarding(interface_type: nw.Expr) -> nw.Expr:
    """An interface type (the inventory's, or the record's v11 ``interface_type``) that only
    forwards (NAT gateway, transit gateway)."""
    return nw.coalesce(interface_type, lit("")).str.to_lowercase().is_in(_FORWARDING_RECORD_TYPES)


def _address_pairs(records: nw.LazyFrame, keys: list[str]) -> pl.DataFrame:
    """The eager step: the distinct ``keys`` (interface and address columns as logged) and
    :data:`_ATTRIBUTES` with their record counts, collected. One hash aggregate over the
    records (not ``unique()``: Narwhals' DuckDB ``unique`` is a ``row_number()`` window,
    seconds per million rows); the result follows interfaces x address pairs (7 400 rows
    for 2.4 M records of the benchmark)."""
    frame = records.with_columns(**{a: _attribute(a) for a in _ATTRIBUTES})
    return frame.group_by(*keys, *_ATTRIBUTES).agg(n=nw.len()).collect("polars").to_native().with_columns(
        pl.col("n").cast(pl.Int64))


#: More interfaces with several attribute values than this: aggregate the attributes
#: over every record (one ``is_in`` per record would cost more).
_MAX_VARYING = 64


class _Interfaces(NamedTuple):
    """The interfaces of the address pairs (Polars, small)."""

    #: ``interface`` (an Int32 ordinal, the key of conversations and findings) ->
    #: ``interface_id`` (lower case), :data:`_ATTRIBUTES` (null where they vary) and
    #: ``forwards`` (its ``record_type`` is a forwarding type; null where it varies).
    table: pl.DataFrame
    #: ``interface_id`` as logged -> ``interface``.
    logged: pl.DataFrame
    #: Which records the attributes are aggregated over: none (None), the records of
    #: interfaces with several values, or all.
    per_record: nw.Expr | None


def _interfaces(pairs: pl.DataFrame) -> _Interfaces:
    """Number the interfaces (lower-cased) and find which have one value of each attribute
    (:data:`_ATTRIBUTES`) over all their records: those are read from :attr:`_Interfaces.table`,
    the others are aggregated per record (:attr:`_Interfaces.per_record`)."""
    logged = pairs.select("interface_id", *_ATTRIBUTES).unique().with_columns(
        lowered=pl.col("interface_id").str.to_lowercase())
    profiles = logged.select("lowered", *_ATTRIBUTES).unique()
    counts = profiles.group_by("lowered").len()
    ordinals = pl.DataFrame({"lowered": sorted(counts.get_column("lowered").to_list())},
                            schema={"lowered": pl.String}).with_row_index(
        "interface").with_columns(pl.col("interface").cast(pl.Int32))
    varying = counts.filter(pl.col("len") > 1).get_column("lowered")
    varying_logged = logged.filter(pl.col("lowered").is_in(varying.implode())).get_column("interface_id").unique()
    per_record: nw.Expr | None
    if varying_logged.len() > _MAX_VARYING:
        per_record, constant = lit(True), profiles.clear()
    elif varying_logged.len():
        per_record = col("interface_id").is_in(varying_logged.sort().to_list())
        constant = profiles.filter(~pl.col("lowered").is_in(varying.implode()))
    else:
        per_record, constant = None, profiles
    constant = constant.with_columns(
        forwards=pl.col("record_type").fill_null("").str.to_lowercase().is_in(_FORWARDING_RECORD_TYPES))
    table = (ordinals.join(constant, on="lowered", how="left").rename({"lowered": "interface_id"})
             .select("interface", "interface_id", *_ATTRIBUTES, "forwards"))
    return _Interfaces(table, logged.join(ordinals, on="lowered").select("interface_id", "interface").unique(),
                       per_record)


class _Addresses(NamedTuple):
    """The classified distinct addresses of the address pairs (Polars, small)."""

    #: ``address`` (as logged) -> ``normalized``, ``kind``, ``is_internet``, ``ordinal``,
    #: ``aws_service``.
    classes: pl.DataFrame
    #: ``ordinal`` -> ``address`` (normalized): conversations carry ordinals, not strings.
    addresses: pl.DataFrame
    #: One more than the highest ordinal; ``n_addresses - 1`` is the ordinal of strings
    #: that are not addresses (no normalized form), so an ordinal stands for exactly one
    #: normalized address or for none.
    n_addresses: int


def _address_classes(pairs: pl.DataFrame, columns: list[str], inventory: Inventory,
                     ip_ranges: IpRanges | None) -> _Addresses:
    """Distinct addresses of ``columns``, lower-cased and classified in Python
    (:func:`flowtools.addresses.classify`, ip-ranges), each with an ``ordinal``: the
    address order that breaks ties."""
    logged = pl.concat([pairs.select(address=pl.col(c)) for c in columns]).drop_nulls().unique()
    logged = logged.with_columns(lowered=pl.col("address").str.to_lowercase())
    lowered = logged.get_column("lowered").unique().sort().to_list()
    table = classify(lowered, own_networks=inventory.own_networks(), own_addresses=inventory.own_addresses())
    order = sorted(set(table["normalized"].drop_nulls().to_list()), key=sort_key)
    ordinal = {a: i for i, a in enumerate(order)}
    table = table.with_columns(ordinal=pl.Series(
        [ordinal.get(a, len(order)) for a in table["normalized"].to_list()], dtype=pl.Int64))
    if ip_ranges is not None:
        table = table.join(ip_ranges.classify(lowered).select("address", "aws_service"), on="address", how="left")
    else:
        table = table.with_columns(aws_service=pl.lit(None, pl.String))
    classes = logged.join(table.rename({"address": "lowered"}), on="lowered", how="left").drop("lowered")
    addresses = pl.DataFrame({"ordinal": list(range(len(order))), "address": order},
                             schema={"ordinal": pl.Int64, "address": pl.String})
    return _Addresses(classes, addresses, len(order) + 1)


def _classified(frame: nw.LazyFrame, classes: pl.DataFrame, columns: dict[str, str],
                what: tuple[str, ...]) -> nw.LazyFrame:
    """Join the address classes to each address column (``srcaddr`` -> ``src_addr``
    (normalized), ``src_kind``, ``src_inet``, ``src_ord``, ``src_svc``: ``what`` says
    which). Used on the small eager tables."""
    names = {"addr": "normalized", "kind": "kind", "inet": "is_internet", "ord": "ordinal", "svc": "aws_service"}
    side = nw.from_native(classes.lazy())
    for column, p in columns.items():
        frame = frame.join(side.select(col("address").alias(column), *(col(names[w]).alias(f"{p}_{w}") for w in what)),
                           on=column, how="left")
    return frame


# -- steps 1 and 2: orientation, local and remote sides --------------------------------------

#: What orienting a record depends on: its interface, its addresses as logged and
#: ``flow_direction``. The full method orients each distinct value of these (the eager
#: address pairs), not each record.
_ADDRESS_KEY = ["interface_id", "srcaddr", "dstaddr", "pkt_srcaddr", "pkt_dstaddr", "flow_direction"]


def _keyed(records: nw.LazyFrame, keys: list[str]) -> nw.LazyFrame:
    """Records whose join ``keys`` (:data:`_ADDRESS_KEY` or :data:`_NAIVE_KEY`) are non-null
    (``""``): an empty packet address or direction means what a missing one does (no packet
    address, no direction; ``""`` is not an address), and interface and header addresses
    are never null here. Computed keys also keep DuckDB from pushing the join's filters
    into the scan of the flows (an Arrow scan of Polars string views has no pyarrow kernels
    for them)."""
    return records.with_columns(**{c: nw.coalesce(col(c), lit("")) for c in keys})


def _orientation(pairs: pl.DataFrame, addresses: _Addresses, interfaces: _Interfaces,
                 inventory: Inventory) -> pl.DataFrame:
    """Steps 1-2 for each distinct address pair (:func:`_address_pairs` over
    :data:`_ADDRESS_KEY`), computed eagerly with Polars on that small table: direction
    (``_ingress``) and how it was known (``dir_source``), the local and remote address
    ordinals, whether the remote is internet / in AWS's ranges, ``carried``, and the
    interface's ordinal. Pairs whose direction cannot be told are left out."""
    pairs = pairs.group_by(_ADDRESS_KEY).agg(pl.col("n").sum()).join(interfaces.logged, on="interface_id")
    frame = _classified(nw.from_native(pairs.lazy()), addresses.classes, _ADDRESSES, ("addr", "inet", "ord", "svc"))
    frame = frame.with_columns(_interface=col("interface_id").str.to_lowercase())
    own = inventory.interface_addresses()
    if own.height:
        side = nw.from_native(own.select("interface_id", "address").unique().lazy())
        for p in ("src", "dst"):
            frame = frame.join(
                side.select(col("interface_id").alias("_interface"), col("address").alias(f"{p}_addr"),
                            lit(True).alias(f"{p}_own")),
                on=["_interface", f"{p}_addr"], how="left")
    else:
        frame = frame.with_columns(src_own=lit(None, nw.Boolean), dst_own=lit(None, nw.Boolean))
    # Last resort (both sides internet or neither, no field, no inventory): one side of
    # every record an interface logs is its own primary address, so the side whose address
    # comes back in more of the interface's records is local.
    for p in ("src", "dst"):
        counts = (frame.filter(~col(f"{p}_addr").is_null()).group_by("_interface", f"{p}_addr")
                  .agg(col("n").sum().alias(f"_n_{p}")))
        frame = frame.join(counts, on=["_interface", f"{p}_addr"], how="left")

    fd = col("flow_direction").str.to_lowercase()
    so, do = col("src_own").fill_null(False), col("dst_own").fill_null(False)
    si, di = col("src_inet").fill_null(False), col("dst_inet").fill_null(False)
    frame = frame.with_columns(
        direction=nw.when(fd == "ingress").then(lit("ingress"))
        .when(fd == "egress").then(lit("egress"))
        .when(do & ~so).then(lit("ingress"))
        .when(so & ~do).then(lit("egress"))
        .when(si & ~di).then(lit("ingress"))
        .when(di & ~si).then(lit("egress"))
        .when(col("_n_dst") > col("_n_src")).then(lit("ingress"))
        .when(col("_n_src") > col("_n_dst")).then(lit("egress")),
        dir_source=nw.when(fd.is_in(["ingress", "egress"])).then(lit(2))
        .when(do != so).then(lit(1))
        .otherwise(lit(0)),
    ).filter(~col("direction").is_null())

    ingress = col("direction") == "ingress"

    def side_of(pkt: str, hdr: str, what: str) -> nw.Expr:
        return nw.when(~col(f"{pkt}_addr").is_null()).then(col(f"{pkt}_{what}")).otherwise(col(f"{hdr}_{what}"))

    remote = {w: nw.when(ingress).then(side_of("psrc", "src", w)).otherwise(side_of("pdst", "dst", w))
              for w in ("ord", "inet", "svc")}
    # Carried: the packet's own local-side address is an internet address that is not the
    # interface's (reference §2.7: NAT gateway, transit gateway, load balancer back end).
    carried = (ingress & ~col("pdst_addr").is_null() & (col("pdst_addr") != col("dst_addr"))
               & col("pdst_inet").fill_null(False)) | (
        ~ingress & ~col("psrc_addr").is_null() & (col("psrc_addr") != col("src_addr"))
        & col("psrc_inet").fill_null(False))
    return frame.select(
        *_ADDRESS_KEY, "interface", "dir_source",
        _ingress=ingress,
        local_ord=nw.when(ingress).then(side_of("pdst", "dst", "ord")).otherwise(side_of("psrc", "src", "ord")),
        remote_ord=remote["ord"], remote_inet=remote["inet"].fill_null(False),
        remote_aws=~remote["svc"].is_null(),
        carried=carried,
    ).collect("polars").to_native()


def _port(expr: nw.Expr) -> nw.Expr:
    """A port of the conversation key: 0 for ICMP (flow logs show 0 0; whatever else is
    there is not a port) and when not logged."""
    return nw.when(col("protocol").is_in([ICMP, ICMPV6])).then(lit(0)).otherwise(expr.fill_null(0)).cast(nw.Int32)


# -- step 3: conversations and who initiated them ---------------------------------------------

#: A conversation: the interface and the addresses by ordinal (one per lower-cased
#: interface id; one per normalized address, one for strings that are not addresses), so
#: the key holds no strings.
_CONVERSATION = ["interface", "local_ord", "local_port", "remote_ord", "remote_port", "protocol"]


def _bit(expr: nw.Expr, value: int) -> nw.Expr:
    """Whether the flag ``value`` (a power of two) is set: ``x mod 2v >= v`` (floor modulo)."""
    return (expr % (2 * value) >= value).fill_null(False)


def _attribute_aggregates(per_record: nw.Expr | None,
                          value: Callable[[str], nw.Expr] = _attribute) -> dict[str, nw.Expr]:
    """The maxima of :data:`_ATTRIBUTES` (``value``: the record's, or an aggregated
    column) over the rows ``per_record`` selects; none when every interface has one value
    of each (see :func:`_interfaces`)."""
    if per_record is None:
        return {}
    return {a: nw.when(per_record).then(value(a)).max() for a in _ATTRIBUTES}


def _conversations(records: nw.LazyFrame, orientation: nw.LazyFrame, per_record: nw.Expr | None) -> nw.LazyFrame:
    """Conversations: the records joined with their orientation (one join with a small
    side table on :data:`_ADDRESS_KEY`; records that cannot be oriented drop out), then one
    hash aggregate with integer keys. With the orientation read from :func:`_address_pairs`,
    these are the two per-record steps of the full method."""
    ingress = col("_ingress")
    egress = ~ingress
    flags = col("tcp_flags")
    tcp = (col("protocol") == TCP) & ~flags.is_null()
    syn, ack = _bit(flags, 2), _bit(flags, 16)
    # per-record facts computed once (DuckDB evaluates each aggregate's input on its own)
    oriented = records.join(orientation, on=_ADDRESS_KEY, how="left").filter(~ingress.is_null()).with_columns(
        local_port=_port(nw.when(ingress).then(col("dstport")).otherwise(col("srcport"))),
        remote_port=_port(nw.when(ingress).then(col("srcport")).otherwise(col("dstport"))),
        _syn=tcp & syn & ~ack, _synack=tcp & syn & ack, _rst=tcp & (flags == 4),
        _accept=col("action") == "ACCEPT", _reject=col("action") == "REJECT",
    )
    syn_only, syn_ack, rst_only, accept, reject = (col(c) for c in ("_syn", "_synack", "_rst", "_accept", "_reject"))
    start = col("start")
    vr = nw.when(ingress).then(syn_only).otherwise(syn_ack)  # the remote SYN or the local SYN-ACK
    vl = nw.when(ingress).then(syn_ack).otherwise(syn_only)
    forwarder = ingress & col("carried") & ~col("remote_inet") & syn_only
    if per_record is not None:
        forwarder = forwarder | (per_record & _forwarding(col("interface_type")))
    conv = oriented.group_by([*_CONVERSATION, "carried"]).agg(
        vr=vr.any(), vl=vl.any(),
        t_vr=nw.when(vr).then(start).min(), t_vl=nw.when(vl).then(start).min(),
        first_in=nw.when(ingress).then(start).min(), first_out=nw.when(egress).then(start).min(),
        in_acc=(ingress & accept).any(), out_ans=(egress & accept & ~rst_only).any(),
        out_synack=(egress & accept & syn_ack).any(), out_rst=(egress & accept & rst_only).any(),
        out_rej=(egress & reject).any(), bpa=(ingress & reject & (col("reject_reason") == "BPA").fill_null(False)).any(),
        forwarder=forwarder.any(),
        has_flags=(~flags.is_null()).any(), has_field=(col("dir_source") == 2).any(),
        bytes_in=nw.when(ingress).then(col("bytes")).otherwise(lit(0)).sum(),
        bytes_out=nw.when(egress).then(col("bytes")).otherwise(lit(0)).sum(),
        first_seen=col("start_time").min(), last_seen=col("end_time").max(),
        dir_source=col("dir_source").min(),
        remote_inet=col("remote_inet").any(), remote_aws=col("remote_aws").any(),
        **_attribute_aggregates(per_record),
    )
    return conv.with_columns(bytes_in=col("bytes_in").cast(nw.Int64), bytes_out=col("bytes_out").cast(nw.Int64))


def _service_score(port: str, fan: str, threshold: int) -> nw.Expr:
    p = col(port)
    known = (p > 0) & ((p <= WELL_KNOWN_MAX) | p.is_in(list(KNOWN_SERVICE_PORTS)))
    return (nw.when(col(fan) >= threshold).then(lit(2)).otherwise(lit(0))
            + nw.when(known).then(lit(1)).otherwise(lit(0)))


def _distinct_count(frame: nw.LazyFrame, keys: list[str], values: list[str], name: str) -> nw.LazyFrame:
    """``keys`` and how many distinct ``values`` each has: two hash aggregates (cheaper than
    a ``COUNT(DISTINCT) OVER`` window, seconds per million rows on DuckDB)."""
    return frame.group_by(*keys, *values).agg(_n=nw.len()).group_by(*keys).agg(**{name: nw.len()})


def _decide(conversations: nw.LazyFrame, n_addresses: int, interfaces: nw.LazyFrame, *,
            aggregated: bool) -> nw.LazyFrame:
    """Initiator, method and confidence per conversation; keeps the internet-initiated ones
    of interfaces not seen forwarding. ``conversations`` is read four times (forwarding
    interfaces, fan-in, fan-out, the conversations): materialise it first. ``interfaces``
    (:attr:`_Interfaces.table`) tells the interfaces whose records all have a forwarding
    ``interface_type``."""
    forwarding = nw.concat([
        conversations.filter(col("forwarder")).select("interface"),
        interfaces.filter(col("forwards").fill_null(False)).select("interface"),
    ], how="vertical").group_by("interface").agg(_n=nw.len()).select("interface", interface_forwards=lit(True))
    own = conversations.filter(~col("carried"))
    # fan-in/out count distinct remote / local (address, port) pairs; a string that is not
    # an address (no normalized form) makes one value whatever its port, as a null does
    invalid = n_addresses - 1
    own = own.with_columns(
        _rkey_port=nw.when(col("remote_ord") == invalid).then(lit(-1)).otherwise(col("remote_port")),
        _lkey_port=nw.when(col("local_ord") == invalid).then(lit(-1)).otherwise(col("local_port")),
    )
    fan_in = _distinct_count(own, ["interface", "protocol", "local_port"], ["remote_ord", "_rkey_port"], "fan_in")
    fan_out = _distinct_count(own, ["interface", "protocol", "remote_ord", "remote_port"],
                              ["local_ord", "_lkey_port"], "fan_out")
    own = (own.join(forwarding, on="interface", how="left")
           .join(fan_in, on=["interface", "protocol", "local_port"], how="left")
           .join(fan_out, on=["interface", "protocol", "remote_ord", "remote_port"], how="left")
           .with_columns(interface_forwards=col("interface_forwards").fill_null(False)))
    vr, vl = col("vr"), col("vl")
    flags_decision = (
        nw.when(vr & ~vl).then(lit("remote"))
        .when(vl & ~vr).then(lit("local"))
        .when(vr & vl & (col("t_vr") < col("t_vl"))).then(lit("remote"))
        .when(vr & vl & (col("t_vl") < col("t_vr"))).then(lit("local"))
    )
    icmp = col("protocol").is_in([ICMP, ICMPV6])
    # The same port on both sides (ntpd's 123<->123, IKE's 500<->500) says nothing about
    # which side serves: who was seen first decides.
    ports_usable = ~icmp & ((col("local_port") != 0) | (col("remote_port") != 0)) & (
        col("local_port") != col("remote_port"))
    lscore = _service_score("local_port", "fan_in", SERVICE_FAN_IN)
    rscore = _service_score("remote_port", "fan_out", CLIENT_FAN_OUT)
    port_decision = (
        nw.when(ports_usable & (lscore > rscore)).then(lit("remote"))
        .when(ports_usable & (rscore > lscore)).then(lit("local"))
    )
    fi, fo = col("first_in"), col("first_out")
    first_decision = (
        nw.when(~fi.is_null() & (fo.is_null() | (fi < fo))).then(lit("remote"))
        .when(~fo.is_null() & (fi.is_null() | (fo < fi))).then(lit("local"))
        .when(icmp & (fi == fo) & col("in_acc")).then(lit("remote"))
    )
    decided = own.with_columns(
        _flags=flags_decision, _ports=port_decision, _first=first_decision,
    ).with_columns(
        initiator=nw.coalesce(col("_flags"), col("_ports"), col("_first")),
        how=nw.when(~col("_flags").is_null()).then(lit(3))
        .when(~col("_ports").is_null()).then(lit(2))
        .when(~col("_first").is_null()).then(lit(1)),
    ).with_columns(
        confidence_rank=nw.when(col("how") == 3).then(lit(3))
        .when(col("dir_source") >= 1).then(lit(2)).otherwise(lit(1)),
        status_rank=nw.when(col("in_acc") & col("out_ans")).then(lit(0))  # accepted inbound and answered
        .when(col("in_acc") | col("out_rst") | col("out_rej")).then(lit(1)).otherwise(lit(2)),
        remote_ephemeral=(col("remote_port") > WELL_KNOWN_MAX) & ~col("remote_port").is_in(list(KNOWN_SERVICE_PORTS)),
    )
    return decided.filter((col("initiator") == "remote") & col("remote_inet") & ~col("interface_forwards")).select(
        *_DECIDED, *(_ATTRIBUTES if aggregated else ()))


#: What the findings read of a decided conversation (besides :data:`_ATTRIBUTES` when
#: they are aggregated per record).
_DECIDED = ("interface", "local_port", "protocol", "local_ord", "remote_ord", "remote_port", "status_rank",
            "confidence_rank", "how", "dir_source", "bytes_in", "bytes_out", "first_seen", "last_seen", "has_flags",
            "has_field", "out_synack", "out_rst", "out_rej", "bpa", "remote_ephemeral", "remote_aws")


#: The naive method reads the header addresses only.
_NAIVE_KEY = ["interface_id", "srcaddr", "dstaddr"]


def _naive_sides(pairs: pl.DataFrame, addresses: _Addresses, interfaces: _Interfaces) -> pl.DataFrame:
    """Per distinct (interface, srcaddr, dstaddr) with a public srcaddr (internet or the
    estate's own): the interface's ordinal, the local (dstaddr) and remote (srcaddr)
    address ordinals, and whether the remote is in AWS's ranges. Eager, Polars, small."""
    pairs = pairs.select(_NAIVE_KEY).unique().join(interfaces.logged, on="interface_id")
    frame = _classified(nw.from_native(pairs.lazy()), addresses.classes, {"srcaddr": "src", "dstaddr": "dst"},
                        ("kind", "ord", "svc"))
    return frame.filter(col("src_kind").is_in(["internet", "own"]).fill_null(False)).select(
        *_NAIVE_KEY, "interface", local_ord=col("dst_ord"), remote_ord=col("src_ord"),
        remote_aws=~col("src_svc").is_null(),
    ).collect("polars").to_native()


def _naive_conversations(records: nw.LazyFrame, sides: nw.LazyFrame, per_record: nw.Expr | None) -> nw.LazyFrame:
    """The naive v2 reading: ACCEPTed records from a public srcaddr (the estate's own public
    addresses included), inbound to dstport; ``flow_direction``, when logged, must say
    ingress (an IPv6 interface's own address is public too). The accepted inbound records
    are joined with :func:`_naive_sides` (which keeps the public sources) and grouped into
    conversations: one join with a small side table and one hash aggregate."""
    inbound = col("flow_direction").is_null() | (col("flow_direction").str.to_lowercase() == "ingress")
    accepted = records.filter((col("action") == "ACCEPT") & inbound).join(sides, on=_NAIVE_KEY, how="left").filter(
        ~col("interface").is_null()).with_columns(local_port=_port(col("dstport")), remote_port=_port(col("srcport")))
    conv = accepted.group_by(_CONVERSATION).agg(
        remote_aws=col("remote_aws").any(),
        bytes_in=col("bytes").sum(), first_seen=col("start_time").min(), last_seen=col("end_time").max(),
        **_attribute_aggregates(per_record),
    )
    return conv.with_columns(
        bytes_in=col("bytes_in").cast(nw.Int64),
        bytes_out=lit(None, nw.Int64), status_rank=lit(0), confidence_rank=lit(1),
        how=lit(0), dir_source=lit(0), has_flags=lit(False), has_field=lit(False),
        out_synack=lit(False), out_rst=lit(False), out_rej=lit(False), bpa=lit(False),
        remote_ephemeral=lit(True),
    )


# -- steps 4-6: findings ----------------------------------------------------------------------

def _score(count: nw.Expr, ordinal: str, n_addresses: int) -> nw.Expr:
    """``count`` and, for ties, ``ordinal`` (ascending; ordinals are below ``n_addresses``)
    as one integer, higher is better: one integer per address, so ranks by it are the same
    on every engine (DuckDB has no ``order_by`` windows in Narwhals), and the ordinal is
    ``n_addresses - score % (n_addresses + 1)``."""
    big = lit(n_addresses + 1, nw.Int64)
    return count.cast(nw.Int64) * big + (big - 1 - col(ordinal).fill_null(n_addresses).cast(nw.Int64))


def _protocol_name() -> nw.Expr:
    p = col("protocol")
    expr = nw.when(p == TCP).then(lit("tcp"))
    for number, name in NAMES.items():
        if number != TCP:
            expr = expr.when(p == number).then(lit(name))
    return expr.otherwise(p.cast(nw.String))


def _plural(count: str, word: str) -> nw.Expr:
    return nw.concat_str([col(count).cast(nw.String), lit(" "), lit(word),
                          nw.when(col(count) == 1).then(lit("")).otherwise(lit("s"))])


def _evidence(naive: bool) -> nw.Expr:
    """Short human text: how the finding's best conversations were decided, and how they ended."""
    if naive:
        return nw.concat_str([
            lit("naive reading: accepted from "), _plural("peers", "public address"),
            lit(" to this port (replies to the resource's own connections not told apart)")])
    status, how = col("status_rank"), col("best_how")
    outcome = (
        nw.when((status == 0) & col("any_synack")).then(lit("accepted, SYN-ACK sent"))
        .when(status == 0).then(lit("accepted and answered"))
        .when((status == 1) & col("any_rej_reply")).then(lit("accepted, reply rejected (network ACL)"))
        .when((status == 1) & col("any_rst")).then(lit("accepted, answered only with RST"))
        .when(status == 1).then(lit("accepted, never answered"))
        .when(col("any_bpa")).then(lit("rejected (VPC Block Public Access)"))
        .otherwise(lit("rejected"))
    )
    proto = nw.when(col("protocol") == ICMP).then(lit("ICMP")).when(col("protocol") == ICMPV6).then(
        lit("ICMPv6")).otherwise(_protocol_name().str.to_uppercase())
    peers = nw.when(col("peers") == 1).then(lit("internet peer")).otherwise(lit("internet peers"))
    log = nw.when(~col("any_flags") & ~col("any_field")).then(lit("v2 log: ")).when(
        ~col("any_flags") & (col("protocol") == TCP)).then(lit("no TCP flags: ")).otherwise(lit(""))
    method = (
        nw.when(how == 3).then(nw.concat_str([lit("TCP SYN from "), peers, lit(" ")]))
        .when(how == 2).then(nw.concat_str([
            log, proto, lit(" port "), col("local_port").cast(nw.String), lit(" reached by "),
            _plural("peers", "peer"),
            nw.when(col("ephemeral_share") >= EPHEMERAL_SHARE).then(lit(" from ephemeral ports, ")).otherwise(lit(", "))]))
        .when(col("protocol").is_in([ICMP, ICMPV6])).then(nw.concat_str([log, proto, lit(" from "), peers, lit(" ")]))
        .otherwise(nw.concat_str([log, proto, lit(" from "), peers, lit(" seen first, ")]))
    )
    direction = (nw.when(col("best_dir") == 1).then(lit(" (direction from inventory addresses)"))
                 .when(col("best_dir") == 0).then(lit(" (direction guessed from address classes)"))
                 .otherwise(lit("")))
    return nw.concat_str([method, outcome, direction])


#: Findings are computed per (interface ordinal, local port, protocol number).
_FINDING_KEY = ["interface", "local_port", "protocol"]


def _with_attributes(findings: nw.LazyFrame, interfaces: nw.LazyFrame, aggregated: bool) -> nw.LazyFrame:
    """The interface id and :data:`_ATTRIBUTES` of each row: the interface's own values
    where they do not vary, else the row's aggregated ones (see :func:`_interfaces`)."""
    side = interfaces.select("interface", "interface_id", *(col(a).alias(f"_{a}") for a in _ATTRIBUTES))
    findings = findings.join(side, on="interface", how="left")
    return findings.with_columns(**{a: nw.coalesce(col(a), col(f"_{a}")) if aggregated else col(f"_{a}")
                                    for a in _ATTRIBUTES}).drop(*(f"_{a}" for a in _ATTRIBUTES))


def _findings(conv: nw.LazyFrame, native: Any, inventory: Inventory, addresses: _Addresses,
              interfaces: nw.LazyFrame, *, aggregated: bool, naive: bool, aws: bool) -> nw.LazyFrame:
    """Findings from the (materialised) internet-initiated conversations, read three
    times: per finding key, per (key, local address) for ``local_ip``, per (key, peer)
    for ``peers``, ``aws_peers`` and ``sample_peers``: hash aggregates and one rank window
    over the peers. Addresses and interface ids are decoded from their ordinals on these
    small results."""
    n_addresses = addresses.n_addresses
    # the method of the best conversations (confidence first, then flags > ports > first)
    # and, among those, the best direction source, as one integer
    best = (col("confidence_rank") * 10 + col("how")) * 10 + col("dir_source")
    findings = conv.group_by(_FINDING_KEY).agg(
        status_rank=col("status_rank").min(),
        connections=nw.len(),
        bytes_in=col("bytes_in").sum(), bytes_out=col("bytes_out").sum(),
        first_seen=col("first_seen").min(), last_seen=col("last_seen").max(),
        best=best.max(),
        any_flags=col("has_flags").any(), any_field=col("has_field").any(),
        any_synack=col("out_synack").any(), any_rst=col("out_rst").any(),
        any_rej_reply=col("out_rej").any(), any_bpa=col("bpa").any(),
        ephemeral_share=col("remote_ephemeral").cast(nw.Int32).mean(),
        **_attribute_aggregates(lit(True) if aggregated else None, col),
    )
    findings = _with_attributes(findings, interfaces, aggregated)
    big = n_addresses + 1
    address = nw.from_native(side_table(native, addresses.addresses))
    local = (conv.group_by(*_FINDING_KEY, "local_ord").agg(_n=nw.len())
             .with_columns(_score=_score(col("_n"), "local_ord", n_addresses))
             .group_by(_FINDING_KEY).agg(_score=col("_score").max())
             .with_columns(ordinal=lit(big - 1, nw.Int64) - col("_score") % big)
             .join(address.select("ordinal", local_ip=col("address")), on="ordinal", how="left")
             .select(*_FINDING_KEY, "local_ip"))
    peers = (conv.group_by(*_FINDING_KEY, "remote_ord").agg(_n=nw.len(), _aws=col("remote_aws").any())
             .with_columns(_rank=_score(col("_n"), "remote_ord", n_addresses)
                           .rank(method="dense", descending=True).over(*_FINDING_KEY))
             .join(address.select(remote_ord=col("ordinal"), _addr=col("address")), on="remote_ord", how="left")
             .group_by(_FINDING_KEY).agg(
                 peers=nw.len(), aws_peers=col("_aws").cast(nw.Int64).sum(),
                 **{f"_p{i}": nw.when(col("_rank") == i).then(col("_addr")).max()
                    for i in range(1, SAMPLE_PEERS + 1)}))
    findings = (findings.join(local, on=_FINDING_KEY, how="left").join(peers, on=_FINDING_KEY, how="left")
                .with_columns(sample_peers=nw.concat_str(
                    [col(f"_p{i}") for i in range(1, SAMPLE_PEERS + 1)], separator=";", ignore_nulls=True,
                ).str.split(";")))
    findings = findings.with_columns(
        best_dir=col("best") % 10,
        best_how=(col("best") // 10) % 10,
        best_confidence=col("best") // 100,
    )
    findings = _with_inventory(findings, native, inventory)
    status = nw.when(col("status_rank") == 0).then(lit("exposed")).when(col("status_rank") == 1).then(
        lit("reachable")).otherwise(lit("blocked"))
    confidence = nw.when(col("best_confidence") == 3).then(lit("high")).when(
        col("best_confidence") == 2).then(lit("medium")).otherwise(lit("low"))
    out = findings.with_columns(
        port=_finding_port(),
        protocol_name=_protocol_name(),
        status=status,
        confidence=confidence,
        evidence=_evidence(naive),
    ).select(
        "status_rank",
        account_id=nw.coalesce(col("account"), col("inv_owner"), col("src_account")),
        region=nw.coalesce(col("region"), col("inv_region")),
        vpc_id=nw.coalesce(col("vpc_id"), col("inv_vpc_id")),
        interface_id=col("interface_id"),
        instance_id=nw.coalesce(col("instance_id"), col("inv_instance_id")),
        resource_name=col("inv_resource_name"),
        interface_type=_interface_type(),
        local_ip=col("local_ip"),
        port=col("port"),
        port_to=lit(None, nw.Int32),
        protocol=col("protocol_name"),
        status=col("status"),
        sg_open=lit(None, nw.Boolean),
        peers=col("peers").cast(nw.Int64),
        connections=col("connections").cast(nw.Int64),
        bytes_in=col("bytes_in").cast(nw.Int64),
        bytes_out=lit(None, nw.Int64) if naive else col("bytes_out").cast(nw.Int64),  # naive: replies unknown
        first_seen=col("first_seen"),
        last_seen=col("last_seen"),
        confidence=col("confidence"),
        evidence=col("evidence"),
        sample_peers=col("sample_peers"),
        aws_peers=col("aws_peers").cast(nw.Int64) if aws else lit(None, nw.Int64),
    )
    if not naive:  # the naive reading does not know what forwards
        out = out.filter(~_forwarding(col("interface_type")))
    return out.with_columns(status_rank=col("status_rank").cast(nw.Int32))


def _finding_port() -> nw.Expr:
    """The output ``port``: the local port, null for ICMP."""
    icmp = col("protocol").is_in([ICMP, ICMPV6])
    return nw.when(icmp).then(lit(None, nw.Int32)).otherwise(col("local_port")).cast(nw.Int32)


def _interface_type() -> nw.Expr:
    return nw.coalesce(col("inv_interface_type"), col("record_type"))


def _finding_keys(conv: nw.LazyFrame, native: Any, inventory: Inventory, interfaces: nw.LazyFrame, *,
                  aggregated: bool) -> nw.LazyFrame:
    """The full method's findings as (``interface_id``, ``protocol`` name, ``port``), the
    keys the security-group step needs, straight from the conversations (one aggregate):
    the findings frame is then read once, not once per use."""
    keys = conv.group_by(_FINDING_KEY).agg(_n=nw.len(), **_attribute_aggregates(lit(True) if aggregated else None, col))
    keys = _with_inventory(_with_attributes(keys, interfaces, aggregated), native, inventory)
    return keys.filter(~_forwarding(_interface_type())).select(
        "interface_id", protocol=_protocol_name(), port=_finding_port())


def _ordered(findings: nw.LazyFrame) -> nw.LazyFrame:
    """The contract's order: status, peers descending, interface, protocol, port (nulls last)."""
    return findings.sort(
        ["status_rank", "peers", "interface_id", "protocol", "port"],
        descending=[False, True, False, False, False], nulls_last=True,
    ).drop("status_rank")


def _with_inventory(findings: nw.LazyFrame, native: Any, inventory: Inventory) -> nw.LazyFrame:
    """Join what the inventory knows of each interface (``inv_*`` columns, null without an
    inventory). An interface described as ``Interface for NAT Gateway ...`` counts as a NAT
    gateway whatever its type says (the findings of forwarding types are dropped later)."""
    names = ["inv_owner", "inv_region", "inv_vpc_id", "inv_instance_id", "inv_resource_name",
             "inv_interface_type"]
    interfaces = inventory.interfaces
    if interfaces.height == 0:
        return findings.with_columns(**{n: lit(None, nw.String) for n in names})
    nat_description = interfaces["description"].fill_null("").str.starts_with("Interface for NAT Gateway")
    table = interfaces.select(
        "interface_id",
        inv_owner=pl.coalesce("owner_id", "account_id"),
        inv_region=pl.col("region"),
        inv_vpc_id=pl.col("vpc_id"),
        inv_instance_id=pl.col("instance_id"),
        inv_resource_name=pl.col("resource_name"),
        inv_interface_type=pl.when(nat_description & pl.col("interface_type").fill_null("interface").eq("interface"))
        .then(pl.lit("nat_gateway")).otherwise(pl.col("interface_type")),
    )
    return findings.join(nw.from_native(side_table(native, table)), on="interface_id", how="left")
