"""Benchmark: exposure over 2, 20 and 200 million records, each step in its own process.

For each size, a sample of ``flowtools sample`` (24 hours, seed 1, the scale that gives
about that many records) is generated once into ``benchmarks/data/scale-<N>M/`` and
reused while its marker ``benchmarks/data/scale-<N>M.json`` (the generator's arguments)
matches. Then, per size and engine (each step a separate process, its wall time and peak
RSS measured by ``wait4``):

* read floor: plain Polars ``scan_csv`` of the same gzip files, only the columns exposure
  needs, typed, one streaming aggregate (nothing accumulates): the cost of reading alone;
* first: ``flowtools exposure SRC --inventory SRC/inventory --engine E --format json``
  with ``FLOWTOOLS_STORE`` set to a fresh folder (the partition store is built on the way
  where it exists);
* warm: the same command with the same store.

    python benchmarks/bench_scale.py [--sizes 2,20,200] [--engines duckdb,polars]
        [--skip-generate] [--timeout 3600] [--memory-limit 16]

A step that exceeds ``--timeout`` seconds or ``--memory-limit`` GB of RSS is killed and
reported as such. The Markdown table is printed and written to
``benchmarks/results/scale.md``. Generating 20 M records takes about 2 minutes and
1.5 GB of memory; 200 M records, by extrapolation (not measured), about 20 minutes and
7 GB (the scenario's conversations are held, records are streamed) and 4 GB of disk.
Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data"
RESULTS = HERE / "results"
LOGS = DATA / "scale-logs"  # each step's stderr
#: Records per unit of ``scale`` and day of the sample (seed 1; 151.5 k at scale 1).
RECORDS_PER_SCALE_DAY = 151_500
SEED, HOURS = 1, 24

#: The read floor, run in a child process: ``python -c FLOOR ROOT`` prints the records read.
FLOOR = r'''
import gzip, sys
from pathlib import Path
import polars as pl
# what exposure reads of a record (AWS field names); the rest of each line is skipped
NEED = {"account-id", "interface-id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
        "bytes", "start", "end", "action", "vpc-id", "instance-id", "tcp-flags", "pkt-srcaddr",
        "pkt-dstaddr", "region", "flow-direction", "reject-reason", "type", "log-status"}
INTS = {"srcport", "dstport", "protocol", "bytes", "start", "end", "tcp-flags", "packets", "version"}
by_header = {}
for f in sorted(Path(sys.argv[1]).rglob("*_vpcflowlogs_*.log.gz")):
    with gzip.open(f, "rt") as fh:
        by_header.setdefault(tuple(fh.readline().split()), []).append(str(f))
aggs = []
for header, files in by_header.items():
    schema = {h: pl.Int64 if h in INTS else pl.String for h in header}
    cols = [c for c in header if c in NEED]
    aggs.append(pl.scan_csv(files, separator=" ", null_values="-", schema=schema).select(
        pl.len().alias("records"), *[pl.col(c).max() for c in cols]))
# every aggregate is output, so no column is pruned from the scan
out = pl.concat(aggs, how="diagonal").collect(engine="streaming")
print(out["records"].sum())
'''

GENERATE = r'''
import json, sys
from flowtools.sample import generate
s = generate(sys.argv[1], seed=int(sys.argv[2]), hours=int(sys.argv[3]), scale=float(sys.argv[4]))
print(json.dumps({"records": s.records, "files": s.files, "bytes": s.bytes}))
'''


@dataclass
class Step:
    """One child process: wall seconds, peak RSS (bytes), and how it ended."""

    seconds: float
    rss: int
    cpu: float  # user + system seconds (steadier than wall time on a shared machine)
    status: str  # ok | timeout | memory | failed (exit N)
    stdout: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float | None = None,
        memory_limit: int | None = None, log: Path | None = None) -> Step:
    """Run ``cmd`` in its own process group; kill it past ``timeout`` seconds or past
    ``memory_limit`` bytes of RSS (polled every 0.2 s). Peak RSS comes from ``wait4``."""
    page = os.sysconf("SC_PAGE_SIZE")
    err = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed below
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=err, start_new_session=True)
    os.set_blocking(proc.stdout.fileno(), False)
    chunks: list[bytes] = []
    reason = None
    while True:
        while data := proc.stdout.read():
            chunks.append(data)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        elapsed = time.perf_counter() - t
        if reason is None and timeout and elapsed > timeout:
            reason = "timeout"
        if reason is None and memory_limit:
            try:
                rss = int(Path(f"/proc/{proc.pid}/statm").read_text().split()[1]) * page
            except (OSError, IndexError, ValueError):
                rss = 0
            if rss > memory_limit:
                reason = "memory"
        if reason:
            os.killpg(proc.pid, signal.SIGKILL)
        time.sleep(0.2)
    seconds = time.perf_counter() - t
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped by wait4, not by Popen
    os.set_blocking(proc.stdout.fileno(), True)
    chunks.append(proc.stdout.read())
    proc.stdout.close()
    if log:
        err.close()
    code = proc.returncode
    return Step(seconds, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime,
                reason or ("ok" if code == 0 else f"failed (exit {code})"), b"".join(chunks).decode())


def scale_for(millions: float) -> float:
    return round(millions * 1e6 / RECORDS_PER_SCALE_DAY * 24 / HOURS, 1)


def prepare(millions: float, *, skip: bool, memory_limit: int | None) -> tuple[Path | None, dict]:
    """The sample folder of a size (generated unless its marker matches) and its marker."""
    root = DATA / f"scale-{millions:g}M"
    marker = DATA / f"scale-{millions:g}M.json"
    args = {"seed": SEED, "hours": HOURS, "scale": scale_for(millions), "fmt": "text"}
    try:
        known = json.loads(marker.read_text())
    except (OSError, ValueError):
        known = {}
    if known.get("args") == args and (root / "truth.json").exists():
        return root, known
    if skip:
        return None, {"args": args, "status": "no data (--skip-generate)"}
    marker.unlink(missing_ok=True)
    if root.exists():
        shutil.rmtree(root)
    LOGS.mkdir(parents=True, exist_ok=True)
    print(f"generating {millions:g} M records: flowtools sample {root} --seed {SEED} --hours {HOURS} "
          f"--scale {args['scale']}", file=sys.stderr, flush=True)
    step = run([sys.executable, "-c", GENERATE, str(root), str(SEED), str(HOURS), str(args["scale"])],
               memory_limit=memory_limit, log=LOGS / f"scale-{millions:g}M-generate.log")
    if not step.ok:
        return None, {"args": args, "status": f"generation {step.status}"}
    doc = {"args": args, **json.loads(step.stdout), "generate_seconds": round(step.seconds, 1),
           "generate_rss": step.rss}
    marker.write_text(json.dumps(doc, indent=2) + "\n")
    return root, doc


def cell_seconds(step: Step | None, timeout: float | None, limit: int | None) -> str:
    if step is None:
        return "-"
    if step.status == "timeout":
        return f"timeout (>{timeout:g} s)"
    if step.status == "memory":
        return f"memory (>{limit / 2**30:g} GB)"
    return f"{step.seconds:.1f} ({step.cpu:.1f})" if step.ok else step.status


def cell_rss(step: Step | None) -> str:
    return f"{step.rss / 2**30:.2f}" if step and step.rss else "-"


def ratio(a: Step | None, b: Step | None) -> str:
    return f"{a.seconds / b.seconds:.2f}" if a and b and a.ok and b.ok else "-"


def output_json(step: Step):
    """The JSON document a step printed, from its first line that opens one (a progress bar
    drawn on stdout before it is skipped), or None."""
    text = step.stdout
    starts = [i + 1 for i, c in enumerate(text) if c == "\n" and text[i + 1:i + 2] in ("[", "{")]
    for start in ([0] if text[:1] in ("[", "{") else []) + starts:
        try:
            return json.loads(text[start:])
        except ValueError:
            continue
    return None


def findings(step: Step) -> int | None:
    doc = output_json(step)
    return len(doc) if isinstance(doc, list) else len(doc.get("findings", [])) if isinstance(doc, dict) else None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="2,20,200", help="millions of records (default 2,20,200)")
    ap.add_argument("--engines", default="duckdb,polars", help="default duckdb,polars")
    ap.add_argument("--skip-generate", action="store_true", help="use only samples generated before")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per step (default 3600)")
    ap.add_argument("--memory-limit", type=float, default=16, help="GB of RSS per step (default 16)")
    args = ap.parse_args(argv)
    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    limit = int(args.memory_limit * 2**30) if args.memory_limit else None
    timeout = args.timeout or None

    rows, generated, per_m = [], [], {}
    for millions in sizes:
        root, marker = prepare(millions, skip=args.skip_generate, memory_limit=limit)
        label = f"{millions:g} M"
        if root is None:
            rows.append(f"| {label} | - | {marker['status']} |" + " - |" * 10)
            continue
        records = marker["records"]
        generated.append(f"| {label} | {records:,} | {marker['args']['scale']:g} | "
                         f"{marker['generate_seconds']:.0f} | {marker['generate_rss'] / 2**30:.2f} |")
        print(f"{label}: read floor", file=sys.stderr, flush=True)
        floor = run([sys.executable, "-c", FLOOR, str(root)], timeout=timeout, memory_limit=limit)
        if floor.ok and int(floor.stdout) != records:
            floor.status = f"read {int(floor.stdout):,} records, not {records:,}"
        for engine in engines:
            store = DATA / f"store-{millions:g}M-{engine}"
            if store.exists():
                shutil.rmtree(store)
            store.mkdir(parents=True)
            LOGS.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "FLOWTOOLS_STORE": str(store)}
            cmd = [sys.executable, "-m", "flowtools.cli", "exposure", str(root), "--inventory",
                   str(root / "inventory"), "--engine", engine, "--format", "json"]
            steps = []
            for when in ("first", "warm"):
                print(f"{label}: exposure {engine} ({when})", file=sys.stderr, flush=True)
                steps.append(run(cmd, env=env, timeout=timeout, memory_limit=limit,
                                 log=LOGS / f"scale-{millions:g}M-{engine}-{when}.log"))
            first, warm = steps
            note = ""
            if first.ok and warm.ok and output_json(first) != output_json(warm):
                note = " (warm findings differ!)"
            per_m[engine, millions] = tuple(s.seconds / (records / 1e6) if s.ok else None for s in steps)
            spm = [f"{v:.2f}" if v is not None else "-" for v in per_m[engine, millions]]
            rows.append(
                f"| {label} | {engine} | {records:,} | {cell_seconds(floor, timeout, limit)} | "
                f"{cell_seconds(first, timeout, limit)} | {cell_seconds(warm, timeout, limit)}{note} | "
                f"{ratio(first, floor)} | {ratio(warm, first)} | {spm[0]} | {spm[1]} | "
                f"{cell_rss(floor)} | {cell_rss(first)} / {cell_rss(warm)} | "
                f"{findings(first) if first.ok else '-'} |")

    lines = [
        f"# Exposure at scale ({os.cpu_count()} cores, {os.sysconf('SC_PHYS_PAGES') * os.sysconf('SC_PAGE_SIZE') / 2**30:.0f} GB)",
        "",
        "Each step is its own process: wall seconds (CPU seconds) and peak RSS (GB). Floor: plain Polars "
        "`scan_csv` of the columns exposure needs, streaming aggregate. First: exposure with a "
        "fresh `FLOWTOOLS_STORE`; warm: again with the same store.",
        "",
        "| size | engine | records | floor s | first s | warm s | first/floor | warm/first | "
        "s per M first | s per M warm | RSS floor | RSS first / warm | findings |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
        *rows,
        "",
    ]
    done = sorted({m for (_, m) in per_m})
    if len(done) > 1:
        lo, hi = done[0], done[-1]
        lines.append(f"s per M at {hi:g} M vs {lo:g} M (1.00 = linear):")
        lines.append("")
        for engine in engines:
            a, b = per_m.get((engine, hi)), per_m.get((engine, lo))
            if a and b:
                pairs = [f"{x / y:.2f}" if x and y else "-" for x, y in zip(a, b, strict=True)]
                lines.append(f"- {engine}: first {pairs[0]}, warm {pairs[1]}")
        lines.append("")
    if generated:
        lines += ["Samples (`flowtools sample --seed 1 --hours 24 --scale S`, generated once, reused):", "",
                  "| size | records | scale | generate s | generate RSS |", "|---|--:|--:|--:|--:|",
                  *generated, ""]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "scale.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
