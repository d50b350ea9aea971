"""Progress bars on stderr (tqdm), the one wrapper: shown on a terminal, or when asked.

``progress``: True shows the bar, False never, None (auto) when stderr is a terminal and
there are more than ``min_total`` steps. A bar that is not shown is a :class:`NoBar` with
the same methods, so callers never test for one. Costs nothing when not shown (tqdm is
not even imported).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["NoBar", "bar", "shown"]


class NoBar:
    """A bar that shows nothing (same methods as tqdm's used here)."""

    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        pass

    def close(self) -> None:
        pass


def shown(progress: bool | None, total: int | None = None, *, min_total: int = 0) -> bool:
    """Whether a bar is shown: ``progress`` when given, else (auto) when stderr is a
    terminal and ``total`` (when known) is above ``min_total``."""
    if progress is not None:
        return progress
    return sys.stderr.isatty() and (total is None or total > min_total)


def bar(progress: bool | None, *, total: int | None, desc: str, unit: str = "it", unit_scale: bool = False,
        min_total: int = 0) -> Any:
    """A tqdm bar on stderr that disappears when closed (``leave=False``), or a
    :class:`NoBar` when :func:`shown` says no."""
    if not shown(progress, total, min_total=min_total):
        return NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=sys.stderr, leave=False,
                dynamic_ncols=True)
