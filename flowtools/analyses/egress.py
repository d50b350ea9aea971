"""Egress: bytes leaving the estate for the internet, per internal resource and destination.

``egress(flows, inventory=None, ip_ranges=None, batch_records=None)`` returns one row per internal source and
destination class: ``interface_id`` (the interface of the host that sent the bytes),
``local_address``, ``via`` (``direct``, or the NAT gateway's interface id when the bytes
were counted on the gateway), ``destination`` (the AWS service of the destination from
ip-ranges, e.g. ``S3``; ``internet`` for the rest), ``aws_region`` (null for
``internet``), ``bytes_out``, ``packets_out``, ``conversations``, ``peers``,
``first_seen``, ``last_seen``; ordered by ``bytes_out`` descending.

Each byte is counted once, from the ACCEPTed record that sees it leave its host (a
REJECTed egress record's packets were dropped: they never left):

- **direct**: an egress record (``flow-direction`` = egress, or, without that field, a
  record whose source is the interface's own side) of an interface that does not forward
  traffic, whose packet destination (``pkt-dstaddr``, else ``dstaddr``) is on the
  internet. An instance behind a NAT gateway logs its own egress like this too: its record
  already shows the internet destination.
- **forwarders**: a transit gateway's interface (inventory or record ``interface-type``),
  and any egress record whose ``pkt-srcaddr`` is not its ``srcaddr`` (carried for another
  host, which logs it, or whose NAT gateway does), are never counted. A load balancer's
  interface (``network_load_balancer``, ``gateway_load_balancer``...) counts only
  conversations no other interface sent to the same internet address and port: with
  client IP preservation the targets log the answers themselves.
- **NAT gateway**: a NAT gateway's interface logs two legs of every connection. The
  inside leg (``srcaddr`` = the instance, ``dstaddr`` = the gateway, ``pkt-dstaddr`` = the
  internet host) is attributed to the instance through its address; the outside leg
  (``srcaddr`` = the gateway, translated) is never counted — it is the same bytes. An
  inside-leg conversation that the instance's own interface also logged is counted there
  only (flow logs on both the instance's subnet and the gateway's).

A NAT gateway is an interface whose type (inventory, or the record's ``interface-type``)
is a NAT gateway, or one that logs inside legs (``dstaddr`` differs from ``pkt-dstaddr``,
which is internet). Without ``pkt-*`` fields (v2 logs) a gateway is known only from the
inventory, and its inside legs cannot be attributed: they are left out.

Cost: two passes over the records, both on the engine, after one aggregate of
``interface_id`` that sizes the batches. The first collects the address pairs each
interface saw (interface, ``srcaddr``, ``dstaddr``, packet destination, type: a small
table) from which the distinct addresses are classified in Python (a side table) and the
NAT gateways that log inside legs are found. The second sums the egress records per
conversation (sender, ports, internet address, protocol) into a table kept on disk, not in
memory (Parquet files in ``frames.spill_folder()`` on DuckDB and Polars; a local
checkpoint on Spark). It has one row per
egress conversation (a fifth of the records in the benchmark sample), the set the
``conversations`` counts need anyway; matching load balancers' and NAT gateways'
conversations with their hosts' (also on disk) and the totals read it, never the records
again. The totals count a group's rows as its conversations (each row is a distinct
conversation: no distinct count, no hash set of conversations).

Memory: every conversation sums the records of one interface (the sender's, or the NAT
gateway's that logged the inside leg), so above ``batch_records`` records (default
``flowtools.analyses.exposure.BATCH_RECORDS``, 4 million; ``$FLOWTOOLS_EXPOSURE_BATCH``
overrides it) the second pass runs per batch of whole interfaces (the batches of
``internet_exposure``: a filter on ``interface_id``, which the partition store's sorted
row groups serve), each batch's groups written to its own file before the next batch
runs. A batch above ``batch_records`` records (one busy interface) is grouped in slices
of its internet addresses of about that many records each (the first pass counts them;
a conversation has one internet address, so each is in one slice whole), each slice
reading the batch's records again. The engine holds one batch's or slice's groups at a
time (Polars' streaming group-by keeps them in memory; DuckDB spills them beyond its
memory limit), so that part of the peak follows ``batch_records``, not the window. No
per-conversation table is held in memory after it is built. What still grows with the
window: the first pass's address pairs (their size follows the distinct address pairs per
interface), and the matching and totals at the end, which read the whole conversation
table: the matching of balancers' and legs' conversations with their hosts' groups the
hosts' conversations with those endpoints or from those instances' addresses (its result
is spilled too), and ``peers`` is a distinct
count of internet addresses per row of the result. Measured on the benchmark (warm
partition store): peak 0.8 GB (Polars) and 0.7 GB (DuckDB) at 20 M records, about 2 GB
on both at 200 M.
"""

from __future__ import annotations

from typing import Any

import narwhals as nw
import polars as pl

from flowtools import addresses as addr
from flowtools import frames
from flowtools.analyses.exposure import batch_limit, interface_batches

__all__ = ["egress"]

_NAT_TYPES = ("nat_gateway", "natgateway", "regional_nat_gateway")
_TRANSIT_TYPES = ("transit_gateway", "transitgateway")
_BALANCER_TYPES = ("network_load_balancer", "gateway_load_balancer", "gateway_load_balancer_endpoint",
                   "load_balancer")


def _values(frame: nw.LazyFrame, name: str) -> list[Any]:
    return frames.to_polars(frame)[name].to_list()  # any engine (a Spark collect() gives Rows)


def _gateways_seen(pairs: pl.DataFrame, classes: pl.DataFrame, nat_types: list[str]) -> list[str]:
    """The interfaces that log NAT inside legs (``srcaddr`` and ``dstaddr`` not internet,
    ``dstaddr`` not the packet's internet destination), or whose record type is a NAT
    gateway, from the address ``pairs`` each interface saw. Polars, on the small tables."""
    inet = classes.select("address", inet="is_internet")
    inside = (pl.col("inet") & ~pl.col("dst_inet").fill_null(False) & (pl.col("dstaddr") != pl.col("pdst"))
              & ~pl.col("src_inet").fill_null(False)).fill_null(False)
    seen = (pairs.join(inet, left_on="pdst", right_on="address", how="left")
            .join(classes.select("address", dst_inet="is_internet"), left_on="dstaddr", right_on="address", how="left")
            .join(classes.select("address", src_inet="is_internet"), left_on="srcaddr", right_on="address", how="left")
            .filter(inside | pl.col("itype").str.to_lowercase().is_in(nat_types).fill_null(False)))
    return seen["interface_id"].drop_nulls().unique().to_list()


def _remote_slices(pairs: pl.DataFrame, internet: pl.DataFrame, limit: int) -> list[pl.DataFrame] | None:
    """The ``internet`` addresses (``address``, ``svc``, ``reg``) a batch's records were
    sent to, cut into contiguous ranges of about ``limit`` of its records each (``pairs``:
    the batch's address pairs with their record counts ``_n``; one address with more is a
    range of its own), or None when they are ``limit`` records or fewer. A conversation has
    one internet address, so each range's conversations are its own. Polars, on the small
    tables."""
    weights = (pairs.group_by("pdst").agg(pl.col("_n").sum())
               .join(internet, left_on="pdst", right_on="address", how="inner").sort("pdst"))
    total = int(weights["_n"].sum())
    if total <= limit:
        return None
    count = -(-total // limit)
    cut = weights.with_columns(
        _slice=((pl.col("_n").cum_sum() - pl.col("_n")) * count // total).clip(0, count - 1))
    return [part.select(address="pdst", svc="svc", reg="reg")
            for _, part in sorted(cut.partition_by("_slice", as_dict=True).items())]


def egress(flows: Any, *, inventory: Any = None, ip_ranges: Any = None, batch_records: int | None = None) -> Any:
    """Bytes to the internet per internal source and destination (see the module doc).

    ``flows``: a ``Flows`` or a native frame; the result is a lazy frame on its engine.
    ``inventory`` (optional): the estate's own networks and public addresses (never
    internet), NAT gateway interfaces, and the interfaces behind instance addresses.
    ``ip_ranges`` (optional): the destination's AWS service and region.

    ``batch_records`` (default :data:`flowtools.analyses.exposure.BATCH_RECORDS`, which
    ``$FLOWTOOLS_EXPOSURE_BATCH`` overrides; ``0``: one pass): above that many records the
    conversations are summed per batch of whole interfaces of at most that many records,
    a busier interface in slices of its internet addresses (see the module's "Memory"),
    with the same result.
    """
    limit = batch_limit(batch_records)
    native = frames.native(flows)
    lf = nw.from_native(native)
    column = frames.optional_columns(lf)

    def select_records(frame: nw.LazyFrame) -> nw.LazyFrame:
        return frame.filter(~nw.col("srcaddr").is_null() & ~nw.col("bytes").is_null()).select(
            "interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "packets", "bytes",
            "start_time", "end_time",
            pdst=nw.coalesce(column("pkt_dstaddr"), nw.col("dstaddr")),
            psrc=nw.coalesce(column("pkt_srcaddr"), nw.col("srcaddr")),
            direction=column("flow_direction"), itype=column("interface_type"), action=column("action"),
        )

    records = select_records(lf)
    # -- pass 1: the address pairs each interface saw (a small table, held in Polars): the
    # distinct addresses to classify, and the NAT gateways known from their inside legs
    pairs = frames.to_polars(records.group_by("interface_id", "srcaddr", "dstaddr", "pdst", "itype")
                             .agg(nw.len().alias("_n")))  # _n: records, to cut a busy interface
    values = pl.concat([pairs["srcaddr"], pairs["dstaddr"], pairs["pdst"]]).drop_nulls().unique().to_list()
    own_networks = inventory.own_networks() if inventory is not None else []
    own_addresses = inventory.own_addresses() if inventory is not None else []
    classes = addr.classify(values, own_networks=own_networks, own_addresses=own_addresses).select(
        "address", "is_internet")
    if ip_ranges is not None:
        aws = ip_ranges.classify(values).select("address", "aws_service", "aws_region")
        classes = classes.join(aws, on="address", how="left")
    else:
        classes = classes.with_columns(aws_service=pl.lit(None, pl.String), aws_region=pl.lit(None, pl.String))
    nat_types = list(_NAT_TYPES)
    gateway_ids = set(_gateways_seen(pairs, classes.select("address", "is_internet"), nat_types))
    itype = nw.col("itype").str.to_lowercase()
    owners = pl.DataFrame(schema={"address": pl.String, "owner": pl.String})
    transit_ids: set[str] = set()
    balancer_ids: set[str] = set()
    if inventory is not None and inventory.interfaces.height:
        interfaces = inventory.interfaces
        typed = pl.col("interface_type").fill_null("").str.to_lowercase()
        nat = interfaces.filter(
            typed.is_in(nat_types) | pl.col("description").fill_null("").str.starts_with("Interface for NAT Gateway"))
        gateway_ids |= set(nat["interface_id"].to_list())
        transit_ids = set(interfaces.filter(typed.is_in(list(_TRANSIT_TYPES)))["interface_id"].to_list())
        balancer_ids = set(interfaces.filter(typed.is_in(list(_BALANCER_TYPES)))["interface_id"].to_list())
        owners = inventory.interface_addresses().select(address="address", owner="interface_id")
    gateway = nw.col("interface_id").is_in(sorted(gateway_ids))
    transit = nw.col("interface_id").is_in(sorted(transit_ids)) | itype.is_in(list(_TRANSIT_TYPES)).fill_null(False)
    balancer = (nw.col("interface_id").is_in(sorted(balancer_ids))
                | itype.is_in(list(_BALANCER_TYPES)).fill_null(False))
    accepted = (nw.col("action") == "ACCEPT").fill_null(False)
    # -- pass 2: every ACCEPTed record to an internet packet destination that is egress
    # (a sender's own: direct or a load balancer's; or a NAT gateway's inside leg), summed
    # per conversation and kept on disk: everything after reads this table, not the records
    side = nw.from_native(frames.side_table(native, classes))
    inet = side.filter(nw.col("is_internet")).select(address="address", svc="aws_service", reg="aws_region")
    dst_side = side.select(address="address", dst_inet="is_internet")
    src_side = side.select(address="address", src_inet="is_internet")
    src_inet, dst_inet = nw.col("src_inet").fill_null(False), nw.col("dst_inet").fill_null(False)
    outbound = nw.when(nw.col("direction").is_null()).then(~src_inet).otherwise(nw.col("direction") == "egress")
    carried = nw.col("psrc") != nw.col("srcaddr")  # the packet's source is another host
    inside = ~dst_inet & (nw.col("dstaddr") != nw.col("pdst")) & ~src_inet
    is_leg = nw.col("_leg")
    conv = ["local_address", "srcport", "remote", "dstport", "protocol"]
    endpoint = ["remote", "dstport", "protocol"]
    keys = ["interface_id", "local_address", "via", "svc", "reg"]
    sums = [nw.col("bytes").sum().alias("_bytes"), nw.col("packets").sum().alias("_packets"),
            nw.col("start_time").min().alias("_first"), nw.col("end_time").max().alias("_last")]
    named = {"_bytes": "bytes", "_packets": "packets", "_first": "start_time", "_last": "end_time"}

    def grouped(part: nw.LazyFrame, remotes: nw.LazyFrame = inet) -> nw.LazyFrame:
        """The conversations of the records ``part`` to the internet addresses ``remotes``
        (a plan: nothing runs here)."""
        rec = (part.filter(accepted).join(remotes, left_on="pdst", right_on="address", how="inner")
               .join(dst_side, left_on="dstaddr", right_on="address", how="left")
               .join(src_side, left_on="srcaddr", right_on="address", how="left"))
        return (
            rec.with_columns(_sent=~gateway & ~transit & outbound & ~carried, _leg=gateway & inside)
            .filter(nw.col("_sent") | is_leg)
            .select("srcport", "dstport", "protocol", "packets", "bytes", "start_time", "end_time", "svc", "reg",
                    kind=nw.when(is_leg).then(nw.lit("leg")).otherwise(
                        nw.when(balancer).then(nw.lit("balancer")).otherwise(nw.lit("host"))),
                    interface_id=nw.when(is_leg).then(nw.lit(None, nw.String)).otherwise(nw.col("interface_id")),
                    local_address=nw.when(is_leg).then(nw.col("srcaddr")).otherwise(nw.col("psrc")),
                    via=nw.when(is_leg).then(nw.col("interface_id")).otherwise(nw.lit("direct")),
                    remote=nw.col("pdst"))
            .group_by("kind", *keys, "srcport", "remote", "dstport", "protocol").agg(*sums).rename(named))

    # Every conversation's key holds the one interface whose records it sums (``interface_id``
    # of a host's or a balancer's; ``via`` of a NAT leg's: the gateway, the record's
    # interface), so batches of whole interfaces group disjoint sets of conversations: the
    # batches' spilled tables, read one after the other, are the one-pass table, and the
    # engine holds one batch's groups at a time. The batch filters skip records without an
    # interface, which are in no conversation either (``gateway`` is null for them, so
    # neither ``_sent`` nor ``_leg`` is true).
    batches = interface_batches(native, limit)
    if batches is None:
        conversations = nw.from_native(frames.spilled(grouped(records)))
    else:
        internet = classes.filter(pl.col("is_internet")).select(
            address="address", svc="aws_service", reg="aws_region")
        parts = []
        for condition in batches:
            part = select_records(lf.filter(condition))
            slices = _remote_slices(nw.from_native(pairs).filter(condition).to_native(), internet, limit)
            parts += ([grouped(part)] if slices is None else
                      [grouped(part, nw.from_native(frames.side_table(native, cut))) for cut in slices])
        conversations = nw.from_native(frames.spilled_parts(parts))
    hosts = conversations.filter(nw.col("kind") == "host").drop("kind")
    balancers = conversations.filter(nw.col("kind") == "balancer").drop("kind")
    legs = conversations.filter(nw.col("kind") == "leg").drop("kind")
    columns = ["interface_id", "local_address", "via", "srcport", "dstport", "protocol", "packets", "bytes",
               "start_time", "end_time", "svc", "reg", "remote"]  # one order: concat is by position
    # -- what the hosts logged of the load balancers' and NAT gateways' conversations: those
    # of a leg's instance, and the endpoints a balancer also sent to
    leg_addresses = sorted(v for v in _values(legs.select("local_address").unique(), "local_address") if v)
    lb_endpoints = balancers.select(*endpoint).unique().with_columns(_lb=nw.lit(True))
    matched = nw.from_native(frames.spilled(
        hosts.join(lb_endpoints, on=endpoint, how="left")
        .filter(nw.col("_lb").fill_null(False) | nw.col("local_address").is_in(leg_addresses))
        .group_by(*conv).agg(nw.col("interface_id").min().alias("seen_owner"))))
    answered = matched.group_by(endpoint).agg(nw.len().alias("_n")).drop("_n")
    lb_direct = balancers.join(answered, on=endpoint, how="anti")
    # -- NAT inside legs, attributed to the instance's interface, unless it logged them itself
    owners_side = nw.from_native(frames.side_table(native, owners.unique("address", keep="first")))
    # an address's interface: the inventory's, else the interface that sent from it directly
    logged = nw.concat([matched.select(*conv, "seen_owner"),
                        lb_direct.select(*conv, seen_owner=nw.col("interface_id"))], how="vertical")
    seen_owners = logged.group_by("local_address").agg(nw.col("seen_owner").min())
    logged = logged.group_by(conv).agg(nw.len().alias("_direct"))
    legs = (legs.join(logged, on=conv, how="left")
            .filter(nw.col("_direct").is_null()).drop("_direct")
            .join(owners_side, left_on="local_address", right_on="address", how="left")
            .join(seen_owners, on="local_address", how="left")
            .with_columns(interface_id=nw.coalesce(nw.col("owner"), nw.col("seen_owner"))))

    def totals(frame: nw.LazyFrame) -> nw.LazyFrame:
        """Per sender and destination class (groups of hosts, balancers and legs never
        share a key: different interfaces, or a gateway in ``via``).

        ``conversations`` counts rows, not distinct (srcport, remote, dstport, protocol)
        values: every row of ``frame`` is one conversation, distinct from the others of its
        group. The conversation table has one row per key (``kind``, ``keys``, ``srcport``,
        ``remote``, ``dstport``, ``protocol``), batches never share a key (see above), and
        ``svc`` and ``reg`` are functions of ``remote`` (one side-table row per address),
        so within a group of (``interface_id``, ``local_address``, ``via``, destination,
        ``reg``) of the hosts the four values differ from row to row. In the second call
        balancer rows (``via`` = ``direct``) and legs (``via`` = a gateway) never share a
        group, the anti join and left joins that made them add no rows (``answered``,
        ``logged``, ``seen_owners`` and the owners side table have one row per join key),
        and a leg's ``interface_id`` is a function of its ``local_address``: distinct too.
        Exactly what a distinct count of the four values joined by ``|`` gave (a value with
        a null joins to null, and all those count as one), without its hash set of every
        conversation: the rows with a null among the four count once."""
        has_null = (nw.col("srcport").is_null() | nw.col("remote").is_null() | nw.col("dstport").is_null()
                    | nw.col("protocol").is_null())
        return (frame.with_columns(destination=nw.coalesce(nw.col("svc"), nw.lit("internet")),
                                   _null=has_null.cast(nw.Int64))
                .group_by("interface_id", "local_address", "via", "destination", "reg")
                .agg(bytes_out=nw.col("bytes").sum().cast(nw.Int64), packets_out=nw.col("packets").sum().cast(nw.Int64),
                     conversations=(nw.len() - nw.col("_null").sum() + nw.col("_null").max()).cast(nw.Int64),
                     peers=nw.col("remote").n_unique().cast(nw.Int64),
                     first_seen=nw.col("start_time").min(), last_seen=nw.col("end_time").max())
                .rename({"reg": "aws_region"}))

    out = nw.concat([totals(hosts.select(columns)),
                     totals(nw.concat([lb_direct.select(columns), legs.select(columns)], how="vertical"))],
                    how="vertical")
    return out.sort(["bytes_out", "interface_id", "local_address", "destination"],
                    descending=[True, False, False, False], nulls_last=True).to_native()
