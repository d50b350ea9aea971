"""`flowtools athena ddl` and `flowtools athena query` (the latter against moto's Athena)."""

from __future__ import annotations

import json

import pytest
import sqlglot

from flowtools.athena.ddl import ddl
from flowtools.cli import build_parser, main


def test_ddl_prints_the_library_statement(capsys):
    argv = ["athena", "ddl", "--location", "s3://flow-bucket/central/", "--layout", "hourly", "--format", "parquet",
            "--fields", "${version} ${account-id} ${srcaddr} ${region}", "--org-id", "o-abcdefghij",
            "--accounts", "111122223333,444455556666", "--regions", "us-east-1", "--start", "2025-02-03",
            "--table", "flows_v4", "--database", "audit"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    expected = ddl("s3://flow-bucket/central/", layout="hourly", file_format="parquet",
                   fields="${version} ${account-id} ${srcaddr} ${region}", org_id="o-abcdefghij",
                   accounts=["111122223333", "444455556666"], regions=["us-east-1"], start="2025-02-03",
                   table="flows_v4", database="audit")
    assert out == expected + ";\n"
    assert sqlglot.parse_one(out.strip().rstrip(";"), read="athena").this.this.name == "flows_v4"
    assert "'projection.p_datehour.range' = '2025/02/03/00,NOW'" in out


def test_store_layout_defaults_to_parquet(capsys):
    assert main(["athena", "ddl", "--location", "s3://flow-bucket/store/", "--layout", "store"]) == 0
    assert "STORED AS PARQUET" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--layout", "store", "--format", "text"], "Parquet only"),
    (["--layout", "daily", "--accounts", "1234"], "bad account id"),
])
def test_ddl_usage_errors_exit_2(capsys, argv, message):
    assert main(["athena", "ddl", "--location", "s3://flow-bucket/", *argv]) == 2
    assert message in capsys.readouterr().err


def test_help_has_examples():
    parser = build_parser()
    athena = next(a for a in parser._actions if a.dest == "command").choices["athena"]
    actions = next(a for a in athena._actions if a.dest == "athena_command").choices
    assert set(actions) == {"ddl", "query", "exposure"}
    for p in (athena, *actions.values()):
        assert "example:\n  flowtools athena" in p.format_help()


def test_query_prints_rows_and_cost(athena, preset, capsys):
    preset([["action", "n"], ["ACCEPT", "10"], ["REJECT", "3"]],
           [{"Name": "action", "Label": "action", "Type": "varchar"}, {"Name": "n", "Label": "n", "Type": "bigint"}])
    athena.execution_patch = {"Statistics": {"DataScannedInBytes": 50 * 2**20, "EngineExecutionTimeInMillis": 900}}
    assert main(["athena", "query", "SELECT action, count(*) AS n FROM vpc_flow_logs GROUP BY action",
                 "--database", "flows", "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out) == [{"action": "ACCEPT", "n": 10}, {"action": "REJECT", "n": 3}]
    assert "scanned 50.0 MB" in captured.err and "USD 0.0002" in captured.err


def test_query_failure_exits_1(athena, capsys):
    athena.execution_patch = {"Status": {"State": "FAILED", "StateChangeReason": "TABLE_NOT_FOUND: nope"}}
    assert main(["athena", "query", "SELECT 1 FROM nope", "--database", "flows"]) == 1
    assert "TABLE_NOT_FOUND: nope" in capsys.readouterr().err
