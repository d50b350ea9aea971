"""Benchmark: each decision analysis timed next to exposure on the same flows.

Generates (once) a sample of about ``--millions`` million records under
``DATA/decisions-<N>M/`` (``--data``, default ``benchmarks/data``; seed 1, 24 hours;
reused while its marker matches),
loads it per engine through the partition store (built on the first run), then times, on
the same flows: ``internet_exposure`` (full, with inventory and ip-ranges), ``egress``,
``watchlist_hits`` (the sample's ``watchlist.txt``), ``scanner_outcomes``, ``changes``
between the two halves of the day's findings, and the oriented ``traffic.conversations``
of the busiest interface. Each analysis's result is collected (that is when it runs).
Wall and CPU seconds (CPU: this process's user + system time, every thread: steadier than
wall time on a shared machine); ``--repeat N`` runs every step N times in turn (the table
has one row per run); ``--steps exposure,egress`` runs only the named steps (by the start
of their name; exposure is always run, as the reference). The issue's bar: no analysis
costs more than exposure itself.

    python benchmarks/bench_decisions.py [--millions 2] [--engines duckdb,polars] [--repeat 1] [--data DIR]
                                         [--steps NAME,...]

Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RECORDS_PER_SCALE = 151_500  # records per unit of `flowtools sample --scale`, 24 hours


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _timed(fn):
    w, c = time.perf_counter(), _cpu()
    out = fn()
    return out, time.perf_counter() - w, _cpu() - c


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--millions", type=float, default=2.0)
    ap.add_argument("--engines", default="duckdb,polars")
    ap.add_argument("--repeat", type=int, default=1, help="runs of every step (default 1)")
    ap.add_argument("--data", type=Path, default=HERE / "data",
                    help="folder of the generated sample and the stores (default benchmarks/data)")
    ap.add_argument("--steps", default="",
                    help="comma-separated starts of step names to run (default: all; exposure always runs)")
    args = ap.parse_args(argv)
    wanted_steps = [w.strip() for w in args.steps.split(",") if w.strip()]

    def selected(step: str) -> bool:
        return not wanted_steps or step == "exposure" or any(step.startswith(w) for w in wanted_steps)

    import polars as pl

    import flowtools
    from flowtools.analyses import change, egress, scanning, traffic, watchlist
    from flowtools.analyses.exposure import findings_records
    from flowtools.frames import to_polars
    from flowtools.sample import generate

    data = args.data
    data.mkdir(parents=True, exist_ok=True)
    root = data / f"decisions-{args.millions:g}M"
    marker = root.parent / f"decisions-{args.millions:g}M.json"
    scale = round(args.millions * 1e6 / RECORDS_PER_SCALE, 1)
    wanted = {"seed": 1, "hours": 24, "scale": scale}
    if not marker.exists() or json.loads(marker.read_text()) != wanted:
        print(f"generating {args.millions:g} M records (scale {scale}) into {root}", file=sys.stderr)
        generate(root, seed=1, hours=24, scale=scale)
        marker.write_text(json.dumps(wanted))
    inventory = flowtools.Inventory.load(root / "inventory")
    ranges = flowtools.IpRanges.load(root / "ip-ranges.json")
    listed = watchlist.Watchlist.load(root / "watchlist.txt")
    truth = json.loads((root / "truth.json").read_text())
    middle = truth["window"]["start"][:10] + "T12:00Z"
    rows = []
    for engine in args.engines.split(","):
        store = data / f"decisions-{args.millions:g}M-store-{engine}"
        flows, w, c = _timed(lambda e=engine, s=store: flowtools.load(root, engine=e, progress=False, store=s))
        rows.append((engine, 0, "load (store)", len(flows), w, c))
        busiest = to_polars(flows.sql("SELECT interface_id, count(*) n FROM flows GROUP BY 1 ORDER BY n DESC LIMIT 1"))
        iface = busiest["interface_id"][0]
        halves = [flowtools.load(root, engine=engine, progress=False, store=store, **bounds)
                  for bounds in ({"end": middle}, {"start": middle})]
        before = after = None  # the two halves' findings, when their diff is timed
        if selected("diff: changes of two findings"):
            before, after = (pl.DataFrame(findings_records(flowtools.internet_exposure(h, inventory=inventory)))
                             for h in halves)

        def diff_windows(h=halves):
            a, b = (findings_records(flowtools.internet_exposure(x, inventory=inventory)) for x in h)
            return change.changes(pl.DataFrame(a), pl.DataFrame(b))

        steps = {
            "exposure": lambda f=flows: findings_records(flowtools.internet_exposure(f, inventory=inventory,
                                                                                     ip_ranges=ranges)),
            "egress": lambda f=flows: to_polars(egress.egress(f, inventory=inventory, ip_ranges=ranges)),
            "watchlist": lambda f=flows: to_polars(watchlist.watchlist_hits(f, listed, inventory=inventory)),
            "scanners": lambda f=flows: to_polars(scanning.scanner_outcomes(f, inventory=inventory)),
            "conversations (busiest interface)": lambda f=flows, i=iface: to_polars(
                traffic.conversations(f, interfaces=[i], inventory=inventory)),
            "diff: changes of two findings": lambda a=before, b=after: change.changes(a, b),
            "diff of two half-days (2 exposures + changes)": diff_windows,
        }
        steps = {name: fn for name, fn in steps.items() if selected(name)}
        for run in range(1, args.repeat + 1):
            for name, fn in steps.items():
                out, w, c = _timed(fn)
                rows.append((engine, run, name, len(out), w, c))
    print(f"\n{args.millions:g} M records ({args.repeat} run(s) of each step); CPU s relative to exposure's "
          "in the same run and engine\n")
    print("| engine | run | step | rows | wall s | CPU s | CPU / exposure |\n|---|--:|---|--:|--:|--:|--:|")
    base = {(e, r): c for e, r, name, _, _, c in rows if name == "exposure"}
    for engine, run, name, n, w, c in rows:
        ratio = f"{c / base[(engine, run)]:.2f}" if (engine, run) in base and base[(engine, run)] > 0 else "-"
        print(f"| {engine} | {run or '-'} | {name} | {n:,} | {w:.2f} | {c:.2f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
