"""Deliver records the way AWS does to S3: per flow log, 5-minute batches, every layout.

Each file holds one flow log's records whose ``end`` falls in its 5-minute batch (the
file-name timestamp is the batch's start); a few per cent arrive one batch late. Text files
are gzip (mtime 0, so bytes are reproducible) with the format's field names as the first
line; Parquet files use AWS's column names and types. Files are formatted by Polars and
compressed on a thread pool: no per-record Python.

:class:`FlowLogWriter` takes the records a time slice at a time (the files of the batches
starting in the slice): a file's bytes do not depend on how the window is sliced.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from flowtools.fields import column_name, field_type
from flowtools.sample.estate import Estate, FlowLog
from flowtools.sample.ip_ranges import service_of

BATCH_SECONDS = 300
#: Share of (interface, batch) groups delivered one batch late.
LATE_PERCENT = 3
#: How long before a batch a record may end and still be delivered in it (one batch late).
REACH_SECONDS = BATCH_SECONDS
_ARROW = {"int32": pa.int32(), "int64": pa.int64(), "string": pa.string()}
_POLARS = {"int32": pl.Int32, "int64": pl.Int64, "string": pl.String}
#: Fields that stay on NODATA / SKIPDATA records; every other field is "-".
_STATUS_FIELDS = ("version", "account-id", "interface-id", "start", "end", "log-status")


@dataclass(frozen=True)
class Written:
    path: str  # relative to out_dir
    records: int
    size: int


def object_key(fl: FlowLog, ts: datetime, digest: str, ext: str) -> str:
    """The S3 key AWS would use for a file of ``fl`` whose batch starts at ``ts``."""
    name = f"{fl.account}_vpcflowlogs_{fl.region}_{fl.id}_{ts:%Y%m%dT%H%MZ}_{digest}.log.{ext}"
    parts = [fl.prefix] if fl.prefix else []
    parts.append("AWSLogs")
    if fl.org_id:
        parts.append(fl.org_id)
    if fl.layout in ("daily", "hourly"):
        parts += [fl.account, "vpcflowlogs", fl.region, f"{ts:%Y}", f"{ts:%m}", f"{ts:%d}"]
        if fl.layout == "hourly":
            parts.append(f"{ts:%H}")
    else:
        parts += [f"aws-account-id={fl.account}", "aws-service=vpcflowlogs", f"aws-region={fl.region}",
                  f"year={ts:%Y}", f"month={ts:%m}", f"day={ts:%d}"]
        if fl.layout == "hive-hourly":
            parts.append(f"hour={ts:%H}")
    return "/".join(parts + [name])


def _attributes(estate: Estate) -> dict[str, dict[str, str | int | None]]:
    """Per interface: the values its records carry in the metadata fields (by column)."""
    out: dict[str, dict[str, str | int | None]] = {}
    for n, i in enumerate(estate.interfaces.values()):
        sub, vpc = estate.subnet(i.key), estate.vpc(i.key)
        row: dict[str, str | int | None] = {
            "_n": n,
            "account_id": i.record_account or vpc.account,
            "interface_id": i.id, "vpc_id": vpc.id, "subnet_id": sub.id,
            "instance_id": i.instance_id, "region": vpc.region, "az_id": sub.az_id,
            "interface_type": i.interface_type,
        }
        for k, v in {**(i.ecs or {}), **i.extra}.items():
            row[column_name(k)] = None if v == "-" else v
        out[i.key] = row
    return out


def _services(records: pl.DataFrame, known: dict[str, str | None]) -> dict[str, str | None]:
    """``pkt-*-aws-service`` of every packet address in the records (few distinct ones),
    added to ``known`` (returned)."""
    addrs = pl.concat([records["pkt_srcaddr"], records["pkt_dstaddr"]]).drop_nulls().unique()
    for a in addrs.to_list():
        if a not in known:
            known[a] = service_of(a)
    return known


def _flow_log_chunks(records: pl.DataFrame, fl: FlowLog, attrs: dict[str, dict[str, str | int | None]], *,
                     seed: int, end: int, lo: int, hi: int, services: dict[str, str | None],
                     millis_rng: np.random.Generator | None) -> Iterator[pl.DataFrame]:
    """The records of one flow log delivered in batches starting in [lo, hi), an hour of
    files at a time (memory stays small), with the format's fields as columns plus ``_ts``
    (the file's 5-minute batch) and ``_shard``, sorted by file then ``start``. ``attrs``:
    the flow log's interfaces (see ``_attributes``); ``millis_rng`` draws which records
    have millisecond times, in file order across slices."""
    cols = [column_name(f) for f in fl.fields]
    rows = np.flatnonzero(records["iface"].is_in(list(attrs)).to_numpy())
    if rows.size == 0:
        return
    sub = records.select("iface", "start", "end")[rows]
    n = sub["iface"].replace_strict({k: a["_n"] for k, a in attrs.items()},
                                    return_dtype=pl.Int64).to_numpy()
    # batches by end time; a few (interface, batch) groups delivered one batch late
    batch = sub["end"].to_numpy() // BATCH_SECONDS
    mix = (n * 7919 + (batch % 1000003) * 40503 + (seed % 1000003) * 97 + 12345) % 1000003
    late = (mix % 100 < LATE_PERCENT) & ((batch + 1) * BATCH_SECONDS < end)
    ts = (batch + late) * BATCH_SECONDS
    inside = (ts >= lo) & (ts < hi)
    if not inside.all():
        rows, ts, n, sub = rows[inside], ts[inside], n[inside], sub.filter(pl.Series(inside))
    if rows.size == 0:
        return
    shard = n % fl.shards
    order = np.lexsort((sub["start"].to_numpy(), shard, ts))  # stable: ties keep their order
    rows, ts, shard = rows[order], ts[order], shard[order]
    millis = None
    if millis_rng is not None:  # a deterministic few records with millisecond start/end
        millis = millis_rng.random(rows.size) < fl.millis_fraction
    iface = pl.col("iface")
    extra = [c for c in cols if c not in records.columns and any(c in a for a in attrs.values())]
    missing = [c for c in cols if c not in records.columns and c not in extra and c != "version"
               and not c.endswith("_aws_service")]  # fields nothing sets (sublocation-*)
    keep = {column_name(f) for f in _STATUS_FIELDS}
    ok = pl.col("log_status") == "OK"
    hours = ts // 3600
    bounds = np.flatnonzero(np.diff(hours)) + 1
    for lo_, hi_ in zip(np.r_[0, bounds], np.r_[bounds, rows.size], strict=True):
        chunk = records[rows[lo_:hi_]].lazy().with_columns(
            version=pl.lit(fl.version, pl.Int32),
            _ts=pl.Series(ts[lo_:hi_], dtype=pl.Int64),
            _shard=pl.Series(shard[lo_:hi_], dtype=pl.Int32),
            **{c: iface.replace_strict({k: a.get(c) for k, a in attrs.items()}, return_dtype=pl.String)
               for c in extra},
            **{f"pkt_{side}_aws_service": pl.col(f"pkt_{side}addr").replace_strict(
                services, default=None, return_dtype=pl.String) for side in ("src", "dst")},
            **{c: pl.lit(None, _POLARS[field_type(c)]) for c in missing},
        ).with_columns([pl.when(ok).then(pl.col(c)).otherwise(None).alias(c)
                        for c in cols if c not in keep])
        if millis is not None:
            ms = pl.Series(millis[lo_:hi_])
            chunk = chunk.with_columns(start=pl.when(ms).then(pl.col("start") * 1000).otherwise("start"),
                                       end=pl.when(ms).then(pl.col("end") * 1000).otherwise("end"))
        yield chunk.select(cols + ["_ts", "_shard"]).collect()


def _files(chunk: pl.DataFrame) -> Iterator[tuple[int, int, pl.DataFrame]]:
    """(batch time, shard, records) per file of a chunk sorted by file."""
    key = chunk["_ts"].to_numpy() * 16 + chunk["_shard"].to_numpy()
    bounds = np.flatnonzero(np.diff(key)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(key)], strict=True):
        part = chunk.slice(int(lo), int(hi - lo))
        yield int(part["_ts"][0]), int(part["_shard"][0]), part.drop("_ts", "_shard")


def _encode_text(part: pl.DataFrame, fields: tuple[str, ...]) -> bytes:
    buf = io.BytesIO()
    part.rename({column_name(f): f for f in fields}).write_csv(
        buf, separator=" ", null_value="-", quote_style="never", include_header=True, line_terminator="\n")
    return gzip.compress(buf.getvalue(), compresslevel=6, mtime=0)


def _encode_parquet(part: pl.DataFrame, fields: tuple[str, ...]) -> bytes:
    schema = pa.schema([(column_name(f), _ARROW[field_type(f)]) for f in fields])
    table = part.to_arrow().cast(schema)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="gzip")
    return buf.getvalue()


class FlowLogWriter:
    """Writes every flow log's files under ``out_dir``, a time slice at a time.

    Call :meth:`write` with consecutive slices in time order; each call writes the files
    of the batches starting in the slice (files are encoded and written on a thread pool
    of up to 8 threads). Use as a context manager; ``written`` lists what was written.
    """

    def __init__(self, estate: Estate, out_dir: Path, *, seed: int, end: int, fmt: str) -> None:
        self.estate, self.out_dir, self.seed, self.end = estate, out_dir, seed, end
        self.ext = "parquet" if fmt == "parquet" else "gz"
        self.encode = _encode_parquet if fmt == "parquet" else _encode_text
        attributes = _attributes(estate)
        self.attrs = {fl.key: {k: v for k, v in attributes.items() if estate.interfaces[k].flow_log == fl.key}
                      for fl in estate.flow_logs.values()}
        self.millis = {fl.key: np.random.default_rng([seed, 1000, int(fl.id[3:], 16) % 2**32])
                       for fl in estate.flow_logs.values() if fl.millis_fraction}
        self.written: list[Written] = []
        self._services: dict[str, str | None] = {}
        self._pool = ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 2))
        self._next: int | None = None  # where the next slice must start (slices come in order)

    def __enter__(self) -> FlowLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown()

    def _run(self, job: tuple[str, pl.DataFrame, tuple[str, ...]]) -> Written:
        key, part, fields = job
        data = self.encode(part, fields)
        path = self.out_dir / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return Written(key, part.height, len(data))

    def write(self, records: pl.DataFrame, lo: int, hi: int) -> None:
        """Write the files of the batches starting in [lo, hi) (multiples of 5 minutes).
        ``records`` must hold every record delivered there, in the order they have among
        all records (others are ignored): those whose ``end`` is in [lo - REACH_SECONDS, hi)."""
        if lo % BATCH_SECONDS or hi % BATCH_SECONDS or (self._next is not None and lo != self._next):
            raise ValueError(f"slices must be consecutive multiples of {BATCH_SECONDS} s, not [{lo}, {hi})")
        self._next = hi
        services = _services(records, self._services)
        for fl in self.estate.flow_logs.values():
            for chunk in _flow_log_chunks(records, fl, self.attrs[fl.key], seed=self.seed, end=self.end,
                                          lo=lo, hi=hi, services=services,
                                          millis_rng=self.millis.get(fl.key)):
                jobs = []
                for ts, shard, part in _files(chunk):
                    when = datetime.fromtimestamp(ts, UTC)
                    digest = hashlib.sha1(f"{self.seed}/{fl.id}/{ts}/{shard}".encode()).hexdigest()[:8]
                    jobs.append((object_key(fl, when, digest, self.ext), part, fl.fields))
                self.written += self._pool.map(self._run, jobs)
