"""`flowtools sql --inventory/--ip-ranges`: the view 'enriched' (flowtools.enrich of the
flows) next to 'flows', on the same connection, on both engines."""

from __future__ import annotations

import json

import pytest
from flowlog_files import SAMPLES

from flowtools.cli import main

pytestmark = pytest.mark.usefixtures("sample_dir")
WINDOW = ("--start", "2026-11-20T06:00Z", "--end", "2026-11-20T07:00Z")
QUERY = ("SELECT interface_id, any_value(iface_resource_name) AS name, count(*) AS n, "
         "count(src_aws_service) + count(dst_aws_service) AS aws FROM enriched GROUP BY ALL ORDER BY interface_id")


def _truth() -> dict:
    return json.loads((SAMPLES / "truth.json").read_text(encoding="utf-8"))


def test_enriched_names_the_inventorys_resources(engine, capsys):
    code = main(["sql", str(SAMPLES), *WINDOW, "--engine", engine, "--inventory", str(SAMPLES / "inventory"),
                 "--ip-ranges", str(SAMPLES / "ip-ranges.json"), "--format", "json", QUERY])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = {r["interface_id"]: r for r in json.loads(out)}
    names = {e["interface_id"]: e["resource_name"] for e in _truth()["exposure"]}  # the inventory's names
    named = [i for i in rows if i in names]
    assert len(named) >= 3  # the sample's exposed interfaces with records in the hour
    assert all(rows[i]["name"] == names[i] for i in named)
    assert sum(r["aws"] for r in rows.values()) > 0  # ip-ranges: AWS services at either end
    code = main(["sql", str(SAMPLES), *WINDOW, "--engine", engine, "--format", "json",
                 "SELECT (SELECT count(*) FROM enriched) = (SELECT count(*) FROM flows) AS same"])
    assert code != 0 and "enriched" in capsys.readouterr().err  # without the options there is no such view


def test_enriched_keeps_every_record_and_joins_with_flows(capsys):
    code = main(["sql", str(SAMPLES), *WINDOW, "--inventory", str(SAMPLES / "inventory"), "--format", "json",
                 "SELECT (SELECT count(*) FROM enriched) AS enriched, (SELECT count(*) FROM flows) AS flows"])
    out, err = capsys.readouterr()
    assert code == 0, err
    row = json.loads(out)[0]
    assert row["enriched"] == row["flows"] > 0  # a left join: no record lost or doubled


def test_a_missing_inventory_fails_before_the_load(tmp_path, capsys):
    code = main(["sql", str(SAMPLES), *WINDOW, "--inventory", str(tmp_path / "nope"), "SELECT 1"])
    err = capsys.readouterr().err
    assert code == 1 and str(tmp_path / "nope") in err and "record(s)" not in err
