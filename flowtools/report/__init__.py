"""Reports: plotly figures from frames (:mod:`.figures`) and notebook -> HTML (:mod:`.render`)."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["sample_paths"]


def sample_paths(source=None, inventory=None, ip_ranges=None):
    """Notebook defaults: ``(source, inventory, ip_ranges)`` with None replaced by the
    embedded sample (``data/samples`` of the checkout; in an installed package without
    it, a sample generated once into the cache folder with the same seed)."""
    if source is not None:
        return source, inventory, ip_ranges
    root = Path(__file__).resolve().parents[2] / "data" / "samples"
    if not (root / "truth.json").exists():
        from flowtools import sample
        from flowtools.sources.cache import cache_dir

        root = cache_dir() / "sample"
        if not (root / "truth.json").exists():
            sample.generate(root, seed=0)
    inventory = inventory if inventory is not None else str(root / "inventory")
    ip_ranges = ip_ranges if ip_ranges is not None else str(root / "ip-ranges.json")
    return os.fspath(root), inventory, ip_ranges
