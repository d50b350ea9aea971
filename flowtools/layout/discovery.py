"""Discovery and selection: which objects of a listing are flow logs (and what the rest
is), and which of them a window, accounts and regions need.

Works on parsed keys (:mod:`flowtools.layout.keys`), never on a file system; one pass
over a listing, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from flowtools.layout.keys import BATCH, FlowLogObject, ObjectInfo, parse_key
from flowtools.window import Window

#: With ``any_name``, files whose names end like this (case-insensitive) are read as flow
#: logs whatever the rest of their name; anything else (an inventory's ``.json``, a README,
#: ``truth.json``) and hidden files (``.name``, or under a ``.folder``) stay ignored.
ANY_NAME_SUFFIXES = (".gz", ".log", ".parquet", ".txt")
#: Names of ignored files kept as examples for the "no flow-log files found" warning.
IGNORED_EXAMPLES = 3


def _suffix(name: str) -> str:
    """``.log.gz`` for ``flows-1.log.gz``, ``.json`` for ``x.json``, ``""`` for ``README``."""
    parts = name.lower().split(".")[1:]
    if not parts:
        return ""
    return "." + ".".join(parts[-2:] if len(parts) > 1 and parts[-1] in ("gz", "bz2", "zst", "xz") else parts[-1:])


def any_name_candidate(key: str) -> bool:
    """Whether ``any_name`` reads this key: not hidden, named like a data file
    (:data:`ANY_NAME_SUFFIXES`)."""
    parts = key.split("/")
    if any(p.startswith(".") for p in parts):
        return False
    return parts[-1].lower().endswith(ANY_NAME_SUFFIXES)


@dataclass
class Ignored:
    """The listed files :func:`discover` did not take for flow logs."""

    count: int = 0
    #: how many of them ``any_name`` would read (renamed flow logs, probably)
    candidates: int = 0
    #: files per name suffix (``.log.gz``, ``.json``, ``""`` for none)
    by_suffix: dict[str, int] = field(default_factory=dict)
    #: the first few names of the candidates (else of any ignored file), for messages
    examples: list[str] = field(default_factory=list)

    def add(self, key: str) -> None:
        name = key.rsplit("/", 1)[-1]
        self.count += 1
        sfx = _suffix(name)
        self.by_suffix[sfx] = self.by_suffix.get(sfx, 0) + 1
        if any_name_candidate(key):
            if not self.candidates:
                self.examples.clear()  # candidates are the better examples
            self.candidates += 1
            if len(self.examples) < IGNORED_EXAMPLES:
                self.examples.append(name)
        elif not self.candidates and len(self.examples) < IGNORED_EXAMPLES:
            self.examples.append(name)

    def suffixes(self) -> str:
        """``2 .json, 1 .md, 1 without extension``."""
        return ", ".join(f"{n} {s or 'without extension'}" for s, n in sorted(self.by_suffix.items()))


class Discovered(list[FlowLogObject]):
    """What :func:`discover` returns: the flow-log objects (a list, in key order) and, as
    ``ignored``, what the listing held besides them."""

    def __init__(self, objects: Iterable[FlowLogObject] = (), ignored: Ignored | None = None):
        super().__init__(objects)
        self.ignored = ignored if ignored is not None else Ignored()


def discover(listing: Iterable[ObjectInfo], *, any_name: bool = False) -> Discovered:
    """Keep the flow-log objects of a listing (by file name), parsed, in key order.

    Other files are counted in ``.ignored`` (they are not an error: an inventory or README
    may sit next to the flow logs). With ``any_name``, files whose names do not follow
    AWS's pattern are taken too when :func:`any_name_candidate` (their content decides
    later: a file that is not a flow log is then a bad file). One pass over the listing.
    """
    found = Discovered()
    for info in listing:
        obj = parse_key(info.key, info.size, info.etag)
        if obj is None and any_name and any_name_candidate(info.key):
            obj = parse_key(info.key, info.size, info.etag, any_name=True)
        if obj is None:
            found.ignored.add(info.key)
        else:
            found.append(obj)
    found.sort(key=lambda o: o.key)
    return found


@dataclass
class Selection:
    """What :func:`select_explained` kept and why it dropped the rest.

    Each dropped object is counted once, by the first filter it fails in this order:
    accounts, regions, window (so ``pruned_window`` counts only objects of the selected
    accounts and regions). ``matched_accounts``/``matched_regions``: objects each filter
    alone lets through (None: no such filter), to tell a filter that matches nothing.
    """

    kept: list[FlowLogObject]
    pruned_window: list[FlowLogObject]
    excluded_accounts: list[FlowLogObject]
    excluded_regions: list[FlowLogObject]
    matched_accounts: int | None = None
    matched_regions: int | None = None
    accounts: list[str] | None = None  # the filters, sorted
    regions: list[str] | None = None

    @property
    def pruned(self) -> list[FlowLogObject]:
        return self.excluded_accounts + self.excluded_regions + self.pruned_window


def select_explained(
    objects: Iterable[FlowLogObject],
    window: Window,
    *,
    accounts: Iterable[str] | None = None,
    regions: Iterable[str] | None = None,
) -> Selection:
    """Split objects by window, accounts and regions, saying which filter dropped what.

    An object whose account (region) is unknown (a file named otherwise, read with
    ``any_name``) passes the account (region) filter; its records are what they are.
    """
    accts = set(accounts) if accounts else None
    regs = set(regions) if regions else None
    sel = Selection([], [], [], [], None, None,
                    sorted(accts) if accts is not None else None, sorted(regs) if regs is not None else None)
    matched_accounts = matched_regions = 0
    for o in objects:
        acct_ok = accts is None or o.account_id is None or o.account_id in accts
        reg_ok = regs is None or o.region is None or o.region in regs
        matched_accounts += acct_ok
        matched_regions += reg_ok
        if not acct_ok:
            sel.excluded_accounts.append(o)
        elif not reg_ok:
            sel.excluded_regions.append(o)
        elif not o.may_overlap(window):
            sel.pruned_window.append(o)
        else:
            sel.kept.append(o)
    if accts is not None:
        sel.matched_accounts = matched_accounts
    if regs is not None:
        sel.matched_regions = matched_regions
    return sel


def select(
    objects: Iterable[FlowLogObject],
    window: Window,
    *,
    accounts: Iterable[str] | None = None,
    regions: Iterable[str] | None = None,
) -> tuple[list[FlowLogObject], list[FlowLogObject]]:
    """Split objects into (kept, pruned) by window, accounts and regions
    (:func:`select_explained` says which filter dropped what)."""
    sel = select_explained(objects, window, accounts=accounts, regions=regions)
    return sel.kept, sel.pruned


def time_span(objects: Iterable[FlowLogObject]) -> tuple[datetime, datetime] | None:
    """(first batch start, last batch end) from the objects' file names (else partitions);
    None when no object's key tells its time."""
    lo: datetime | None = None
    hi: datetime | None = None
    for o in objects:
        if o.file_time is not None:
            a, b = o.file_time, o.file_time + BATCH
        elif o.partition_start is not None and o.partition_span is not None:
            a, b = o.partition_start, o.partition_start + o.partition_span
        else:
            continue
        lo = a if lo is None or a < lo else lo
        hi = b if hi is None or b > hi else hi
    return None if lo is None or hi is None else (lo, hi)
