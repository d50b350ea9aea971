"""Benchmark: reading the benchmark folder from S3 (moto on 127.0.0.1) in each mode, next
to reading it from disk, in the same run.

Starts moto's server in a separate process (a real HTTP endpoint, as S3 would be; not a
thread sharing this process's GIL), uploads the folder made by ``bench_read.py`` (or
generates it), then times ``flowtools.load`` of the whole folder:

* from disk;
* ``s3_mode="cache"`` with an empty cache (list, download in parallel, read);
* ``s3_mode="cache"`` again (list, everything from the cache);
* ``s3_mode="stream"`` (list, Polars reads ``s3://`` directly);

and the listing alone for a 2-hour window (requests counted).

    python benchmarks/bench_sources.py [--out benchmarks/data/bench] [--engine polars]

Not part of ``make test`` (timings belong here, never in tests). A local moto endpoint has
no network latency and a slow Python server: the figures compare the modes' overheads on
this machine, not S3's throughput.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
BUCKET = "flowtools-bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            urllib.request.urlopen(url + "/moto-api/", timeout=1)
            return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("moto server did not start")


def upload(root: Path) -> tuple[int, int]:
    import boto3
    from botocore.config import Config

    s3 = boto3.client("s3", config=Config(max_pool_connections=32))
    s3.create_bucket(Bucket=BUCKET)
    files = [p for p in root.rglob("*") if p.is_file() and "_vpcflowlogs_" in p.name]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda p: s3.upload_file(str(p), BUCKET, p.relative_to(root).as_posix()), files))
    return len(files), sum(p.stat().st_size for p in files)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(HERE / "data" / "bench"), help="the benchmark folder (bench_read.py's)")
    ap.add_argument("--engine", default="polars", choices=("duckdb", "polars"))
    args = ap.parse_args(argv)

    import flowtools
    from flowtools import sample

    root = Path(args.out)
    if not (root / "truth.json").exists():
        sample.generate(root, seed=1, hours=24, scale=16)
    proc, url = start_moto()
    cache = Path(tempfile.mkdtemp(prefix="flowtools-bench-cache-"))
    os.environ.update(AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
                      AWS_DEFAULT_REGION="us-east-1", FLOWTOOLS_CACHE_DIR=str(cache), AWS_EC2_METADATA_DISABLED="true")
    rows = []
    try:
        t = time.perf_counter()
        n_files, n_bytes = upload(root)
        print(f"uploaded {n_files} files ({n_bytes / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s", file=sys.stderr)

        def run(what, source, **kw):
            t = time.perf_counter()
            flows = flowtools.load(source, engine=args.engine, progress=False, **kw)
            rows.append((what, time.perf_counter() - t, flows.report.records,
                         (flows.report.transfer or {}).get("summary", "")))
            return flows

        run("disk", root)
        run("s3 cache mode, cold (list + download + read)", f"s3://{BUCKET}", all=True, s3_mode="cache")
        run("s3 cache mode, warm (list + read from the cache)", f"s3://{BUCKET}", all=True, s3_mode="cache")
        run("s3 stream mode (list + read s3:// directly)", f"s3://{BUCKET}", all=True, s3_mode="stream")
        from flowtools.sources.s3 import list_objects
        from flowtools.window import Window

        t = time.perf_counter()
        found = list_objects(f"s3://{BUCKET}", window=Window.parse("2026-11-20T10:00Z",
                                                                                   "2026-11-20T12:00Z"))
        rows.append(("s3 listing of a 2-hour window", time.perf_counter() - t, 0,
                     f"{found.stats.requests} request(s), {len(found.stats.prefixes)} prefix(es), "
                     f"{len(found.objects)} object(s)"))
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(cache, ignore_errors=True)

    print(f"\n{n_files} files, {n_bytes / 1e6:.1f} MB gzip; engine {args.engine}\n")
    print(f"{'what':<50} {'seconds':>8} {'records/s':>11}  notes")
    for what, t, n, note in rows:
        rate = f"{n / t:>11,.0f}" if n else f"{'':>11}"
        print(f"{what:<50} {t:>8.2f} {rate}  {note}")
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    (results / "bench_sources.json").write_text(json.dumps(
        {"files": n_files, "bytes": n_bytes, "engine": args.engine,
         "rows": [{"what": w, "seconds": t, "records": n, "notes": note} for w, t, n, note in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
