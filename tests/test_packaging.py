"""pyproject.toml and environment.yml list the same runtime dependencies; pins that must hold."""

from __future__ import annotations

import re
import tomllib

import yaml
from flowlog_files import REPO

#: PyPI name -> conda-forge name, where they differ.
CONDA_NAMES = {"duckdb": "python-duckdb"}


def _name_and_spec(req: str) -> tuple[str, str]:
    m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", req)
    return m.group(1).lower(), m.group(2).replace(" ", "")


def test_environment_yml_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = dict(_name_and_spec(r) for r in project["dependencies"])
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    conda, pip = {}, {}
    for item in env["dependencies"]:
        if isinstance(item, dict):
            for r in item["pip"]:
                if not r.startswith("-e"):
                    pip.__setitem__(*_name_and_spec(r))
        else:
            conda.__setitem__(*_name_and_spec(item))
    conda.pop("python", None)
    conda.pop("pip", None)
    reverse = {v: k for k, v in CONDA_NAMES.items()}
    listed = {reverse.get(k, k): v for k, v in conda.items()} | pip
    assert listed == deps, "environment.yml and pyproject.toml disagree"
    assert any(isinstance(i, dict) and "-e ." in i["pip"] for i in env["dependencies"]), "env must install flowtools"


def test_duckdb_and_extensions_pinned_together():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = dict(_name_and_spec(r) for r in project["dependencies"])
    pins = {deps[n] for n in ("duckdb", "duckdb-extensions", "duckdb-extension-httpfs")}
    assert pins == {"==1.5.5"}
    assert "pytz" in deps  # DuckDB needs it to fetch time-zone-aware values under pandas 3


def test_extensions_load_offline():
    from flowtools.engines import connect, load_extension

    con = connect()
    load_extension(con, "httpfs")
    loaded = {r[0] for r in con.sql("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()}
    assert "httpfs" in loaded


def test_public_api():
    import flowtools

    assert {"load", "Flows", "ReadReport", "FlowtoolsError"} <= set(flowtools.__all__)
    for name in flowtools.__all__:
        assert hasattr(flowtools, name)
