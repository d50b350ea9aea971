"""`flowtools store build` and `flowtools store info`."""

from __future__ import annotations

import json

import flowtools
from flowtools.cli import main


def test_store_build_then_info(store_source, tmp_path, capsys):
    root = tmp_path / "store"
    assert main(["store", "build", str(store_source), str(root), "--format", "json"]) == 0
    out, err = capsys.readouterr()
    built = json.loads(out)
    assert built["new"] == built["objects"] > 100 and "new and 0 changed object(s) read" in err
    assert "skipped: empty file" in err  # the read findings are printed like a load's
    assert main(["store", "info", str(root), "--format", "json"]) == 0
    info = json.loads(capsys.readouterr().out)
    direct = flowtools.load(store_source)
    assert info["records"] == direct.report.records == built["records"]
    assert info["objects"] == built["objects"] and info["files_skipped"] == direct.report.files_skipped == 2
    assert main(["store", "info", str(root)]) == 0
    assert f"records     {direct.report.records}" in capsys.readouterr().out


def test_store_build_uses_the_default_store(store_source, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLOWTOOLS_STORE", str(tmp_path / "env-store"))
    assert main(["store", "build", str(store_source)]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "env-store")
    assert (tmp_path / "env-store" / "_manifest.json").exists()


def test_an_s3_store_is_refused_clearly(store_source, capsys):
    assert main(["store", "info", "s3://bucket/store"]) == 2
    assert "not supported yet" in capsys.readouterr().err
