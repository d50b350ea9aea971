"""``cwlogs://`` SOURCEs against moto in server mode: the sample's records as CloudWatch
Logs events (one stream per interface, a custom format, no header)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import polars as pl
import pytest
from flowlog_files import frames_equal

import flowtools
from flowtools.cli import main
from flowtools.errors import ReadError, SourceError
from flowtools.fields import column_name

#: A custom order of v2-v5 fields, as a user would configure it.
FIELDS = ["interface-id", "flow-direction", "srcaddr", "dstaddr", "srcport", "dstport", "protocol", "tcp-flags",
          "packets", "bytes", "start", "end", "action", "log-status", "pkt-srcaddr", "pkt-dstaddr", "version",
          "account-id", "traffic-path"]
LOG_FORMAT = " ".join("${" + f + "}" for f in FIELDS)
SAMPLE_WINDOW = (datetime(2026, 11, 20, 10, tzinfo=UTC), datetime(2026, 11, 20, 12, tzinfo=UTC))
COLUMNS = [column_name(f) for f in FIELDS] + ["start_time", "end_time"]
SORT = ("interface_id", "start", "srcaddr", "dstaddr", "srcport", "dstport", "end", "action", "bytes")


def _shift() -> int:
    """Whole days that move the sample's window to two days ago: CloudWatch (and moto)
    refuse events older than 14 days, and whole days keep the times of day."""
    target = datetime.now(UTC) - timedelta(days=2)
    return max(0, (target - SAMPLE_WINDOW[0]).days) * 86400


def _messages(frame: pl.DataFrame) -> pl.DataFrame:
    """Records -> (interface_id, timestamp ms, message in FIELDS order, '-' for NULL)."""
    parts = [pl.col(column_name(f)).cast(pl.String).fill_null("-") for f in FIELDS]
    return frame.select("interface_id", ts=pl.col("start") * 1000, message=pl.concat_str(parts, separator=" "))


def _put(logs, group: str, stream: str, events: pl.DataFrame) -> None:
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    rows = events.sort("ts").select(timestamp="ts", message="message").to_dicts()
    for i in range(0, len(rows), 5000):
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=rows[i:i + 5000])


def _flow_log(ec2, group: str, log_format: str | None) -> str:
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    kwargs = {"LogFormat": log_format} if log_format else {}
    return ec2.create_flow_logs(ResourceType="VPC", ResourceIds=[vpc], TrafficType="ALL",
                                LogDestinationType="cloud-watch-logs", LogGroupName=group,
                                DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/flow-logs",
                                **kwargs)["FlowLogIds"][0]


@pytest.fixture(scope="module")
def expected(sample_dir):
    """The sample's records of a 2-hour window for the four busiest interfaces, shifted."""
    flows = flowtools.load(sample_dir, engine="polars", start=SAMPLE_WINDOW[0], end=SAMPLE_WINDOW[1]).to_polars()
    ifaces = (flows.filter(pl.col("log_status") == "OK").group_by("interface_id").len()
              .sort("len", "interface_id", descending=[True, False]).head(4)["interface_id"].to_list())
    shift = _shift()
    picked = flows.filter(pl.col("interface_id").is_in(ifaces)).with_columns(
        start=pl.col("start") + shift, end=pl.col("end") + shift,
        start_time=pl.col("start_time") + timedelta(seconds=shift),
        end_time=pl.col("end_time") + timedelta(seconds=shift))
    return picked, shift


@pytest.fixture
def group(aws, expected, request) -> str:
    """A log group (named after the test) holding the expected records, one stream per
    interface, plus a stream whose events are all a day before the window."""
    frame, shift = expected
    name = _group_name(request)
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=name)
    events = _messages(frame)
    for (iface,), part in events.partition_by("interface_id", as_dict=True).items():
        _put(logs, name, f"{iface}-all", part)
    old = events.head(50).with_columns(ts=pl.col("ts") - 86400_000)
    _put(logs, name, "eni-0ffffffffffffff00-all", old)
    return name


def _group_name(request) -> str:
    """A log group named after the test (CloudWatch allows letters, digits and ._-/#)."""
    return "/flowtools/tests/" + "".join(c if c.isalnum() or c in "._-" else "-" for c in request.node.name)


def _window(shift: int) -> dict[str, datetime]:
    return {"start": SAMPLE_WINDOW[0] + timedelta(seconds=shift), "end": SAMPLE_WINDOW[1] + timedelta(seconds=shift)}


def test_a_log_group_read_for_a_window_equals_the_same_records_from_files(aws, group, expected, engine):
    frame, shift = expected
    _flow_log(boto3.client("ec2"), group, LOG_FORMAT)
    flows = flowtools.load(f"cwlogs://{group}", engine=engine, **_window(shift))
    got = flows.to_polars()
    frames_equal(got.select(COLUMNS), frame.select(COLUMNS), SORT)
    assert flows.report.ok
    assert set(got["source_file"].unique()) == {f"cwlogs://{group}/{i}-all" for i in frame["interface_id"].unique()}
    assert set(got["source_region"].unique()) == {"us-east-1"}
    assert got["flow_log_id"].null_count() == 0 and got["flow_log_id"].n_unique() == 1
    assert {f.format for f in flows.report.files} == {"cloudwatch"}
    assert flows.report.transfer["streams_read"] == 4  # the stream of the day before has no event in the window


def test_log_format_overrides_describe_flow_logs(aws, group, expected):
    frame, shift = expected
    _flow_log(boto3.client("ec2"), group, "${version} ${srcaddr}")  # wrong on purpose
    flows = flowtools.load(f"cwlogs://{group}", engine="polars", log_format=" ".join(FIELDS), **_window(shift))
    frames_equal(flows.to_polars().select(COLUMNS), frame.select(COLUMNS), SORT)


def test_without_a_flow_log_or_log_format_the_error_says_what_to_give(aws, group, expected, capsys):
    _, shift = expected
    with pytest.raises(SourceError, match="--log-format"):
        flowtools.load(f"cwlogs://{group}", **_window(shift))
    w = _window(shift)
    assert main(["info", f"cwlogs://{group}", "--start", w["start"].isoformat(), "--end", w["end"].isoformat()]) == 1
    assert "--log-format" in capsys.readouterr().err


def test_a_missing_log_group_is_a_clear_error(aws):
    with pytest.raises(SourceError, match="no such log group"):
        flowtools.load("cwlogs:///no/such/group", start="-1h")


def test_the_cli_reads_cloudwatch_and_reports_streams(aws, group, expected, capsys):
    frame, shift = expected
    _flow_log(boto3.client("ec2"), group, LOG_FORMAT)
    w = _window(shift)
    assert main(["info", f"cwlogs://{group}", "--start", w["start"].isoformat(), "--end", w["end"].isoformat(),
                 "--format", "json"]) == 0
    captured = capsys.readouterr()
    info = json.loads(captured.out)
    assert info["records"] == frame.height
    assert info["transfer"]["mode"] == "cloudwatch" and info["transfer"]["streams_read"] == 4
    assert "stream(s) read" in captured.err.splitlines()[-1]


def test_bad_messages_are_reported_with_their_position_and_strict_fails(aws, expected, request):
    _, shift = expected
    name = _group_name(request)
    logs = boto3.client("logs")
    logs.create_log_group(logGroupName=name)
    t = int(_window(shift)["start"].timestamp())
    good = f"2 123456789012 eni-0a1 203.0.113.7 10.0.0.5 40000 443 6 3 180 {t} {t + 30} ACCEPT OK"
    bad = f"2 123456789012 eni-0a1 203.0.113.7 10.0.0.5 forty 443 6 3 180 {t} {t + 30} ACCEPT OK"
    logs.create_log_stream(logGroupName=name, logStreamName="eni-0a1-all")
    logs.put_log_events(logGroupName=name, logStreamName="eni-0a1-all", logEvents=[
        {"timestamp": (t + i) * 1000, "message": m} for i, m in enumerate([good, bad, good])])
    _flow_log(boto3.client("ec2"), name, None)  # the default format
    flows = flowtools.load(f"cwlogs://{name}", **_window(shift))
    assert flows.report.records == 2
    assert [(b.file, b.line) for b in flows.report.bad_lines] == [(f"cwlogs://{name}/eni-0a1-all", 2)]
    assert "srcport" in flows.report.bad_lines[0].reason
    with pytest.raises(ReadError, match="eni-0a1-all"):
        flowtools.load(f"cwlogs://{name}", strict=True, **_window(shift))


def test_records_of_two_flow_logs_in_one_stream_are_told_apart_by_their_fields(aws, expected, request):
    _, shift = expected
    name = _group_name(request)
    logs, ec2 = boto3.client("logs"), boto3.client("ec2")
    logs.create_log_group(logGroupName=name)
    t = int(_window(shift)["start"].timestamp())
    v2 = f"2 123456789012 eni-0a1 203.0.113.7 10.0.0.5 40000 443 6 3 180 {t} {t + 30} ACCEPT OK"
    v5 = f"eni-0a1 ingress 203.0.113.7 10.0.0.5 40000 443 6 2 3 180 {t} {t + 30} ACCEPT OK - - 5 123456789012 -"
    logs.create_log_stream(logGroupName=name, logStreamName="eni-0a1-all")
    logs.put_log_events(logGroupName=name, logStreamName="eni-0a1-all", logEvents=[
        {"timestamp": (t + i) * 1000, "message": m} for i, m in enumerate([v2, v5, v2])])
    ids = {_flow_log(ec2, name, None), _flow_log(ec2, name, LOG_FORMAT)}
    flows = flowtools.load(f"cwlogs://{name}", engine="polars", **_window(shift))
    got = flows.to_polars().sort("version")
    assert flows.report.ok and got.height == 3
    assert got["version"].to_list() == [2, 2, 5]
    assert got["flow_direction"].to_list() == [None, None, "ingress"] and got["tcp_flags"].to_list() == [None, None, 2]
    assert set(got["flow_log_id"]) == ids


def test_throttling_is_retried_and_denied_access_is_an_error(aws, group, expected, proxy):
    _, shift = expected
    _flow_log(boto3.client("ec2"), group, LOG_FORMAT)
    proxy.throttle("FilterLogEvents", service="logs", times=2)
    flows = flowtools.load(f"cwlogs://{group}", engine="polars", **_window(shift))
    assert flows.report.ok and proxy.count(injected="Throttling") == 2
    proxy.deny("DescribeLogStreams", service="logs")
    with pytest.raises(SourceError, match=r"access denied: DescribeLogStreams .*logs:DescribeLogStreams"):
        flowtools.load(f"cwlogs://{group}", **_window(shift))
