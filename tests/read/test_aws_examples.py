"""The AWS documentation's example records parse to the right values on both engines."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flowlog_files import DEFAULT_HEADER, daily_key, write_log

import flowtools

V2 = [
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 172.31.16.21 20641 22 6 20 4249 1418530010 1418530070 ACCEPT OK",
    "2 123456789010 eni-1235b8ca123456789 172.31.9.69 172.31.9.12 49761 3389 6 20 4249 1418530010 1418530070 REJECT OK",
    "2 123456789010 eni-1235b8ca123456789 - - - - - - - 1431280876 1431280934 - NODATA",
    "2 123456789010 eni-11111111aaaaaaaaa - - - - - - - 1431280876 1431280934 - SKIPDATA",
    "2 123456789010 eni-1235b8ca123456789 203.0.113.12 172.31.16.139 0 0 1 4 336 1432917027 1432917142 ACCEPT OK",
    "2 123456789010 eni-1235b8ca123456789 172.31.16.139 203.0.113.12 0 0 1 4 336 1432917094 1432917142 REJECT OK",
    "2 123456789010 eni-1235b8ca123456789 2001:db8:1234:a100:8d6e:3477:df66:f105 2001:db8:1234:a102:3304:8879:34cf:4071 34892 22 6 54 8855 1477913708 1477913820 ACCEPT OK",
]

TCP_HEADER = ("version vpc-id subnet-id instance-id interface-id account-id type srcaddr dstaddr srcport "
              "dstport pkt-srcaddr pkt-dstaddr protocol bytes packets start end action tcp-flags log-status")
_P = "3 vpc-abcda0b5 subnet-44abcd55 i-fb4ea5a5 eni-9a18f7ab 123456789010 IPv4"
TCP = [
    f"{_P} 52.213.180.42 10.0.0.62 43416 5001 52.213.180.42 10.0.0.62 6 568 8 1566848875 1566848933 ACCEPT 2 OK",
    f"{_P} 10.0.0.62 52.213.180.42 5001 43416 10.0.0.62 52.213.180.42 6 376 7 1566848875 1566848933 ACCEPT 18 OK",
    f"{_P} 52.213.180.42 10.0.0.62 43418 5001 52.213.180.42 10.0.0.62 6 100701 70 1566848875 1566848933 ACCEPT 2 OK",
    f"{_P} 10.0.0.62 52.213.180.42 5001 43418 10.0.0.62 52.213.180.42 6 632 12 1566848875 1566848933 ACCEPT 18 OK",
    f"{_P} 52.213.180.42 10.0.0.62 43418 5001 52.213.180.42 10.0.0.62 6 63388 1219 1566848933 1566849113 ACCEPT 1 OK",
    f"{_P} 10.0.0.62 52.213.180.42 5001 43418 10.0.0.62 52.213.180.42 6 23294588 15774 1566848933 1566849113 ACCEPT 1 OK",
    f"{_P} 52.213.180.42 10.0.0.62 43638 5001 52.213.180.42 10.0.0.62 6 1260 17 1566933133 1566933193 ACCEPT 3 OK",
    f"{_P} 10.0.0.62 52.213.180.42 5001 43638 10.0.0.62 52.213.180.42 6 967 14 1566933133 1566933193 ACCEPT 19 OK",
]

NAT_HEADER = "instance-id interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr"
NAT = [
    "- eni-1235b8ca123456789 10.0.1.5 10.0.0.220 10.0.1.5 203.0.113.5",
    "- eni-1235b8ca123456789 10.0.0.220 203.0.113.5 10.0.0.220 203.0.113.5",
    "- eni-1235b8ca123456789 203.0.113.5 10.0.0.220 203.0.113.5 10.0.0.220",
    "- eni-1235b8ca123456789 10.0.0.220 10.0.1.5 203.0.113.5 10.0.1.5",
    "i-01234567890123456 eni-1111aaaa2222bbbb3 10.0.1.5 203.0.113.5 10.0.1.5 203.0.113.5",
    "i-01234567890123456 eni-1111aaaa2222bbbb3 203.0.113.5 10.0.1.5 203.0.113.5 10.0.1.5",
]

TGW_HEADER = ("version interface-id account-id vpc-id subnet-id instance-id srcaddr dstaddr srcport dstport "
              "protocol tcp-flags type pkt-srcaddr pkt-dstaddr action log-status")
TGW = [
    "3 eni-33333333333333333 123456789010 vpc-abcdefab012345678 subnet-22222222bbbbbbbbb i-01234567890123456 10.20.33.164 10.40.2.236 39812 80 6 3 IPv4 10.20.33.164 10.40.2.236 ACCEPT OK",
    "3 eni-33333333333333333 123456789010 vpc-abcdefab012345678 subnet-22222222bbbbbbbbb i-01234567890123456 10.40.2.236 10.20.33.164 80 39812 6 19 IPv4 10.40.2.236 10.20.33.164 ACCEPT OK",
    "3 eni-11111111111111111 123456789010 vpc-abcdefab012345678 subnet-11111111aaaaaaaaa - 10.40.1.175 10.40.2.236 39812 80 6 3 IPv4 10.20.33.164 10.40.2.236 ACCEPT OK",
    "3 eni-22222222222222222 123456789010 vpc-abcdefab012345678 subnet-22222222bbbbbbbbb - 10.40.2.236 10.40.2.31 80 39812 6 19 IPv4 10.40.2.236 10.20.33.164 ACCEPT OK",
]

S3_HEADER = ("version srcaddr dstaddr srcport dstport protocol start end type packets bytes account-id vpc-id "
             "subnet-id instance-id interface-id region az-id sublocation-type sublocation-id action tcp-flags "
             "pkt-srcaddr pkt-dstaddr pkt-src-aws-service pkt-dst-aws-service traffic-path flow-direction log-status")
S3 = [
    "5 52.95.128.179 10.0.0.71 80 34210 6 1616729292 1616729349 IPv4 14 15044 123456789012 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-0c50d5961bcb2d47b eni-1235b8ca123456789 ap-southeast-2 apse2-az3 - - ACCEPT 19 52.95.128.179 10.0.0.71 S3 - - ingress OK",
    "5 10.0.0.71 52.95.128.179 34210 80 6 1616729292 1616729349 IPv4 7 471 123456789012 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 i-0c50d5961bcb2d47b eni-1235b8ca123456789 ap-southeast-2 apse2-az3 - - ACCEPT 3 10.0.0.71 52.95.128.179 - S3 8 egress OK",
]


def _load(tmp_path, header, lines, engine):
    write_log(tmp_path, daily_key(), lines, header=header)
    # the reader itself, rows in file order (the store sorts rows by interface and time;
    # tests/store checks that it holds the same rows)
    return flowtools.load(tmp_path, engine=engine, store=False).to_polars()


def test_default_format(tmp_path, engine):
    df = _load(tmp_path, DEFAULT_HEADER, V2, engine)
    assert df.height == len(V2)
    first = df.row(0, named=True)
    assert first["version"] == 2 and first["account_id"] == "123456789010"
    assert (first["srcaddr"], first["dstaddr"], first["srcport"], first["dstport"]) == ("172.31.16.139", "172.31.16.21", 20641, 22)
    assert (first["protocol"], first["packets"], first["bytes"], first["action"]) == (6, 20, 4249, "ACCEPT")
    assert first["start_time"] == datetime(2014, 12, 14, 4, 6, 50, tzinfo=UTC)
    assert first["tcp_flags"] is None and first["flow_direction"] is None  # not captured: NULL
    nodata = df.filter(df["log_status"] == "NODATA").row(0, named=True)
    assert nodata["srcaddr"] is None and nodata["packets"] is None and nodata["action"] is None
    assert nodata["start"] == 1431280876 and nodata["end"] == 1431280934
    assert df.filter(df["log_status"] == "SKIPDATA").height == 1
    icmp = df.filter(df["protocol"] == 1)
    assert sorted(icmp["action"].to_list()) == ["ACCEPT", "REJECT"]
    assert icmp["srcport"].to_list() == [0, 0]
    v6 = df.filter(df["srcaddr"].str.contains(":")).row(0, named=True)
    assert v6["dstaddr"] == "2001:db8:1234:a102:3304:8879:34cf:4071" and v6["dstport"] == 22


def test_tcp_flag_sequence(tmp_path, engine):
    df = _load(tmp_path, TCP_HEADER, TCP, engine)
    assert df["tcp_flags"].to_list() == [2, 18, 2, 18, 1, 1, 3, 19]
    assert df["pkt_srcaddr"].to_list()[:2] == ["52.213.180.42", "10.0.0.62"]
    assert df["bytes"].to_list()[5] == 23294588 and df["packets"].to_list()[5] == 15774
    assert df["type"].unique().to_list() == ["IPv4"]


def test_nat_gateway(tmp_path, engine):
    df = _load(tmp_path, NAT_HEADER, NAT, engine)
    assert df["instance_id"].to_list()[:4] == [None] * 4
    row = df.row(3, named=True)
    assert (row["srcaddr"], row["dstaddr"], row["pkt_srcaddr"], row["pkt_dstaddr"]) == (
        "10.0.0.220", "10.0.1.5", "203.0.113.5", "10.0.1.5")
    assert df["version"].null_count() == df.height  # not in this format


def test_transit_gateway(tmp_path, engine):
    df = _load(tmp_path, TGW_HEADER, TGW, engine)
    assert df["tcp_flags"].to_list() == [3, 19, 3, 19]
    assert df["interface_id"].to_list()[2] == "eni-11111111111111111"
    assert df["pkt_srcaddr"].to_list()[2] == "10.20.33.164" and df["srcaddr"].to_list()[2] == "10.40.1.175"


def test_v5_s3_service_example(tmp_path, engine):
    df = _load(tmp_path, S3_HEADER, S3, engine)
    ingress, egress = df.row(0, named=True), df.row(1, named=True)
    assert ingress["flow_direction"] == "ingress" and egress["flow_direction"] == "egress"
    assert ingress["pkt_src_aws_service"] == "S3" and ingress["pkt_dst_aws_service"] is None
    assert ingress["traffic_path"] is None and egress["traffic_path"] == 8
    assert ingress["tcp_flags"] == 19 and egress["tcp_flags"] == 3
    assert ingress["region"] == "ap-southeast-2" and ingress["az_id"] == "apse2-az3"
    assert ingress["sublocation_type"] is None
    assert egress["version"] == 5


@pytest.mark.parametrize("column,dtype", [("protocol", "Int32"), ("packets", "Int64"), ("start", "Int64"),
                                          ("tcp_flags", "Int32"), ("traffic_path", "Int32"),
                                          ("account_id", "String"), ("start_time", "Datetime")])
def test_canonical_types(tmp_path, engine, column, dtype):
    df = _load(tmp_path, S3_HEADER, S3, engine)
    assert str(df.schema[column]).startswith(dtype)
