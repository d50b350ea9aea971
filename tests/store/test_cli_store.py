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


def test_every_command_uses_the_sources_own_store_by_default(store_source, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLOWTOOLS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("FLOWTOOLS_STORE", raising=False)
    assert main(["info", str(store_source), "--format", "json"]) == 0
    _, err = capsys.readouterr()
    assert "store: " in err.splitlines()[-1] and "already there" in err.splitlines()[-1]
    assert main(["store", "build", str(store_source)]) == 0  # the same store: nothing new to read
    _, err = capsys.readouterr()
    assert "0 new and 0 changed object(s) read" in err
    assert main(["store", "info", str(store_source), "--format", "json"]) == 0  # a SOURCE: its store
    info = json.loads(capsys.readouterr().out)
    assert info["store"].startswith(str(tmp_path / "cache" / "store")) and info["records"] > 0
    monkeypatch.setenv("FLOWTOOLS_STORE", "off")
    assert main(["info", str(store_source)]) == 0
    assert "store: " not in capsys.readouterr().err
