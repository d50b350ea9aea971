"""What changed between two sets of exposure findings: new, gone and changed findings.

``changes(before, after)`` compares two findings frames (from two windows of one SOURCE,
or two saved ``flowtools exposure --format json`` results read back with
:func:`read_findings`) and returns one row per finding that is new, gone or changed:

- a finding is identified by ``interface_id, protocol, port, port_to`` (a configured
  rule's range is its own finding; ``account_id`` and names are carried, not compared);
- ``new``: only in ``after``; ``gone``: only in ``before``;
- ``changed``: in both, and its status or risk differs, or its peers grew or shrank by at
  least ``peers_factor`` (default 2: 10 -> 20 peers is a change, 370 -> 365 is not; from
  or to a single peer counts when the other side has at least ``peers_factor``).

Columns: ``change``, the identity and names (``account_id, region, vpc_id,
interface_id, resource_name, protocol, port, port_to``), then ``status_before``,
``status_after``, ``risk_before``, ``risk_after``, ``peers_before``, ``peers_after``
(null on the side where the finding is absent), ``what`` (a short text). Order: new,
changed, gone; then the after (else before) status and risk, peers descending, interface,
protocol, port.

Cost: findings are small (one row per interface, port and protocol): both sides are
collected into Polars.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import narwhals as nw
import polars as pl

from flowtools.errors import FlowtoolsError

#: The columns that identify a finding across two runs.
KEY: tuple[str, ...] = ("interface_id", "protocol", "port", "port_to")
#: Carried from the side where the finding is (after, else before).
CARRIED: tuple[str, ...] = ("account_id", "region", "vpc_id", "resource_name")
CHANGES: tuple[str, ...] = ("new", "changed", "gone")
_STATUS_ORDER = ("exposed", "reachable", "blocked", "configured")
_RISK_ORDER = ("critical", "high", "medium", "low")

COLUMNS: tuple[str, ...] = (
    "change", *CARRIED[:3], "interface_id", CARRIED[3], "protocol", "port", "port_to",
    "status_before", "status_after", "risk_before", "risk_after", "peers_before", "peers_after", "what",
)
_SCHEMA = {"account_id": pl.String, "region": pl.String, "vpc_id": pl.String, "interface_id": pl.String,
           "resource_name": pl.String, "protocol": pl.String, "port": pl.Int32, "port_to": pl.Int32,
           "status": pl.String, "risk": pl.String, "peers": pl.Int64}


class FindingsFileError(FlowtoolsError):
    """A saved findings file that cannot be compared (names the file and the cause)."""


def read_findings(path: str | Path) -> pl.DataFrame:
    """A saved ``flowtools exposure --format json`` result as a findings frame.

    Files written before ``risk`` existed are accepted (``risk`` null). Errors name the
    file: not found, not JSON, not an array of findings, a finding without its keys.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FindingsFileError(f"{p}: findings file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise FindingsFileError(f"{p}: cannot read it ({e})") from None
    except json.JSONDecodeError as e:
        raise FindingsFileError(f"{p}: not JSON (line {e.lineno}): save findings with "
                                "`flowtools exposure ... --format json > FILE`") from None
    if not isinstance(doc, list) or not all(isinstance(r, dict) for r in doc):
        raise FindingsFileError(f"{p}: not a JSON array of findings (`flowtools exposure --format json`)")
    for i, row in enumerate(doc):
        missing = [k for k in ("interface_id", "protocol", "port", "status", "peers") if k not in row]
        if missing:
            raise FindingsFileError(f"{p}: finding #{i + 1} has no {', '.join(missing)}")
    rows = [{k: row.get(k) for k in _SCHEMA} for row in doc]
    try:
        return pl.DataFrame(rows, schema=_SCHEMA)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as e:
        raise FindingsFileError(f"{p}: a finding has a value of the wrong type ({e})") from None


def _collect(findings: Any) -> pl.DataFrame:
    frame = nw.from_native(findings)
    df = frame.collect() if isinstance(frame, nw.LazyFrame) else frame
    df = df.to_polars() if not isinstance(df, pl.DataFrame) else df
    for name, dtype in _SCHEMA.items():
        df = df.with_columns(pl.col(name).cast(dtype) if name in df.columns else pl.lit(None, dtype).alias(name))
    return df.select(list(_SCHEMA))


def changes(before: Any, after: Any, *, peers_factor: float = 2.0) -> pl.DataFrame:
    """New, gone and changed findings from ``before`` to ``after`` (see the module doc).

    ``before``/``after``: findings frames of any engine (or Polars frames from
    :func:`read_findings`). Returns a Polars DataFrame with :data:`COLUMNS`.
    """
    if not peers_factor >= 1:
        raise ValueError(f"peers_factor must be >= 1, not {peers_factor!r}")
    a, b = _collect(before), _collect(after)
    key = list(KEY)
    # Null ports (ICMP, all-traffic rules) must still match: join on filled keys.
    fill = [pl.col("port").fill_null(-1).alias("_port"), pl.col("port_to").fill_null(-1).alias("_port_to")]
    jkey = ["interface_id", "protocol", "_port", "_port_to"]
    joined = a.with_columns(fill).join(b.with_columns(fill), on=jkey, how="full", suffix="_after", coalesce=True)
    present_a = pl.col("status").is_not_null()
    present_b = pl.col("status_after").is_not_null()
    pa, pb = pl.col("peers").cast(pl.Float64), pl.col("peers_after").cast(pl.Float64)
    peers_moved = (pa != pb) & ((pb >= pa * peers_factor) | (pa >= pb * peers_factor))
    status_moved = pl.col("status") != pl.col("status_after")
    risk_moved = pl.col("risk").ne_missing(pl.col("risk_after"))
    change = (pl.when(~present_a).then(pl.lit("new")).when(~present_b).then(pl.lit("gone"))
              .when(status_moved | risk_moved | peers_moved).then(pl.lit("changed")).otherwise(None))
    what = (
        pl.when(~present_a).then(pl.format("new {} finding", pl.col("status_after")))
        .when(~present_b).then(pl.format("no longer seen (was {})", pl.col("status")))
        .otherwise(pl.concat_str([
            pl.when(status_moved).then(pl.format("status {} -> {}", "status", "status_after")),
            pl.when(risk_moved).then(pl.format("risk {} -> {}", pl.col("risk").fill_null("?"),
                                               pl.col("risk_after").fill_null("?"))),
            pl.when(peers_moved).then(pl.format("peers {} -> {}", "peers", "peers_after")),
        ], separator="; ", ignore_nulls=True))
    )
    side = {c: pl.coalesce(f"{c}_after", c).alias(c) for c in CARRIED}
    out = (
        joined.with_columns(change=change, what=what)
        .filter(pl.col("change").is_not_null())
        .with_columns(
            *side.values(),
            port=pl.coalesce("port_after", "port") if "port_after" in joined.columns else pl.col("port"),
            port_to=pl.coalesce("port_to_after", "port_to") if "port_to_after" in joined.columns
            else pl.col("port_to"),
            status_before=pl.col("status"), risk_before=pl.col("risk"), peers_before=pl.col("peers"),
            peers_after=pl.col("peers_after"),
        )
    )
    order = [
        pl.col("change").replace_strict(list(CHANGES), list(range(len(CHANGES))), return_dtype=pl.Int32),
        pl.coalesce("status_after", "status_before").replace_strict(
            list(_STATUS_ORDER), list(range(4)), default=9, return_dtype=pl.Int32),
        pl.coalesce("risk_after", "risk_before").replace_strict(
            list(_RISK_ORDER), list(range(4)), default=9, return_dtype=pl.Int32),
        pl.coalesce("peers_after", "peers_before"),
        *key,
    ]
    return out.sort(order, descending=[False, False, False, True, False, False, False, False],
                    nulls_last=True).select(list(COLUMNS))
