"""Reading diagnostics name the real cause and the way out: bad gzip and Parquet bytes,
renamed files, filters and windows that match nothing, files that are no flow log,
header lines inside a file (concatenated objects)."""

from __future__ import annotations

import gzip
import io
import zlib

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from flowlog_files import DEFAULT_HEADER, daily_key, frames_equal, write_log

import flowtools
from flowtools.cli import main
from flowtools.errors import ReadError


def rec(i: int, port: int = 443) -> str:
    return (f"2 123456789010 eni-0a1b2c3d4e5f60718 203.0.113.{i % 250} 10.0.0.5 {40000 + i} {port} 6 10 840 "
            "1795169100 1795169160 ACCEPT OK")


GOOD = [rec(i) for i in range(10)]


def body(lines, header=DEFAULT_HEADER) -> bytes:
    return ("\n".join(([header] if header else []) + list(lines)) + "\n").encode()


def put(root, key, data: bytes):
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def skipped(rep) -> dict[str, str]:
    return {i.file: i.reason for i in rep.issues if i.skipped}


def no_none(rep) -> None:
    for line in [*rep.warning_lines(), rep.summary_line()]:
        assert "None" not in line, line


# -- 1. bytes that are not what the name says -------------------------------------------

def test_gz_that_is_not_gzip(tmp_path, engine):
    write_log(tmp_path, daily_key(hash_="00000001"), GOOD)
    zipped = put(tmp_path, daily_key(hash_="00000002"), b"PK\x03\x04" + bytes(range(60)))
    binary = put(tmp_path, daily_key(hash_="00000003"), bytes(range(256)))
    text = put(tmp_path, daily_key(hash_="00000004"), b"hello, this is a note\n")
    rep = flowtools.load(tmp_path, engine=engine).report
    assert rep.records == 10 and rep.files_read == 1
    why = skipped(rep)
    root = str(tmp_path) + "/"
    assert why[str(zipped).removeprefix(root)] == "not a gzip file (first bytes 50 4b 03 04: a zip archive)"
    assert why[str(binary).removeprefix(root)] == "not a gzip file (first bytes 00 01 02 03)"
    assert why[str(text).removeprefix(root)] == ("not a gzip file (first bytes 68 65 6c 6c: text 'hell'), nor text "
                                                "with a header line (first line: 'hello, this is a note')")
    assert all("not a gzip file" in w for w in rep.warning_lines())
    no_none(rep)
    with pytest.raises(ReadError, match="not a gzip file"):
        flowtools.load(tmp_path, engine=engine, strict=True)


def test_gz_holding_plain_text_with_a_header_is_read_with_a_warning(tmp_path, engine):
    """Choice: a .gz holding plain text with a header line is read (nothing is lost), and
    the file is a problem file: a warning, an error under strict."""
    key = daily_key()
    write_log(tmp_path, key, GOOD, compress=False)
    rep = flowtools.load(tmp_path, engine=engine).report
    assert rep.records == 10 and rep.files_read == 1 and rep.lines_skipped == 0
    assert [(i.file, i.skipped) for i in rep.issues] == [(key, False)]
    assert rep.warning_lines() == [f"warning: {key}: not gzip-compressed despite its .gz name: read as plain text "
                                   "(10 record(s) read)"]
    with pytest.raises(ReadError, match="not gzip-compressed"):
        flowtools.load(tmp_path, engine=engine, strict=True)


def test_truncated_gzip_says_how_many_lines_came_before_the_cut(tmp_path, engine):
    data = gzip.compress(body([rec(i) for i in range(3000)]), mtime=0)
    cut = data[: len(data) // 2]
    recovered = zlib.decompressobj(wbits=31).decompress(cut)
    complete = recovered[: recovered.rfind(b"\n") + 1].count(b"\n")  # header included
    key = daily_key()
    put(tmp_path, key, cut)
    rep = flowtools.load(tmp_path, engine=engine).report
    assert rep.records == complete - 1
    [issue] = rep.issues
    assert issue.reason == (f"truncated gzip stream ({complete} lines read before the cut); "
                            "incomplete last line dropped")
    assert not issue.skipped and issue.records_kept == complete - 1
    with pytest.raises(ReadError, match="truncated gzip stream"):
        flowtools.load(tmp_path, engine=engine, strict=True)


def test_corrupt_gzip_names_the_byte_and_keeps_what_came_before(tmp_path, engine):
    first = gzip.compress(body(GOOD), mtime=0)
    # a second gzip member whose deflate data is invalid from its first byte (block type 3)
    second = gzip.compress(body(GOOD), mtime=0)[:10] + b"\xff" * 32
    key = daily_key()
    put(tmp_path, key, first + second)
    rep = flowtools.load(tmp_path, engine=engine).report
    assert rep.records == 10
    [issue] = rep.issues
    assert issue.reason == f"corrupt gzip data at byte {len(first) + 10} (invalid block type; 11 lines read before it)"
    assert not issue.skipped and issue.records_kept == 10


def test_corrupt_gzip_from_the_start_is_skipped_with_the_byte(tmp_path, engine):
    key = daily_key()
    put(tmp_path, key, gzip.compress(b"x", mtime=0)[:10] + b"\xff" * 32)
    rep = flowtools.load(tmp_path, engine=engine).report
    assert skipped(rep) == {key: "corrupt gzip data at byte 10 (invalid block type)"}


def _write_parquet(path, columns: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(columns), path)
    return path


def test_parquet_that_is_not_parquet_or_truncated(tmp_path, engine):
    not_pq = daily_key(hash_="00000001", ext="log.parquet")
    put(tmp_path, not_pq, gzip.compress(body(GOOD), mtime=0))
    truncated = daily_key(hash_="00000002", ext="log.parquet")
    buf = io.BytesIO()
    pq.write_table(pa.table({"srcaddr": ["10.0.0.1"] * 50, "dstaddr": ["10.0.0.2"] * 50}), buf)
    put(tmp_path, truncated, buf.getvalue()[: len(buf.getvalue()) // 2])
    rep = flowtools.load(tmp_path, engine=engine).report
    assert skipped(rep) == {
        not_pq: "not a Parquet file (first bytes 1f 8b 08 00: gzip data, not PAR1)",
        truncated: "truncated Parquet file (footer missing: it does not end with PAR1)",
    }
    with pytest.raises(ReadError, match="not a Parquet file|truncated Parquet"):
        flowtools.load(tmp_path, engine=engine, strict=True)


# -- 2. renamed files --------------------------------------------------------------------

@pytest.fixture
def renamed(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "flows-1.log.gz").write_bytes(gzip.compress(body(GOOD), mtime=0))
    (tmp_path / "logs" / "export.gz").write_bytes(gzip.compress(body(GOOD[:4]), mtime=0))
    (tmp_path / "x.csv.gz").write_bytes(gzip.compress(b"a,b\n1,2\n", mtime=0))
    (tmp_path / ".hidden.log.gz").write_bytes(gzip.compress(body(GOOD), mtime=0))
    (tmp_path / "README.md").write_text("flow logs of last week\n")
    (tmp_path / "truth.json").write_text("{}")
    return tmp_path


def test_renamed_files_are_counted_and_named(renamed, engine):
    rep = flowtools.load(renamed, engine=engine).report
    assert rep.records == 0 and rep.files_found == 0 and rep.files_ignored == 6
    assert rep.warning_lines() == [
        f"warning: {renamed}: no flow-log files found: 3 file(s) ignored because their names do not follow AWS's "
        "pattern {account}_vpcflowlogs_{region}_{id}_{time}_{hash}.log.gz (e.g. x.csv.gz, export.gz, flows-1.log.gz"
        "); read them anyway with --any-name (any_name=True); 3 other file(s) ignored"]


def test_any_name_reads_them_and_reports_what_is_not_a_flow_log(renamed, engine):
    rep = flowtools.load(renamed, engine=engine, any_name=True).report
    assert rep.records == 14 and rep.files_read == 2 and rep.files_ignored == 3  # hidden, README, truth.json
    assert sorted(f.file for f in rep.files) == ["logs/export.gz", "logs/flows-1.log.gz"]
    assert skipped(rep) == {"x.csv.gz": "no header line (first line: 'a,b'; give the format with --log-format "
                                        "/ log_format=)"}
    with pytest.raises(ReadError, match="x.csv.gz"):
        flowtools.load(renamed, engine=engine, any_name=True, strict=True)


def test_any_name_on_the_command_line(renamed, capsys):
    assert main(["sql", str(renamed), "SELECT count(*) AS n FROM flows", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert '"n": 0' in out and "--any-name" in err
    assert main(["sql", str(renamed), "SELECT count(*) AS n FROM flows", "--format", "json", "--any-name"]) == 0
    out, err = capsys.readouterr()
    assert '"n": 14' in out and "x.csv.gz: skipped: no header line" in err
    assert main(["sql", str(renamed), "SELECT 1", "--any-name", "--strict"]) == 1


def test_other_files_next_to_flow_logs_stay_silent(renamed, engine):
    write_log(renamed, daily_key(), GOOD)
    rep = flowtools.load(renamed, engine=engine).report
    assert rep.records == 10 and rep.ok and rep.warning_lines() == [] and rep.files_ignored == 6


def test_a_folder_without_any_file(tmp_path, engine):
    rep = flowtools.load(tmp_path, engine=engine).report
    assert rep.warning_lines() == [f"warning: {tmp_path}: no flow-log files found (no files listed)"]


# -- 3. and 4. filters and windows that match nothing -----------------------------------

@pytest.fixture
def two_regions(tmp_path):
    for region, ts in (("us-east-1", "20261120T0000Z"), ("eu-west-1", "20261120T1200Z"),
                       ("eu-west-1", "20261121T0000Z")):
        write_log(tmp_path, daily_key(region=region, ts=ts), GOOD)
    return tmp_path


def test_a_region_typo_is_named_with_the_regions_found(two_regions, engine):
    rep = flowtools.load(two_regions, engine=engine, regions="eu-west-9").report
    assert (rep.files_found, rep.files_pruned, rep.files_excluded_regions, rep.files_pruned_window,
            rep.files_excluded_accounts) == (3, 3, 3, 0, 0)
    assert rep.warning_lines() == ["warning: --regions eu-west-9 matched none of the 3 flow-log files; "
                                   "regions found: eu-west-1, us-east-1"]
    assert "0 outside the window, 3 excluded by --regions;" in rep.summary_line()
    no_none(rep)


def test_an_account_typo_and_counts_per_filter(two_regions, engine):
    rep = flowtools.load(two_regions, engine=engine, accounts="999999999999").report
    assert rep.warning_lines() == ["warning: --accounts 999999999999 matched none of the 3 flow-log files; "
                                   "accounts found: 123456789010"]
    assert "0 outside the window, 3 excluded by --accounts;" in rep.summary_line()
    rep = flowtools.load(two_regions, engine=engine, regions="eu-west-1", start="2026-11-20T23:00Z").report
    assert (rep.files_excluded_regions, rep.files_pruned_window, rep.files_read, rep.files_pruned) == (1, 1, 1, 2)
    assert "1 outside the window, 1 excluded by --regions;" in rep.summary_line()
    assert rep.warning_lines() == []


def test_a_window_outside_the_data_says_the_data_span(two_regions, engine):
    rep = flowtools.load(two_regions, engine=engine, start="2026-12-01", end="2026-12-02").report
    assert (rep.files_pruned_window, rep.files_pruned) == (3, 3)
    assert rep.warning_lines() == [
        "warning: no files overlap the window [2026-12-01T00:00:00Z, 2026-12-02T00:00:00Z); "
        "the flow-log files found span 2026-11-20T00:00:00Z .. 2026-11-21T00:05:00Z"]
    assert "3 outside the window;" in rep.summary_line()
    rep = flowtools.load(two_regions, engine=engine, end="2026-11-01", regions="eu-west-1").report
    assert rep.warning_lines() == [
        "warning: no files overlap the window [-inf, 2026-11-01T00:00:00Z); the flow-log files of the selected "
        "accounts and regions found span 2026-11-20T12:00:00Z .. 2026-11-21T00:05:00Z"]
    no_none(rep)


# -- 5. files that are no flow log --------------------------------------------------------

def test_parquet_and_text_without_flow_log_fields_are_bad_files(tmp_path, engine):
    write_log(tmp_path, daily_key(hash_="00000001"), GOOD)
    ab = daily_key(hash_="00000002", ext="log.parquet")
    _write_parquet(tmp_path / ab, {"a": [1, 2], "b": ["x", "y"]})
    mostly_foreign = daily_key(hash_="00000003", ext="log.parquet")
    _write_parquet(tmp_path / mostly_foreign, {"srcaddr": ["10.0.0.1"], "dstaddr": ["10.0.0.2"], "id": [1],
                                               "name": ["n"], "city": ["c"]})
    one_field = daily_key(hash_="00000004")
    write_log(tmp_path, one_field, ["10.0.0.1 1", "10.0.0.2 2"], header="srcaddr score")
    other_table = daily_key(hash_="00000005")
    write_log(tmp_path, other_table, ["1 2"], header="a b")
    flows = flowtools.load(tmp_path, engine=engine)
    rep = flows.report
    assert rep.records == 10 and rep.files_read == 1
    assert flows.to_polars().columns == flowtools.load(tmp_path / "AWSLogs", engine=engine).to_polars().columns
    assert "a" not in flows.to_polars().columns and "score" not in flows.to_polars().columns
    assert skipped(rep) == {
        ab: "not a flow log: none of the flow-log fields (columns found: a, b)",
        mostly_foreign: "not a flow log: 3 of its 5 columns are not flow-log fields (id, name, city; "
                        "flow-log fields: srcaddr, dstaddr)",
        one_field: "not a flow log: only one flow-log field, srcaddr, where a flow log has at least 2 "
                   "(header fields found: srcaddr, score)",
        other_table: "not a flow log: none of the flow-log fields (header fields found: a, b)",
    }
    with pytest.raises(ReadError, match="not a flow log"):
        flowtools.load(tmp_path, engine=engine, strict=True)


def test_a_minimal_custom_format_is_a_flow_log(tmp_path, engine):
    write_log(tmp_path, daily_key(hash_="00000001"), ["10.0.0.1 10.0.0.2 443", "10.0.0.3 10.0.0.2 22"],
              header="srcaddr dstaddr dstport")
    _write_parquet(tmp_path / daily_key(hash_="00000002", ext="log.parquet"),
                   {"srcaddr": ["10.0.0.9"], "dstaddr": ["10.0.0.2"], "future_field": ["z"]})
    flows = flowtools.load(tmp_path, engine=engine, strict=True)
    assert flows.report.records == 3 and flows.report.ok
    df = flows.to_polars().sort("srcaddr")
    assert df.get_column("dstport").to_list() == [443, 22, None]
    assert df.get_column("future_field").to_list() == [None, None, "z"]


# -- 6. header lines inside a file (objects concatenated with cat) -----------------------

CUSTOM = "version interface-id srcaddr dstaddr srcport dstport protocol start end action tcp-flags"


def custom_rec(i: int) -> str:
    return f"5 eni-0a1b2c3d4e5f60718 10.0.0.5 198.51.100.{i} 443 {50000 + i} 6 1795169100 1795169160 ACCEPT 18"


def _compare_concatenated(tmp_path, engine, parts, joined: bytes, *, n_files: int = 2):
    """Read ``parts`` as separate files and ``joined`` as one: same records, same counts."""
    sep, cat = tmp_path / "separate", tmp_path / "cat"
    for i, (lines, header) in enumerate(parts):
        write_log(sep, daily_key(hash_=f"0000000{i}"), lines, header=header)
    put(cat, daily_key(hash_="000000ca"), joined)
    a = flowtools.load(sep, engine=engine)
    b = flowtools.load(cat, engine=engine)
    assert b.report.files_read == 1 and a.report.files_read == n_files
    for attr in ("records", "records_parsed", "lines_skipped", "files_skipped"):
        assert getattr(b.report, attr) == getattr(a.report, attr), attr
    frames_equal(a.to_polars().drop("source_file"), b.to_polars().drop("source_file"),
                 sort_by=("srcaddr", "dstaddr", "srcport", "dstport"))
    return a, b


@pytest.mark.parametrize("how", ["cat a.log b.log | gzip", "cat a.log.gz b.log.gz"])
def test_concatenated_files_with_different_headers(tmp_path, engine, how):
    parts = [(GOOD, DEFAULT_HEADER), ([custom_rec(i) for i in range(7)], CUSTOM)]
    if how.startswith("cat a.log b.log"):
        joined = gzip.compress(body(*parts[0]) + body(*parts[1]), mtime=0)
    else:
        joined = gzip.compress(body(*parts[0]), mtime=0) + gzip.compress(body(*parts[1]), mtime=0)
    _, b = _compare_concatenated(tmp_path, engine, parts, joined)
    assert b.report.records == 17 and b.report.ok
    got = b.to_polars()
    assert got.filter(pl.col("tcp_flags").is_not_null()).height == 7  # the second header's field
    assert got.filter(pl.col("account_id").is_not_null()).height == 10  # the first header's field


def test_concatenated_files_wider_second_header_and_bad_line_numbers(tmp_path, engine):
    """The first part has fewer fields than the second; a bad line in the second part keeps
    its line number in the whole file."""
    second = [*GOOD[:3], "2 123456789010 eni-1 oops", *GOOD[3:]]
    parts = [([custom_rec(i) for i in range(4)], CUSTOM), (second, DEFAULT_HEADER)]
    joined = gzip.compress(body(*parts[0]) + body(*parts[1]), mtime=0)
    _, b = _compare_concatenated(tmp_path, engine, parts, joined)
    assert b.report.records == 14 and b.report.lines_skipped == 1
    # part 1: header + 4 records (lines 1-5); part 2: header line 6, records from line 7
    assert [(x.line, x.reason) for x in b.report.bad_lines] == [(10, "4 fields (the header has 14)")]


def test_the_same_header_repeated_in_an_all_string_format(tmp_path, engine):
    """A repeated header whose fields are all strings parses as a record: it must not."""
    header = "interface-id srcaddr dstaddr action"
    lines = [f"eni-0a1b2c3d4e5f6071{i} 10.0.0.{i} 10.0.1.{i} ACCEPT" for i in range(5)]
    parts = [(lines[:2], header), (lines[2:], header)]
    joined = gzip.compress(body(*parts[0]) + body(*parts[1]), mtime=0)
    _, b = _compare_concatenated(tmp_path, engine, parts, joined)
    assert b.report.records == 5 and b.report.ok
    assert "srcaddr" not in b.to_polars().get_column("srcaddr").to_list()


def test_a_field_only_a_later_header_names_is_reported(tmp_path, engine):
    """The columns are fixed before the first chunk (from the files' first headers): an
    unknown field that only a header inside a file names cannot become one; it says so."""
    key = daily_key()
    later = DEFAULT_HEADER + " future-field"
    put(tmp_path, key, gzip.compress(body(GOOD[:2]) + body([r + " z" for r in GOOD[2:5]], header=later), mtime=0))
    flows = flowtools.load(tmp_path, engine=engine)
    assert flows.report.records == 5 and flows.report.lines_skipped == 0
    assert "future_field" not in flows.to_polars().columns
    assert flows.report.warning_lines() == [
        f"warning: {key}: line 4: the header line names field(s) future-field that no file's first header did; "
        "their values are not kept"]
