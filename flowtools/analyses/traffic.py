"""Traffic overview analyses: frame in, frame out, on the flows' engine (Narwhals).

Each function takes flows (a ``Flows``, a DuckDB relation or a Polars frame; for
``top_talkers`` and ``aws_services`` the output of :func:`flowtools.enrich`) and returns a
small lazy frame of aggregates; nothing is collected here.
"""

from __future__ import annotations

from typing import Any

import narwhals as nw

__all__ = ["aws_services", "rejects", "timeseries", "top_talkers", "traffic_paths"]

#: AWS's ``traffic-path`` codes (egress records only).
TRAFFIC_PATHS = {
    1: "same VPC", 2: "internet or gateway endpoint", 3: "virtual private gateway",
    4: "intra-region VPC peering", 5: "inter-region VPC peering", 6: "local gateway",
    7: "gateway VPC endpoint (Nitro)", 8: "internet gateway",
}


def _frame(flows: Any) -> nw.LazyFrame:
    from flowtools.analyses.exposure import _native_frame

    return nw.from_native(_native_frame(flows))


def _traffic(lf: nw.LazyFrame) -> nw.LazyFrame:
    """Records that carry traffic (not NODATA/SKIPDATA)."""
    return lf.filter(~nw.col("srcaddr").is_null() & ~nw.col("bytes").is_null())


def timeseries(flows: Any, *, every: str = "1h", by: str | None = "action") -> Any:
    """Bytes, packets and records per ``every`` (``"1m"``, ``"1h"`` or ``"1d"``: calendar
    truncation of the record start time, which DuckDB supports for a multiple of 1), split by
    ``by`` (a column, or None)."""
    lf = _traffic(_frame(flows))
    keys = [nw.col("start_time").dt.truncate(every).alias("time")] + ([nw.col(by)] if by else [])
    return (lf.group_by(*keys).agg(bytes=nw.col("bytes").sum().cast(nw.Int64),
                                   packets=nw.col("packets").sum().cast(nw.Int64),
                                   records=nw.len().cast(nw.Int64))
            .sort(["time", *([by] if by else [])]).to_native())


def top_talkers(enriched: Any, *, n: int = 10, side: str = "src") -> Any:
    """The ``n`` endpoints of ``side`` (``src`` or ``dst``) with the most bytes: their
    address, resource name, scope and AWS service, bytes, records and peers."""
    lf = _traffic(_frame(enriched))
    peer = "dst" if side == "src" else "src"
    return (lf.filter(~nw.col(f"{side}_address").is_null())
            .group_by(f"{side}_address")
            .agg(resource_name=nw.col(f"{side}_resource_name").max(), scope=nw.col(f"{side}_scope").max(),
                 aws_service=nw.col(f"{side}_aws_service").max(), bytes=nw.col("bytes").sum().cast(nw.Int64),
                 records=nw.len().cast(nw.Int64), peers=nw.col(f"{peer}_address").n_unique().cast(nw.Int64))
            .rename({f"{side}_address": "address"})
            .sort(["bytes", "address"], descending=[True, False]).head(n).to_native())


def rejects(flows: Any, *, n: int = 20) -> Any:
    """Rejected traffic by interface, destination port and protocol: records, distinct
    sources (who is scanning what), first and last time; the ``n`` largest."""
    lf = _traffic(_frame(flows)).filter(nw.col("action") == "REJECT")
    source = nw.coalesce(nw.col("pkt_srcaddr"), nw.col("srcaddr"))
    return (lf.with_columns(_source=source)
            .group_by("interface_id", "dstport", "protocol")
            .agg(records=nw.len().cast(nw.Int64), sources=nw.col("_source").n_unique().cast(nw.Int64),
                 first=nw.col("start_time").min(), last=nw.col("end_time").max())
            .sort(["sources", "records", "interface_id", "dstport"], descending=[True, True, False, False])
            .head(n).to_native())


def traffic_paths(flows: Any) -> Any:
    """Bytes and records of egress traffic per ``traffic_path`` (named; records without
    the field are ``unknown``)."""
    lf = _traffic(_frame(flows))
    name = nw.lit("unknown")
    for code, label in TRAFFIC_PATHS.items():
        name = nw.when(nw.col("traffic_path") == code).then(nw.lit(label)).otherwise(name)
    return (lf.with_columns(path=name).group_by("path")
            .agg(bytes=nw.col("bytes").sum().cast(nw.Int64), records=nw.len().cast(nw.Int64))
            .sort(["bytes", "path"], descending=[True, False]).to_native())


def aws_services(enriched: Any) -> Any:
    """Bytes to and from AWS services (the peer's ``aws_service`` per ip-ranges or the
    record), by service and region."""
    lf = _traffic(_frame(enriched))
    service = nw.coalesce(nw.col("dst_aws_service"), nw.col("src_aws_service"))
    region = nw.when(~nw.col("dst_aws_service").is_null()).then(nw.col("dst_aws_region")).otherwise(
        nw.col("src_aws_region"))
    return (lf.with_columns(service=service, region=region).filter(~nw.col("service").is_null())
            .group_by("service", "region")
            .agg(bytes=nw.col("bytes").sum().cast(nw.Int64), records=nw.len().cast(nw.Int64))
            .sort(["bytes", "service"], descending=[True, False]).to_native())
