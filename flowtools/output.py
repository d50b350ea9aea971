"""Printing frames as table, CSV or JSON: the same for every query-like command.

JSON: one array of objects (timestamps as ``2026-11-20T10:00:00Z``); CSV: a header row,
booleans ``true``/``false``, NULL as empty, lists joined with ``;``; table: for people.

Numbers keep their value in every format: integers (DuckDB's ``sum`` of a BIGINT is a
HUGEINT, which reaches Polars as ``Decimal(38, 0)``) print as integers with all their
digits, also above 2**53. A decimal with a fractional part is a JSON number when a float
holds it exactly as written (``1.25``), else a string of all its digits (nothing is
rounded); CSV and table print its digits. JSON has no NaN or infinity: they print as
null there (``NaN``, ``inf`` in CSV and table). Durations (DuckDB INTERVAL, Polars
Duration) print as DuckDB writes an interval: ``01:30:00``, ``2 days 00:00:05``.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import IO, Any

import polars as pl

from flowtools.window import iso

FORMATS = ("table", "csv", "json")


def relation_frame(relation: Any) -> pl.DataFrame:
    """Run a DuckDB relation into a Polars frame for printing. Columns that Polars cannot
    import or shows as raw bytes (INTERVAL, also inside lists and structs; BIT) become
    DuckDB's text of them (``01:30:00``, ``[2 days]``, ``101``); the rest is ``.pl()``."""
    def as_text(t: Any) -> bool:
        text = str(t)
        return "INTERVAL" in text or text == "BIT"

    if any(as_text(t) for t in relation.types):
        def quoted(name: str) -> str:
            return '"' + name.replace('"', '""') + '"'

        relation = relation.project(", ".join(
            f"CAST(#{i} AS VARCHAR) AS {quoted(c)}" if as_text(t) else f"#{i} AS {quoted(c)}"
            for i, (c, t) in enumerate(zip(relation.columns, relation.types, strict=True), start=1)))
    return relation.pl()


def records(df: pl.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready dicts of a frame: timestamps as ISO ``Z`` strings, lists kept."""
    return [{k: jsonable(v) for k, v in row.items()} for row in df.iter_rows(named=True)]


def _decimal(v: Decimal) -> int | float | str:
    """An integer-typed decimal (scale 0: HUGEINT sums and the like) as int, exact; else a
    float when it holds the value exactly as written, else the decimal's digits as a string."""
    if not v.is_finite():
        return str(v)
    if v.as_tuple().exponent >= 0:  # type: ignore[operator]
        return int(v)
    f = float(v)
    return f if Decimal(repr(f)) == v else _decimal_text(v)


def _decimal_text(v: Decimal) -> str:
    """All the digits of a decimal, never an exponent: ``3.00``, ``0.0000001``, ``1000``."""
    if not v.is_finite():
        return str(v)
    return str(int(v)) if v.as_tuple().exponent >= 0 else format(v, "f")  # type: ignore[operator]


def _duration(v: timedelta) -> str:
    """``01:30:00``, ``2 days 00:00:05``, ``1 day``, ``-01:00:00.5``: how DuckDB writes an
    interval (a negative one has the sign on each part)."""
    sign = "-" if v < timedelta(0) else ""
    v = abs(v)
    hours, rest = divmod(v.seconds, 3600)
    clock = f"{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    if v.microseconds:
        clock += f".{v.microseconds:06d}".rstrip("0")
    if not v.days:
        return clock
    days = f"{sign}{v.days} day{'s' if v.days != 1 else ''}"
    return days if not (v.seconds or v.microseconds) else f"{days} {clock}"


def jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return iso(v) if v.tzinfo is not None else v.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, time):
        return v.isoformat()
    if isinstance(v, timedelta):
        return _duration(v)
    if isinstance(v, Decimal):
        return _decimal(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN or infinity
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    return v


def csv_cell(v: Any) -> str:
    if isinstance(v, Decimal):
        return _decimal_text(v)
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    v = jsonable(v)
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return ";".join("" if x is None else str(csv_cell(x)) for x in v)
    if isinstance(v, dict):
        return json.dumps(v, sort_keys=True)
    return str(v)


def write_json(rows: Sequence[dict[str, Any]], out: IO[str]) -> None:
    json.dump(list(rows), out, indent=2, ensure_ascii=False)
    out.write("\n")


def write_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str], out: IO[str]) -> None:
    w = csv.writer(out, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([csv_cell(r.get(c)) for c in columns])


def _table_cell(v: Any) -> str:
    text = csv_cell(v)
    # Tables are for terminals: never let data move the cursor or ring bells.
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def write_table(rows: Sequence[dict[str, Any]], columns: Sequence[str], out: IO[str], *,
                width: int | None = None, max_cell: int = 40, more: str = "use --format csv or json") -> None:
    """Aligned columns; cells cut to ``max_cell``; columns that do not fit are dropped (the
    footer says how many, and ``more``: where to see them)."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    cells = [[_table_cell(r.get(c)) for c in columns] for r in rows]
    cells = [[c if len(c) <= max_cell else c[: max_cell - 1] + "…" for c in row] for row in cells]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(columns)]
    keep: list[int] = []
    used = 0
    for i, w in enumerate(widths):
        if keep and used + w + 2 > width:
            break
        keep.append(i)
        used += w + 2
    dropped = len(columns) - len(keep)
    out.write("  ".join(columns[i].ljust(widths[i]) for i in keep).rstrip() + "\n")
    out.write("  ".join("-" * widths[i] for i in keep) + "\n")
    for row in cells:
        out.write("  ".join(row[i].ljust(widths[i]) for i in keep).rstrip() + "\n")
    if dropped:
        out.write(f"({len(rows)} rows; {dropped} more column(s) not shown: {more})\n")
    else:
        out.write(f"({len(rows)} rows)\n")


def write_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str, out: IO[str]) -> None:
    if fmt == "json":
        write_json(rows, out)
    elif fmt == "csv":
        write_csv(rows, columns, out)
    else:
        write_table(rows, columns, out)


def write_frame(df: pl.DataFrame, fmt: str, out: IO[str]) -> None:
    # CSV and table cells come from the values themselves: a DECIMAL(10,2) prints as 3.00 there.
    rows = records(df) if fmt == "json" else list(df.iter_rows(named=True))
    write_rows(rows, df.columns, fmt, out)


def columns_of(rows: Iterable[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols
