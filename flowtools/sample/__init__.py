"""The scenario generator: realistic VPC Flow Logs of a small multi-account estate, its
AWS inventory, an ip-ranges fixture, and the ground truth of what the internet reaches.

``generate(out_dir)`` writes, for a seed, ``hours`` hours from 2026-11-20T00:00Z::

    out_dir/
      AWSLogs/111111111111/vpcflowlogs/us-east-1/2026/11/20/...      default daily layout
      AWSLogs/o-abc123def4/111111111111/vpcflowlogs/us-east-1/2026/11/20/HH/...  org + hourly
      AWSLogs/aws-account-id=111111111111/aws-service=vpcflowlogs/aws-region=eu-west-1/
              year=2026/month=11/day=20/hour=HH/...                   Hive, hourly
      AWSLogs/aws-account-id=333333333333/.../day=20/...              Hive, daily
      central/AWSLogs/222222222222/vpcflowlogs/us-east-1/2026/11/20/...  under a user prefix
      inventory/<account>-<region>-describe-<kind>.json               AWS CLI JSON
      ip-ranges.json                                                   AWS's format, small
      watchlist.txt                                                    addresses to watch
      truth.json                                                       the ground truth

The output is a pure function of the arguments: the same call writes the same bytes.
Cost: the scenario's conversations are drawn for the whole window at once (about 80 bytes
each, a quarter as many as records: each case's random streams cover the window), the truth
is computed from them (per-conversation window totals in numpy, one group at a time), then
the records are built and written one time slice at a time (about 100 k conversations, 0.4 M
records each; files are encoded on a thread pool), so memory grows with the conversations
only: peak RSS about 0.35 GB at scale 1, 0.65 GB at scale 14 (~2 M records), 1.5 GB at
scale 130 (~20 M records). Scale 1 (24 h, ~150 k records) takes about 3 s, scale 14 about
11 s, scale 130 about 2 minutes on two cores.
"""

from __future__ import annotations

import json
import operator
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from flowtools.errors import UsageError
from flowtools.sample import truth as _truth
from flowtools.sample.deliver import BATCH_SECONDS, REACH_SECONDS, FlowLogWriter
from flowtools.sample.estate import BASE_TIME, Estate
from flowtools.sample.inventory import write_inventory
from flowtools.sample.ip_ranges import document as ip_ranges_document
from flowtools.sample.scenario import HOUR, WATCHLIST, Scenario, watchlist_text
from flowtools.sample.traffic import expand, slice_rows

__all__ = ["SampleSummary", "generate"]

#: What a previous run wrote (removed before writing again into the same folder).
_OUTPUTS = ("AWSLogs", "central", "inventory", "ip-ranges.json", "watchlist.txt", "truth.json")
#: Conversations per time slice when no slice length is given (about 0.4 M records).
_SLICE_CONVERSATIONS = 100_000


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate` wrote."""

    out_dir: Path
    files: int  # flow-log files
    records: int  # flow-log records (including NODATA/SKIPDATA)
    bytes: int  # size of the flow-log files
    accounts: tuple[str, ...]
    regions: tuple[str, ...]
    flow_logs: tuple[str, ...]  # flow-log ids
    start: datetime
    end: datetime  # exclusive
    paths: tuple[str, ...]  # every file written, relative to out_dir

    def __str__(self) -> str:
        return (f"{self.files} flow-log files ({self.records} records, {self.bytes / 1e6:.1f} MB) of "
                f"{len(self.flow_logs)} flow logs in {len(self.accounts)} accounts, "
                f"{len(self.regions)} regions, {self.start:%Y-%m-%dT%H:%MZ} to "
                f"{self.end:%Y-%m-%dT%H:%MZ}, inventory, ip-ranges.json, watchlist.txt and truth.json in {self.out_dir}")


def _prepare(out: Path) -> None:
    """Accept a missing or empty folder, or one holding an earlier sample (replaced)."""
    if not out.exists():
        out.mkdir(parents=True)
        return
    if not out.is_dir():
        raise UsageError(f"{out} is a file: give a folder to write the sample into")
    if not any(out.iterdir()):
        return
    previous = out / "truth.json"
    try:
        ours = json.loads(previous.read_text(encoding="utf-8")).get("generator") == "flowtools.sample"
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise UsageError(f"{out} is not empty and holds no earlier sample: give an empty or new folder")
    for name in _OUTPUTS:
        p = out / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()


def _dump_truth(doc: dict) -> str:
    """JSON with one list entry per line (readable, and small for thousands of entries)."""
    lines = ["{"]
    items = list(doc.items())
    for n, (k, v) in enumerate(items):
        sep = "," if n < len(items) - 1 else ""
        if isinstance(v, list) and v:
            lines.append(f"  {json.dumps(k)}: [")
            lines += [f"    {json.dumps(e, ensure_ascii=False)}" + ("," if m < len(v) - 1 else "")
                      for m, e in enumerate(v)]
            lines.append(f"  ]{sep}")
        else:
            lines.append(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}{sep}")
    return "\n".join(lines + ["}"]) + "\n"


def _slice_seconds(conversations: int, window: int, minutes: int | None) -> int:
    """The slice length: ``minutes`` if given (a multiple of 5), else about
    ``_SLICE_CONVERSATIONS`` conversations' worth of the window, in whole hours (files are
    written an hour at a time) or, below an hour, in whole 5-minute batches."""
    if minutes is not None:
        return int(minutes) * 60
    size = min(window, window * _SLICE_CONVERSATIONS // max(conversations, 1))
    unit = HOUR if size >= HOUR else BATCH_SECONDS
    return max(unit, size // unit * unit)


def generate(out_dir: str | Path, *, seed: int = 0, hours: int = 24, scale: float = 1.0,
             fmt: str = "text", _slice_minutes: int | None = None) -> SampleSummary:
    """Write the scenario's flow logs, inventory, ip-ranges fixture and ground truth.

    ``hours`` hours from 2026-11-20T00:00Z; ``scale`` multiplies connection counts
    (1.0: about 150 k records, 3 MB of ``.log.gz`` per day; 14: about 2 M records).
    ``fmt`` is ``"text"`` (``.log.gz``) or ``"parquet"`` (``.log.parquet``) for every flow
    log. ``out_dir`` must be missing, empty, or hold an earlier sample (which is replaced).
    ``_slice_minutes`` (tests only) fixes the length of the time slices in which records are
    built and written (default: about 100 k conversations' worth); it never changes a byte.
    """
    if fmt not in ("text", "parquet"):
        raise UsageError(f"fmt must be 'text' or 'parquet', not {fmt!r}")
    if int(hours) != hours or hours < 1:
        raise UsageError(f"hours must be a whole number >= 1, not {hours!r}")
    try:
        seed = operator.index(seed)
    except TypeError:
        seed = -1
    if seed < 0:
        raise UsageError("seed must be a whole number >= 0")
    if not scale > 0:
        raise UsageError(f"scale must be > 0, not {scale!r}")
    if _slice_minutes is not None and (int(_slice_minutes) != _slice_minutes or _slice_minutes < 1
                                       or _slice_minutes * 60 % BATCH_SECONDS):
        raise UsageError(f"_slice_minutes must be a positive multiple of {BATCH_SECONDS // 60}, "
                         f"not {_slice_minutes!r}")
    hours = int(hours)
    out = Path(out_dir)
    _prepare(out)
    estate = Estate()
    scenario = Scenario(estate, seed=seed, hours=hours, scale=scale)
    groups = scenario.build()
    # the truth comes from the conversations (never from the records): first, then free
    exposure, used = _truth.exposure(groups, estate)
    not_exposure = _truth.not_exposure(groups, estate, exposure)
    configured = _truth.configured(estate, used)
    del used
    exposure, single_peer = _truth.split_single_peer(groups, estate, exposure)
    decisions = {
        "single_peer": single_peer,
        "watchlist": _truth.watchlist(groups, estate, WATCHLIST),
        "egress": _truth.egress(groups, estate),
        "scanners": _truth.scanners(groups, estate),
        "changes": _truth.changes(groups, estate, scenario.base, hours),
    }
    window = hours * HOUR
    size = _slice_seconds(sum(g.conversations.height for g in groups), window, _slice_minutes)
    count = -(-window // size)
    index = [slice_rows(g.conversations, scenario.base, size, count, REACH_SECONDS) for g in groups]
    status = scenario.status_frames()
    with FlowLogWriter(estate, out, seed=seed, end=scenario.end, fmt=fmt) as writer:
        for k in range(count):
            lo = scenario.base + k * size
            hi = min(lo + size, scenario.end)
            ends = (lo - REACH_SECONDS, hi)  # the records that can be delivered in [lo, hi)
            frames = [expand(g, estate.agg, rows=rows[bounds[k]:bounds[k + 1]], ends=ends)
                      for g, (rows, bounds) in zip(groups, index, strict=True)]
            frames += [f.filter(pl.col("end").is_between(*ends, closed="left")) for f in status]
            writer.write(pl.concat(frames, rechunk=True), lo, hi)
            del frames
    written = writer.written
    inventory = write_inventory(estate, out / "inventory")
    (out / "ip-ranges.json").write_text(json.dumps(ip_ranges_document(), indent=2) + "\n")
    (out / "watchlist.txt").write_text(watchlist_text(), encoding="utf-8")

    start = BASE_TIME
    end = BASE_TIME + timedelta(hours=hours)
    doc = {
        "generator": "flowtools.sample",
        "seed": seed,
        "hours": hours,
        "scale": scale,
        "fmt": fmt,
        "window": {"start": f"{start:%Y-%m-%dT%H:%M:%SZ}", "end": f"{end:%Y-%m-%dT%H:%M:%SZ}"},
        "flow_logs": [{"flow_log_id": fl.id, "account_id": fl.account, "region": fl.region,
                       "layout": fl.layout, "org_id": fl.org_id, "prefix": fl.prefix or None,
                       "max_aggregation_interval": fl.agg, "log_format": " ".join(fl.fields),
                       "resource": fl.resource} for fl in estate.flow_logs.values()],
        "interfaces": [{"interface_id": i.id, "name": i.key, "interface_type": i.interface_type,
                        "account_id": estate.account(i.key), "region": estate.region(i.key),
                        "private_ip": i.ip, "public_ip": i.public_ip, "ipv6": i.ipv6,
                        "flow_log_id": estate.flow_logs[i.flow_log].id if i.flow_log else None}
                       for i in estate.interfaces.values()],
        "exposure": exposure,
        "configured": configured,
        "not_exposure": not_exposure,
        **decisions,
    }
    (out / "truth.json").write_text(_dump_truth(doc), encoding="utf-8")
    paths = sorted([w.path for w in written] + [p.relative_to(out).as_posix() for p in inventory]
                   + ["ip-ranges.json", "watchlist.txt", "truth.json"])
    flow_logs = tuple(fl.id for fl in estate.flow_logs.values())
    return SampleSummary(
        out_dir=out, files=len(written), records=sum(w.records for w in written),
        bytes=sum(w.size for w in written),
        accounts=tuple(sorted({fl.account for fl in estate.flow_logs.values()})),
        regions=tuple(sorted({fl.region for fl in estate.flow_logs.values()})),
        flow_logs=flow_logs, start=start, end=end, paths=tuple(paths),
    )
