"""Time windows: parsing, pruning (files outside are never opened), records at the edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from flowlog_files import daily_key, write_log

import flowtools
from flowtools.errors import UsageError
from flowtools.layout import BATCH, PRUNE_SLACK
from flowtools.window import Window, parse_time

T0 = int(datetime(2026, 11, 20, 10, 0, tzinfo=UTC).timestamp())


def rec(start: int, end: int, port: int = 443) -> str:
    return f"2 123456789010 eni-0a1b2c3d4e5f60718 203.0.113.9 10.0.0.5 51000 {port} 6 10 840 {start} {end} ACCEPT OK"


def ts(t: int) -> str:
    """File timestamp: the 5-minute batch of ``t``."""
    d = datetime.fromtimestamp(t - t % 300, UTC)
    return d.strftime("%Y%m%dT%H%MZ")


def test_parse_forms():
    now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    assert parse_time("2026-11-20T10:00Z") == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert parse_time("2026-11-20T10:00") == datetime(2026, 11, 20, 10, tzinfo=UTC)  # no offset: UTC
    assert parse_time("2026-11-20T12:00+02:00") == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert parse_time("2026-11-20") == datetime(2026, 11, 20, tzinfo=UTC)
    assert parse_time("-6h", now=now) == datetime(2026, 11, 24, 6, tzinfo=UTC)
    assert parse_time("-2d", now=now) == datetime(2026, 11, 22, 12, tzinfo=UTC)
    assert parse_time("-30m", now=now) == datetime(2026, 11, 24, 11, 30, tzinfo=UTC)
    with pytest.raises(UsageError, match="bad time value 'yesterday'"):
        parse_time("yesterday")
    with pytest.raises(UsageError, match="empty time window"):
        Window.parse("2026-11-21", "2026-11-20")


def test_date_window_is_that_day():
    w = Window.parse("2026-11-20", "2026-11-21")
    assert w.start == datetime(2026, 11, 20, tzinfo=UTC) and w.end == datetime(2026, 11, 21, tzinfo=UTC)


def test_records_at_window_edges(tmp_path, engine):
    lines = [
        rec(T0 - 120, T0 - 60, 1),  # ends before the window: out
        rec(T0 - 60, T0, 2),  # ends exactly at the start: in (end >= start)
        rec(T0 - 30, T0 + 30, 3),  # spans the start: in
        rec(T0 + 3540, T0 + 3599, 4),  # inside
        rec(T0 + 3590, T0 + 3650, 5),  # spans the end: in
        rec(T0 + 3600, T0 + 3660, 6),  # starts exactly at the end: out (half-open)
    ]
    write_log(tmp_path, daily_key(ts=ts(T0)), lines)
    flows = flowtools.load(tmp_path, start="2026-11-20T10:00Z", end="2026-11-20T11:00Z", engine=engine)
    assert sorted(flows.to_polars()["dstport"].to_list()) == [2, 3, 4, 5]
    assert flows.report.records == 4 and flows.report.records_parsed == 6


def test_spanning_record_is_in_both_neighbouring_windows(tmp_path, engine):
    write_log(tmp_path, daily_key(ts=ts(T0)), [rec(T0 - 30, T0 + 30)])
    a = flowtools.load(tmp_path, start="2026-11-20T09:00Z", end="2026-11-20T10:00Z", engine=engine)
    b = flowtools.load(tmp_path, start="2026-11-20T10:00Z", end="2026-11-20T11:00Z", engine=engine)
    assert a.report.records == b.report.records == 1


def test_milliseconds_are_converted(tmp_path, engine):
    write_log(tmp_path, daily_key(ts=ts(T0)), [rec(T0 * 1000, (T0 + 60) * 1000)])
    row = flowtools.load(tmp_path, engine=engine).to_polars().row(0, named=True)
    assert row["start"] == T0 and row["end"] == T0 + 60
    assert row["start_time"] == datetime(2026, 11, 20, 10, tzinfo=UTC)


def test_files_outside_the_window_are_never_opened(tmp_path, engine):
    """Corrupt files outside the window (by partition and by file name) cause no warning."""
    inside = write_log(tmp_path, daily_key(ts=ts(T0 + 600)), [rec(T0 + 500, T0 + 560)])
    # same day partition, file time far before the window
    far = daily_key(ts=ts(T0 - 6 * 3600), hash_="0000dead")
    (tmp_path / far).write_bytes(b"\x1f\x8bcorrupt")
    # another day partition
    other_day = daily_key(ts="20261118T1000Z", hash_="0000beef")
    (tmp_path / other_day).parent.mkdir(parents=True)
    (tmp_path / other_day).write_bytes(b"not gzip at all")
    flows = flowtools.load(tmp_path, start="2026-11-20T10:00Z", end="2026-11-20T11:00Z", engine=engine,
                           strict=True)
    assert flows.report.records == 1 and flows.report.ok
    assert flows.report.files_pruned == 2 and flows.report.files_read == 1
    assert inside.exists()
    # without the window, the corrupt files are opened and reported
    whole = flowtools.load(tmp_path, engine=engine)
    assert whole.report.files_skipped == 2


def test_pruning_keeps_files_that_can_hold_overlapping_records(tmp_path):
    """A record delivered one batch late, with a 10-minute aggregation interval, is found."""
    start = T0 - 600 + 1  # its interval overlaps the window start by one second...
    late_file_time = T0 + 300  # ...and it was delivered a batch late, after the window start
    write_log(tmp_path, daily_key(ts=ts(late_file_time)), [rec(start - 10, T0 + 10)])
    assert flowtools.load(tmp_path, start=datetime.fromtimestamp(T0 + 5, UTC),
                          end=datetime.fromtimestamp(T0 + 10 * 60, UTC)).report.records == 1
    assert PRUNE_SLACK >= timedelta(minutes=10) + BATCH
