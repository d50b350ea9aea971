"""The command line: output formats, exit codes, stderr warnings and summary, help."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest
from flowlog_files import daily_key, write_log

from flowtools.cli import build_parser, main

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
    (["info", "{tree}", "--engine", "spark"], 2, "invalid choice"),
    (["info", "{tree}", "--no-such-option"], 2, "unrecognized arguments"),
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


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "flowtools.cli", "--help"], capture_output=True, text=True, check=True)
    assert "exposure" in out.stdout
