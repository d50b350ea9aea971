"""Exposure, the inputs: the records read, the eager pass over them (distinct interfaces
and address pairs, with counts), the interfaces numbered and the addresses classified.

Everything after :func:`address_pairs` works on small Polars tables; see the package's
"Cost". Shared helpers of the other steps (:func:`col`, :func:`lit`, :func:`keyed`,
:func:`conversation_port`, :func:`attribute_aggregates`) live here too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import narwhals as nw
import polars as pl

from flowtools.addresses import classify, sort_key
from flowtools.enrichment.inventory import FORWARDING_TYPES, Inventory
from flowtools.enrichment.ip_ranges import IpRanges
from flowtools.protocols import ICMP_PROTOCOLS

RECORD_COLUMNS: dict[str, Any] = {
    "account_id": nw.String, "interface_id": nw.String, "srcaddr": nw.String,
    "dstaddr": nw.String, "srcport": nw.Int32, "dstport": nw.Int32, "protocol": nw.Int32,
    "bytes": nw.Int64, "packets": nw.Int64, "start": nw.Int64, "action": nw.String, "vpc_id": nw.String,
    "instance_id": nw.String, "tcp_flags": nw.Int32, "pkt_srcaddr": nw.String,
    "pkt_dstaddr": nw.String, "region": nw.String, "flow_direction": nw.String,
    "reject_reason": nw.String, "interface_type": nw.String, "start_time": nw.Datetime("us", "UTC"),
    "end_time": nw.Datetime("us", "UTC"), "source_account_id": nw.String, "source_region": nw.String,
}
#: Address columns of a record and the prefix of their classified columns.
ADDRESS_COLUMNS = {"srcaddr": "src", "dstaddr": "dst", "pkt_srcaddr": "psrc", "pkt_dstaddr": "pdst"}
FORWARDING_RECORD_TYPES = sorted({t.lower() for t in FORWARDING_TYPES} | {"natgateway"})




def col(name: str) -> nw.Expr:
    return nw.col(name)


def lit(value: Any, dtype: Any = None) -> nw.Expr:
    return nw.lit(value, dtype=dtype)


def select_records(lf: nw.LazyFrame) -> nw.LazyFrame:
    """The columns the analysis reads (missing ones as typed nulls), traffic records only
    (NODATA/SKIPDATA and records without addresses carry no conversation). Values stay as
    logged: interface ids and addresses are case-insensitive, but they are lower-cased on
    the small eager tables, never per record."""
    present = set(lf.collect_schema().names())
    exprs = [col(c) if c in present else lit(None, t).alias(c) for c, t in RECORD_COLUMNS.items()]
    return lf.select(exprs).filter(
        ~col("interface_id").is_null() & ~col("srcaddr").is_null() & ~col("dstaddr").is_null()
        & ~col("protocol").is_null() & ~col("action").is_null()
    )


#: What a finding reports from the other fields of its records (the maximum over them).
#: In flow logs they are one value per interface: the analysis reads them per interface
#: when the eager pass shows that, and aggregates them per record only for interfaces with
#: several values (string aggregates over every record are among the dearest steps).
ATTRIBUTES = ("account", "src_account", "region", "vpc_id", "instance_id", "record_type")


def attribute(name: str) -> nw.Expr:
    """The record's value of the attribute ``name`` (see :data:`ATTRIBUTES`)."""
    return {
        "account": nw.when(col("account_id") != "unknown").then(col("account_id")),
        "src_account": col("source_account_id"),
        "region": nw.coalesce(col("region"), col("source_region")),
        "vpc_id": col("vpc_id"), "instance_id": col("instance_id"), "record_type": col("interface_type"),
    }[name]


def forwarding(interface_type: nw.Expr) -> nw.Expr:
    """An interface type (the inventory's, or the record's v11 ``interface_type``) that only
    forwards (NAT gateway, transit gateway)."""
    return nw.coalesce(interface_type, lit("")).str.to_lowercase().is_in(FORWARDING_RECORD_TYPES)


def address_pairs(records: nw.LazyFrame, keys: list[str],
                  collect: Callable[[nw.LazyFrame], pl.DataFrame] | None = None) -> pl.DataFrame:
    """The eager step: the distinct ``keys`` (interface and address columns as logged) and
    :data:`ATTRIBUTES` with their record counts, collected. One hash aggregate over the
    records (not ``unique()``: Narwhals' DuckDB ``unique`` is a ``row_number()`` window,
    seconds per million rows); the result follows interfaces x address pairs (7 400 rows
    for 2.4 M records of the benchmark). ``collect`` executes the aggregate (default: on the
    engine of ``records``)."""
    frame = records.with_columns(**{a: attribute(a) for a in ATTRIBUTES}).group_by(*keys, *ATTRIBUTES).agg(n=nw.len())
    pairs = collect(frame) if collect is not None else frame.collect("polars").to_native()
    return pairs.with_columns(pl.col("n").cast(pl.Int64))


def window_pairs(flows: Any, keys: list[str], *, facts: str,
                 collect: Callable[[nw.LazyFrame], pl.DataFrame] | None = None) -> pl.DataFrame:
    """:func:`address_pairs` of all of ``flows``' records (``keys`` as given to it).

    When ``flows`` is a ``Flows`` that reads the partition store's window unchanged and
    ``collect`` is the engine's own (None), the pairs add up from the store's per-hour
    facts named ``facts`` (:func:`flowtools.store.facts.flows_facts`: each whole hour's
    pairs, computed once and kept; the hours cut by the window computed from their
    records): the records are not read again once every hour's fact is kept. Else one
    pass over the records, on their engine (``collect``)."""
    from flowtools.frames import native as native_frame
    from flowtools.store.facts import flows_facts

    def compute(lf: Any) -> pl.DataFrame:
        return address_pairs(keyed(select_records(nw.from_native(lf)), keys), keys, collect=collect)

    parts = flows_facts(flows, name=facts, compute=compute) if collect is None else None
    if parts is None:
        return compute(native_frame(flows))
    return pl.concat(parts, how="vertical_relaxed").group_by(*keys, *ATTRIBUTES).agg(pl.col("n").sum())


#: More interfaces with several attribute values than this: aggregate the attributes
#: over every record (one ``is_in`` per record would cost more).
MAX_VARYING = 64


class Interfaces(NamedTuple):
    """The interfaces of the address pairs (Polars, small)."""

    #: ``interface`` (an Int32 ordinal, the key of conversations and findings) ->
    #: ``interface_id`` (lower case), :data:`ATTRIBUTES` (null where they vary) and
    #: ``forwards`` (its ``record_type`` is a forwarding type; null where it varies).
    table: pl.DataFrame
    #: ``interface_id`` as logged -> ``interface``.
    logged: pl.DataFrame
    #: Which records the attributes are aggregated over: none (None), the records of
    #: interfaces with several values, or all.
    per_record: nw.Expr | None


def number_interfaces(pairs: pl.DataFrame) -> Interfaces:
    """Number the interfaces (lower-cased) and find which have one value of each attribute
    (:data:`ATTRIBUTES`) over all their records: those are read from :attr:`Interfaces.table`,
    the others are aggregated per record (:attr:`Interfaces.per_record`)."""
    logged = pairs.select("interface_id", *ATTRIBUTES).unique().with_columns(
        lowered=pl.col("interface_id").str.to_lowercase())
    profiles = logged.select("lowered", *ATTRIBUTES).unique()
    counts = profiles.group_by("lowered").len()
    ordinals = pl.DataFrame({"lowered": sorted(counts.get_column("lowered").to_list())},
                            schema={"lowered": pl.String}).with_row_index(
        "interface").with_columns(pl.col("interface").cast(pl.Int32))
    varying = counts.filter(pl.col("len") > 1).get_column("lowered")
    varying_logged = logged.filter(pl.col("lowered").is_in(varying.implode())).get_column("interface_id").unique()
    per_record: nw.Expr | None
    if varying_logged.len() > MAX_VARYING:
        per_record, constant = lit(True), profiles.clear()
    elif varying_logged.len():
        per_record = col("interface_id").is_in(varying_logged.sort().to_list())
        constant = profiles.filter(~pl.col("lowered").is_in(varying.implode()))
    else:
        per_record, constant = None, profiles
    constant = constant.with_columns(
        forwards=pl.col("record_type").fill_null("").str.to_lowercase().is_in(FORWARDING_RECORD_TYPES))
    table = (ordinals.join(constant, on="lowered", how="left").rename({"lowered": "interface_id"})
             .select("interface", "interface_id", *ATTRIBUTES, "forwards"))
    return Interfaces(table, logged.join(ordinals, on="lowered").select("interface_id", "interface").unique(),
                       per_record)


class Addresses(NamedTuple):
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


def address_classes(pairs: pl.DataFrame, columns: list[str], inventory: Inventory,
                     ip_ranges: IpRanges | None) -> Addresses:
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
    return Addresses(classes, addresses, len(order) + 1)


def classified(frame: nw.LazyFrame, classes: pl.DataFrame, columns: dict[str, str],
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


def keyed(records: nw.LazyFrame, keys: list[str]) -> nw.LazyFrame:
    """Records whose join ``keys`` (:data:`ADDRESS_KEY` or :data:`NAIVE_KEY`) are non-null
    (``""``): an empty packet address or direction means what a missing one does (no packet
    address, no direction; ``""`` is not an address), and interface and header addresses
    are never null here. Computed keys also keep DuckDB from pushing the join's filters
    into the scan of the flows (an Arrow scan of Polars string views has no pyarrow kernels
    for them)."""
    return records.with_columns(**{c: nw.coalesce(col(c), lit("")) for c in keys})


def conversation_port(expr: nw.Expr) -> nw.Expr:
    """A port of the conversation key: 0 for ICMP (flow logs show 0 0; whatever else is
    there is not a port) and when not logged."""
    return nw.when(col("protocol").is_in(list(ICMP_PROTOCOLS))).then(lit(0)).otherwise(expr.fill_null(0)).cast(nw.Int32)


def attribute_aggregates(per_record: nw.Expr | None,
                          value: Callable[[str], nw.Expr] = attribute) -> dict[str, nw.Expr]:
    """The maxima of :data:`ATTRIBUTES` (``value``: the record's, or an aggregated
    column) over the rows ``per_record`` selects; none when every interface has one value
    of each (see :func:`number_interfaces`)."""
    if per_record is None:
        return {}
    return {a: nw.when(per_record).then(value(a)).max() for a in ATTRIBUTES}
