"""Printing frames as table, CSV or JSON: the same for every query-like command.

JSON: one array of objects (timestamps as ``2026-11-20T10:00:00Z``); CSV: a header row,
booleans ``true``/``false``, NULL as empty, lists joined with ``;``; table: for people.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

import polars as pl

from flowtools.window import iso

FORMATS = ("table", "csv", "json")


def records(df: pl.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready dicts of a frame: timestamps as ISO ``Z`` strings, lists kept."""
    return [{k: jsonable(v) for k, v in row.items()} for row in df.iter_rows(named=True)]


def jsonable(v: Any) -> Any:
    if isinstance(v, datetime):
        return iso(v) if v.tzinfo is not None else v.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, bytes):
        return v.decode("utf-8", errors="replace")
    return v


def csv_cell(v: Any) -> str:
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
                width: int | None = None, max_cell: int = 40) -> None:
    """Aligned columns; cells cut to ``max_cell``; columns that do not fit are dropped."""
    width = width or shutil.get_terminal_size((100, 24)).columns
    cells = [[_table_cell(r.get(c)) for c in columns] for r in rows]
    cells = [[c if len(c) <= max_cell else c[: max_cell - 1] + "…" for c in row] for row in cells]
    widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, h in enumerate(columns)]
    keep, used = [], 0
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
        out.write(f"({len(rows)} rows; {dropped} more column(s) not shown: use --format csv or json)\n")
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
    write_rows(records(df), df.columns, fmt, out)


def columns_of(rows: Iterable[dict[str, Any]]) -> list[str]:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    return cols
