"""Enrichment: the inventory, ip-ranges, port names, and side tables joined to flows.

The package is callable: ``flowtools.enrich(flows, inventory=..., ip_ranges=...)`` is
:func:`flowtools.enrich.joins.enrich` (the DESIGN's public name), while
``flowtools.enrich.inventory`` and the other modules stay importable as usual.

Side tables (small Python-built tables joined back to the flows) are made by
:mod:`flowtools.frames`.
"""

from __future__ import annotations

import sys
import types
from typing import Any

from flowtools.enrich.inventory import Inventory

__all__ = ["Inventory"]


class _Enrich(types.ModuleType):
    """This package's class: calling it calls :func:`flowtools.enrich.joins.enrich`."""

    def __call__(self, flows: Any, *, inventory: Inventory | None = None, ip_ranges: Any = None) -> Any:
        from flowtools.enrich.joins import enrich

        return enrich(flows, inventory=inventory, ip_ranges=ip_ranges)


sys.modules[__name__].__class__ = _Enrich
