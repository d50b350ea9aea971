"""Scanners that got an answer: internet sources probing many ports or interfaces, and what
answered them.

``scanner_outcomes(flows, inventory=None)`` returns one row per internet source that
probed at least ``min_ports`` distinct ports or ``min_interfaces`` distinct interfaces:

``source`` (``pkt-srcaddr`` where logged, else ``srcaddr``), ``ports``, ``interfaces``,
``targets`` (distinct interface and port pairs), ``attempts`` (records), ``rejected``,
``accepted`` and ``answered`` (targets), ``outcome`` (``answered``: at least one target
accepted the probe and answered it; ``accepted``: let in, never answered; ``blocked``:
every probe rejected), ``answered_targets`` (up to five ``interface_id:port`` strings,
ordered), ``first_seen``, ``last_seen``. Order: answered first, then accepted, then
blocked; then ports and interfaces descending, source.

A probe is an inbound record from an internet address (``flow-direction`` = ingress, or
without that field a record whose source is on the internet) that is not an answer to a
connection the estate opened: not a SYN-ACK (TCP flags 18), and not sent from a service
port (1-1023 or a known service port, see :mod:`flowtools.analyses.exposure`) to a port
that is neither (an S3 endpoint or a package mirror answering the estate's calls would
otherwise "probe" thousands of ephemeral ports). A target answered when the
same interface sent an ACCEPTed record back from the probed port to the prober's address
and port that is not a bare reset (TCP flags with RST but no SYN: the port refused).

Cost: address classes over DISTINCT source addresses (a side table), one join of probes
with their replies and two aggregates on the engine.
"""

from __future__ import annotations

from typing import Any

import narwhals as nw
import polars as pl

from flowtools import addresses as addr
from flowtools import frames

__all__ = ["OUTCOMES", "scanner_outcomes"]

OUTCOMES = ("answered", "accepted", "blocked")
_SYN, _RST, _ACK = 2, 4, 16


def _service_port(port: nw.Expr) -> nw.Expr:
    from flowtools.analyses.exposure import KNOWN_SERVICE_PORTS, WELL_KNOWN_MAX

    return ((port > 0) & ((port <= WELL_KNOWN_MAX) | port.is_in(list(KNOWN_SERVICE_PORTS)))).fill_null(False)


def scanner_outcomes(flows: Any, *, inventory: Any = None, min_ports: int = 5, min_interfaces: int = 3,
                     n: int | None = None) -> Any:
    """Internet scanners and whether anything answered them (see the module doc); the first
    ``n`` rows (all by default), a lazy frame on the flows' engine."""
    native = frames.native(flows)
    lf = nw.from_native(native)
    column = frames.optional_columns(lf)

    records = lf.filter(~nw.col("srcaddr").is_null() & ~nw.col("bytes").is_null()).select(
        "interface_id", "srcport", "dstport", "action", "start_time", "end_time",
        src=nw.coalesce(column("pkt_srcaddr"), nw.col("srcaddr")),
        dst=nw.coalesce(column("pkt_dstaddr"), nw.col("dstaddr")),
        direction=column("flow_direction"), flags=column("tcp_flags", nw.Int32),
    )
    distinct = records.group_by("src").agg(nw.len().alias("_n")).drop("_n")
    values = frames.to_polars(distinct)["src"].drop_nulls().to_list()  # any engine
    classes = addr.classify(values, own_networks=inventory.own_networks() if inventory is not None else (),
                            own_addresses=inventory.own_addresses() if inventory is not None else ()).select(
        src="address", src_inet="is_internet")
    rec = records.join(nw.from_native(frames.side_table(native, classes)), on="src", how="left")
    inbound = nw.when(nw.col("direction").is_null()).then(nw.col("src_inet").fill_null(False)).otherwise(
        nw.col("direction") == "ingress")
    syn_ack = (~nw.col("flags").is_null() & ((nw.col("flags") // _SYN) % 2 == 1)
               & ((nw.col("flags") // _ACK) % 2 == 1))
    answer = syn_ack | (_service_port(nw.col("srcport")) & ~_service_port(nw.col("dstport")))
    probes = rec.filter(inbound & nw.col("src_inet").fill_null(False) & ~answer).select(
        "interface_id", "src", "srcport", "dstport", "action", "start_time", "end_time")
    reset_only = (~nw.col("flags").is_null() & ((nw.col("flags") // _RST) % 2 == 1)
                  & ((nw.col("flags") // _SYN) % 2 == 0))
    replies = (rec.filter((nw.col("action") == "ACCEPT") & ~reset_only & ~inbound)
               .group_by("interface_id", "srcport", "dst", "dstport").agg(nw.len().alias("_replies"))
               .rename({"srcport": "dstport", "dst": "src", "dstport": "srcport"}))
    per_target = (
        probes.join(replies, on=["interface_id", "dstport", "src", "srcport"], how="left")
        .with_columns(accepted=(nw.col("action") == "ACCEPT"),
                      answered=(nw.col("action") == "ACCEPT") & ~nw.col("_replies").is_null())
        .group_by("src", "interface_id", "dstport")
        .agg(attempts=nw.len().cast(nw.Int64), rejected=(nw.col("action") == "REJECT").cast(nw.Int64).sum().cast(nw.Int64),
             accepted=nw.col("accepted").max(), answered=nw.col("answered").max(),
             first_seen=nw.col("start_time").min(), last_seen=nw.col("end_time").max())
    )
    per_target = nw.from_native(frames.materialised(per_target))
    target = nw.concat_str([nw.col("interface_id"), nw.col("dstport").cast(nw.String)], separator=":")
    sources = (
        per_target.group_by("src")
        .agg(ports=nw.col("dstport").n_unique().cast(nw.Int64),
             interfaces=nw.col("interface_id").n_unique().cast(nw.Int64),
             targets=nw.len().cast(nw.Int64), attempts=nw.col("attempts").sum().cast(nw.Int64),
             rejected=nw.col("rejected").sum().cast(nw.Int64),
             accepted=nw.col("accepted").cast(nw.Int64).sum().cast(nw.Int64),
             answered=nw.col("answered").cast(nw.Int64).sum().cast(nw.Int64),
             first_seen=nw.col("first_seen").min(), last_seen=nw.col("last_seen").max())
        .filter((nw.col("ports") >= min_ports) | (nw.col("interfaces") >= min_interfaces))
        .with_columns(outcome=nw.when(nw.col("answered") > 0).then(nw.lit("answered"))
                      .when(nw.col("accepted") > 0).then(nw.lit("accepted")).otherwise(nw.lit("blocked")),
                      rank=nw.when(nw.col("answered") > 0).then(0).when(nw.col("accepted") > 0).then(1).otherwise(2))
    )
    examples = _answered_examples(per_target.filter(nw.col("answered")).select("src", target=target))
    out = (sources.join(nw.from_native(frames.side_table(native, examples)), on="src", how="left")
           .rename({"src": "source"})
           .sort(["rank", "ports", "interfaces", "source"], descending=[False, True, True, False])
           .drop("rank"))
    columns = ["source", "ports", "interfaces", "targets", "attempts", "rejected", "accepted", "answered",
               "outcome", "answered_targets", "first_seen", "last_seen"]
    out = out.select(columns)
    return (out.head(n) if n else out).to_native()


def _answered_examples(answered: nw.LazyFrame) -> pl.DataFrame:
    """Up to five answered targets per source, in order (a small table: answered only)."""
    df = frames.to_polars(answered)
    return (df.sort("src", "target").group_by("src", maintain_order=True)
            .agg(answered_targets=pl.col("target").head(5))
            .with_columns(pl.col("answered_targets").cast(pl.List(pl.String))))
