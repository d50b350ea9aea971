"""Benchmark: reading (and analysing) >= 2 M flow-log records on both engines.

Generates a realistic folder with ``flowtools.sample.generate`` (one object per flow log
per 5 minutes, several formats and layouts), then times, in the same run:
``zcat`` of the same files, a plain ``polars.scan_csv`` count and full read,
``flowtools.load`` on DuckDB and Polars, and the analyses on top of each load.

    python benchmarks/bench_read.py [--scale 16] [--hours 24] [--out benchmarks/data/bench]
        [--repeat 2] [--skip-analyses | --skip-enrichment]

Not part of ``make test`` (timings belong here, never in tests).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent


def timed(fn, repeat: int = 2):
    """Best of ``repeat`` runs: (seconds, result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def flow_files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*.log.gz") if "_vpcflowlogs_" in p.name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=16.0)
    ap.add_argument("--hours", type=int, default=24)
    ap.add_argument("--out", default=str(HERE / "data" / "bench"))
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--skip-analyses", action="store_true")
    ap.add_argument("--skip-enrichment", action="store_true", help="time exposure but not the enrichment rows")
    args = ap.parse_args(argv)

    import flowtools
    from flowtools import sample

    root = Path(args.out)
    if not (root / "truth.json").exists():
        t = time.perf_counter()
        sample.generate(root, seed=1, hours=args.hours, scale=args.scale)
        print(f"generated {root} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    files = flow_files(root)
    size = sum(os.path.getsize(f) for f in files)
    rows: list[tuple[str, float, int]] = []

    t_zcat, _ = timed(lambda: subprocess.run(f"find {root} -name '*_vpcflowlogs_*.log.gz' -print0 | xargs -0 zcat > /dev/null",
                                             shell=True, check=True), args.repeat)
    t_count, n = timed(lambda: pl.scan_csv(files, separator=" ").select(pl.len()).collect().item(), args.repeat)
    records = int(n)
    rows += [("zcat (decompress only)", t_zcat, records), ("polars scan_csv count", t_count, records)]
    by_header: dict[str, list[str]] = {}  # the sample mixes formats: one scan per header
    for f in files:
        with gzip.open(f, "rt") as fh:
            by_header.setdefault(fh.readline(), []).append(f)

    def plain():
        return pl.concat([pl.scan_csv(group, separator=" ", null_values="-", infer_schema=False)
                          for group in by_header.values()], how="diagonal").collect()

    t_full, _ = timed(plain, args.repeat)
    rows.append(("polars scan_csv all columns (untyped, unvalidated)", t_full, records))

    loads = {}
    for engine in ("duckdb", "polars"):
        t, flows = timed(lambda e=engine: flowtools.load(root, engine=e, progress=False), args.repeat)
        loads[engine] = flows
        rows.append((f"flowtools.load engine={engine}", t, flows.report.records))

    if not args.skip_analyses:
        import narwhals as nw

        inventory = flowtools.Inventory.load(root / "inventory")
        ip_ranges = flowtools.IpRanges.load(root / "ip-ranges.json")
        from flowtools.analyses import findings_records

        for engine, flows in loads.items():
            t, found = timed(lambda f=flows: findings_records(flowtools.internet_exposure(
                f, inventory=inventory, ip_ranges=ip_ranges, include_configured=True)), args.repeat)
            rows.append((f"internet_exposure engine={engine} ({len(found)} findings)", t, flows.report.records))
            t, found = timed(lambda f=flows: findings_records(flowtools.internet_exposure(f, method="naive")),
                             args.repeat)
            rows.append((f"internet_exposure naive engine={engine} ({len(found)} findings)", t,
                         flows.report.records))

        def by_names(f):  # a typical question over enriched flows: bytes per resource and peer scope
            frame = nw.from_native(flowtools.enrich(f, inventory=inventory, ip_ranges=ip_ranges))
            return frame.group_by("iface_resource_name", "src_scope", "dst_scope", "dst_aws_service").agg(
                nw.col("bytes").sum()).collect("polars").shape[0]

        def materialise(f):
            out = flowtools.enrich(f, inventory=inventory, ip_ranges=ip_ranges)
            return out.pl().height if hasattr(out, "pl") else out.collect().height

        for engine, flows in loads.items():
            if args.skip_enrichment:
                break
            t, _ = timed(lambda f=flows: by_names(f), args.repeat)
            rows.append((f"enrich + group by names engine={engine}", t, flows.report.records))
            t, _ = timed(lambda f=flows: materialise(f), args.repeat)
            rows.append((f"enrich, all 96 columns materialised engine={engine}", t, flows.report.records))

    print(f"\n{len(files)} files, {size / 1e6:.1f} MB gzip, {records:,} records; best of {args.repeat}\n")
    print(f"{'what':<62} {'seconds':>8} {'records/s':>12}")
    for what, t, n in rows:
        print(f"{what:<62} {t:>8.2f} {n / t:>12,.0f}")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "bench_read.json").write_text(json.dumps(
        {"files": len(files), "bytes": size, "records": records,
         "rows": [{"what": w, "seconds": t, "records": n} for w, t, n in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
