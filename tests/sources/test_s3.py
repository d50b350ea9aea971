"""``s3://`` SOURCEs against moto in server mode (and a fault-injecting proxy in front of it)."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from aws_server import SAMPLE_BUCKET, SAMPLE_PREFIX, bucket_name
from flowlog_files import DEFAULT_HEADER, daily_key, frames_equal, log_name

import flowtools
from flowtools.analyses.exposure import findings_records
from flowtools.cli import main
from flowtools.errors import ReadError, SourceError, UsageError
from flowtools.layout import ObjectInfo
from flowtools.sources.cache import ObjectCache, materialize_key
from flowtools.sources.s3 import fetch, list_objects
from flowtools.window import Window

#: One hour: each test that reads it downloads or streams that hour's objects.
WINDOW = {"start": "2026-11-20T10:00Z", "end": "2026-11-20T11:00Z"}
SORT = ("source_file", "interface_id", "start", "srcaddr", "dstaddr", "srcport", "dstport", "end", "action")


def _put_log(s3, bucket: str, key: str, lines, header: str | None = DEFAULT_HEADER) -> bytes:
    body = "\n".join(([header] if header else []) + list(lines)) + "\n"
    data = gzip.compress(body.encode(), mtime=0)
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return data


def _record(i: int, start: int = 1795168800) -> str:  # 2026-11-20T10:00Z
    return (f"2 123456789010 eni-0a{i:015d} 10.0.0.{i % 250 + 1} 203.0.113.9 443 {40000 + i % 20000} 6 3 180 "
            f"{start} {start + 30} ACCEPT OK")


@pytest.fixture(scope="module")
def local_flows(s3_sample):
    """What the bucket holds, read from disk, once per engine (what S3 must reproduce)."""
    return {e: flowtools.load(s3_sample, engine=e) for e in ("duckdb", "polars")}


@pytest.fixture(scope="module")
def local_window(sample_dir):
    return flowtools.load(sample_dir, engine="polars", **WINDOW).to_polars()


# -- the acceptance scenario: the sample from a bucket ---------------------------------------
# The bucket holds a third of the sample's hours (S3_HOURS): its layouts, accounts and regions
# at a third of the requests.

# Both engines read through the one Polars reader (flowtools.read), so each engine is paired
# with one mode: every engine and every mode is covered at half the cost of all four pairs.
@pytest.mark.slow
@pytest.mark.parametrize("engine,mode", [("duckdb", "cache"), ("polars", "stream")])
def test_sample_from_s3_gives_the_same_rows_and_findings_as_from_disk(
        aws, sample_bucket, local_flows, sample_dir, engine, mode):
    flows = flowtools.load(sample_bucket, all=True, engine=engine, s3_mode=mode)
    local = local_flows[engine]
    assert flows.report.transfer["mode"] == mode
    assert flows.report.files_read == local.report.files_read
    frames_equal(flows.to_polars(), local.to_polars(), SORT)
    inventory = flowtools.Inventory.load(sample_dir / "inventory")
    remote_findings = findings_records(flowtools.internet_exposure(flows, inventory=inventory))
    local_findings = findings_records(flowtools.internet_exposure(local, inventory=inventory))
    assert remote_findings == local_findings
    assert len(remote_findings) > 10


def test_a_window_from_s3_equals_the_same_window_from_disk(aws, sample_bucket, local_window):
    flows = flowtools.load(sample_bucket, engine="polars", **WINDOW)
    frames_equal(flows.to_polars(), local_window, SORT)


def test_a_remote_source_needs_a_window_or_all(aws, sample_bucket):
    with pytest.raises(UsageError, match="--start/--end"):
        flowtools.load(sample_bucket)
    assert main(["info", sample_bucket]) == 2


# -- listing: pruned before it starts ---------------------------------------------------------

def test_a_two_hour_window_lists_only_the_prefixes_of_those_hours(aws, sample_bucket, proxy, s3, request):
    # Other days exist too; their objects are corrupt, so reading any would show.
    bucket = bucket_name(request)
    s3.create_bucket(Bucket=bucket)
    src = s3.list_objects_v2(Bucket=SAMPLE_BUCKET, Prefix=SAMPLE_PREFIX + "AWSLogs/o-abc123def4/")["Contents"]
    for o in src[:150]:  # org + hourly layout, the first hours
        s3.copy_object(Bucket=bucket, Key=o["Key"][len(SAMPLE_PREFIX):],
                       CopySource={"Bucket": SAMPLE_BUCKET, "Key": o["Key"]})
    for day in ("2026/11/19", "2026/10/05", "2025/11/20"):
        for hour in ("10", "11"):
            key = (f"AWSLogs/o-abc123def4/111111111111/vpcflowlogs/us-east-1/{day}/{hour}/"
                   + log_name("111111111111", ts=day.replace("/", "") + f"T{hour}00Z"))
            s3.put_object(Bucket=bucket, Key=key, Body=b"corrupt")
    proxy.clear()
    flows = flowtools.load(f"s3://{bucket}/", start="2026-11-20T01:00Z", end="2026-11-20T03:00Z", s3_mode="cache")
    assert flows.report.ok and flows.report.records > 0
    listed = [s.params.get("prefix", "") for s in proxy.seen(action="ListObjectsV2")]
    hours = sorted(p for p in listed if p.count("/") == 9)  # AWSLogs/org/account/vpcflowlogs/region/yyyy/MM/dd/HH/
    assert [h.rsplit("/", 2)[-2] for h in hours] == ["00", "01", "02", "03"]  # the window, with the slack
    assert not [p for p in listed if "/2026/11/19" in p or "/2026/10/" in p or "/2025/" in p]
    assert len(listed) <= 10
    gets = proxy.seen(action="GetObject")
    assert len(gets) == flows.report.files_read  # one download per file read, nothing else


def test_listing_follows_pagination_past_1000_keys(aws, s3, request, proxy):
    bucket = bucket_name(request)
    s3.create_bucket(Bucket=bucket)
    keys = [daily_key(flow_log=f"fl-{n:08x}", ts=f"20261120T{h:02d}{m:02d}Z")
            for n in range(6) for h in range(24) for m in range(0, 60, 5)][:1100]
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: s3.put_object(Bucket=bucket, Key=k, Body=b"x"), keys))
    proxy.clear()
    found = list_objects(f"s3://{bucket}", window=Window.parse("2026-11-20", "2026-11-21"))
    assert sorted(o.key for o in found.objects) == sorted(keys)
    day = "AWSLogs/123456789010/vpcflowlogs/us-east-1/2026/11/20/"
    pages = [s for s in proxy.seen(action="ListObjectsV2") if s.params.get("prefix") == day]
    assert len(pages) == 2 and pages[1].params.get("continuation-token")
    assert found.stats.requests == proxy.count(action="ListObjectsV2")


def test_accounts_and_regions_narrow_the_listing(aws, sample_bucket, proxy):
    flows = flowtools.load(sample_bucket, accounts="333333333333", regions="eu-west-1", s3_mode="stream", **WINDOW)
    assert {f.account_id for f in flows.report.files} == {"333333333333"}
    listed = [s.params.get("prefix", "") for s in proxy.seen(action="ListObjectsV2")]
    assert not [p for p in listed if "111111111111/vpcflowlogs/" in p or "222222222222/vpcflowlogs/" in p]
    assert not [p for p in listed if p.endswith("aws-service=vpcflowlogs/")]  # given regions are not listed


def test_a_source_that_is_one_object_is_read_whatever_its_name(aws, s3, request):
    bucket = bucket_name(request)
    s3.create_bucket(Bucket=bucket)
    _put_log(s3, bucket, "exports/flows.gz", [_record(1), _record(2)])
    flows = flowtools.load(f"s3://{bucket}/exports/flows.gz", all=True)
    assert flows.report.records == 2
    assert [f.file for f in flows.report.files] == ["flows.gz"]


# -- the cache ----------------------------------------------------------------------------------

def test_a_second_run_downloads_nothing(aws, sample_bucket, proxy):
    # the object cache alone (no partition store): the second run reads the cached copies
    first = flowtools.load(sample_bucket, engine="polars", s3_mode="cache", store=False, **WINDOW)
    assert first.report.transfer["files_downloaded"] == first.report.files_read > 0
    proxy.clear()
    second = flowtools.load(sample_bucket, engine="polars", s3_mode="cache", store=False, **WINDOW)
    assert second.report.transfer["files_downloaded"] == 0
    assert second.report.transfer["files_from_cache"] == second.report.files_read
    assert proxy.count(action="GetObject") == 0
    frames_equal(first.to_polars(), second.to_polars(), SORT)
    # through the partition store: the objects it holds are neither downloaded nor read again
    stored = flowtools.load(sample_bucket, engine="polars", s3_mode="stream", **WINDOW)
    assert stored.store.read == stored.report.files_read
    proxy.clear()
    again = flowtools.load(sample_bucket, engine="polars", s3_mode="stream", **WINDOW)
    assert again.store.read == 0 and again.store.stored == again.report.files_read
    assert proxy.count(action="GetObject") == 0
    frames_equal(first.to_polars(), again.to_polars(), SORT)
    assert again.report.to_dict() | {"transfer": None} == first.report.to_dict() | {"transfer": None}


def test_a_changed_object_is_downloaded_again(aws, s3, request):
    bucket = bucket_name(request)
    s3.create_bucket(Bucket=bucket)
    key = daily_key()
    _put_log(s3, bucket, key, [_record(1)])
    assert flowtools.load(f"s3://{bucket}", all=True, s3_mode="cache").report.records == 1
    _put_log(s3, bucket, key, [_record(1), _record(2)])
    again = flowtools.load(f"s3://{bucket}", all=True, s3_mode="cache")
    assert again.report.records == 2 and again.report.transfer["files_downloaded"] == 1
    copies = [p for p in ObjectCache().root.rglob("*") if p.is_file()]
    assert len(copies) == 1  # the older copy was removed


def test_keys_with_dot_dot_cannot_escape_the_cache_or_the_fetch_folder(aws, s3, request, tmp_path):
    bucket = bucket_name(request)
    s3.create_bucket(Bucket=bucket)
    base = "a/b/c/d/"  # deeper than any layout: listed recursively, whatever the keys hold
    evil = ["../../../../../escape/" + log_name(ts="20261120T1000Z"),
            "..//..//" + log_name(ts="20261120T1005Z"),
            "..\\..\\" + log_name(ts="20261120T1010Z")]
    for key in evil:
        _put_log(s3, bucket, base + key, [_record(1)])
    flows = flowtools.load(f"s3://{bucket}/{base}", all=True, s3_mode="cache")
    assert flows.report.records == 3
    assert sorted(f.file for f in flows.report.files) == sorted(evil)  # source_file is the key
    cache_root = ObjectCache().root.resolve()
    cached = [p for p in ObjectCache().root.rglob("*") if p.is_file()]
    assert len(cached) == 3 and all(p.resolve().is_relative_to(cache_root) for p in cached)
    dest = tmp_path / "copy"
    summary = fetch(f"s3://{bucket}/{base}", dest, all=True)
    assert summary.files_downloaded == 3
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and not {"aws-home", "cache", "copy"} & set(p.parts)]
    assert outside == []
    assert len([p for p in dest.rglob("*") if p.is_file()]) == 3
    for key in ("../x", "a/../../b", "/../x", "..\\..\\x", "../.."):
        assert materialize_key(dest, key).resolve().is_relative_to(dest.resolve())
    with pytest.raises(SourceError, match="names no file"):
        materialize_key(dest, "./")


def test_an_interrupted_download_resumes_where_it_stopped(aws, s3, request, tmp_path):
    bucket = bucket_name(request)
    s3.create_bucket(Bucket=bucket)
    key = daily_key()
    data = _put_log(s3, bucket, key, [_record(i) for i in range(2000)])
    etag = s3.head_object(Bucket=bucket, Key=key)["ETag"]
    cache = ObjectCache()
    target = cache.path_for(bucket, key, etag)
    target.parent.mkdir(parents=True)
    target.with_name(target.name + ".part").write_bytes(data[:1000])  # what a killed run left
    path, moved = cache.fetch(s3, bucket, key, etag, len(data))
    assert moved == len(data) - 1000 and path.read_bytes() == data
    # a partial download of an older version is not resumed
    target2 = cache.path_for(bucket, key, '"0123"')
    target2.with_name(target2.name + ".part").write_bytes(b"x" * 1000)
    path2, moved2 = cache.fetch(s3, bucket, key, '"0123"', len(data))
    assert moved2 == len(data) and path2.read_bytes() == data


def test_cache_info_and_clear(aws, sample_bucket, capsys):
    flowtools.load(sample_bucket, engine="polars", s3_mode="cache", **WINDOW)
    assert main(["cache", "info", "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["files"] > 0 and info["buckets"][SAMPLE_BUCKET]["files"] == info["files"]
    assert main(["cache", "clear"]) == 0
    assert "removed" in capsys.readouterr().err
    assert ObjectCache().report().files == 0


def test_auto_mode_streams_what_does_not_fit_the_cache_budget(aws, sample_bucket, monkeypatch):
    monkeypatch.setenv("FLOWTOOLS_CACHE_BUDGET", "1000")
    flows = flowtools.load(sample_bucket, engine="polars", store=False, **WINDOW)
    assert flows.report.transfer["mode"] == "stream"
    monkeypatch.delenv("FLOWTOOLS_CACHE_BUDGET")
    assert flowtools.load(sample_bucket, engine="polars", store=False, **WINDOW).report.transfer["mode"] == "cache"


# -- fetch ----------------------------------------------------------------------------------------

def test_fetch_copies_the_window_in_the_same_layout(aws, sample_bucket, local_window, tmp_path, capsys):
    dest = tmp_path / "offline"
    assert main(["fetch", sample_bucket, str(dest), "--start", WINDOW["start"], "--end", WINDOW["end"]]) == 0
    assert "downloaded" in capsys.readouterr().err
    offline = flowtools.load(dest, engine="polars", **WINDOW)
    frames_equal(offline.to_polars(), local_window, SORT)  # same rows, same source_file
    again = fetch(sample_bucket, dest, **WINDOW)
    assert again.files_downloaded == 0 and again.files_present == again.files


def test_fetch_needs_a_window(aws, sample_bucket, tmp_path):
    assert main(["fetch", sample_bucket, str(tmp_path / "x")]) == 2


# -- failures -------------------------------------------------------------------------------------

def test_throttling_is_retried_then_succeeds(aws, sample_bucket, proxy):
    proxy.throttle("ListObjectsV2", service="s3", times=2)
    proxy.throttle("GetObject", service="s3", times=2)
    flows = flowtools.load(sample_bucket, engine="polars", s3_mode="cache", **WINDOW)
    assert flows.report.ok and flows.report.records > 0
    assert proxy.count(injected="SlowDown") == 4


def test_a_missing_bucket_is_a_clear_error(aws, capsys):
    with pytest.raises(SourceError, match=r"s3://no-such-bucket-here: no such bucket"):
        flowtools.load("s3://no-such-bucket-here/AWSLogs/", all=True)
    assert main(["info", "s3://no-such-bucket-here/", "--all"]) == 1
    assert "no such bucket" in capsys.readouterr().err


def test_access_denied_names_the_bucket_and_the_permission(aws, sample_bucket, proxy, monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "SECRET-never-printed-7f3a")
    proxy.deny("ListObjectsV2", service="s3")
    with pytest.raises(SourceError) as e:
        flowtools.load(sample_bucket, **WINDOW)
    text = str(e.value)
    assert "access denied" in text and f"s3://{SAMPLE_BUCKET}/" in text and "s3:ListBucket" in text
    assert "SECRET-never-printed" not in text


def test_access_denied_on_an_object_names_the_key(aws, sample_bucket, proxy):
    keys = [f.file for f in flowtools.load(sample_bucket, engine="polars", s3_mode="stream", **WINDOW).report.files]
    victim = SAMPLE_PREFIX + keys[0]
    proxy.deny("GetObject", service="s3", params={"Key": victim})
    with pytest.raises(SourceError, match=r"access denied: GetObject s3://flowtools-sample/.*s3:GetObject") as e:
        flowtools.load(sample_bucket, engine="polars", s3_mode="cache", store=False, **WINDOW)
    assert victim in str(e.value)


def test_expired_credentials_say_so(aws, sample_bucket, proxy, capsys):
    proxy.expire(service="s3")
    with pytest.raises(SourceError, match="credentials expired"):
        flowtools.load(sample_bucket, **WINDOW)
    assert main(["info", sample_bucket, "--start", WINDOW["start"], "--end", WINDOW["end"]]) == 1
    assert "expired" in capsys.readouterr().err


# -- around the reading ------------------------------------------------------------------------------

def test_cloudwatch_exports_in_s3_are_read_with_the_log_format(aws, s3, request):
    bucket = bucket_name(request)
    s3.create_bucket(Bucket=bucket)
    lines = [f"2026-11-20T10:00:{i:02d}.000Z {_record(i)}" for i in range(3)]
    s3.put_object(Bucket=bucket, Key="exports/0d6b2f9c-3c1e-4e8a-9f0a-1b2c3d4e5f60/eni-0a1-all/000000.gz",
                  Body=gzip.compress(("\n".join(lines) + "\n").encode()))
    s3.put_object(Bucket=bucket, Key="exports/0d6b2f9c-3c1e-4e8a-9f0a-1b2c3d4e5f60/aws-logs-write-test", Body=b"x")
    fmt = DEFAULT_HEADER
    flows = flowtools.load(f"s3://{bucket}/exports/", all=True, log_format=fmt)
    assert flows.report.records == 3 and flows.report.files[0].layout == "cwlogs-export"
    without = flowtools.load(f"s3://{bucket}/exports/", all=True)  # the store reads it again: no format now
    assert without.report.records == 0 and "--log-format" in without.report.issues[0].reason
    assert without.store.read == 1
    again = flowtools.load(f"s3://{bucket}/exports/", all=True, log_format=fmt)
    assert again.report.records == 3 and again.store.read == 1


def test_duckdb_sql_reads_s3_paths_with_the_same_credentials(aws, s3, request):
    bucket = bucket_name(request)
    s3.create_bucket(Bucket=bucket)
    key = daily_key()
    _put_log(s3, bucket, key, [_record(1), _record(2), _record(3)])
    flows = flowtools.load(f"s3://{bucket}", all=True, s3_mode="stream")
    n = flows.sql(f"SELECT count(*) FROM read_csv('s3://{bucket}/{key}', delim=' ', header=true)").fetchone()[0]
    assert n == 3


def test_the_read_report_covers_s3(aws, sample_bucket, capsys):
    assert main(["info", sample_bucket, "--start", WINDOW["start"], "--end", WINDOW["end"], "--format", "json"]) == 0
    captured = capsys.readouterr()
    info = json.loads(captured.out)
    assert info["transfer"]["mode"] in ("cache", "stream") and info["transfer"]["list_requests"] > 0
    assert info["files_read"] > 0 and info["bytes_read"] > 0
    assert "list request(s)" in captured.err.splitlines()[-1]  # the summary line


def test_bad_objects_in_s3_are_skipped_and_reported_like_local_files(aws, s3, request):
    bucket = bucket_name(request)
    s3.create_bucket(Bucket=bucket)
    good = _put_log(s3, bucket, daily_key(ts="20261120T1000Z"), [_record(1), "2 bad line", _record(2)])
    s3.put_object(Bucket=bucket, Key=daily_key(ts="20261120T1005Z"), Body=good[: len(good) // 2])
    for mode in ("cache", "stream"):
        flows = flowtools.load(f"s3://{bucket}", all=True, s3_mode=mode)
        assert flows.report.records >= 2
        assert [b.line for b in flows.report.bad_lines if b.file.endswith("1000Z_fe123456.log.gz")] == [3]
        assert any("truncated" in i.reason for i in flows.report.issues)
        with pytest.raises(ReadError, match="truncated|malformed"):
            flowtools.load(f"s3://{bucket}", all=True, s3_mode=mode, strict=True)


def test_parquet_objects_stream_from_s3(aws, s3, request):
    bucket = bucket_name(request)
    s3.create_bucket(Bucket=bucket)
    df = pl.DataFrame({"version": [2], "account_id": ["123456789010"], "interface_id": ["eni-0a1"],
                       "srcaddr": ["203.0.113.9"], "dstaddr": ["10.0.0.1"], "srcport": [40000], "dstport": [443],
                       "protocol": [6], "packets": [3], "bytes": [180], "start": [1795168800], "end": [1795168830],
                       "action": ["ACCEPT"], "log_status": ["OK"]},
                      schema_overrides={"version": pl.Int32, "srcport": pl.Int32, "dstport": pl.Int32,
                                        "protocol": pl.Int32})
    buf = io.BytesIO()
    df.write_parquet(buf)
    s3.put_object(Bucket=bucket, Key=daily_key(ext="log.parquet"), Body=buf.getvalue())
    for mode in ("cache", "stream"):
        flows = flowtools.load(f"s3://{bucket}", all=True, s3_mode=mode, engine="duckdb")
        assert flows.sql("SELECT srcaddr, dstport FROM flows").fetchall() == [("203.0.113.9", 443)]


def test_no_flow_logs_in_the_bucket_is_an_empty_result_and_a_warning(aws, s3, request, capsys):
    bucket = bucket_name(request)
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="README.txt", Body=b"nothing here")
    assert main(["sql", f"s3://{bucket}", "SELECT count(*) AS n FROM flows", "--all", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [{"n": 0}]
    assert "no flow-log files found" in captured.err


def test_files_outside_the_flow_log_pattern_are_ignored(aws, s3, request):
    bucket = bucket_name(request)
    s3.create_bucket(Bucket=bucket)
    _put_log(s3, bucket, daily_key(), [_record(1)])
    s3.put_object(Bucket=bucket, Key="AWSLogs/123456789010/vpcflowlogs/us-east-1/2026/11/20/notes.txt", Body=b"x")
    flows = flowtools.load(f"s3://{bucket}", all=True)
    assert flows.report.records == 1 and flows.report.ok


def test_a_prefix_inside_the_layout_is_read_from_there(aws, sample_bucket, local_window):
    sub = sample_bucket + "AWSLogs/aws-account-id=333333333333/aws-service=vpcflowlogs/"
    flows = flowtools.load(sub, engine="polars", **WINDOW)
    expected = local_window.filter(pl.col("source_file").str.contains("aws-account-id=333333333333"))
    assert flows.report.records == expected.height > 0
    assert Path(flows.report.files[0].file).parts[0] == "aws-region=eu-west-1"  # relative to the SOURCE prefix


def test_a_profile_gives_the_credentials_to_boto3_and_to_the_streaming_engine(aws, sample_bucket, proxy, tmp_path,
                                                                              monkeypatch):
    (tmp_path / "aws-home" / "credentials").write_text(
        "[audit]\naws_access_key_id = AKIDPROFILEAUDIT\naws_secret_access_key = profile-secret\n")
    (tmp_path / "aws-home" / "config").write_text("[profile audit]\nregion = us-east-1\n")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    flows = flowtools.load(sample_bucket, engine="polars", s3_mode="stream", profile="audit", **WINDOW)
    assert flows.report.records > 0
    keys = {s.access_key for s in proxy.seen(service="s3")}
    assert keys == {"AKIDPROFILEAUDIT"}  # listing, header reads and Polars' own GETs alike
    assert proxy.count(action="GetObject") >= flows.report.files_read
    with pytest.raises(SourceError, match="profile 'nobody' not found"):
        flowtools.load(sample_bucket, profile="nobody", **WINDOW)


# -- the walk follows layout's key grammar (an in-memory bucket: no server, exact prefixes) ----

class _MemoryS3:
    """list_objects_v2 over a set of keys, with delimiter semantics; records each listing."""

    def __init__(self, keys):
        self.keys, self.listed = sorted(keys), []

    def get_paginator(self, name):
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket, Prefix, PaginationConfig, Delimiter=None):  # noqa: N803 (boto3's names)
        self.listed.append(Prefix)
        contents, folders = [], set()
        for key in self.keys:
            rest = key[len(Prefix):] if key.startswith(Prefix) else None
            if rest is None:
                continue
            if Delimiter and "/" in rest:
                folders.add(Prefix + rest.split("/", 1)[0] + "/")
            else:
                contents.append({"Key": key, "Size": 1})
        yield {"Contents": contents, "CommonPrefixes": [{"Prefix": f} for f in sorted(folders)]}


def _grammar_bucket():
    acct, org = "123456789010", "o-abc123def4"
    keys = []
    for day, hours in (("20261120", range(24)), ("20261119", (10,)), ("20251120", (10,))):
        y, m, d = day[:4], day[4:6], day[6:]
        for h in hours:
            ts = f"{day}T{h:02d}05Z"
            name = log_name(acct, "eu-west-1", ts=ts)
            keys += [f"AWSLogs/{acct}/vpcflowlogs/eu-west-1/{y}/{m}/{d}/{name}",
                     f"logs/AWSLogs/{org}/{acct}/vpcflowlogs/eu-west-1/{y}/{m}/{d}/{h:02d}/{name}",
                     f"AWSLogs/aws-account-id={acct}/aws-service=vpcflowlogs/aws-region=eu-west-1/"
                     f"year={y}/month={m}/day={d}/hour={h:02d}/{name}"]
    name = log_name(acct, "eu-west-1", ts="20261120T1005Z")
    outside = [f"AWSLogs/{acct}/aws-service=vpcflowlogs/eu-west-1/2026/11/20/{name}",  # plain, then Hive
               f"AWSLogs/{acct}/vpcflowlogs/eu-west/2026/11/20/{name}",  # not a region
               f"AWSLogs/aws-account-id={acct}/aws-service=vpcflowlogs/aws-region=eu-west-1/"
               f"year=2026/month=11/day=20/hour=x1/{name}"]
    return keys, outside


def test_the_listing_keeps_what_parse_key_keeps_and_lists_no_folder_the_grammar_rejects():
    from flowtools.layout import discover, select
    from flowtools.sources.s3_listing import Lister

    keys, outside = _grammar_bucket()
    window = Window.parse("2026-11-20T10:00Z", "2026-11-20T12:00Z")
    client = _MemoryS3(keys + outside)
    listed = Lister(client, "b", window=window, now=datetime(2026, 11, 21, tzinfo=UTC)).list("")
    every = discover(ObjectInfo(k, 1) for k in keys)
    assert {o.key for o in select(discover(listed), window)[0]} == {o.key for o in select(every, window)[0]}
    assert not {o.key for o in listed} & set(outside)
    assert not [p for p in client.listed if "eu-west/" in p or "hour=x1" in p or "/aws-service=vpcflowlogs/eu" in p]
    assert not [p for p in client.listed if "/2025/" in p or "/19/" in p or "year=2025" in p or "day=19" in p]
    hours = sorted(p for p in client.listed if p.count("/") == 10 or "hour=" in p)  # hourly layouts' hour folders
    assert sorted({p.rstrip("/").rsplit("/", 1)[-1].removeprefix("hour=") for p in hours}) == ["09", "10", "11", "12"]


def test_a_source_inside_the_hive_dates_lists_only_the_hours_of_the_window():
    from flowtools.sources.s3_listing import Lister

    keys, _ = _grammar_bucket()
    client = _MemoryS3(keys)
    month = "AWSLogs/aws-account-id=123456789010/aws-service=vpcflowlogs/aws-region=eu-west-1/year=2026/month=11/"
    listed = Lister(client, "b", window=Window.parse("2026-11-20T10:00Z", "2026-11-20T12:00Z")).list(month)
    assert {o.key.split("/")[-2] for o in listed} == {"hour=09", "hour=10", "hour=11", "hour=12"}
    assert {p.rsplit("/", 2)[-2] for p in client.listed if "hour=" in p} == {"hour=09", "hour=10", "hour=11",
                                                                             "hour=12"}
