"""The store's folder layout: Hive partitions by account, region, UTC date and hour.

A record lands in ``account_id=<id>/region=<r>/date=YYYY-MM-DD/hour=HH/`` by its own
``start`` (UTC) and its ``account_id`` / ``region`` fields, falling back to the object's
``source_account_id`` / ``source_region``, else ``unknown``. A record without ``start``
lands in ``date=unknown/hour=unknown``. Values are made folder-safe (characters other than
letters, digits, ``.``, ``_`` and ``-`` become ``_``).

Pruning works on these folder names only (no file is opened): a window ``[ws, we)`` needs
the hours starting before ``we`` and ending after ``ws - RECORD_SLACK``, because a record
that started in an earlier hour can still overlap the window (records last at most the
aggregation interval, 10 minutes; one hour of slack is generous). Rows are then filtered
exactly with the window rule ``start < we and end >= ws``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import polars as pl

from flowtools.window import Window

#: How long before the window a record may start and still overlap it (pruning slack on the left).
RECORD_SLACK = timedelta(hours=1)
UNKNOWN = "unknown"
#: Columns added to a chunk to split it by partition (dropped before writing): the
#: account, the region and the hour as whole hours since the epoch (null: no start).
KEY_COLUMNS = ("__account", "__region", "__hour")
_UNSAFE = r"[^0-9A-Za-z._-]"
_PARTITION = re.compile(
    r"^account_id=(?P<account>[^/]+)/region=(?P<region>[^/]+)/date=(?P<date>[^/]+)/hour=(?P<hour>[^/]+)$"
)


@dataclass(frozen=True)
class Partition:
    """One hour of one account and region (``date``/``hour`` are ``unknown`` for records
    without a start time)."""

    account: str
    region: str
    date: str
    hour: str

    @property
    def path(self) -> str:
        """The folder, relative to the store root."""
        return f"account_id={self.account}/region={self.region}/date={self.date}/hour={self.hour}"

    @property
    def start(self) -> datetime | None:
        """The hour's start (UTC), None for the unknown-time partition."""
        try:
            return datetime.strptime(f"{self.date} {self.hour}", "%Y-%m-%d %H").replace(tzinfo=UTC)
        except ValueError:
            return None

    @classmethod
    def of_hour(cls, account: str, region: str, hour: int | None) -> Partition:
        """The partition of ``hour`` (whole hours since the epoch; None: unknown time)."""
        if hour is None:
            return cls(account, region, UNKNOWN, UNKNOWN)
        t = datetime.fromtimestamp(hour * 3600, UTC)
        return cls(account, region, t.strftime("%Y-%m-%d"), t.strftime("%H"))

    @classmethod
    def parse(cls, path: str) -> Partition:
        m = _PARTITION.match(path.strip("/"))
        if m is None:
            raise ValueError(f"not a store partition folder: {path!r}")
        return cls(m["account"], m["region"], m["date"], m["hour"])


def key_expressions() -> list[pl.Expr]:
    """Polars expressions adding :data:`KEY_COLUMNS` to a canonical chunk."""
    def safe(expr: pl.Expr) -> pl.Expr:
        return expr.str.replace_all(_UNSAFE, "_").fill_null(UNKNOWN)

    return [
        safe(pl.coalesce("account_id", "source_account_id")).alias("__account"),
        safe(pl.coalesce("region", "source_region")).alias("__region"),
        pl.col("start").floordiv(3600).alias("__hour"),
    ]


def wanted(p: Partition, window: Window, accounts: Iterable[str] | None = None,
           regions: Iterable[str] | None = None) -> bool:
    """Whether partition ``p`` can hold records of ``window`` (and the account/region filters)."""
    if accounts is not None and p.account not in set(accounts):
        return False
    if regions is not None and p.region not in set(regions):
        return False
    start = p.start
    if start is None:  # records without a start time: the exact filter decides
        return True
    if window.end is not None and start >= window.end:
        return False
    if window.start is not None and start + timedelta(hours=1) <= window.start - RECORD_SLACK:
        return False
    return True


def window_filter(window: Window) -> pl.Expr | None:
    """The exact record rule as a Polars expression (None for an open window)."""
    expr = None
    if window.end_s is not None:
        expr = pl.col("start") < window.end_s
    if window.start_s is not None:
        right = pl.col("end") >= window.start_s
        expr = right if expr is None else expr & right
    return expr


def window_sql(window: Window) -> str | None:
    """The exact record rule as SQL (None for an open window)."""
    parts = []
    if window.end_s is not None:
        parts.append(f'"start" < {window.end_s}')
    if window.start_s is not None:
        parts.append(f'"end" >= {window.start_s}')
    return " AND ".join(parts) or None
