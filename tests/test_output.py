"""Printing frames (flowtools.output): numbers keep their value in JSON, CSV and table;
durations, times, NaN and the types Polars cannot import print as text or null."""

from __future__ import annotations

import csv
import io
import json
from datetime import time, timedelta
from decimal import Decimal

import duckdb
import pytest

from flowtools import output

BIG = 2**60 + 1


def _print(df, fmt: str) -> str:
    out = io.StringIO()
    output.write_frame(df, fmt, out)
    return out.getvalue()


@pytest.fixture(scope="module")
def numbers():
    """DuckDB's HUGEINT sums reach Polars as Decimal(38, 0): the case that printed 1.0e10-style floats."""
    return output.relation_frame(duckdb.sql(
        f"SELECT CAST({BIG} AS HUGEINT) AS huge, sum(v) AS total, 1.25::DECIMAL(10,2) AS price, "
        "3::DECIMAL(10,2) AS whole, 12345678901234567.89::DECIMAL(38,2) AS long, 0.5::DOUBLE AS ratio "
        "FROM (VALUES (4503599627370496::BIGINT), (4503599627370497::BIGINT)) t(v)"))


def test_integers_keep_every_digit_in_json(numbers):
    text = _print(numbers, "json")
    assert f'"huge": {BIG},' in text and f'"total": {2**53 + 1},' in text
    assert json.loads(text) == [{"huge": BIG, "total": 2**53 + 1, "price": 1.25, "whole": 3.0,
                                 "long": "12345678901234567.89", "ratio": 0.5}]


def test_decimals_are_numbers_unless_a_float_would_round_them():
    assert output.jsonable(Decimal("1.25")) == 1.25 and isinstance(output.jsonable(Decimal("0.1")), float)
    assert output.jsonable(Decimal("12345678901234567.89")) == "12345678901234567.89"
    assert output.jsonable(Decimal(BIG)) == BIG and isinstance(output.jsonable(Decimal("1E+3")), int)


def test_csv_and_table_print_the_digits(numbers):
    header, row = list(csv.reader(io.StringIO(_print(numbers, "csv"))))
    assert dict(zip(header, row, strict=True)) == {"huge": str(BIG), "total": str(2**53 + 1), "price": "1.25",
                                                   "whole": "3.00", "long": "12345678901234567.89", "ratio": "0.5"}
    assert _print(numbers, "table").splitlines()[2].split() == row
    assert output.csv_cell(Decimal("1E-7")) == "0.0000001"


def test_intervals_bits_and_duplicate_names_reach_polars():
    relation = duckdb.sql("SELECT INTERVAL 90 MINUTE AS i, [INTERVAL 2 DAY] AS li, '101'::BIT AS b, "
                          "1 AS a, 2 AS a, 'x' AS \"q\"\"\"")
    assert output.records(output.relation_frame(relation)) == [
        {"i": "01:30:00", "li": "[2 days]", "b": "101", "a": 1, "a_1": 2, 'q"': "x"}]
    plain = duckdb.sql("SELECT 1 AS n")
    assert output.relation_frame(plain).to_dicts() == [{"n": 1}]


def test_durations_times_and_non_finite_floats():
    assert [output.jsonable(v) for v in (timedelta(minutes=90), timedelta(days=2, seconds=5), timedelta(days=1),
                                         -timedelta(days=1, hours=1), timedelta(seconds=1.5))] == [
        "01:30:00", "2 days 00:00:05", "1 day", "-1 day -01:00:00", "00:00:01.5"]
    assert output.jsonable(time(10, 0, 1)) == "10:00:01"
    assert [output.jsonable(v) for v in (float("nan"), float("inf"))] == [None, None]  # JSON has neither
    assert [output.csv_cell(v) for v in (float("nan"), float("-inf"))] == ["NaN", "-inf"]
    out = io.StringIO()
    output.write_json(output.records(output.relation_frame(duckdb.sql(
        "SELECT 'nan'::DOUBLE AS n, TIME '10:00:01' AS t"))), out)
    assert json.loads(out.getvalue()) == [{"n": None, "t": "10:00:01"}]
