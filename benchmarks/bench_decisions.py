"""Benchmark: each decision analysis timed next to exposure on the same flows.

Generates (once) a sample of about ``--millions`` million records under
``benchmarks/data/decisions-<N>M/`` (seed 1, 24 hours; reused while its marker matches),
loads it per engine through the partition store (built on the first run), then times, on
the same flows: ``internet_exposure`` (full, with inventory and ip-ranges), ``egress``,
``watchlist_hits`` (the sample's ``watchlist.txt``), ``scanner_outcomes``, ``changes``
between the two halves of the day's findings, and the oriented ``traffic.conversations``
of the busiest interface. Each analysis's result is collected (that is when it runs).
Wall and CPU seconds; the issue's bar: no analysis costs more than exposure itself.

    python benchmarks/bench_decisions.py [--millions 2] [--engines duckdb,polars]

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
    args = ap.parse_args(argv)

    import polars as pl

    import flowtools
    from flowtools.analyses import change, egress, scanning, traffic, watchlist
    from flowtools.analyses.exposure import findings_records
    from flowtools.frames import to_polars

    root = HERE / "data" / f"decisions-{args.millions:g}M"
    marker = root.parent / f"decisions-{args.millions:g}M.json"
    scale = round(args.millions * 1e6 / RECORDS_PER_SCALE, 1)
    wanted = {"seed": 1, "hours": 24, "scale": scale}
    if not marker.exists() or json.loads(marker.read_text()) != wanted:
        print(f"generating {args.millions:g} M records (scale {scale}) into {root}", file=sys.stderr)
        flowtools.sample.generate(root, seed=1, hours=24, scale=scale)
        marker.write_text(json.dumps(wanted))
    inventory = flowtools.Inventory.load(root / "inventory")
    ranges = flowtools.IpRanges.load(root / "ip-ranges.json")
    listed = watchlist.Watchlist.load(root / "watchlist.txt")
    truth = json.loads((root / "truth.json").read_text())
    middle = truth["window"]["start"][:10] + "T12:00Z"
    rows = []
    for engine in args.engines.split(","):
        flows, w, c = _timed(lambda e=engine: flowtools.load(root, engine=e, progress=False,
                                                             store=HERE / "data" / f"decisions-store-{e}"))
        rows.append((engine, "load (store)", len(flows), w, c))
        steps = {
            "exposure": lambda f=flows: findings_records(flowtools.internet_exposure(f, inventory=inventory,
                                                                                     ip_ranges=ranges)),
            "egress": lambda f=flows: to_polars(egress.egress(f, inventory=inventory, ip_ranges=ranges)),
            "watchlist": lambda f=flows: to_polars(watchlist.watchlist_hits(f, listed, inventory=inventory)),
            "scanners": lambda f=flows: to_polars(scanning.scanner_outcomes(f, inventory=inventory)),
        }
        for name, fn in steps.items():
            out, w, c = _timed(fn)
            rows.append((engine, name, len(out), w, c))
        busiest = to_polars(flows.sql("SELECT interface_id, count(*) n FROM flows GROUP BY 1 ORDER BY n DESC LIMIT 1"))
        iface = busiest["interface_id"][0]
        out, w, c = _timed(lambda f=flows, i=iface: to_polars(traffic.conversations(f, interfaces=[i], inventory=inventory)))
        rows.append((engine, "conversations (busiest interface)", out.height, w, c))

        def halves(f=flows):
            first = flowtools.load(root, engine=f.engine, end=middle, progress=False,
                                   store=HERE / "data" / f"decisions-store-{f.engine}")
            second = flowtools.load(root, engine=f.engine, start=middle, progress=False,
                                    store=HERE / "data" / f"decisions-store-{f.engine}")
            a = findings_records(flowtools.internet_exposure(first, inventory=inventory))
            b = findings_records(flowtools.internet_exposure(second, inventory=inventory))
            return change.changes(pl.DataFrame(a), pl.DataFrame(b))

        out, w, c = _timed(halves)
        rows.append((engine, "diff of two half-days (2 exposures + changes)", out.height, w, c))
    print(f"\n{args.millions:g} M records; wall s (CPU s); rows of each result\n")
    print("| engine | step | rows | wall s | CPU s |\n|---|---|--:|--:|--:|")
    for engine, name, n, w, c in rows:
        print(f"| {engine} | {name} | {n:,} | {w:.2f} | {c:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
