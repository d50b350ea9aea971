"""Per-hour facts (flowtools.store.facts): exposure's address pairs and ECS names kept per
whole hour next to the store give the findings the records give, and are really read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from flowlog_files import daily_key, write_log

import flowtools
from flowtools.analyses.exposure import findings_records
from flowtools.store import PartitionStore
from flowtools.store.facts import FACTS_DIR, store_window
from flowtools.store.partitions import Partition

PAIRS = "exposure-full-pairs-1"
WINDOWS = [(None, None), ("2026-11-20T00:30Z", "2026-11-20T03:00Z"), ("2026-11-20T01:40Z", "2026-11-20T02:10Z")]


def _ts(value: str | None) -> float | None:
    return None if value is None else datetime.strptime(value, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC).timestamp()


def whole_hours(root: Path, start: str | None, end: str | None) -> set[str]:
    """The store's partitions whose hour lies inside [start, end): those that get facts."""
    lo, hi = _ts(start), _ts(end)
    out = set()
    for folder in PartitionStore(root).manifest().partitions():
        p = Partition.parse(folder)
        if p.start is None:
            continue
        s = p.start.timestamp()
        if (lo is None or s >= lo) and (hi is None or s + 3600 <= hi):
            out.add(folder)
    return out


def kept(root: Path, name: str = PAIRS) -> dict[str, Path]:
    """Partition folder -> its kept fact file."""
    base = root / FACTS_DIR / name
    return {f.parent.relative_to(base).as_posix(): f for f in base.glob("account_id=*/**/*.arrow")}


def findings(flows, inventory) -> list[dict]:
    return findings_records(flowtools.internet_exposure(flows, inventory=inventory, include_configured=True))


@pytest.fixture(scope="module")
def inventory(store_source):
    return flowtools.Inventory.load(store_source / "inventory")


@pytest.mark.parametrize(("start", "end"), WINDOWS)
def test_findings_from_facts_equal_the_records(store_source, tmp_path, engine, inventory, start, end):
    root = tmp_path / "st"
    flows = flowtools.load(store_source, start=start, end=end, engine=engine, store=root, progress=False)
    assert store_window(flows) is not None
    from_records = findings(flows.frame, inventory)  # a native frame: read from the records
    assert from_records and not (root / FACTS_DIR).exists()
    first = findings(flows, inventory)  # the facts of whole hours are computed and kept now
    assert first == from_records
    hours = whole_hours(root, start, end)
    assert set(kept(root)) == hours and set(kept(root, "ecs-services-1")) == hours
    stamps = {k: f.stat().st_mtime_ns for k, f in kept(root).items()}
    again = flowtools.load(store_source, start=start, end=end, engine=engine, store=root, progress=False)
    assert findings(again, inventory) == from_records
    assert {k: f.stat().st_mtime_ns for k, f in kept(root).items()} == stamps  # read, not written again


def test_kept_facts_are_what_is_read(store_source, tmp_path, inventory):
    """Emptying one hour's kept pairs takes that hour's records out of the findings: the
    warm run reads the facts, not the records."""
    root = tmp_path / "st"
    flows = flowtools.load(store_source, engine="polars", store=root, progress=False)
    truth = findings(flows, inventory)
    m = PartitionStore(root).manifest()
    rows = {folder: sum(m.files[p].rows for p in paths) for folder, paths in m.partitions().items()}
    busiest = max(kept(root), key=rows.__getitem__)
    path = kept(root)[busiest]
    pl.read_ipc(path).clear().write_ipc(path)
    tampered = findings(flowtools.load(store_source, engine="polars", store=root, progress=False), inventory)
    assert sum(f["connections"] or 0 for f in tampered) < sum(f["connections"] or 0 for f in truth)
    path.unlink()  # computed again from the records
    assert findings(flowtools.load(store_source, engine="polars", store=root, progress=False), inventory) == truth


def test_a_rewritten_hour_gets_new_facts(store_source, tmp_path, inventory, h, engine):
    src = h.copy_source(store_source, tmp_path / "src")
    root = tmp_path / "st"
    findings(flowtools.load(src, engine=engine, store=root, progress=False), inventory)
    before = kept(root)
    m = PartitionStore(root).manifest()
    hour1 = sorted(f for f in before if f.endswith("/date=2026-11-20/hour=01"))[0]
    account, region = (Partition.parse(hour1).account, Partition.parse(hour1).region)
    key = daily_key(account, region=region, ts="20261120T0155Z", hash_="ff000001")
    write_log(src, key, [h.rec(i, h.T1, account=account) for i in range(30)])  # late records of 01:00-01:05
    flows = flowtools.load(src, engine=engine, store=root, progress=False)
    assert flows.store is not None and flows.store.read == 1
    after = findings(flows, inventory)
    assert after == findings(flows.frame, inventory)
    now = kept(root)
    assert now[hour1] != before[hour1] and not before[hour1].exists()  # the stale fact is gone
    assert {k: v for k, v in now.items() if k != hour1} == {k: v for k, v in before.items() if k != hour1}
    assert m.files.keys() != PartitionStore(root).manifest().files.keys()


def test_a_selection_uses_facts_only_of_hours_it_holds_whole(store_source, tmp_path, inventory, engine):
    root = tmp_path / "st"
    flowtools.load(store_source, engine=engine, store=root, progress=False)  # every account in the store
    accounts = sorted({Partition.parse(p).account for p in PartitionStore(root).manifest().partitions()})
    one = accounts[0]
    flows = flowtools.load(store_source, engine=engine, store=root, accounts=one, progress=False)
    assert findings(flows, inventory) == findings(flows.frame, inventory)
    selected = {o.key for o in PartitionStore(root).objects() if o.account_id == one}
    assert flows.store is not None and set(flows.store.sources or ()) == selected
    m = PartitionStore(root).manifest()
    held = {folder for folder, paths in m.partitions().items()
            if all(selected.issuperset(m.files[p].sources) for p in paths)}
    assert kept(root) and set(kept(root)) == held & whole_hours(root, None, None)
    assert len({Partition.parse(p).account for p in m.partitions()} - {Partition.parse(p).account for p in held}) >= 2


def test_a_replaced_frame_reads_the_records(store_source, tmp_path, inventory):
    flows = flowtools.load(store_source, engine="polars", store=tmp_path / "st", progress=False)
    flows.frame = flows.frame.filter(pl.col("protocol") == 6)
    assert store_window(flows) is None
    assert findings(flows, inventory) == findings(flows.frame, inventory)
    assert not (tmp_path / "st" / FACTS_DIR).exists()
