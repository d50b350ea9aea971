"""The command line: output formats, exit codes, stderr warnings and summary, help."""

from __future__ import annotations

import csv
import io
import json
import shlex
import subprocess
import sys

import pytest
from flowlog_files import SAMPLES, daily_key, write_log

from flowtools.cli import _EXAMPLES, build_parser, main

REC = "2 123456789010 eni-0a1b2c3d4e5f60718 203.0.113.{i} 10.0.0.5 {p} 443 6 10 840 1795169100 1795169160 ACCEPT OK"


@pytest.fixture
def tree(tmp_path):
    write_log(tmp_path, daily_key(ts="20261120T1005Z"), [REC.format(i=i, p=40000 + i) for i in range(5)])
    write_log(tmp_path, daily_key(ts="20261120T1005Z", hash_="0000bad1"),
              [REC.format(i=9, p=40009), "2 123456789010 eni-0a1b2c3d4e5f60718 oops"])
    return tmp_path


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_sql_json_is_clean_and_warnings_go_to_stderr(tree, capsys, engine):
    code, out, err = run(capsys, "sql", str(tree), "SELECT srcaddr, start_time, dstport FROM flows ORDER BY srcaddr",
                         "--format", "json", "--engine", engine)
    assert code == 0
    rows = json.loads(out)
    assert len(rows) == 6 and rows[0] == {"srcaddr": "203.0.113.0", "start_time": "2026-11-20T10:05:00Z", "dstport": 443}
    lines = err.strip().splitlines()
    assert lines[0].startswith("warning: ") and "0000bad1" in lines[0] and "line 3" in lines[0]
    assert lines[-1].startswith("flowtools: 2 file(s) read") and "1 line(s) skipped" in lines[-1]


def test_sql_csv_and_table(tree, capsys):
    code, out, _ = run(capsys, "sql", str(tree), "SELECT action, count(*) AS n, true AS ok FROM flows GROUP BY ALL",
                       "--format", "csv")
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == [["action", "n", "ok"], ["ACCEPT", "6", "true"]]
    code, out, _ = run(capsys, "sql", str(tree), "SELECT action, count(*) AS n FROM flows GROUP BY ALL")
    assert code == 0 and "ACCEPT" in out and "(1 rows)" in out


def test_info_json(tree, capsys, engine):
    code, out, _ = run(capsys, "info", str(tree), "--format", "json", "--engine", engine)
    assert code == 0
    info = json.loads(out)
    assert info["records"] == 6 and info["files_read"] == 2 and info["lines_skipped"] == 1
    assert info["accounts"] == ["123456789010"] and info["regions"] == ["us-east-1"]
    assert info["first_record"] == "2026-11-20T10:05:00Z" and info["last_record"] == "2026-11-20T10:06:00Z"
    assert info["bad_lines"][0]["line"] == 3 and "fields" in info["bad_lines"][0]["reason"]
    (log,) = info["flow_logs"]
    assert log["flow_log_id"] == "fl-1234abcd" and log["records"] == 6 and log["layouts"] == ["daily"]
    assert log["formats"][0].startswith("version account-id interface-id")


def test_info_table(tree, capsys):
    code, out, _ = run(capsys, "info", str(tree))
    assert code == 0 and "fl-1234abcd" in out and "problems" in out and "records   6" in out


@pytest.mark.parametrize("argv,code,message", [
    (["sql", "{tree}", "SELECT nope FROM flows"], 1, "SQL error"),
    (["info", "{tree}/missing"], 1, "SOURCE not found"),
    (["info", "{tree}", "--start", "yesterday"], 2, "bad time value"),
    (["info", "{tree}", "--strict"], 1, "strict"),
    (["info", "{tree}", "--engine", "pandas"], 2, "invalid choice"),
    (["info", "{tree}", "--no-such-option"], 2, "unrecognized arguments"),
    (["info", "{tree}", "--start", "-6h", "--no-such-option", "-2d"], 2, "unrecognized arguments"),
    (["info", "{tree}", "--start", "-6x"], 2, "bad time value"),
    (["info", "{tree}", "--start"], 2, "expected one argument"),
    (["sql", "{tree}", "SELECT CAST('x' AS INT)"], 1, "SQL error"),  # fails when run, not when planned
    (["info", "{tree}", "--format", "csv"], 2, "invalid choice"),  # info is one report: table or json
    (["info", "s3://bucket/prefix"], 2, "needs --start/--end"),
])
def test_errors_and_exit_codes(tree, capsys, argv, code, message):
    argv = [a.format(tree=tree) for a in argv]
    try:
        got = main(argv)
    except SystemExit as e:  # argparse usage errors
        got = e.code
    out, err = capsys.readouterr()
    assert got == code
    assert message in err and out == ""


def test_an_unwritable_path_is_an_error_message_not_a_traceback(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, out, err = run(capsys, "sample", str(tmp_path / "file" / "out"), "--hours", "1")
    assert (code, out) == (1, "") and err.startswith("flowtools: error: ") and "file/out" in err


def test_empty_source_is_an_empty_result_with_a_warning(tmp_path, capsys):
    (tmp_path / "README.md").write_text("not a flow log")
    code, out, err = run(capsys, "sql", str(tmp_path), "SELECT count(*) AS n FROM flows", "--format", "json")
    assert code == 0 and json.loads(out) == [{"n": 0}]
    assert "no flow-log files found" in err


def test_every_command_has_help_with_an_example():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert {"sample", "info", "sql", "exposure"} <= set(sub.choices)
    for name, p in sub.choices.items():
        text = p.format_help()
        assert p.description, name
        assert f"flowtools {name}" in text and "example" in text, name


def _subcommands() -> dict:
    parser = build_parser()
    return next(a for a in parser._actions if a.dest == "command").choices


def test_every_help_example_parses():
    for name, example in _EXAMPLES.items():
        for line in example.splitlines():  # an example may show several commands, one a line
            argv = shlex.split(line)
            assert argv[0] == "flowtools"
            args = build_parser().parse_args(argv[1:])
            assert args.command == name and args.func.__name__.startswith("cmd_" + name.replace("-", "_"))
    assert build_parser().parse_args(shlex.split(_EXAMPLES["fetch"])[1:]).start == "-6h"


def _without_window(argv: list[str]) -> list[str]:
    """The example's arguments without its --start/--end and their values."""
    out: list[str] = []
    for a in argv:
        if out and out[-1] in ("--start", "--end"):
            out.pop()  # the option, and its value is not kept
        else:
            out.append(a)
    return out


@pytest.mark.parametrize("value", ["-6h", "-2d", "-30m", "-1w", "-1.5h", "-90s"])
def test_relative_times_are_values_in_every_command(value):
    with_times = [name for name, p in _subcommands().items() if "--start T" in p.format_help()]
    assert {"info", "sql", "exposure", "report", "fetch"} <= set(with_times)
    for name in with_times:
        lines = _EXAMPLES[name].splitlines()  # the example line with a window, else the first
        argv = _without_window(shlex.split(next((x for x in lines if "--start" in x), lines[0]))[1:])
        args = build_parser().parse_args([*argv[:2], "--start", value, *argv[2:], "--end", value])
        assert (args.start, args.end) == (value, value), name
    args = build_parser().parse_args(["sql", "src", "--", "--start"])  # after --: positional
    assert args.query == "--start" and args.start is None


def test_a_relative_start_runs(tree, capsys):
    code, out, err = run(capsys, "info", str(tree), "--start", "-1w", "--end", "-30m", "--format", "json")
    assert code == 0, err
    assert not json.loads(out)["window"].startswith("[-inf")


def test_statements_without_result_rows(tree, tmp_path, capsys, engine):
    target = tmp_path / "out.csv"
    for fmt, expected in (("json", "[]\n"), ("csv", ""), ("table", "")):
        target.unlink(missing_ok=True)
        code, out, err = run(capsys, "sql", str(tree), f"COPY (SELECT srcaddr FROM flows) TO '{target}'",
                             "--format", fmt, "--engine", engine)
        assert code == 0 and target.read_text().count("\n") == 7, err  # header + 6 records
        if out != expected:  # DuckDB versions where COPY answers with a count row
            assert json.loads(out) == [{"Count": 6}]
        else:
            assert "flowtools sql: statement executed (no result rows)" in err
    for query in ("CREATE TABLE t AS SELECT 1 AS a", "DROP VIEW flows", "CREATE TABLE t AS SELECT 1; DROP TABLE t"):
        code, out, err = run(capsys, "sql", str(tree), query, "--format", "json", "--engine", engine)
        assert (code, out) == (0, "[]\n") and "statement executed" in err, query
    code, out, _ = run(capsys, "sql", str(tree), "CREATE TABLE t AS SELECT count(*) AS n FROM flows; SELECT n FROM t",
                       "--format", "json", "--engine", engine)
    assert code == 0 and json.loads(out) == [{"n": 6}]


#: HUGEINT (DuckDB's sum of BIGINT) and an exact decimal, above 2**53 where floats lose digits.
BIG = 2**60 + 1
NUMBERS = (f"SELECT sum(bytes) AS total, CAST({BIG} AS HUGEINT) AS huge, "
           "(SELECT sum(v) FROM (VALUES (4503599627370496::BIGINT), (4503599627370497::BIGINT)) t(v)) AS big_sum, "
           "1.25::DECIMAL(10,2) AS price, count(*) AS n FROM flows")


def test_integer_aggregates_stay_integers_in_every_format(tree, capsys, engine):
    code, out, _ = run(capsys, "sql", str(tree), NUMBERS, "--format", "json", "--engine", engine)
    assert code == 0
    assert '"total": 5040,' in out and f'"huge": {BIG},' in out and '"price": 1.25,' in out
    assert json.loads(out) == [{"total": 5040, "huge": BIG, "big_sum": 2**53 + 1, "price": 1.25, "n": 6}]
    code, out, _ = run(capsys, "sql", str(tree), NUMBERS, "--format", "csv", "--engine", engine)
    assert list(csv.reader(io.StringIO(out)))[1] == ["5040", str(BIG), str(2**53 + 1), "1.25", "6"]
    code, out, _ = run(capsys, "sql", str(tree), NUMBERS, "--format", "table", "--engine", engine)
    assert out.splitlines()[2].split() == ["5040", str(BIG), str(2**53 + 1), "1.25", "6"]


def test_intervals_print_as_text(tree, capsys):
    code, out, _ = run(capsys, "sql", str(tree), "SELECT max(end_time) - min(start_time) AS span FROM flows",
                       "--format", "json")
    assert code == 0 and json.loads(out) == [{"span": "00:01:00"}]


def test_info_without_records_never_prints_none(tmp_path, capsys):
    (tmp_path / "README.md").write_text("not a flow log")
    code, out, _ = run(capsys, "info", str(tmp_path))
    assert code == 0 and "time      - (no records)" in out and "None" not in out


def test_exposure_table_shows_port_ranges(capsys, sample_dir):
    ranges = [c for c in json.loads((SAMPLES / "truth.json").read_text())["configured"]
              if c["port_to"] not in (None, c["port"])]
    assert ranges, "the sample has a configured port range"
    argv = ["exposure", str(SAMPLES), "--inventory", str(SAMPLES / "inventory"), "--include-configured",
            "--start", "2026-11-20T06:00Z", "--end", "2026-11-20T07:00Z"]
    code, out, _ = run(capsys, *argv, "--format", "json")
    assert code == 0
    rows = {(r["interface_id"], r["protocol"], r["port"]): r for r in json.loads(out)}
    code, table, _ = run(capsys, *argv, "--format", "table")
    assert code == 0
    for c in ranges:
        row = rows[(c["interface_id"], c["protocol"], c["port"])]
        assert (row["status"], row["port_to"]) == ("configured", c["port_to"])  # JSON: two keys
        (line,) = [x for x in table.splitlines() if c["interface_id"] in x]
        assert f" {c['port']}-{c['port_to']} " in line


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "flowtools.cli", "--help"], capture_output=True, text=True, check=True)
    assert "exposure" in out.stdout


def test_info_names_the_filter_that_excluded_files(tree, capsys):
    code, out, err = run(capsys, "info", str(tree), "--regions", "eu-west-9")
    assert code == 0
    assert "0 outside the window, 2 excluded by --regions (2 found)" in out
    assert "--regions eu-west-9 matched none of the 2 flow-log files; regions found: us-east-1" in err
