"""Options given as text by users (CLI flags, keyword arguments): one parser per form."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["comma_list"]


def comma_list(value: str | Iterable[str] | None) -> list[str] | None:
    """``"a, b,,c"`` or ``["a", " b"]`` -> ``["a", "b", "c"]`` (stripped, empty items
    dropped, order and duplicates kept); None, or nothing left, -> None (no filter)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.split(",")
    out = [v.strip() for v in value if v and v.strip()]
    return out or None
