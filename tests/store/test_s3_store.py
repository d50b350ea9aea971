"""A partition store on s3:// (moto in server mode: the session's server, tests/conftest.py)."""

from __future__ import annotations

import json

import aws_server
import boto3
import polars as pl
import pytest
from flowlog_files import frames_equal

import flowtools
from flowtools.cli import main
from flowtools.store import PartitionStore, StoreLockedError, build, open_flows
from flowtools.store import update as build_mod
from flowtools.store.location import S3
from flowtools.store.lock import S3Lock
from flowtools.store.write import Writer

#: Two hours of the embedded sample.
WINDOW = {"start": "2026-11-20T01:00Z", "end": "2026-11-20T03:00Z"}
STORE_BUCKET = "flowtools-store"


@pytest.fixture
def aws(moto_url, monkeypatch, tmp_path):
    aws_server.use_endpoint(monkeypatch, moto_url)
    monkeypatch.setenv("FLOWTOOLS_CACHE_DIR", str(tmp_path / "cache"))
    return moto_url


def _bucket(name: str) -> str:
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=name)
    return name


def _keys(bucket: str, prefix: str = "") -> set[str]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for p in pages for o in p.get("Contents", ())}


@pytest.fixture(scope="module")
def sample_store(moto_url, sample_dir):
    """The sample's two hours built into s3://flowtools-store/sample/ (read-only for tests)."""
    with pytest.MonkeyPatch.context() as mp:
        aws_server.use_endpoint(mp, moto_url)
        _bucket(STORE_BUCKET)
        result = build(sample_dir, f"s3://{STORE_BUCKET}/sample", **WINDOW)
    return f"s3://{STORE_BUCKET}/sample/", result


@pytest.fixture(scope="module")
def direct(sample_dir) -> flowtools.Flows:
    return flowtools.load(sample_dir, engine="polars", store=False, **WINDOW)


def test_the_sample_built_into_s3_loads_like_a_direct_read(aws, sample_store, direct, sample_dir, engine):
    uri, result = sample_store
    assert result.new == result.objects > 0 and result.records > 0
    keys = _keys(STORE_BUCKET, "sample/")
    m = PartitionStore(uri).manifest()
    assert {"sample/" + p for p in m.files} | {"sample/_manifest.json"} == keys  # no lock, journal or strays left

    flows = flowtools.load(sample_dir, engine=engine, store=uri, **WINDOW)
    assert flows.store is not None and flows.store.read == 0 and flows.store.stored == result.objects
    frames_equal(direct.to_polars(), flows.to_polars())
    assert flows.report.to_dict() | {"transfer": None} == direct.report.to_dict() | {"transfer": None}
    assert all(f.startswith(uri) for f in PartitionStore(uri).files(WINDOW.values()))


def test_open_flows_reads_s3_on_both_engines(aws, sample_store, direct, engine):
    uri, _ = sample_store
    window = (WINDOW["start"], "2026-11-20T02:00Z")
    frame = open_flows(uri, window, engine=engine)
    got = frame.collect() if engine == "polars" else frame.pl()
    want = flowtools.load(direct.report.source, engine="polars", store=False, start=window[0],
                          end=window[1]).to_polars()
    rows = got.join(want.select("source_file").unique(), on="source_file")  # late records found in their hour
    frames_equal(want, rows)


def test_store_info_on_s3(aws, sample_store, direct, capsys):
    uri, result = sample_store
    assert main(["store", "info", uri, "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["store"] == uri and info["objects"] == result.objects
    assert info["records"] == result.records >= len(direct)
    assert info["files"] == result.files_written - result.files_replaced


@pytest.fixture
def s3_source(aws, store_source, request) -> str:
    """The store tests' 3-hour generated sample (with bad files) in a bucket of its own."""
    bucket = _bucket(aws_server.bucket_name(request) + "-src")
    aws_server.upload_folder(boto3.client("s3"), store_source, bucket, "logs/")
    return f"s3://{bucket}/logs/"


def test_s3_source_into_s3_store_streams_and_a_second_build_reads_only_new_objects(s3_source, request, monkeypatch):
    store = f"s3://{_bucket(aws_server.bucket_name(request))}/st"
    batches: list[int] = []
    prepare = flowtools.sources.s3.S3Store.prepare

    def counting(self, objects, progress=None):
        batches.append(len(objects))
        return prepare(self, objects, progress)

    monkeypatch.setattr(build_mod, "COMMIT_OBJECTS", 10)
    monkeypatch.setattr(flowtools.sources.s3.S3Store, "prepare", counting)
    assert main(["store", "build", s3_source, store, "--start", "2026-11-20T00:00Z", "--end", "2026-11-20T01:00Z",
                 "--s3-mode", "cache"]) == 0
    first = PartitionStore(store).manifest()
    assert batches and max(batches) <= 10 and len(batches) > 1  # one commit's objects downloaded at a time

    second = build(s3_source, store, start="2026-11-20T00:00Z", end="2026-11-20T03:00Z", s3_mode="stream")
    assert second.unchanged == len(first.objects) and second.new == second.objects - len(first.objects) > 0
    m = PartitionStore(store).manifest()
    kept = {p: f for p, f in first.files.items() if p in m.files}
    assert kept and all(m.files[p].build == f.build for p, f in kept.items())  # old files not rewritten
    direct = flowtools.load(s3_source, engine="polars", store=False, start="2026-11-20T00:00Z",
                            end="2026-11-20T03:00Z")
    loaded = flowtools.load(s3_source, engine="duckdb", store=store, start="2026-11-20T00:00Z",
                            end="2026-11-20T03:00Z")
    assert loaded.store.read == 0
    frames_equal(direct.to_polars(), loaded.to_polars())
    assert loaded.report.to_dict()["issues"] == direct.report.to_dict()["issues"]  # bad files, from the manifest


def test_an_interrupted_s3_build_leaves_a_readable_store_and_the_next_completes_it(aws, store_source, request,
                                                                                     monkeypatch):
    bucket = _bucket(aws_server.bucket_name(request))
    store = f"s3://{bucket}/st"
    monkeypatch.setattr(build_mod, "COMMIT_OBJECTS", 40)
    state = {"reads": 0}
    read, write_frame = build_mod._Build.read, Writer.write_frame

    def counting_read(self, *a, **kw):
        state["reads"] += 1
        return read(self, *a, **kw)

    def failing_write(self, partition, df, **kw):
        if state["reads"] >= 2:
            raise RuntimeError("disk full (injected)")
        return write_frame(self, partition, df, **kw)

    with monkeypatch.context() as mp:
        mp.setattr(build_mod._Build, "read", counting_read)
        mp.setattr(Writer, "write_frame", failing_write)
        with pytest.raises(RuntimeError, match="injected"):
            build(store_source, store)
    assert "st/_lock" not in _keys(bucket)  # released on the way out
    m = PartitionStore(store).manifest()
    assert len(m.objects) == 40
    direct = flowtools.load(store_source, engine="polars", store=False).to_polars()
    held = direct.filter(pl.col("source_file").is_in(list(m.objects)))
    frames_equal(held, open_flows(store, None, engine="duckdb").pl())

    result = build(store_source, store)
    assert result.unchanged == 40 and result.new == result.objects - 40
    frames_equal(direct, open_flows(store, None, engine="polars").collect())
    m = PartitionStore(store).manifest()
    assert _keys(bucket) == {f"st/{p}" for p in [*m.files, *m.trash]} | {"st/_manifest.json"}


def test_the_s3_lock_makes_a_build_wait_and_an_expired_lock_is_taken_over(aws, store_source, request):
    bucket = _bucket(aws_server.bucket_name(request))
    store = f"s3://{bucket}/st"
    seen = []
    with S3Lock(S3(store)), pytest.raises(StoreLockedError, match="being built by pid"):
        build(store_source, store, lock_timeout=0.5, on_wait=seen.append)
    assert seen and "pid" in seen[0]
    assert not PartitionStore(store).manifest().objects  # nothing written while locked out

    # a build killed while holding the lock: the object stays, and expires
    boto3.client("s3").put_object(Bucket=bucket, Key="st/_lock",
                                  Body=json.dumps({"holder": "pid 1 on gone", "ttl_s": -60}).encode())
    result = build(store_source, store, lock_timeout=5)
    assert result.new == result.objects > 0
    assert "st/_lock" not in _keys(bucket)


def test_a_commit_after_losing_the_lock_publishes_nothing(aws, store_source, request, monkeypatch):
    bucket = _bucket(aws_server.bucket_name(request))
    store = f"s3://{bucket}/st"
    build(store_source, store, start="2026-11-20T00:00Z", end="2026-11-20T01:00Z")
    before = PartitionStore(store).manifest()
    load = S3.load_manifest

    def another_build_commits_meanwhile(self):
        m = load(self)
        s3 = boto3.client("s3")
        body = s3.get_object(Bucket=bucket, Key="st/_manifest.json")["Body"].read()
        s3.put_object(Bucket=bucket, Key="st/_manifest.json", Body=body + b" ")  # a new version
        return m

    with monkeypatch.context() as mp, pytest.raises(StoreLockedError, match="manifest changed"):
        mp.setattr(S3, "load_manifest", another_build_commits_meanwhile)
        build(store_source, store)
    assert PartitionStore(store).manifest().objects.keys() == before.objects.keys()
