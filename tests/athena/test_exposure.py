"""`flowtools.athena.exposure`: the exposure analysis as generated Athena SQL, checked
without AWS: the SQL parses in sqlglot's Athena dialect, and the same SQL transpiled back
to DuckDB and run over the sample gives the DuckDB engine's findings (and the truth's)."""

from __future__ import annotations

import json

import duckdb
import polars as pl
import pytest
import sqlglot
from flowlog_files import SAMPLES

import flowtools
from flowtools.analyses.exposure import internet_exposure
from flowtools.athena.exposure import MAX_QUERY_BYTES, exposure_sql, to_athena
from flowtools.athena.local import LocalAthena
from flowtools.enrichment.inventory import Inventory
from flowtools.enrichment.ip_ranges import IpRanges
from flowtools.errors import UsageError
from flowtools.frames import to_polars


def utc(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.with_columns(pl.col(c).dt.convert_time_zone("UTC") for c in ("first_seen", "last_seen"))


@pytest.fixture(scope="module")
def sample_records(sample_runs) -> pl.DataFrame:
    return to_polars(sample_runs.flows("duckdb"))


@pytest.fixture(scope="module")
def enrichment() -> dict:
    return {"inventory": Inventory.load(SAMPLES / "inventory"), "ip_ranges": IpRanges.load(SAMPLES / "ip-ranges.json"),
            "include_configured": True}


@pytest.fixture(scope="module")
def generated(sample_records, enrichment):
    """The findings of the sample through the generated SQL, and the DuckDB engine's."""
    athena = LocalAthena(sample_records)
    statements, findings = athena.exposure(**enrichment)
    con = duckdb.connect()
    con.register("flows", sample_records.to_arrow())
    engine = to_polars(internet_exposure(con.table("flows"), **enrichment))
    return athena, statements, findings, engine


def test_same_findings_as_the_duckdb_engine(generated):
    athena, _, findings, engine = generated
    assert engine.height > 40
    assert utc(findings).equals(utc(engine)), "the generated SQL's findings differ from the DuckDB engine's"
    assert (findings["status"] == "configured").any() and (findings["aws_peers"] > 0).any()
    assert athena.staged, "the oriented address pairs are staged, not inlined"


def test_findings_match_the_truth(generated):
    findings = generated[2]
    truth = json.loads((SAMPLES / "truth.json").read_text())
    found = {(r["interface_id"], r["protocol"], r["port"], r["status"]) for r in findings.to_dicts()}
    expected = {(e["interface_id"], e["protocol"], e["port"], e["status"]) for e in truth["exposure"]}
    assert expected <= found


def test_generated_sql_is_athena_sql(generated):
    athena, statements, _, _ = generated
    assert athena.statements == [statements.names_sql, statements.pairs_sql, statements.findings_sql]
    for sql in athena.statements:
        tree = sqlglot.parse_one(sql, read="athena")
        assert {t.name for t in tree.find_all(sqlglot.exp.Table)} & {"vpc_flow_logs"}
        assert "GROUP BY ALL" not in sql and "MEAN(" not in sql and "COUNT()" not in sql
    assert len(statements.findings_sql.encode()) < MAX_QUERY_BYTES
    assert "WITH side_1 AS" in statements.findings_sql and "step_1 AS (" in statements.findings_sql


def test_inlined_side_tables_and_a_raw_layout_with_a_window(sample_records):
    """No staging: every side table is a VALUES list. The table is a daily text layout
    (the sample's own format plus partition columns), read for a window."""
    truth = json.loads((SAMPLES / "truth.json").read_text())
    iface = truth["exposure"][0]["interface_id"]
    fields = ["version", "account_id", "interface_id", "srcaddr", "dstaddr", "srcport", "dstport", "protocol",
              "packets", "bytes", "start", "end", "action", "log_status", "tcp_flags", "flow_direction"]
    few = sample_records.filter(pl.col("interface_id") == iface)
    raw = few.select(*fields, p_account_id=pl.col("account_id"), p_region=pl.col("source_region"),
                     p_date=pl.col("start_time").dt.strftime("%Y/%m/%d"))
    athena = LocalAthena(raw)
    window = flowtools.Window.parse("2026-11-20T06:00Z", "2026-11-20T12:00Z")
    _, findings = exposure_sql(athena, layout="daily", fields=fields, window=window)
    assert "p_date BETWEEN '2026/11/20' AND '2026/11/20'" in athena.statements[0]
    assert "FROM (VALUES" in athena.statements[-1]
    con = duckdb.connect()
    con.register("flows", few.filter((pl.col("start") < window.end_s) & (pl.col("end") >= window.start_s))
                 .select(*fields, "start_time", "end_time", "source_account_id", "source_region").to_arrow())
    engine = to_polars(internet_exposure(con.table("flows")))
    assert engine.height > 0
    assert utc(findings).equals(utc(engine))


def test_transpiler_fixes():
    sql = to_athena("SELECT k, mean(x) AS m, count() AS n FROM t GROUP BY k")
    assert "AVG(x)" in sql and "COUNT(*)" in sql
    with pytest.raises(UsageError, match="GROUP BY ALL"):
        to_athena("SELECT k, count(*) FROM t GROUP BY ALL")
