"""Helpers for tests: write flow-log objects in AWS's layouts, compare canonical frames."""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "data" / "samples"
ENGINES = ("duckdb", "polars")

DEFAULT_HEADER = ("version account-id interface-id srcaddr dstaddr srcport dstport protocol "
                  "packets bytes start end action log-status")


def log_name(account="123456789010", region="us-east-1", flow_log="fl-1234abcd",
             ts="20261120T1000Z", hash_="fe123456", ext="log.gz") -> str:
    """A file name following AWS's pattern."""
    return f"{account}_vpcflowlogs_{region}_{flow_log}_{ts}_{hash_}.{ext}"


def daily_key(account="123456789010", region="us-east-1", ts="20261120T1000Z", **kw) -> str:
    return (f"AWSLogs/{account}/vpcflowlogs/{region}/{ts[0:4]}/{ts[4:6]}/{ts[6:8]}/"
            + log_name(account, region, ts=ts, **kw))


def write_log(root: Path, key: str, lines, *, header: str | None = DEFAULT_HEADER,
              compress: bool = True) -> Path:
    """Write a text flow-log object: header line (unless None) then records."""
    path = Path(root) / key
    path.parent.mkdir(parents=True, exist_ok=True)
    body = "\n".join(([header] if header is not None else []) + list(lines)) + "\n"
    data = body.encode()
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def frames_equal(a: pl.DataFrame, b: pl.DataFrame, sort_by=("source_file", "interface_id", "start", "srcaddr", "srcport")) -> None:
    """Assert two canonical frames hold the same rows (order-insensitive), columns, dtypes."""
    assert a.columns == b.columns
    keys = [c for c in sort_by if c in a.columns]
    keys += [c for c, t in a.schema.items() if c not in keys and not t.is_nested()]  # ties: every column
    a2 = a.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC")).sort(keys, nulls_last=True)
    b2 = b.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC")).sort(keys, nulls_last=True)
    assert a2.dtypes == b2.dtypes
    assert a2.rows() == b2.rows()
