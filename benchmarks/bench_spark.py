"""Benchmark: exposure on Spark (local) vs DuckDB vs Polars, store warm, in one run.

The data is the 20-million-record folder of :mod:`bench_scale` (``benchmarks/data/
scale-20M``, generated there; ``--source`` names another folder, e.g. ``data/samples``
for a quick check). The partition store is built once first (``flowtools store build``,
not timed in the table), then each engine runs, each in its own process, measured like
``bench_scale`` (wall time, CPU time, peak RSS by ``wait4``):

    flowtools exposure SRC --inventory SRC/inventory --engine E --format json

with ``FLOWTOOLS_STORE`` set to the shared store. Spark runs ``local[*]`` with
:func:`flowtools.engines.spark_session`'s settings; its wall time includes starting the
JVM (about 10 s). Caveat: for Spark, CPU time and peak RSS are the Python driver's only:
the JVM is started by the driver and not reaped by it, so ``wait4`` does not count it
(not measured yet; read the JVM's from ``ps`` or Spark's metrics meanwhile).
Findings are compared: every engine must print the same JSON.

    python benchmarks/bench_spark.py [--source DIR] [--engines spark,duckdb,polars]
        [--timeout 3600] [--memory-limit 16]

Prints a Markdown table and writes it to ``benchmarks/results/spark.md``. Not part of
``make test``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scale import DATA, RESULTS, cell_rss, cell_seconds, findings, run  # noqa: E402

DEFAULT_SOURCE = DATA / "scale-20M"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default=str(DEFAULT_SOURCE), help=f"flow-log folder (default {DEFAULT_SOURCE})")
    ap.add_argument("--engines", default="spark,duckdb,polars", help="default spark,duckdb,polars")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per step (default 3600)")
    ap.add_argument("--memory-limit", type=float, default=16, help="GB of RSS per step (default 16)")
    ap.add_argument("--out", default=str(RESULTS / "spark.md"), help="where the table is written")
    args = ap.parse_args(argv)
    source = Path(args.source)
    if not (source / "truth.json").exists() and not any(source.rglob("*.log.gz")):
        print(f"{source}: no flow logs (generate them with benchmarks/bench_scale.py --sizes 20)", file=sys.stderr)
        return 2
    limit = int(args.memory_limit * 2**30)
    cli = [sys.executable, "-m", "flowtools.cli"]
    inventory = ["--inventory", str(source / "inventory")] if (source / "inventory").is_dir() else []
    with tempfile.TemporaryDirectory(prefix="flowtools-bench-spark-") as store:
        env = {**os.environ, "FLOWTOOLS_STORE": store}
        build = run(cli + ["store", "build", str(source), "--all"], env=env, timeout=args.timeout,
                    memory_limit=limit)
        if not build.ok:
            print(f"store build {build.status}", file=sys.stderr)
            return 1
        steps = {}
        for engine in args.engines.split(","):
            print(f"exposure --engine {engine} ...", file=sys.stderr, flush=True)
            steps[engine] = run(cli + ["exposure", str(source), *inventory, "--engine", engine, "--format", "json"],
                                env=env, timeout=args.timeout, memory_limit=limit)
    outputs = {e: s.stdout for e, s in steps.items() if s.ok}
    same = len(set(outputs.values())) <= 1
    lines = [f"Exposure on {source} (store warm; built in {build.seconds:.1f} s)", "",
             "| engine | wall s (cpu s) | peak RSS GB | findings |", "|---|---|---|---|"]
    for engine, s in steps.items():
        lines.append(f"| {engine} | {cell_seconds(s, args.timeout, limit)} | {cell_rss(s)} | "
                     f"{findings(s) if s.ok else '-'} |")
    lines += ["", "identical findings on every engine: " + ("yes" if same else "NO")]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
