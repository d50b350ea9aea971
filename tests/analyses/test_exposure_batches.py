"""Exposure per batch of interfaces (bounded memory) gives exactly the findings of one pass."""

from __future__ import annotations

import narwhals as nw
import pytest

import flowtools
from flowtools.analyses.exposure import findings_records, interface_batches
from flowtools.frames import to_polars

#: Six hours of the sample: findings of every status, interfaces of every size, a quarter
#: of the records (each pass of the analysis costs in proportion).
WINDOW = {"start": "2026-11-20T06:00Z", "end": "2026-11-20T12:00Z"}


@pytest.fixture(scope="module")
def sample_flows(sample_dir):
    return {e: flowtools.load(sample_dir, engine=e, **WINDOW) for e in ("duckdb", "polars")}


def test_batches_give_the_same_findings(sample_dir, sample_flows, engine):
    flows = sample_flows[engine]
    inventory = flowtools.Inventory.load(sample_dir / "inventory")
    whole = findings_records(flowtools.internet_exposure(flows, inventory=inventory, include_configured=True,
                                                         batch_records=0))
    limit = len(flows) // 2  # three batches (each batch is a pass over the data: no more than the test needs)
    batched = findings_records(flowtools.internet_exposure(flows, inventory=inventory, include_configured=True,
                                                           batch_records=limit))
    assert len(interface_batches(flows.frame, limit)) >= 3
    assert batched == whole and len(whole) > 10
    naive = [findings_records(flowtools.internet_exposure(flows, inventory=inventory, method="naive",
                                                          batch_records=b)) for b in (0, limit)]
    assert naive[0] == naive[1]


def test_each_batch_holds_whole_interfaces_within_the_limit(fl):
    records = []
    for i, (iface, n) in enumerate([("eni-a", 3), ("ENI-A", 2), ("eni-b", 9), ("eni-c", 1), ("eni-d", 4)]):
        records += [fl.flow(iface, "198.51.100.1", "10.0.0.1", 40000 + k, 443, t=i * 10 + k) for k in range(n)]
    native = fl.native(records, "polars")
    assert interface_batches(native, 100) is None  # small: one pass
    batches = interface_batches(native, 6)
    parts = [to_polars(nw.from_native(native).filter(b)) for b in batches]
    ids = [sorted(p["interface_id"].unique().to_list()) for p in parts]
    assert ids == [["ENI-A", "eni-a"], ["eni-b"], ["eni-c", "eni-d"]]  # case variants together; b alone
    assert sum(p.height for p in parts) == len(records)
