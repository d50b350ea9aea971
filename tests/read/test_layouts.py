"""Every S3 layout (daily, per-hour, Hive, org segment, user prefix), text and Parquet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flowlog_files import log_name, write_log

import flowtools
from flowtools.layout import ObjectInfo, discover, parse_key, partition_prefixes
from flowtools.window import Window

ACCT, REGION = "123456789010", "eu-west-1"
TS = "20261120T1005Z"
REC = "2 {acct} eni-0a1b2c3d4e5f60718 10.0.0.5 203.0.113.9 443 51000 6 10 840 1795169100 1795169160 ACCEPT OK"

LAYOUTS = {
    "daily": f"AWSLogs/{ACCT}/vpcflowlogs/{REGION}/2026/11/20/",
    "hourly": f"AWSLogs/{ACCT}/vpcflowlogs/{REGION}/2026/11/20/10/",
    "hive": f"AWSLogs/aws-account-id={ACCT}/aws-service=vpcflowlogs/aws-region={REGION}/year=2026/month=11/day=20/",
    "hive-hourly": f"AWSLogs/aws-account-id={ACCT}/aws-service=vpcflowlogs/aws-region={REGION}/year=2026/month=11/day=20/hour=10/",
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("org", ["", "o-abc123def4/"])
@pytest.mark.parametrize("prefix", ["", "central/logs/"])
def test_parse_key(layout, org, prefix):
    folder = LAYOUTS[layout].replace("AWSLogs/", f"AWSLogs/{org}")
    key = prefix + folder + log_name(ACCT, REGION, ts=TS)
    o = parse_key(key, 123)
    assert o is not None
    assert (o.layout, o.account_id, o.region, o.flow_log_id, o.format) == (layout, ACCT, REGION, "fl-1234abcd", "text")
    assert o.file_time == datetime(2026, 11, 20, 10, 5, tzinfo=UTC)
    assert o.org_id == (org.rstrip("/") or None)
    assert o.prefix == prefix.rstrip("/")
    hourly = layout.endswith("hourly")
    assert o.partition_span == (timedelta(hours=1) if hourly else timedelta(days=1))
    assert o.partition_start == datetime(2026, 11, 20, 10 if hourly else 0, tzinfo=UTC)


def test_other_files_are_ignored():
    listing = [ObjectInfo("inventory/123456789010-us-east-1-describe-vpcs.json", 10),
               ObjectInfo("README.md", 5),
               ObjectInfo("AWSLogs/x/" + log_name(ext="log.parquet"), 7),
               ObjectInfo("AWSLogs/" + log_name(), 7)]
    found = discover(listing)
    assert [o.format for o in found] == ["text", "parquet"]
    assert found[0].layout is None and found[0].account_id == "123456789010"  # from the file name


def test_partition_prefixes_cover_window():
    w = Window.parse("2026-11-20T10:00Z", "2026-11-20T12:00Z")
    hours = [p[1] for p in partition_prefixes(w, hourly=True)]
    assert hours == ["2026/11/20/09/", "2026/11/20/10/", "2026/11/20/11/", "2026/11/20/12/"]
    days = partition_prefixes(Window.parse("2026-11-20T00:10Z", "2026-11-20T05:00Z"), hourly=False)
    assert [p[2] for p in days] == ["year=2026/month=11/day=19/", "year=2026/month=11/day=20/"]


def _parquet(path, rows: dict):
    types = {"version": pa.int32(), "srcport": pa.int32(), "dstport": pa.int32(), "protocol": pa.int32(),
             "packets": pa.int64(), "bytes": pa.int64(), "start": pa.int64(), "end": pa.int64(),
             "tcp_flags": pa.int32(), "traffic_path": pa.int32()}
    table = pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in rows.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="gzip")


def test_all_layouts_and_formats_in_one_tree(tmp_path, engine):
    for i, folder in enumerate(LAYOUTS.values()):
        write_log(tmp_path, "central/" + folder + log_name(ACCT, REGION, flow_log=f"fl-0000000{i}", ts=TS),
                  [REC.format(acct=ACCT)])
    # an org-segment tree and a Parquet flow log with v5 fields, sharing a partition folder
    org_folder = LAYOUTS["daily"].replace("AWSLogs/", "AWSLogs/o-abc123def4/")
    write_log(tmp_path, org_folder + log_name(ACCT, REGION, flow_log="fl-0000000a", ts=TS), [REC.format(acct=ACCT)])
    _parquet(tmp_path / LAYOUTS["hive-hourly"] / log_name(ACCT, REGION, flow_log="fl-0000000b", ts=TS, ext="log.parquet"),
             {"version": [5], "account_id": [ACCT], "interface_id": ["eni-0a1b2c3d4e5f60718"],
              "srcaddr": ["203.0.113.9"], "dstaddr": ["10.0.0.5"], "srcport": [51000], "dstport": [443],
              "protocol": [6], "packets": [3], "bytes": [180], "start": [1795169100], "end": [1795169160],
              "action": ["ACCEPT"], "log_status": ["OK"], "tcp_flags": [2], "flow_direction": ["ingress"],
              "traffic_path": [None], "pkt_srcaddr": ["203.0.113.9"]})
    flows = flowtools.load(tmp_path, engine=engine)
    df = flows.to_polars()
    assert df.height == 6 and flows.report.ok
    assert set(df["flow_log_id"]) == {f"fl-0000000{c}" for c in "0123ab"}
    assert set(df["source_account_id"]) == {ACCT} and set(df["source_region"]) == {REGION}
    pq_row = df.filter(pl.col("flow_log_id") == "fl-0000000b").row(0, named=True)
    assert pq_row["tcp_flags"] == 2 and pq_row["flow_direction"] == "ingress" and pq_row["dstport"] == 443
    assert pq_row["source_file"].endswith(".log.parquet") and not pq_row["source_file"].startswith("/")
    assert {f.layout for f in flows.report.files} == {"daily", "hourly", "hive", "hive-hourly"}
    assert not {"year", "aws_region", "aws-region", "hour"} & set(df.columns)  # Hive keys are not columns


def test_source_file_is_relative_to_source(tmp_path, engine):
    key = LAYOUTS["hive"] + log_name(ACCT, REGION, ts=TS)
    write_log(tmp_path / "bucket" / "prefix", key, [REC.format(acct=ACCT)])
    df = flowtools.load(tmp_path / "bucket" / "prefix", engine=engine).to_polars()
    assert df["source_file"].to_list() == [key]


def test_single_file_source_read_whatever_its_name(tmp_path, engine):
    path = write_log(tmp_path, "exported-flows.log.gz", [REC.format(acct=ACCT)])
    df = flowtools.load(path, engine=engine).to_polars()
    assert df.height == 1 and df["source_file"].to_list() == ["exported-flows.log.gz"]
    assert df["source_account_id"].to_list() == [None]  # the key carries no partition


def test_plain_text_single_file(tmp_path, engine):
    path = write_log(tmp_path, "flows.log", [REC.format(acct=ACCT)], compress=False)
    assert flowtools.load(path, engine=engine).to_polars()["dstport"].to_list() == [51000]


def test_mixed_headers_in_one_folder(tmp_path, engine):
    folder = LAYOUTS["daily"]
    write_log(tmp_path, folder + log_name(ACCT, REGION, flow_log="fl-00000001", ts=TS), [REC.format(acct=ACCT)])
    write_log(tmp_path, folder + log_name(ACCT, REGION, flow_log="fl-00000002", ts=TS),
              ["eni-0a1b2c3d4e5f60718 ingress 2 203.0.113.7 10.0.0.5 40000 22 6 1795169100 1795169160 ACCEPT OK vip"],
              header="interface-id flow-direction tcp-flags srcaddr dstaddr srcport dstport protocol start end action log-status flow-tag")
    df = flowtools.load(tmp_path, engine=engine).to_polars()
    assert df.height == 2
    new = df.filter(pl.col("flow_log_id") == "fl-00000002").row(0, named=True)
    assert new["flow_direction"] == "ingress" and new["dstport"] == 22 and new["version"] is None
    assert new["flow_tag"] == "vip"  # unknown field kept as a string
    old = df.filter(pl.col("flow_log_id") == "fl-00000001").row(0, named=True)
    assert old["flow_tag"] is None and old["account_id"] == ACCT
    assert df.columns[-1] == "flow_tag"


# -- the key grammar, one folder at a time (shared by parse_key and the S3 listing) ----------

@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("org", ["", "o-abc123def4/"])
def test_the_grammar_walks_every_layout_and_names_its_folders_back(layout, org):
    from flowtools.layout import parse_segments, partition_of

    names = ["central", "logs"] + LAYOUTS[layout].replace("AWSLogs/", f"AWSLogs/{org}").rstrip("/").split("/")
    segs = parse_segments(names)
    assert segs is not None and [s.name for s in segs] == names
    hive, hourly = layout.startswith("hive"), layout.endswith("hourly")
    expected = ["prefix", "prefix", "awslogs"] + (["org"] if org else []) + [
        "account", "service", "region", "year", "month", "day"] + (["hour"] if hourly else [])
    assert [s.level for s in segs] == expected
    assert all(s.hive is hive for s in segs if s.level not in ("prefix", "awslogs", "org"))
    assert {s.level: s.value for s in segs}["region"] == REGION
    assert partition_of(segs) == (datetime(2026, 11, 20, 10 if hourly else 0, tzinfo=UTC),
                                  timedelta(hours=1) if hourly else timedelta(days=1))
    day = -2 if hourly else -1
    assert partition_of(segs[:day]) is None  # not down to the day


@pytest.mark.parametrize("folders", [
    f"AWSLogs/{ACCT}/aws-service=vpcflowlogs/",  # plain account, Hive service: one or the other
    f"AWSLogs/aws-account-id={ACCT}/vpcflowlogs/",
    f"AWSLogs/{ACCT}/vpcflowlogs/{REGION}/year=2026/",
    f"AWSLogs/{ACCT}/vpcflowlogs/{REGION}/2026/11/20/10/extra/",  # nothing below the hour
    f"AWSLogs/{ACCT}/vpcflowlogs/us-east/",  # not a region (aws_names.REGION_NAME)
    f"AWSLogs/{ACCT}/o-abc123def4/",  # the organisation comes before the account
    f"AWSLogs/{ACCT}/vpcflowlogs/{REGION}/26/",
    f"AWSLogs/aws-account-id={ACCT}/aws-service=vpcflowlogs/aws-region={REGION}/year=2026/month=1/",
    "AWSLogs/1234/",
])
def test_the_grammar_has_no_place_for_other_folders(folders):
    from flowtools.layout import parse_segments

    assert parse_segments(folders.rstrip("/").split("/")) is None
    key = folders + log_name(ACCT, REGION, ts=TS)
    o = parse_key(key)  # a flow-log file there is still read, by its name, without a partition
    assert o is not None and o.layout is None and o.partition_start is None and o.account_id == ACCT


def test_an_impossible_date_is_no_partition():
    from flowtools.layout import parse_segments, partition_of

    folders = f"AWSLogs/{ACCT}/vpcflowlogs/{REGION}/2026/02/31"
    segs = parse_segments(folders.split("/"))
    assert segs is not None and partition_of(segs) is None
    assert parse_key(f"{folders}/" + log_name(ACCT, REGION, ts=TS)).layout is None
