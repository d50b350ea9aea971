"""Traffic overview analyses: frame in, frame out, on the flows' engine (Narwhals).

Each function takes flows (a ``Flows``, a DuckDB relation or a Polars frame; where noted
the output of :func:`flowtools.enrich`, which adds the names) plus keyword-only options,
and returns a small lazy frame of aggregates on the same engine (a DuckDB relation or a
Polars ``LazyFrame``). Nothing is collected here: the caller decides when to run it.
Records without traffic (NODATA, SKIPDATA) are left out. Bytes are as logged: traffic
between two interfaces that both log counts once at each.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

import narwhals as nw

from flowtools import frames
from flowtools.analyses.exposure.oriented import oriented_conversations
from flowtools.enrichment.inventory import Inventory
from flowtools.enrichment.ports import port_names

__all__ = ["TRAFFIC_PATHS", "aws_services", "conversations", "interval_seconds", "peers", "ports", "rejects",
           "scanners", "time_bucket", "timeseries", "top_talkers", "traffic_paths"]

#: AWS's ``traffic-path`` codes (egress records only; AWS VPC user guide, "Flow log records").
TRAFFIC_PATHS = {
    1: "same VPC", 2: "internet gateway or gateway endpoint", 3: "virtual private gateway",
    4: "intra-region VPC peering", 5: "inter-region VPC peering", 6: "local gateway",
    7: "gateway VPC endpoint (Nitro)", 8: "internet gateway (Nitro)",
}
#: Label of records without ``traffic_path``: ingress records, and formats without the field.
NO_TRAFFIC_PATH = "not recorded (ingress, or format without traffic-path)"


def _frame(flows: Any) -> nw.LazyFrame:
    return frames.lazy(flows)


def _traffic(lf: nw.LazyFrame) -> nw.LazyFrame:
    """Records that carry traffic (not NODATA/SKIPDATA)."""
    return lf.filter(~nw.col("srcaddr").is_null() & ~nw.col("bytes").is_null())


def _src() -> nw.Expr:
    return nw.coalesce(nw.col("pkt_srcaddr"), nw.col("srcaddr"))


def _dst() -> nw.Expr:
    return nw.coalesce(nw.col("pkt_dstaddr"), nw.col("dstaddr"))


_INTERVAL = re.compile(r"^\s*(\d+)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
#: Seconds from the Unix epoch (a Thursday) back to Monday 1969-12-29 00:00 UTC: buckets
#: are aligned to it, so weeks start on Monday; for every step that divides a day the
#: alignment is the same as the epoch's (midnight UTC, on the hour, on the minute).
_MONDAY_OFFSET = 3 * 86400


def interval_seconds(every: str) -> int:
    """``every`` (``"90s"``, ``"5m"``, ``"2h"``, ``"1d"``, ``"1w"``: a whole number and one of
    s, m, h, d, w) in seconds; ValueError for anything else."""
    m = _INTERVAL.match(str(every))
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"every must be a whole number of s, m, h, d or w (30s, 5m, 1h, 1d, 1w), not {every!r}")
    return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


def time_bucket(every: str, *, seconds: str = "start", time: str = "start_time") -> nw.Expr:
    """The start of the ``every``-long bucket that holds each record, as a UTC timestamp
    (a Narwhals expression; the same on DuckDB and Polars, for any interval).

    Integer arithmetic on the epoch seconds of the column ``seconds`` (the canonical
    ``start``), turned back into a timestamp by subtracting the remainder from the
    timestamp column ``time`` (``start_time``, the same instant): ``time - (seconds -
    origin) % step`` seconds. Buckets are aligned to Monday 1969-12-29 00:00 UTC: ``1d``
    buckets start at midnight UTC, ``1h`` on the hour, ``15m`` at :00, :15, :30 and :45,
    ``1w`` on Mondays. Cost: a few arithmetic operations per record."""
    step = interval_seconds(every)
    return nw.col(time) - nw.lit(timedelta(seconds=1)) * ((nw.col(seconds) + _MONDAY_OFFSET) % step)


def timeseries(flows: Any, *, every: str = "1h", by: str | None = "action") -> Any:
    """Bytes, packets and records per ``every`` (any whole number of s, m, h, d or w:
    ``"90s"``, ``"5m"``, ``"1h"``, ``"1d"``; buckets of the record's start time, aligned as
    :func:`time_bucket` says), split by the column ``by`` (or None). Column ``time`` is the
    bucket's start (UTC)."""
    lf = _traffic(_frame(flows))
    keys = [time_bucket(every).alias("time")] + ([nw.col(by)] if by else [])
    return (lf.group_by(*keys).agg(bytes=nw.col("bytes").sum().cast(nw.Int64),
                                   packets=nw.col("packets").sum().cast(nw.Int64),
                                   records=nw.len().cast(nw.Int64))
            .sort(["time", *([by] if by else [])]).to_native())


def top_talkers(enriched: Any, *, n: int = 10, kind: Literal["resources", "peers"] = "resources") -> Any:
    """The ``n`` endpoints with the most bytes sent plus received (the packets' original
    addresses, ``pkt_*`` first): ``resources`` are the estate's side (interfaces, VPC
    addresses, private addresses), ``peers`` the internet. Columns: address,
    resource_name, scope, aws_service, bytes, packets, records, peers (distinct
    counterparts). Needs :func:`flowtools.enrich` output."""
    if kind not in ("resources", "peers"):
        raise ValueError(f"kind must be 'resources' or 'peers', not {kind!r}")
    lf = _traffic(_frame(enriched))

    def side(me: str, other: str) -> nw.LazyFrame:
        return lf.select(address=nw.col(f"{me}_address"), scope=nw.col(f"{me}_scope"),
                         resource_name=nw.col(f"{me}_resource_name"), aws_service=nw.col(f"{me}_aws_service"),
                         peer=nw.col(f"{other}_address"), bytes=nw.col("bytes"), packets=nw.col("packets"))

    both = nw.concat([side("src", "dst"), side("dst", "src")], how="vertical").filter(~nw.col("address").is_null())
    internet = nw.col("scope") == "internet"
    both = both.filter(internet if kind == "peers" else ~internet | nw.col("scope").is_null())
    return (both.group_by("address")
            .agg(resource_name=nw.col("resource_name").max(), scope=nw.col("scope").max(),
                 aws_service=nw.col("aws_service").max(), bytes=nw.col("bytes").sum().cast(nw.Int64),
                 packets=nw.col("packets").sum().cast(nw.Int64), records=nw.len().cast(nw.Int64),
                 peers=nw.col("peer").n_unique().cast(nw.Int64))
            .sort(["bytes", "address"], descending=[True, False]).head(n).to_native())


def rejects(flows: Any, *, n: int = 20) -> Any:
    """Rejected traffic by interface, destination port and protocol: records, distinct
    sources, first and last time; the ``n`` with most sources."""
    lf = _traffic(_frame(flows)).filter(nw.col("action") == "REJECT")
    return (lf.with_columns(_source=_src())
            .group_by("interface_id", "dstport", "protocol")
            .agg(records=nw.len().cast(nw.Int64), sources=nw.col("_source").n_unique().cast(nw.Int64),
                 first=nw.col("start_time").min(), last=nw.col("end_time").max())
            .sort(["sources", "records", "interface_id", "dstport"], descending=[True, True, False, False])
            .head(n).to_native())


def scanners(flows: Any, *, n: int = 15) -> Any:
    """Who is scanning: the sources of rejected traffic (``pkt_srcaddr`` first) that tried
    the most distinct destination ports, with the interfaces they reached, records, first
    and last time; the ``n`` first."""
    lf = _traffic(_frame(flows)).filter(nw.col("action") == "REJECT")
    return (lf.with_columns(source=_src())
            .group_by("source")
            .agg(ports=nw.col("dstport").n_unique().cast(nw.Int64),
                 interfaces=nw.col("interface_id").n_unique().cast(nw.Int64),
                 records=nw.len().cast(nw.Int64), first=nw.col("start_time").min(), last=nw.col("end_time").max())
            .sort(["ports", "records", "source"], descending=[True, True, False]).head(n).to_native())


def traffic_paths(flows: Any) -> Any:
    """Bytes and records per ``traffic_path`` (named by :data:`TRAFFIC_PATHS`; records
    without the field are :data:`NO_TRAFFIC_PATH`)."""
    lf = _traffic(_frame(flows))
    name = nw.lit(NO_TRAFFIC_PATH)
    for code, label in TRAFFIC_PATHS.items():
        name = nw.when(nw.col("traffic_path") == code).then(nw.lit(label)).otherwise(name)
    return (lf.with_columns(path=name).group_by("path")
            .agg(bytes=nw.col("bytes").sum().cast(nw.Int64), records=nw.len().cast(nw.Int64))
            .sort(["bytes", "path"], descending=[True, False]).to_native())


def aws_services(enriched: Any) -> Any:
    """Bytes and records to and from AWS services (the peer's ``aws_service`` from
    ip-ranges, else the record's ``pkt-*-aws-service``), by service and region. Needs
    :func:`flowtools.enrich` output."""
    lf = _traffic(_frame(enriched))
    service = nw.coalesce(nw.col("dst_aws_service"), nw.col("src_aws_service"))
    region = nw.when(~nw.col("dst_aws_service").is_null()).then(nw.col("dst_aws_region")).otherwise(
        nw.col("src_aws_region"))
    return (lf.with_columns(service=service, region=region).filter(~nw.col("service").is_null())
            .group_by("service", "region")
            .agg(bytes=nw.col("bytes").sum().cast(nw.Int64), records=nw.len().cast(nw.Int64))
            .sort(["bytes", "service", "region"], descending=[True, False, False], nulls_last=True).to_native())


def _of(lf: nw.LazyFrame, interfaces: Sequence[str]) -> nw.LazyFrame:
    wanted = [i.lower() for i in interfaces]
    return _traffic(lf).filter(nw.col("interface_id").str.to_lowercase().is_in(wanted))


def conversations(flows: Any, *, interfaces: Sequence[str], inventory: Inventory | None = None) -> Any:
    """Every conversation the ``interfaces`` logged, oriented: one row per interface,
    initiator (address, port), responder and service port (the responder's port) and
    protocol, with who initiated it decided as the exposure analysis decides (TCP flags,
    then port evidence incl. the ephemeral-port rule, then who was seen first; see
    :func:`flowtools.analyses.exposure.oriented.oriented_conversations`), for internal
    and internet peers alike. So a web server's replies to its clients' ephemeral ports
    are the clients' conversations with its port 443, not conversations of their own.

    Columns: :data:`~flowtools.analyses.exposure.oriented.ORIENTED_COLUMNS` (without
    ``carried``) and ``service`` (the service port's IANA name); on :func:`flowtools.enrich`
    output also ``initiator_name`` and ``responder_name``. Ordered by bytes (descending),
    then the keys. ``inventory`` (optional) orients records without ``flow_direction``.
    Records whose direction cannot be told are left out.

    Cost: runs its two passes over the interfaces' records at call time (an eager
    aggregate into address pairs, conversations held in engine memory); the returned
    frame is lazy over those, as small as the conversations.
    """
    lf = _frame(flows)
    conv = _named(oriented_conversations(lf, interfaces=interfaces, inventory=inventory), lf, interfaces)
    keys = ["interface_id", "initiator", "initiator_port", "responder", "service_port", "protocol"]
    return conv.drop("carried").sort(["bytes", *keys], descending=[True] + [False] * len(keys),
                                     nulls_last=True).to_native()


def _named(conv: nw.LazyFrame, lf: nw.LazyFrame, interfaces: Sequence[str] | None) -> nw.LazyFrame:
    """``service`` (the service port's IANA name) and, on enriched flows, the names of both
    sides (``initiator_name``, ``responder_name``: the sides' ``*_resource_name`` over the
    interfaces' records, one per address)."""
    services = nw.from_native(frames.side_table(lf.to_native(), port_names().select(
        service_port="port", protocol="protocol", service="service")))
    conv = conv.join(services, on=["service_port", "protocol"], how="left")
    names = set(lf.collect_schema().names())
    if interfaces is None or not {"src_address", "src_resource_name", "dst_address", "dst_resource_name"} <= names:
        return conv
    mine = _of(lf, interfaces)
    known = (nw.concat([mine.select(address=nw.col(f"{s}_address"), name=nw.col(f"{s}_resource_name"))
                        for s in ("src", "dst")], how="vertical")
             .filter(~nw.col("name").is_null()).group_by("address").agg(nw.col("name").max()))
    return (conv.join(known.select(initiator="address", initiator_name="name"), on="initiator", how="left")
            .join(known.select(responder="address", responder_name="name"), on="responder", how="left"))


def peers(enriched: Any, *, interfaces: Sequence[str]) -> Any:
    """The other side of the ``interfaces``' records: per peer address its name, scope and
    AWS service, records, bytes, the distinct local ports it used or reached, first and
    last time, by bytes. The peer is the source of ingress and the destination of egress
    records (``flow_direction``); without the field, the side that is not one of the
    interfaces (from the inventory). Needs :func:`flowtools.enrich` output."""
    lf = _of(_frame(enriched), interfaces)
    wanted = [i.lower() for i in interfaces]
    mine = nw.col("src_interface_id").str.to_lowercase().is_in(wanted).fill_null(False)
    is_src = (nw.when(nw.col("flow_direction") == "ingress").then(nw.lit(True))
              .otherwise(nw.when(nw.col("flow_direction") == "egress").then(nw.lit(False)).otherwise(~mine)))

    def pick(side_src: str, side_dst: str) -> nw.Expr:
        return nw.when(is_src).then(nw.col(side_src)).otherwise(nw.col(side_dst))

    lf = lf.with_columns(peer=pick("src_address", "dst_address"), scope=pick("src_scope", "dst_scope"),
                         resource_name=pick("src_resource_name", "dst_resource_name"),
                         aws_service=pick("src_aws_service", "dst_aws_service"),
                         local_port=pick("dstport", "srcport"))
    return (lf.filter(~nw.col("peer").is_null()).group_by("peer")
            .agg(resource_name=nw.col("resource_name").max(), scope=nw.col("scope").max(),
                 aws_service=nw.col("aws_service").max(), records=nw.len().cast(nw.Int64),
                 bytes=nw.col("bytes").sum().cast(nw.Int64),
                 local_ports=nw.col("local_port").n_unique().cast(nw.Int64),
                 first=nw.col("start_time").min(), last=nw.col("end_time").max())
            .sort(["bytes", "peer"], descending=[True, False]).to_native())


def ports(flows: Any, *, interfaces: Sequence[str], inventory: Inventory | None = None) -> Any:
    """The service ports of the ``interfaces``' conversations (the responder's port, as
    :func:`conversations` orients them; never a client's ephemeral port): per service
    port, protocol and ``initiated`` (``inbound``: the interfaces serve it; ``outbound``:
    they call it) the distinct ``initiators``, ``conversations``, records, bytes and
    accepted records, with the port's IANA ``service`` name; by initiators, then
    conversations (descending), then port. ICMP is one row with a null port. Cost: as
    :func:`conversations`."""
    lf = _frame(flows)
    conv = _named(oriented_conversations(lf, interfaces=interfaces, inventory=inventory), lf, None)
    keys = ["service_port", "protocol", "initiated"]
    return (conv.group_by(*keys)
            .agg(service=nw.col("service").max(), initiators=nw.col("initiator").n_unique().cast(nw.Int64),
                 conversations=nw.len().cast(nw.Int64), records=nw.col("records").sum().cast(nw.Int64),
                 bytes=nw.col("bytes").sum().cast(nw.Int64), accepted=nw.col("accepted").sum().cast(nw.Int64))
            .sort(["initiators", "conversations", *keys], descending=[True, True, False, False, False],
                  nulls_last=True)
            .to_native())
