"""Exposure of a batch too large for memory (one busy interface: a load balancer, a NAT
gateway), in slices of its remote addresses, with the findings of one pass.

Why slices of remote addresses are exact: a conversation has one remote address, so each
conversation falls in one slice whole. Of the initiator rules (:mod:`.initiator`), the
TCP flags, who was seen first, the ephemeral-port rule and fan-out (distinct local
(address, port) pairs per remote (address, port)) read one remote address at a time, and
so does a finding's peer list. Only two facts span slices:

* fan-in (distinct remote (address, port) pairs per local port): the slices' remote
  pairs are disjoint, so the interface's fan-in is the sum of the slices' fan-in
  (:func:`.initiator.fan_in_counts`). It enters the decision only as "at least
  :data:`.initiator.SERVICE_FAN_IN`", per finding key (interface, protocol, local port):
  each slice decides its conversations under both outcomes (``fan_hyp``, the
  conversations of a key twice) unless its own fan-in already reaches it, and reduces each to the findings' mergeable
  :class:`.findings.Parts`; once every slice is read, the summed fan-in picks, per key,
  the outcome that holds;
* whether the interface forwards (a conversation of inside hosts to internet addresses
  carried through it): any slice that sees one drops the interface's findings.

Slices hold contiguous ranges of remote address ordinals with about equal record counts
(from the eager address pairs); the ordinal that stands for strings that are not
addresses is one value, so it is in one slice too.

Cost: each slice reads the batch's records again (a filter on ``interface_id`` in the
partition store reads that interface's row groups), joined with that slice's part of the
small orientation table; memory holds one slice's conversations and its internet-initiated
ones (twice for local ports below the fan-in threshold in that slice), and the parts (findings x peers) of all slices."""

from __future__ import annotations

from typing import Any

import narwhals as nw
import polars as pl

from flowtools.analyses.exposure.findings import FINDING_KEY, Parts, finding_parts, merge_parts
from flowtools.analyses.exposure.initiator import (
    SERVICE_FAN_IN,
    decide,
    fan_in_counts,
    group_conversations,
)
from flowtools.analyses.exposure.naive import naive_conversations
from flowtools.analyses.exposure.records import col
from flowtools.frames import materialised, side_table, to_polars

__all__ = ["remote_slices", "split_parts"]


def remote_slices(side: pl.DataFrame, pairs: pl.DataFrame, keys: list[str], slices: int) -> list[pl.DataFrame]:
    """``side`` (the orientation or the naive sides: one row per distinct ``keys``, with
    ``remote_ord``) cut into at most ``slices`` tables of contiguous remote ordinals, each
    with about the same number of records (``pairs``' counts ``n``; one remote address
    with more records than a share is a slice of its own). Eager, on the small tables."""
    weights = pairs.group_by(keys).agg(pl.col("n").sum())
    per_remote = (side.select(*keys, "remote_ord").join(weights, on=keys, how="left")
                  .group_by("remote_ord").agg(pl.col("n").fill_null(0).sum()).sort("remote_ord"))
    total = max(int(per_remote["n"].sum()), 1)
    assigned = per_remote.with_columns(
        _slice=((pl.col("n").cum_sum() - pl.col("n")) * slices // total).clip(0, slices - 1).cast(pl.Int32))
    side = side.join(assigned.select("remote_ord", "_slice"), on="remote_ord", how="left")
    parts = [part.drop("_slice") for (_,), part in sorted(side.partition_by("_slice", as_dict=True).items())]
    return parts or [side.drop("_slice")]  # nothing oriented: one empty slice


def split_parts(records: nw.LazyFrame, native: Any, sides: list[pl.DataFrame], *, naive: bool,
                per_record: nw.Expr | None, n_addresses: int, interfaces: nw.LazyFrame,
                aggregated: bool) -> Parts:
    """The :class:`Parts` (keyed by :data:`FINDING_KEY`, as native lazy frames of the
    engine of ``native``) of ``records``' internet-initiated conversations, one slice of
    :func:`remote_slices` at a time: the same parts as one pass over all of them."""
    parts: list[Parts] = []
    fans: list[pl.DataFrame] = []
    forwarders: list[pl.DataFrame] = []
    extra: tuple[str, ...] = () if naive else ("fan_hyp",)
    for side in sides:
        table = nw.from_native(side_table(native, side))
        if naive:
            conv = naive_conversations(records, table, per_record)
        else:
            grouped = nw.from_native(materialised(group_conversations(records, table, per_record)))
            forwarders.append(to_polars(grouped.filter(col("forwarder")).group_by("interface").agg(_n=nw.len())))
            fan = to_polars(fan_in_counts(grouped, n_addresses))
            fans.append(fan)
            # a key whose fan-in reaches the threshold within this slice reaches it in all:
            # one outcome; the others (few conversations each) are decided under both
            outcomes = pl.DataFrame({"fan_hyp": [False, True], "fan_in": [0, SERVICE_FAN_IN]},
                                    schema={"fan_hyp": pl.Boolean, "fan_in": fan.schema["fan_in"]})
            both = (fan.join(outcomes, how="cross", suffix="_hyp")
                    .filter(pl.col("fan_hyp") | (pl.col("fan_in") < SERVICE_FAN_IN))
                    .select("interface", "protocol", "local_port", "fan_hyp", fan_in=pl.col("fan_in_hyp")))
            conv = decide(grouped, n_addresses, interfaces, aggregated=aggregated,
                          fan_in=nw.from_native(side_table(native, both)))
        conv = nw.from_native(materialised(conv))
        parts.append(Parts(*(to_polars(t) for t in finding_parts(conv, aggregated=aggregated, extra=extra))))
        del conv  # one slice's conversations at a time
    merged = merge_parts(parts, [*FINDING_KEY, *extra])
    if not naive:
        fan_in = pl.concat(fans).group_by("interface", "protocol", "local_port").agg(pl.col("fan_in").sum())
        holds = fan_in.select("interface", "protocol", "local_port",
                              fan_hyp=pl.col("fan_in") >= SERVICE_FAN_IN)
        forwarding = pl.concat(forwarders)["interface"].unique().implode()
        merged = Parts(*(t.join(holds, on=[*FINDING_KEY, "fan_hyp"], how="semi").drop("fan_hyp")
                         .filter(~pl.col("interface").is_in(forwarding)) for t in merged))
    return Parts(*(side_table(native, t) for t in merged))

