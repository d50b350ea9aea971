"""Exposure, ``method="naive"``: the default v2 reading, for comparison (every ACCEPTed
record from a public ``srcaddr`` is exposure of its ``dstport``)."""

from __future__ import annotations

import narwhals as nw
import polars as pl

from flowtools.analyses.exposure.initiator import CONFIDENCE_LOW, CONVERSATION, EXPOSED, NOT_DECIDED
from flowtools.analyses.exposure.orientation import DIRECTION_GUESSED
from flowtools.analyses.exposure.records import (
    Addresses,
    Interfaces,
    attribute_aggregates,
    classified,
    col,
    conversation_port,
    lit,
)

#: The naive method reads the header addresses only.
NAIVE_KEY = ["interface_id", "srcaddr", "dstaddr"]


def naive_sides(pairs: pl.DataFrame, addresses: Addresses, interfaces: Interfaces) -> pl.DataFrame:
    """Per distinct (interface, srcaddr, dstaddr) with a public srcaddr (internet or the
    estate's own): the interface's ordinal, the local (dstaddr) and remote (srcaddr)
    address ordinals, and whether the remote is in AWS's ranges. Eager, Polars, small."""
    pairs = pairs.select(NAIVE_KEY).unique().join(interfaces.logged, on="interface_id")
    frame = classified(nw.from_native(pairs.lazy()), addresses.classes, {"srcaddr": "src", "dstaddr": "dst"},
                        ("kind", "ord", "svc"))
    return frame.filter(col("src_kind").is_in(["internet", "own"]).fill_null(False)).select(
        *NAIVE_KEY, "interface", local_ord=col("dst_ord"), remote_ord=col("src_ord"),
        remote_aws=~col("src_svc").is_null(),
    ).collect("polars").to_native()


def naive_conversations(records: nw.LazyFrame, sides: nw.LazyFrame, per_record: nw.Expr | None) -> nw.LazyFrame:
    """The naive v2 reading: ACCEPTed records from a public srcaddr (the estate's own public
    addresses included), inbound to dstport; ``flow_direction``, when logged, must say
    ingress (an IPv6 interface's own address is public too). The accepted inbound records
    are joined with :func:`naive_sides` (which keeps the public sources) and grouped into
    conversations: one join with a small side table and one hash aggregate."""
    inbound = col("flow_direction").is_null() | (col("flow_direction").str.to_lowercase() == "ingress")
    accepted = records.filter((col("action") == "ACCEPT") & inbound).join(sides, on=NAIVE_KEY, how="left").filter(
        ~col("interface").is_null()).with_columns(local_port=conversation_port(col("dstport")), remote_port=conversation_port(col("srcport")))
    conv = accepted.group_by(CONVERSATION).agg(
        remote_aws=col("remote_aws").any(),
        bytes_in=col("bytes").sum(), first_seen=col("start_time").min(), last_seen=col("end_time").max(),
        **attribute_aggregates(per_record),
    )
    return conv.with_columns(
        bytes_in=col("bytes_in").cast(nw.Int64),
        bytes_out=lit(None, nw.Int64), status_rank=lit(EXPOSED), confidence_rank=lit(CONFIDENCE_LOW),
        how=lit(NOT_DECIDED), dir_source=lit(DIRECTION_GUESSED), has_flags=lit(False), has_field=lit(False),
        out_synack=lit(False), out_rst=lit(False), out_rej=lit(False), bpa=lit(False),
        remote_ephemeral=lit(True),
    )
