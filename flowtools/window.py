"""Time windows: parse ``-6h``, ISO 8601 and dates; half-open ``[start, end)`` in UTC.

A record belongs to a window when its capture interval overlaps it:
``record.start < window.end and record.end >= window.start``. A missing side is open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TypeAlias

from flowtools.errors import UsageError

#: What a window side may be given as (see :func:`parse_time`).
TimeValue: TypeAlias = str | datetime | date | None

_RELATIVE = re.compile(r"^-(\d+(?:\.\d+)?)\s*(s|m|min|h|d|w)$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(value: TimeValue, *, now: datetime | None = None) -> datetime | None:
    """Parse a time value into an aware UTC datetime.

    Accepts ISO 8601 (``2026-11-20T10:00Z``; no offset means UTC), a date (midnight UTC
    of that day), a relative time (``-6h``, ``-30m``, ``-2d``, ``-1w``: before ``now``,
    UTC), a ``datetime`` (naive = UTC) or a ``date``. ``None`` stays ``None``.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    m = _RELATIVE.match(text)
    if m:
        base = now or datetime.now(UTC)
        seconds = float(m.group(1)) * _UNITS[m.group(2).lower()]
        return (base - timedelta(seconds=seconds)).replace(microsecond=0)
    iso = text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text
    try:
        parsed = datetime.fromisoformat(iso)
    except ValueError:
        raise UsageError(
            f"bad time value {value!r}: use ISO 8601 (2026-11-20T10:00Z), a date "
            "(2026-11-20) or a relative time (-6h, -2d)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)`` in UTC; ``None`` leaves a side open."""

    start: datetime | None = None
    end: datetime | None = None

    def __post_init__(self) -> None:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise UsageError(
                f"empty time window: end {iso(self.end)} is not after start {iso(self.start)}"
            )

    @classmethod
    def parse(cls, start: TimeValue = None, end: TimeValue = None, *, now: datetime | None = None) -> Window:
        return cls(parse_time(start, now=now), parse_time(end, now=now))

    @property
    def is_open(self) -> bool:
        """True when neither side is set (everything)."""
        return self.start is None and self.end is None

    @property
    def start_s(self) -> int | None:
        return None if self.start is None else int(self.start.timestamp())

    @property
    def end_s(self) -> int | None:
        return None if self.end is None else int(self.end.timestamp())

    def overlaps(self, lo: datetime, hi: datetime, *, slack: timedelta = timedelta(0)) -> bool:
        """Whether ``[lo, hi)`` can touch the window widened by ``slack`` on both sides."""
        if self.end is not None and lo >= self.end + slack:
            return False
        if self.start is not None and hi <= self.start - slack:
            return False
        return True

    def __str__(self) -> str:
        a = iso(self.start) if self.start else "-inf"
        b = iso(self.end) if self.end else "+inf"
        return f"[{a}, {b})"


def iso(t: datetime) -> str:
    """``2026-11-20T10:00:00Z`` form used by every output."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
