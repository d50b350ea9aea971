"""Exposure, steps 1 and 2: each distinct address pair oriented (which side is the
interface's, how that was known) and its remote side classified; eager, on the small
table of :func:`~flowtools.analyses.exposure.records.address_pairs`."""

from __future__ import annotations

import narwhals as nw
import polars as pl

from flowtools.analyses.exposure.records import (
    ADDRESS_COLUMNS,
    Addresses,
    Interfaces,
    classified,
    col,
    lit,
)
from flowtools.enrichment.inventory import Inventory

#: What orienting a record depends on: its interface, its addresses as logged and
#: ``flow_direction``. The full method orients each distinct value of these (the eager
#: address pairs), not each record.
ADDRESS_KEY = ["interface_id", "srcaddr", "dstaddr", "pkt_srcaddr", "pkt_dstaddr", "flow_direction"]

#: How a pair's direction was known (``dir_source``; higher is better).
DIRECTION_GUESSED, DIRECTION_FROM_INVENTORY, DIRECTION_FROM_FIELD = 0, 1, 2


def orient(pairs: pl.DataFrame, addresses: Addresses, interfaces: Interfaces,
                 inventory: Inventory) -> pl.DataFrame:
    """Steps 1-2 for each distinct address pair (:func:`address_pairs` over
    :data:`ADDRESS_KEY`), computed eagerly with Polars on that small table: direction
    (``_ingress``) and how it was known (``dir_source``), the local and remote address
    ordinals, whether the remote is internet / in AWS's ranges, ``carried``, and the
    interface's ordinal. Pairs whose direction cannot be told are left out."""
    pairs = pairs.group_by(ADDRESS_KEY).agg(pl.col("n").sum()).join(interfaces.logged, on="interface_id")
    frame = classified(nw.from_native(pairs.lazy()), addresses.classes, ADDRESS_COLUMNS, ("addr", "inet", "ord", "svc"))
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
        dir_source=nw.when(fd.is_in(["ingress", "egress"])).then(lit(DIRECTION_FROM_FIELD))
        .when(do != so).then(lit(DIRECTION_FROM_INVENTORY))
        .otherwise(lit(DIRECTION_GUESSED)),
    ).filter(~col("direction").is_null())

    ingress = col("direction") == "ingress"

    def side_of(pkt: str, hdr: str, what: str) -> nw.Expr:
        return nw.when(~col(f"{pkt}_addr").is_null()).then(col(f"{pkt}_{what}")).otherwise(col(f"{hdr}_{what}"))

    remote = {w: nw.when(ingress).then(side_of("psrc", "src", w)).otherwise(side_of("pdst", "dst", w))
              for w in ("ord", "inet", "svc")}
    # Carried: the packet's own local-side address is an internet address that is not the
    # interface's (docs/format.md: NAT gateway, transit gateway, load balancer back end).
    carried = (ingress & ~col("pdst_addr").is_null() & (col("pdst_addr") != col("dst_addr"))
               & col("pdst_inet").fill_null(False)) | (
        ~ingress & ~col("psrc_addr").is_null() & (col("psrc_addr") != col("src_addr"))
        & col("psrc_inet").fill_null(False))
    return frame.select(
        *ADDRESS_KEY, "interface", "dir_source",
        _ingress=ingress,
        local_ord=nw.when(ingress).then(side_of("pdst", "dst", "ord")).otherwise(side_of("psrc", "src", "ord")),
        remote_ord=remote["ord"], remote_inet=remote["inet"].fill_null(False),
        remote_aws=~remote["svc"].is_null(),
        carried=carried,
    ).collect("polars").to_native()
