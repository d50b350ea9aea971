"""Risk of exposure findings: which of them matter, from a documented, overridable policy.

``assess(findings)`` adds two columns to the findings of :func:`flowtools.internet_exposure`
(a frame in, the same kind of frame out, on any engine):

- ``risk``: ``critical``, ``high``, ``medium`` or ``low``;
- ``risk_category``: the port category that decided it (``remote administration``,
  ``database or cache``, ``control plane``, ``file sharing``, ``network infrastructure``,
  ``web``), null for ports outside every category.

The policy (``flowtools/data/risk-policy.toml``, shown by ``flowtools exposure
--risk-policy show``) maps each category and status to a level:

- a finding takes the most severe level among the categories whose ports its port touches
  (a ``configured`` rule's range ``port``..``port_to`` touches every port inside it; an
  all-traffic rule touches all of them), for its status;
- a port outside every category takes the ``[default]`` level of its status;
- evidence raises an exposed port outside every category to ``high`` when at most
  ``few_peers`` internet addresses reached it and sent at least ``bulk_bytes`` to it.

By default remote administration, databases and caches, control planes and file sharing
are ``critical`` when exposed (accepted and answered) and ``high`` when reachable
(accepted, unanswered) or merely configured (a security group open to the internet with
nothing observed: SSH open to ``0.0.0.0/0`` is a risk before anyone uses it); ``blocked``
findings are scan noise and ``low`` whatever the port.

Cost: findings are small (one row per interface, port and protocol): the policy is a
side table of a few dozen port ranges, joined to the findings' distinct ports.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import narwhals as nw
import polars as pl

from flowtools import frames
from flowtools.errors import FlowtoolsError, UsageError
from flowtools.options import comma_list

#: Risk levels, most severe first.
LEVELS: tuple[str, ...] = ("critical", "high", "medium", "low")
#: The statuses a finding can have (see :mod:`flowtools.analyses.exposure`).
STATUSES: tuple[str, ...] = ("exposed", "reachable", "blocked", "configured")
_PROTOCOLS = ("tcp", "udp")


class RiskPolicyError(FlowtoolsError):
    """A risk policy file that cannot be used (names the file and the entry)."""


@dataclass(frozen=True)
class Category:
    """A set of ports and the level of a finding on them, per status."""

    name: str
    ports: tuple[tuple[str, int, int], ...]  # (protocol, first port, last port)
    levels: dict[str, str]


@dataclass(frozen=True)
class Policy:
    """The whole policy: categories (in file order), default levels, evidence thresholds."""

    categories: tuple[Category, ...]
    default: dict[str, str]
    few_peers: int = 3
    bulk_bytes: int = 100_000_000
    source: str = "built-in"
    _table: pl.DataFrame | None = field(default=None, repr=False, compare=False)

    def table(self) -> pl.DataFrame:
        """The port side table: one row per category port range and status, with the level's rank."""
        rows: dict[str, list] = {"r_category": [], "r_order": [], "r_protocol": [], "r_from": [], "r_to": [],
                                 "status": [], "r_rank": []}
        for order, c in enumerate(self.categories):
            for proto, lo, hi in c.ports:
                for status in STATUSES:
                    rows["r_category"].append(c.name)
                    rows["r_order"].append(order)
                    rows["r_protocol"].append(proto)
                    rows["r_from"].append(lo)
                    rows["r_to"].append(hi)
                    rows["status"].append(status)
                    rows["r_rank"].append(LEVELS.index(c.levels[status]))
        return pl.DataFrame(rows, schema={"r_category": pl.String, "r_order": pl.Int32, "r_protocol": pl.String,
                                          "r_from": pl.Int32, "r_to": pl.Int32, "status": pl.String,
                                          "r_rank": pl.Int32})

    def describe(self) -> str:
        """The policy as text for people (``--risk-policy show``)."""
        lines = [f"risk policy ({self.source}); levels by status: "
                 + ", ".join(STATUSES)]
        for c in self.categories:
            ports = ", ".join(f"{p}/{lo}" if lo == hi else f"{p}/{lo}-{hi}" for p, lo, hi in c.ports)
            lines.append(f"  {c.name}: " + " / ".join(c.levels[s] for s in STATUSES) + f"  [{ports}]")
        lines.append("  other ports: " + " / ".join(self.default[s] for s in STATUSES))
        lines.append(f"  an exposed other port with <= {self.few_peers} peers that sent >= {self.bulk_bytes} "
                     "bytes: high")
        return "\n".join(lines)


def _where(source: str, what: str) -> str:
    return f"{source}: {what}"


def _levels(entry: dict[str, Any], source: str, where: str, base: dict[str, str] | None) -> dict[str, str]:
    out = dict(base or {})
    for status in STATUSES:
        if status in entry:
            level = entry[status]
            if level not in LEVELS:
                raise RiskPolicyError(_where(source, f"{where}: {status} = {level!r} is not one of "
                                                     f"{', '.join(LEVELS)}"))
            out[status] = level
    missing = [s for s in STATUSES if s not in out]
    if missing:
        raise RiskPolicyError(_where(source, f"{where}: no level for {', '.join(missing)}"))
    return out


def _ports(specs: Any, source: str, where: str) -> tuple[tuple[str, int, int], ...]:
    if not isinstance(specs, list) or not specs:
        raise RiskPolicyError(_where(source, f"{where}: ports must be a non-empty list such as [\"tcp/22\"]"))
    out = []
    for spec in specs:
        proto, _, rng = str(spec).partition("/")
        lo_s, _, hi_s = rng.partition("-")
        try:
            lo, hi = int(lo_s), int(hi_s or lo_s)
        except ValueError:
            lo, hi = -1, -1
        if proto.lower() not in _PROTOCOLS or not 0 <= lo <= hi <= 65535:
            raise RiskPolicyError(_where(source, f"{where}: bad port {spec!r} (use tcp/22, udp/161 or "
                                                 "tcp/5985-5986)"))
        out.append((proto.lower(), lo, hi))
    return tuple(out)


def _parse(doc: dict[str, Any], source: str, base: Policy | None) -> Policy:
    known = {"thresholds", "default", "category"}
    unknown = sorted(set(doc) - known)
    if unknown:
        raise RiskPolicyError(_where(source, f"unknown table(s) {', '.join(unknown)} (expected "
                                             "[thresholds], [default], [[category]])"))
    categories = {c.name: c for c in (base.categories if base else ())}
    order = list(categories)
    for i, entry in enumerate(doc.get("category", [])):
        where = f"category #{i + 1}"
        name = entry.get("name") if isinstance(entry, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise RiskPolicyError(_where(source, f"{where}: needs a name"))
        old = categories.get(name)
        ports = _ports(entry["ports"], source, f"category {name!r}") if "ports" in entry or old is None \
            else old.ports
        categories[name] = Category(name, ports, _levels(entry, source, f"category {name!r}",
                                                         old.levels if old else None))
        if name not in order:
            order.append(name)
    default = _levels(doc.get("default", {}), source, "[default]", base.default if base else None)
    thresholds = doc.get("thresholds", {})
    values = {"few_peers": base.few_peers if base else 3, "bulk_bytes": base.bulk_bytes if base else 100_000_000}
    for k, v in thresholds.items():
        if k not in values or not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise RiskPolicyError(_where(source, f"[thresholds]: {k} = {v!r} (known: few_peers, bulk_bytes; "
                                                 "whole numbers >= 0)"))
        values[k] = v
    return Policy(tuple(categories[n] for n in order), default, values["few_peers"], values["bulk_bytes"], source)


def default_policy() -> Policy:
    """The built-in policy (``flowtools/data/risk-policy.toml``)."""
    text = resources.files("flowtools").joinpath("data", "risk-policy.toml").read_text(encoding="utf-8")
    return _parse(tomllib.loads(text), "built-in risk policy", None)


def load_policy(path: str | Path | None) -> Policy:
    """The built-in policy overridden by a user's TOML file (same shape; see the module doc).

    ``None`` gives the built-in policy. Errors name the file and the entry.
    """
    base = default_policy()
    if path is None:
        return base
    p = Path(path)
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RiskPolicyError(f"{p}: risk policy file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RiskPolicyError(f"{p}: cannot read the risk policy ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise RiskPolicyError(f"{p}: not valid TOML ({e})") from None
    return replace(_parse(doc, str(p), base), source=str(p))


def assess(findings: Any, *, policy: Policy | None = None) -> Any:
    """The findings with ``risk`` and ``risk_category`` (see the module doc), same engine.

    ``findings``: a findings frame (a DuckDB relation or a Polars LazyFrame/DataFrame with
    at least ``protocol, port, port_to, status, peers, bytes_in``), such as
    :func:`flowtools.internet_exposure` returns (which already carries ``risk``: this is
    for findings from elsewhere, or to re-assess them under another policy). The rows are
    unchanged; their order is not kept (sort afterwards).
    """
    lf = nw.from_native(findings)
    if isinstance(lf, nw.DataFrame):
        lf = lf.lazy()
    drop = [c for c in ("risk", "risk_category") if c in lf.collect_schema().names()]
    return nw.to_native(with_risk(lf.drop(drop) if drop else lf, findings, policy=policy))


def with_risk(lf: nw.LazyFrame, native: Any, *, policy: Policy | None = None) -> nw.LazyFrame:
    """:func:`assess` on a Narwhals frame (``native``: any frame of the same engine, for the
    side table); the columns of ``lf`` then ``risk, risk_category``, in no particular order."""
    policy = policy or default_policy()
    table = nw.from_native(frames.side_table(native, policy.table()))
    keys = ["protocol", "port_k", "port_to_k", "status"]
    tagged = lf.with_columns(
        port_k=nw.col("port").fill_null(-1), port_to_k=nw.col("port_to").fill_null(nw.col("port")).fill_null(-1),
    )
    distinct = tagged.group_by(keys).agg(nw.len().alias("_n")).drop("_n")
    every_port = nw.col("protocol") == "all"
    touches = (
        ((nw.col("protocol") == nw.col("r_protocol")) | every_port)
        & (every_port | ((nw.col("r_from") <= nw.col("port_to_k")) & (nw.col("r_to") >= nw.col("port_k"))))
    )
    matches = (
        distinct.join(table.rename({"status": "r_status"}), how="cross")
        .filter(touches & (nw.col("status") == nw.col("r_status")))
    )
    best_rank = matches.group_by(keys).agg(nw.col("r_rank").min().alias("rank"))
    best = (
        matches.join(best_rank, on=keys)
        .filter(nw.col("r_rank") == nw.col("rank"))
        .group_by(keys).agg(nw.col("r_order").min().alias("r_order"), nw.col("rank").min().alias("rank"))
    )
    names = table.group_by("r_order").agg(nw.col("r_category").min())
    best = best.join(names, on="r_order", how="left").drop("r_order")
    default_rank: nw.Expr = nw.lit(LEVELS.index(policy.default["exposed"]))
    for status in STATUSES:
        default_rank = nw.when(nw.col("status") == status).then(LEVELS.index(policy.default[status])).otherwise(
            default_rank)
    bulk = (
        (nw.col("status") == "exposed") & nw.col("r_category").is_null()
        & (nw.col("peers") <= policy.few_peers) & (nw.col("bytes_in").fill_null(0) >= policy.bulk_bytes)
    )
    rank = nw.col("rank").fill_null(default_rank)
    rank = nw.when(bulk & (rank > LEVELS.index("high"))).then(nw.lit(LEVELS.index("high"))).otherwise(rank)
    level: nw.Expr = nw.lit(LEVELS[-1])
    for i, name in enumerate(LEVELS):
        level = nw.when(rank == i).then(nw.lit(name)).otherwise(level)
    columns = [*lf.collect_schema().names(), "risk", "risk_category"]
    return (
        tagged.join(best, on=keys, how="left")
        .with_columns(risk=level, risk_category=nw.col("r_category"))
        .select(columns)
    )


def at_least(level: str) -> tuple[str, ...]:
    """The levels at or above ``level`` (``at_least("high")`` -> critical, high)."""
    if level not in LEVELS:
        raise UsageError(f"unknown risk level {level!r}: use one of {', '.join(LEVELS)}")
    return LEVELS[: LEVELS.index(level) + 1]


def parse_ports(text: str | Iterable[str]) -> list[tuple[int, int]]:
    """``"22,3389,8000-8100"`` -> [(22, 22), (3389, 3389), (8000, 8100)] (a usage error otherwise)."""
    out = []
    for item in comma_list(text) or ():
        lo_s, _, hi_s = item.partition("-")
        try:
            lo, hi = int(lo_s), int(hi_s or lo_s)
        except ValueError:
            lo, hi = -1, -1
        if not 0 <= lo <= hi <= 65535:
            raise UsageError(f"bad port {item!r} in --ports: use numbers and ranges, e.g. 22,3389,8000-8100")
        out.append((lo, hi))
    return out


def select(findings: Any, *, status: Sequence[str] | None = None, risk: Sequence[str] | None = None,
           ports: Sequence[tuple[int, int]] | None = None) -> Any:
    """Findings whose status, risk and port (range) match; ``None`` keeps everything.

    A finding matches ``ports`` when its port (or a configured rule's range) touches one of
    the ranges; an all-traffic rule (protocol ``all``) touches every port.
    """
    lf = nw.from_native(findings)
    conditions = []
    if status:
        bad = sorted(set(status) - set(STATUSES))
        if bad:
            raise UsageError(f"unknown status {', '.join(bad)}: use {', '.join(STATUSES)}")
        conditions.append(nw.col("status").is_in(list(status)))
    if risk:
        bad = sorted(set(risk) - set(LEVELS))
        if bad:
            raise UsageError(f"unknown risk level {', '.join(bad)}: use {', '.join(LEVELS)}")
        conditions.append(nw.col("risk").is_in(list(risk)))
    if ports:
        lo, hi = nw.col("port"), nw.col("port_to").fill_null(nw.col("port"))
        touch = nw.col("protocol") == "all"
        for a, b in ports:
            touch = touch | ((lo <= b) & (hi >= a)).fill_null(False)
        conditions.append(touch)
    return nw.to_native(lf.filter(*conditions)) if conditions else findings
