"""Fixtures for the partition store: a small generated sample with bad files, built once."""

from __future__ import annotations

import gzip
import shutil
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from flowlog_files import DEFAULT_HEADER, daily_key, write_log

from flowtools import sample
from flowtools.store import build

#: 2026-11-20T01:00Z, inside the generated sample's 3 hours.
T1 = int(datetime(2026, 11, 20, 1, tzinfo=UTC).timestamp())
BAD_ACCOUNT = "123456789010"


def rec(i: int, t: int = T1, port: int = 443, account: str = BAD_ACCOUNT) -> str:
    return (f"2 {account} eni-0a1b2c3d4e5f6{i % 7:04d} 203.0.113.{i % 250} 10.0.0.5 {40000 + i} {port} 6 10 840 "
            f"{t + 7 * i} {t + 7 * i + 60} ACCEPT OK")


def add_bad_files(root: Path) -> dict[str, str]:
    """Objects a reader must report: malformed lines, an empty file, no header line, a
    truncated gzip (salvaged). Returns {kind: key}."""
    keys = {}
    lines = [rec(i) for i in range(12)]
    lines.insert(3, "2 123456789010 eni-0a1b2c3d4e5f60718 203.0.113.1 10.0.0.5 40000 443 6 10")  # too few fields
    lines.insert(8, rec(98).replace(" 443 ", " https "))  # not a number
    keys["malformed"] = daily_key(BAD_ACCOUNT, ts="20261120T0105Z", hash_="aa000001")
    write_log(root, keys["malformed"], lines)
    keys["empty"] = daily_key(BAD_ACCOUNT, ts="20261120T0110Z", hash_="aa000002")
    (root / keys["empty"]).write_bytes(b"")
    keys["headerless"] = daily_key(BAD_ACCOUNT, ts="20261120T0115Z", hash_="aa000003")
    write_log(root, keys["headerless"], [rec(i, T1 + 900) for i in range(5)], header=None)
    keys["truncated"] = daily_key(BAD_ACCOUNT, ts="20261120T0120Z", hash_="aa000004")
    body = ("\n".join([DEFAULT_HEADER] + [rec(i, T1 + 1200) for i in range(400)]) + "\n").encode()
    data = gzip.compress(body, mtime=0)
    (root / keys["truncated"]).write_bytes(data[: len(data) * 2 // 3])
    return keys


@pytest.fixture(scope="session")
def store_source(tmp_path_factory) -> Path:
    """A 3-hour generated sample (seed 3) plus bad files; read-only for tests."""
    root = tmp_path_factory.mktemp("store-source")
    sample.generate(root, seed=3, hours=3, scale=0.05)
    add_bad_files(root)
    return root


@pytest.fixture(scope="session")
def built_store(store_source, tmp_path_factory) -> Path:
    """The store built from :func:`store_source` (everything); read-only for tests."""
    root = tmp_path_factory.mktemp("store-built") / "store"
    build(store_source, root)
    return root


def copy_source(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def parquet_on_disk(root: Path) -> set[str]:
    """Every Parquet file (temporaries included) under the store's partition folders."""
    return {p.relative_to(root).as_posix() for p in Path(root).glob("account_id=*/**/*.parquet")} | {
        p.relative_to(root).as_posix() for p in Path(root).glob("account_id=*/**/.tmp-*")}


def snapshot(root: Path) -> dict[str, list[tuple[str, int]]]:
    """Partition folder -> its files (name, mtime in ns)."""
    out: dict[str, list[tuple[str, int]]] = {}
    for rel in sorted(parquet_on_disk(root)):
        folder, _, name = rel.rpartition("/")
        out.setdefault(folder, []).append((name, (Path(root) / rel).stat().st_mtime_ns))
    return out


@pytest.fixture(scope="session")
def h() -> SimpleNamespace:
    """The helpers above, for test modules (tests/store is not on the import path)."""
    return SimpleNamespace(T1=T1, rec=rec, copy_source=copy_source, parquet_on_disk=parquet_on_disk,
                           snapshot=snapshot)
