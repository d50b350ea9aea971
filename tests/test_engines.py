"""Engine set-up: DuckDB connections (a container-aware memory limit, a spill folder, their
overrides) and Polars' allocator setting."""

from __future__ import annotations

import os
import subprocess
import sys

from flowtools import engines


def setting(con, name: str):
    return con.execute(f"SELECT current_setting('{name}')").fetchone()[0]


def test_a_cgroup_limit_caps_the_usable_memory(tmp_path):
    physical = engines.usable_memory(cgroup_files=())
    v2 = tmp_path / "memory.max"
    v2.write_text(f"{2 << 30}\n")
    assert engines.usable_memory(cgroup_files=(str(v2),)) == min(physical, 2 << 30)
    v2.write_text("max\n")  # no limit
    assert engines.usable_memory(cgroup_files=(str(v2), str(tmp_path / "missing"))) == physical


def test_the_connection_gets_the_limit_and_the_temp_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(engines.MEMORY_ENV, raising=False)
    monkeypatch.setenv(engines.TEMP_DIR_ENV, str(tmp_path / "spill"))
    con = engines.connect()
    expected_mib = int(engines.usable_memory() * engines.MEMORY_FRACTION) >> 20
    value, unit = setting(con, "memory_limit").split()  # DuckDB shows it rounded, in MiB or GiB
    assert abs(float(value) * {"MiB": 1, "GiB": 1024}[unit] - expected_mib) <= 0.1 * 1024
    assert setting(con, "temp_directory") == str(tmp_path / "spill") and (tmp_path / "spill").is_dir()
    assert setting(con, "preserve_insertion_order") is False
    monkeypatch.setenv(engines.MEMORY_ENV, "1GB")
    assert setting(engines.connect(), "memory_limit") == "953.6 MiB"


def test_duckdb_draws_no_progress_bar_on_stdout():
    """DuckDB's own bar goes to stdout for long queries even into a pipe (it was found in
    front of `exposure --format json` at 20 M records); flowtools' connections turn it off."""
    assert setting(engines.connect(), "enable_progress_bar") is False


def effective(conf: str) -> dict[str, str]:
    """jemalloc's reading of a ``_RJEM_MALLOC_CONF`` value: a later option wins (Polars puts
    its own defaults in front of whatever it finds)."""
    return dict(option.split(":", 1) for option in conf.split(",") if option)


def test_polars_allocator_keeps_freed_pages_unless_the_user_says_otherwise():
    """``import flowtools`` sets Polars' jemalloc decay (before Polars loads) unless
    ``$_RJEM_MALLOC_CONF`` is already set: the user's value wins."""
    code = "import os, flowtools; print(os.environ['_RJEM_MALLOC_CONF'])"
    env = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    ours = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert effective(ours.stdout.strip())["dirty_decay_ms"] == "5000"
    assert effective(ours.stdout.strip())["muzzy_decay_ms"] == "5000"
    theirs = subprocess.run([sys.executable, "-c", code], env=env | {"_RJEM_MALLOC_CONF": "narenas:2"},
                            capture_output=True, text=True, check=True)
    assert effective(theirs.stdout.strip())["narenas"] == "2"
    assert effective(theirs.stdout.strip()).get("dirty_decay_ms") != "5000"
