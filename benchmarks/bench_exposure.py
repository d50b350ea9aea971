"""Benchmark for iterating on the exposure analysis: load once per engine, then time
``internet_exposure`` (full, with inventory, ip-ranges and configured findings; and naive)
beside the load time of the same run.

    python benchmarks/bench_exposure.py [--out benchmarks/data/bench] [--repeat 2]
        [--engines duckdb,polars] [--save DIR] [--compare DIR] [--explain]

``--save DIR`` writes the findings (JSON) of each engine and method; ``--compare DIR``
checks the findings of this run against saved ones (results must not change).
``--explain`` prints DuckDB's profile of each query of the full method (the eager steps
and the findings) and Polars' plan of the findings. Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _cpu() -> float:
    """CPU seconds of this process (all threads): steadier than wall time on a shared machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _load(flowtools, root: Path, engine: str, cache: str | None):
    if not cache:
        return flowtools.load(root, engine=engine, progress=False)
    import duckdb
    import polars as pl

    if not Path(cache).exists():
        flows = flowtools.load(root, engine="polars", progress=False)
        flows.frame.collect().write_parquet(cache)
    if engine == "polars":
        return pl.read_parquet(cache).lazy()
    con = duckdb.connect()  # as flowtools.load keeps them: Arrow with string views
    con.register("flows_data", pl.read_parquet(cache).to_arrow(compat_level=pl.CompatLevel.newest()))
    con.execute("CREATE VIEW flows AS SELECT * FROM flows_data")
    return con.table("flows")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "data" / "bench"))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--engines", default="duckdb,polars")
    ap.add_argument("--methods", default="full,naive")
    ap.add_argument("--save")
    ap.add_argument("--compare")
    ap.add_argument("--explain", action="store_true")
    ap.add_argument("--cache", help="Parquet copy of the loaded flows (written when missing): skips "
                    "flowtools.load when iterating (the load time shown is then the cache's)")
    args = ap.parse_args(argv)

    import flowtools
    from flowtools.analyses import findings_records

    root = Path(args.out)
    inventory = flowtools.Inventory.load(root / "inventory")
    ip_ranges = flowtools.IpRanges.load(root / "ip-ranges.json")
    options = {"full": {"inventory": inventory, "ip_ranges": ip_ranges, "include_configured": True},
               "naive": {"method": "naive"}}
    ok = True
    for engine in args.engines.split(","):
        t = time.perf_counter()
        flows = _load(flowtools, root, engine, args.cache)
        t_load = time.perf_counter() - t
        print(f"{engine:<7} load                 {t_load:7.2f} s", flush=True)
        for method in args.methods.split(","):
            best, best_cpu, found = float("inf"), float("inf"), None
            for _ in range(args.repeat):
                t, c = time.perf_counter(), _cpu()
                found = findings_records(flowtools.internet_exposure(flows, **options[method]))
                best, best_cpu = min(best, time.perf_counter() - t), min(best_cpu, _cpu() - c)
            print(f"{engine:<7} exposure {method:<11} {best:7.2f} s  (cpu {best_cpu:.2f} s; {len(found)} findings)",
                  flush=True)
            text = json.dumps(found, indent=1, sort_keys=True)
            if args.save:
                Path(args.save).mkdir(parents=True, exist_ok=True)
                (Path(args.save) / f"{engine}-{method}.json").write_text(text)
            if args.compare:
                for other in ("duckdb", "polars"):
                    ref = Path(args.compare) / f"{other}-{method}.json"
                    if ref.exists() and ref.read_text() != text:
                        ok = False
                        print(f"        DIFFERS from {ref}", flush=True)
        if args.explain:  # the call runs the eager steps, the collect the rest
            if engine == "duckdb":  # DuckDB prints the profile of every query it runs
                flows_frame = getattr(flows, "frame", flows)
                flows_frame.query("_flows", "PRAGMA enable_profiling")
                findings_records(flowtools.internet_exposure(flows, **options["full"]))
                flows_frame.query("_flows", "PRAGMA disable_profiling")
            else:
                print(flowtools.internet_exposure(flows, **options["full"]).explain())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
