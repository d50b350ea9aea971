"""Bad input: nothing lost silently, exact counts, strict mode."""

from __future__ import annotations

import gzip

import pytest
from flowlog_files import DEFAULT_HEADER, daily_key, write_log

import flowtools
from flowtools.errors import ReadError


def rec(i: int, port: int = 443) -> str:
    return f"2 123456789010 eni-0a1b2c3d4e5f60718 203.0.113.{i % 250} 10.0.0.5 {40000 + i} {port} 6 10 840 1795169100 1795169160 ACCEPT OK"


GOOD = [rec(i) for i in range(10)]


def test_malformed_lines_are_skipped_and_reported(tmp_path, engine):
    lines = list(GOOD)
    lines.insert(2, "2 123456789010 eni-0a1b2c3d4e5f60718 203.0.113.1 10.0.0.5 40000 443 6 10")  # too few
    lines.insert(5, rec(99) + " extra")  # too many
    lines.insert(7, rec(98).replace(" 443 ", " https "))  # not a number
    lines.insert(9, rec(97).replace(" 840 ", " 99999999999999999999999 "))  # out of range
    key = daily_key()
    write_log(tmp_path, key, lines)
    flows = flowtools.load(tmp_path, engine=engine)
    rep = flows.report
    assert rep.records == 10 and rep.lines_skipped == 4 and rep.files_read == 1 and rep.files_skipped == 0
    bad = [(b.file, b.line, b.reason) for b in rep.bad_lines]
    assert [b[1] for b in bad] == [4, 7, 9, 11]  # 1-based, the header is line 1
    assert all(b[0] == key for b in bad)
    assert "9 fields (the header has 14)" in bad[0][2]
    assert "more than 14 fields" in bad[1][2]
    assert bad[2][2] == "dstport: not a valid int32: 'https'"
    assert bad[3][2].startswith("bytes: not a valid int64")
    warn = rep.warning_lines()
    assert len(warn) == 1 and key in warn[0] and "4 line(s) skipped" in warn[0] and "line 4" in warn[0]


def test_undecodable_bytes(tmp_path, engine):
    key = daily_key()
    path = tmp_path / key
    path.parent.mkdir(parents=True)
    body = ("\n".join([DEFAULT_HEADER] + GOOD[:3]) + "\n").encode()
    body += rec(50).encode().replace(b"ACCEPT", b"ACC\xff\xfeT") + b"\n"
    body += ("\n".join(GOOD[3:]) + "\n").encode()
    path.write_bytes(gzip.compress(body))
    rep = flowtools.load(tmp_path, engine=engine).report
    assert rep.records == 10 and rep.lines_skipped == 1
    assert (rep.bad_lines[0].line, rep.bad_lines[0].reason) == (5, "undecodable bytes (not UTF-8)")


@pytest.mark.parametrize("cut_at_line_boundary", [False, True])
def test_truncated_gzip_keeps_every_complete_record(tmp_path, engine, cut_at_line_boundary):
    lines = [rec(i) for i in range(3000)]
    body = ("\n".join([DEFAULT_HEADER] + lines) + "\n").encode()
    data = gzip.compress(body, mtime=0)
    cut = data[: len(data) * 2 // 3]
    # what a streaming decompressor recovers from the cut bytes
    import zlib

    recovered = zlib.decompressobj(wbits=31).decompress(cut)
    complete = recovered[: recovered.rfind(b"\n") + 1].decode().splitlines()[1:]
    key = daily_key()
    (tmp_path / key).parent.mkdir(parents=True)
    (tmp_path / key).write_bytes(cut)
    write_log(tmp_path, daily_key(hash_="00000002"), GOOD)  # a good neighbour in the same group
    flows = flowtools.load(tmp_path, engine=engine)
    rep = flows.report
    assert rep.records == len(complete) + len(GOOD)
    assert 0 < len(complete) < 3000
    issue = next(i for i in rep.issues if i.file == key)
    assert not issue.skipped and "truncated gzip" in issue.reason and issue.records_kept == len(complete)
    got = flows.sql(f"SELECT srcport FROM flows WHERE source_file = '{key}' ORDER BY srcport").fetchall()
    assert [r[0] for r in got] == [int(line.split()[5]) for line in complete]


def test_empty_and_unreadable_files(tmp_path, engine):
    write_log(tmp_path, daily_key(hash_="00000001"), GOOD)
    empty = daily_key(hash_="00000002")
    (tmp_path / empty).write_bytes(b"")
    empty_gz = daily_key(hash_="00000003")
    (tmp_path / empty_gz).write_bytes(gzip.compress(b""))
    garbage = daily_key(hash_="00000004")
    (tmp_path / garbage).write_bytes(b"\x1f\x8b\x08\x00garbage-not-deflate")
    header_only = daily_key(hash_="00000005")
    write_log(tmp_path, header_only, [])
    no_header = daily_key(hash_="00000006")
    write_log(tmp_path, no_header, GOOD[:2], header=None)
    bad_parquet = daily_key(hash_="00000007", ext="log.parquet")
    (tmp_path / bad_parquet).write_bytes(b"PAR1 this is not parquet PAR1")
    rep = flowtools.load(tmp_path, engine=engine).report
    assert rep.records == 10
    skipped = {i.file: i.reason for i in rep.issues if i.skipped}
    assert set(skipped) == {empty, empty_gz, garbage, no_header, bad_parquet}
    assert skipped[empty] == "empty file"
    assert "no header line" in skipped[no_header] and "--log-format" in skipped[no_header]
    assert "Parquet" in skipped[bad_parquet]
    assert rep.files_read == 2  # the good file and the header-only one (0 records)
    assert len(rep.warning_lines()) == 5


def test_log_format_for_headerless_files(tmp_path, engine):
    write_log(tmp_path, daily_key(), GOOD[:2], header=None)
    flows = flowtools.load(tmp_path, engine=engine, log_format="${version} ${account-id} ${interface-id} "
                           "${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} "
                           "${start} ${end} ${action} ${log-status}")
    assert flows.report.records == 2 and flows.report.ok


def test_strict_makes_any_problem_an_error(tmp_path, engine):
    key = daily_key()
    write_log(tmp_path, key, GOOD + ["2 123456789010 eni-1 bad"])
    with pytest.raises(ReadError, match=key.replace(".", r"\.") + ".*1 line"):
        flowtools.load(tmp_path, engine=engine, strict=True)


def test_many_bad_lines_in_one_group_keep_good_files_intact(tmp_path, engine):
    """A failing group is retried file by file: the other files' records are all kept."""
    for i in range(5):
        write_log(tmp_path, daily_key(hash_=f"0000000{i}"), GOOD)
    broken = daily_key(hash_="000000ff")
    data = gzip.compress(("\n".join([DEFAULT_HEADER] + GOOD) + "\n").encode())
    (tmp_path / broken).write_bytes(data[:-8])  # lose the gzip trailer (CRC and size) only
    rep = flowtools.load(tmp_path, engine=engine).report
    assert rep.records == 60 and rep.files_read == 6
    assert [i.file for i in rep.issues] == [broken]
