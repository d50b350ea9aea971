"""DuckDB and Polars give identical results: a property test over generated folders."""

from __future__ import annotations

import random

from flowlog_files import frames_equal, log_name, write_log
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import flowtools
from flowtools.fields import DEFAULT_FORMAT, FIELDS

V5 = [f.name for f in FIELDS if f.version <= 5]
FOLDERS = [
    "AWSLogs/111111111111/vpcflowlogs/us-east-1/2026/11/20/",
    "AWSLogs/111111111111/vpcflowlogs/us-east-1/2026/11/20/10/",
    "AWSLogs/o-abc123def4/aws-account-id=222222222222/aws-service=vpcflowlogs/aws-region=eu-west-1/year=2026/month=11/day=20/hour=10/",
]


_ADDRESSES = ["10.0.0.5", "203.0.113.9", "2001:db8::1", "198.51.100.20"]
_VALUES = {
    "version": lambda r, t0: str(r.choice([2, 3, 5])),
    "srcport": lambda r, t0: str(r.randrange(0, 65536)),
    "dstport": lambda r, t0: str(r.randrange(0, 65536)),
    "protocol": lambda r, t0: r.choice(["6", "17", "1", "58"]),
    "packets": lambda r, t0: str(r.randrange(1, 10**9)),
    "bytes": lambda r, t0: str(r.randrange(1, 10**9)),
    "start": lambda r, t0: str(t0 * r.choice([1, 1, 1000])),  # some in milliseconds
    "end": lambda r, t0: str(t0 + r.randrange(0, 600)),
    "tcp-flags": lambda r, t0: str(r.choice([0, 1, 2, 3, 4, 18, 19])),
    "traffic-path": lambda r, t0: str(r.randrange(1, 9)),
    "srcaddr": lambda r, t0: r.choice(_ADDRESSES),
    "dstaddr": lambda r, t0: r.choice(_ADDRESSES),
    "pkt-srcaddr": lambda r, t0: r.choice(_ADDRESSES),
    "pkt-dstaddr": lambda r, t0: r.choice(_ADDRESSES),
    "action": lambda r, t0: r.choice(["ACCEPT", "REJECT"]),
    "log-status": lambda r, t0: r.choice(["OK", "OK", "NODATA", "SKIPDATA"]),
    "account-id": lambda r, t0: r.choice(["111111111111", "unknown", "012345678901"]),
}


def _value(rng: random.Random, name: str, t0: int) -> str:
    if rng.random() < 0.1 and name not in ("start", "end"):
        return "-"
    make = _VALUES.get(name)
    return make(rng, t0) if make else f"{name}-{rng.randrange(5)}"


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n_files=st.integers(1, 5), bad=st.booleans())
def test_duckdb_and_polars_identical(tmp_path_factory, seed, n_files, bad):
    rng = random.Random(seed)
    root = tmp_path_factory.mktemp("tree")
    t0 = 1795169100
    for i in range(n_files):
        fields = list(DEFAULT_FORMAT) if rng.random() < 0.4 else rng.sample(V5, rng.randrange(3, len(V5)))
        if rng.random() < 0.3:
            fields.append("flow-tag")  # an unknown, newer field
        if "start" not in fields:
            fields += ["start", "end"]
        lines = [" ".join(_value(rng, f, t0) for f in fields) for _ in range(rng.randrange(0, 40))]
        if bad and lines:
            lines.insert(rng.randrange(len(lines)), "2 x y")
        key = rng.choice(FOLDERS) + log_name("111111111111", "us-east-1", flow_log=f"fl-{i:08x}",
                                             ts="20261120T1005Z", hash_=f"{i:08x}")
        write_log(root, key, lines, header=" ".join(fields))
    a = flowtools.load(root, engine="duckdb", start="2026-11-20T10:00Z", end="2026-11-20T10:10Z")
    b = flowtools.load(root, engine="polars", start="2026-11-20T10:00Z", end="2026-11-20T10:10Z")
    frames_equal(a.to_polars(), b.to_polars())
    assert a.report.to_dict() == b.report.to_dict()
    # the SQL view answers the same on both engines
    q = "SELECT action, count(*), sum(bytes) FROM flows GROUP BY ALL ORDER BY ALL"
    assert a.sql(q).fetchall() == b.sql(q).fetchall()


def test_duckdb_spilling_table_mode_gives_the_same_rows(tmp_path, monkeypatch):
    """Past ARROW_MEMORY_LIMIT the chunks go to a DuckDB table: same rows, same SQL."""
    import flowtools.flows as flows_mod
    import flowtools.read.reader as reader_mod

    rng = random.Random(7)
    for i in range(4):
        fields = list(DEFAULT_FORMAT)
        lines = [" ".join(_value(rng, f, 1795169100) for f in fields) for _ in range(30)]
        write_log(tmp_path, FOLDERS[0] + log_name("111111111111", "us-east-1", flow_log=f"fl-{i:08x}",
                                                  ts="20261120T1005Z", hash_=f"{i:08x}"), lines, header=" ".join(fields))
    in_memory = flowtools.load(tmp_path, engine="duckdb", store=False)
    monkeypatch.setattr(flows_mod, "ARROW_MEMORY_LIMIT", 1)
    monkeypatch.setattr(reader_mod, "CHUNK_FILES", 1)  # several chunks
    spilled = flowtools.load(tmp_path, engine="duckdb", store=False)
    kinds = {r[0] for r in spilled.connection.sql(
        "SELECT table_type FROM information_schema.tables WHERE table_name = 'flows_data'").fetchall()}
    assert kinds == {"BASE TABLE"}
    frames_equal(in_memory.to_polars(), spilled.to_polars())
    assert spilled.report.records == 120


def test_chunks_are_bounded_by_stored_bytes_too(tmp_path, monkeypatch):
    """Large files make chunks of fewer files: the same rows and report, more passes."""
    import flowtools.read.reader as reader_mod

    rng = random.Random(11)
    for i in range(5):
        fields = list(DEFAULT_FORMAT)
        lines = [" ".join(_value(rng, f, 1795169100) for f in fields) for _ in range(20)]
        write_log(tmp_path, FOLDERS[0] + log_name("111111111111", "us-east-1", flow_log=f"fl-{i:08x}",
                                                  ts="20261120T1005Z", hash_=f"{i:08x}"), lines, header=" ".join(fields))
    whole = flowtools.load(tmp_path, engine="polars", store=False)
    passes: list[int] = []
    real = reader_mod._Reader._chunks

    def counted(self, paths):
        out = real(self, paths)
        passes.append(len(out))
        return out

    monkeypatch.setattr(reader_mod._Reader, "_chunks", counted)
    biggest = max(p.stat().st_size for p in tmp_path.rglob("*.log.gz"))
    monkeypatch.setattr(reader_mod, "CHUNK_BYTES", 2 * biggest)  # two files a chunk at most
    chunked = flowtools.load(tmp_path, engine="polars", store=False)
    assert passes == [3]
    frames_equal(whole.to_polars(), chunked.to_polars())
    assert chunked.report.to_dict() == whole.report.to_dict()
    monkeypatch.setattr(reader_mod, "CHUNK_BYTES", 1)  # every file larger than a chunk: one each
    passes.clear()
    flowtools.load(tmp_path, engine="polars", store=False)
    assert passes == [5]
