"""The notebooks' first step: ``session = notebook.start(source, start=..., ...)``.

Every curated notebook begins with the same parameters (the cell tagged ``parameters``,
which ``flowtools report`` overrides) and then calls :func:`start`: it loads the flows of
the window, the inventory and AWS's ip-ranges (the embedded sample when ``source`` is
None), and shows the read report. Importing this module does nothing else.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from flowtools import Flows, Inventory, IpRanges, load
from flowtools.flows import Engine
from flowtools.report import sample_paths, show_read_report

__all__ = ["Session", "start"]


@dataclass
class Session:
    """What a notebook works on: the loaded ``flows``, the ``inventory`` and ``ip_ranges``
    (None when not given), and the paths they were read from."""

    flows: Flows
    inventory: Inventory | None
    ip_ranges: IpRanges | None
    source: str
    inventory_path: str | None
    ip_ranges_path: str | None

    def __repr__(self) -> str:
        return (f"Session(source={self.source!r}, flows={self.flows!r}, inventory={self.inventory_path!r}, "
                f"ip_ranges={self.ip_ranges_path!r})")


def start(source: str | os.PathLike | None = None, *, start: Any = None, end: Any = None,
          inventory: str | os.PathLike | None = None, ip_ranges: str | os.PathLike | None = None,
          engine: Engine = "duckdb", strict: bool = False, load_options: dict[str, Any] | None = None) -> Session:
    """Load a notebook's inputs and show the read report.

    ``source`` is what :func:`flowtools.load` takes (a folder or file, ``s3://bucket/prefix``,
    ``cwlogs://LOG_GROUP``); None is the embedded sample (``data/samples``), and then a
    None ``inventory`` / ``ip_ranges`` is the sample's too
    (:func:`flowtools.report.sample_paths`). ``start``/``end`` bound the window (None:
    open); ``engine``, ``strict`` and ``load_options`` (any other :func:`flowtools.load`
    keyword: ``regions``, ``all``, ``s3_mode``...) go to the load.

    The read report is shown (:func:`flowtools.report.show_read_report`): the warning
    lines (one per problem file) and the one-line summary as text, and the same report
    as JSON that ``flowtools report`` reads. Cost: the load (the one eager step: every
    file of the window is read into engine storage) plus reading the inventory and
    ip-ranges files (small), which are read first so that a missing one fails before the
    load. Errors are the inventory's and ip-ranges' (a missing or malformed file) and
    :func:`flowtools.load`'s (``strict``: a bad file or line raises).
    """
    source, inventory, ip_ranges = sample_paths(source, inventory, ip_ranges)
    inv = Inventory.load(inventory) if inventory else None
    ranges = IpRanges.load(ip_ranges) if ip_ranges else None
    flows = load(source, start=start, end=end, engine=engine, strict=strict, **(load_options or {}))
    show_read_report(flows.report)
    return Session(
        flows=flows,
        inventory=inv,
        ip_ranges=ranges,
        source=os.fspath(source),
        inventory_path=os.fspath(inventory) if inventory else None,
        ip_ranges_path=os.fspath(ip_ranges) if ip_ranges else None,
    )
