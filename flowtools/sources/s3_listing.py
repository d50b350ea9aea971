"""The pruned listing of an ``s3://`` SOURCE, pruned before it starts.

The walk follows the key grammar of :mod:`flowtools.layout` (:func:`~flowtools.layout.next_segment`)
down from the SOURCE prefix with delimiter listings (``Delimiter='/'``), one level at a
time and many prefixes at once (:data:`~flowtools.sources.s3_client.LIST_WORKERS`): user
prefixes above ``AWSLogs/`` (up to :data:`MAX_USER_PREFIX_DEPTH` folders deep: point SOURCE
at the prefix that holds ``AWSLogs/`` to list nothing else), the organisation segment,
accounts (``{account}/`` or ``aws-account-id={account}/``, filtered by ``accounts``), the
service folder, regions (filtered by ``regions``; given regions are not even listed). Below
a region the walk does not list years and months: it goes straight to the day folders of
the window (``yyyy/MM/dd/`` or ``year=/month=/day=``), lists each with a delimiter (the
files of a daily layout, and the hour folders of an hourly one), and lists only the hour
folders of the window (:func:`flowtools.layout.partition_prefixes`, with the pruning
slack). A 2-hour window in a bucket of a year of 50 accounts' logs lists a few prefixes per
account and region, never the rest. A side of the window left open lists that side's days
up to now (an open start: the region folder recursively). A folder the grammar has no place
for is not listed; a SOURCE prefix the grammar cannot place is listed recursively. File
timestamps then prune the listed keys (:func:`flowtools.layout.select`) exactly as for a
local folder.
"""

from __future__ import annotations

import builtins  # `list[...]` in Lister after its method `list`
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from flowtools.layout import (
    PRUNE_SLACK,
    FlowLogObject,
    Level,
    ObjectInfo,
    Segment,
    discover,
    next_segment,
    parse_key,
    partition_of,
    partition_prefixes,
)
from flowtools.sources.cache import human_size
from flowtools.sources.s3_client import (
    LIST_WORKERS,
    bucket_region,
    connect,
    parse_uri,
    progress_bar,
    s3_error,
)
from flowtools.window import Window

#: Folders explored above ``AWSLogs/`` when the SOURCE prefix does not reach it.
MAX_USER_PREFIX_DEPTH = 3
#: The folders below a region that name a day, in order, with their ``strftime`` formats.
_DAY_LEVELS: tuple[tuple[Level, str], ...] = (("year", "%Y"), ("month", "%m"), ("day", "%d"))


@dataclass
class ListingStats:
    """What the listing cost: requests (pages) and the prefixes listed."""

    requests: int = 0
    prefixes: list[str] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0




@dataclass(frozen=True)
class _Node:
    """A prefix to list and what the grammar says it is."""

    prefix: str  # absolute, "" or ending in "/"
    segment: Segment | None  # its last folder, parsed (None: the top of the bucket)
    path: tuple[Segment, ...] = ()  # its folders from the top, parsed
    depth: int = 0  # user-prefix folders so far
    whole: bool = False  # list everything below it (the grammar cannot place it)


def _child(node: _Node, name: str) -> _Node | None:
    """Folder ``name`` below ``node`` (None: the grammar has no place for it there)."""
    seg = next_segment(node.segment, name)
    if seg is None:
        return None
    depth = node.depth + 1 if seg.level == "prefix" else 0
    if depth > MAX_USER_PREFIX_DEPTH:
        return None
    return _Node(f"{node.prefix}{name}/", seg, node.path + (seg,), depth)


def _top(prefix: str) -> _Node:
    """The node of the SOURCE prefix itself (what its own folders say)."""
    node = _Node("", None)
    for name in [s for s in prefix.split("/") if s]:
        child = _child(node, name)
        if child is None:  # the prefix is somewhere we do not know: list it all
            return _Node(prefix, None, whole=True)
        node = child
    return replace(node, prefix=prefix)


class Lister:
    """The pruned listing of one bucket prefix (see the module docstring)."""

    def __init__(self, client: Any, bucket: str, *, window: Window, accounts: Sequence[str] | None = None,
                 regions: Sequence[str] | None = None, profile: str | None = None, progress: Any = None,
                 now: datetime | None = None):
        self.client, self.bucket, self.window = client, bucket, window
        self.accounts = set(accounts) if accounts else None
        self.regions = list(regions) if regions else None
        self.profile = profile
        self.progress = progress
        self.stats = ListingStats()
        self._lock = threading.Lock()
        now = now or datetime.now(UTC)
        self._days: list[datetime] | None = None
        self._hours: set[datetime] | None = None
        if window.start is not None:  # an open end lists up to now
            bounded = Window(window.start, window.end or max(now, window.start) + PRUNE_SLACK + timedelta(hours=1))
            self._days = [t for t, _, _ in partition_prefixes(bounded, hourly=False)]
            self._hours = {t for t, _, _ in partition_prefixes(bounded, hourly=True)}

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object the window can need below ``prefix`` (absolute keys)."""
        frontier = [_top(prefix)]
        found: list[ObjectInfo] = []
        with ThreadPoolExecutor(max_workers=LIST_WORKERS) as pool:
            while frontier:
                results = list(pool.map(self._expand, frontier))
                frontier = [child for _, children in results for child in children]
                for files, _ in results:
                    found.extend(files)
        found.sort(key=lambda o: o.key)
        return found

    # one node: its files and the child nodes worth listing
    def _expand(self, node: _Node) -> tuple[builtins.list[ObjectInfo], builtins.list[_Node]]:
        seg = node.segment
        if seg is not None and seg.level == "service" and self.regions:  # given regions are not listed
            return [], [self._below(node, [Segment("region", r, seg.hive)]) for r in self.regions]
        if seg is not None and seg.level == "region" and self._days is not None:  # straight to the days
            return [], [self._below(node, [Segment(level, t.strftime(fmt), seg.hive) for level, fmt in _DAY_LEVELS])
                        for t in self._days]
        if node.whole or (seg is not None and seg.level in ("region", "hour")):
            return self._page(node.prefix, delimiter=False)[0], []
        files, folders = self._page(node.prefix, delimiter=True)
        children = []
        for folder in folders:  # CommonPrefixes are prefix + folder + "/"
            child = _child(node, folder[len(node.prefix):-1])
            if child is not None and self._wanted(child):
                children.append(child)
        return files, children

    @staticmethod
    def _below(node: _Node, segments: builtins.list[Segment]) -> _Node:
        """The node ``segments`` below ``node``, without listing what is between."""
        prefix = node.prefix + "".join(s.name + "/" for s in segments)
        return _Node(prefix, segments[-1], node.path + tuple(segments))

    def _wanted(self, node: _Node) -> bool:
        """Whether the filters (accounts, regions, the window's hours) keep this folder."""
        seg = node.segment
        if seg is None:
            return True
        if seg.level == "account" and self.accounts is not None:
            return seg.value in self.accounts
        if seg.level == "region" and self.regions is not None:
            return seg.value in self.regions
        if seg.level == "hour" and self._hours is not None:
            partition = partition_of(node.path)
            return partition is not None and partition[0] in self._hours
        return True

    def _page(self, prefix: str, *, delimiter: bool) -> tuple[builtins.list[ObjectInfo], builtins.list[str]]:
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "PaginationConfig": {"PageSize": 1000}}
        if delimiter:
            kwargs["Delimiter"] = "/"
        files: builtins.list[ObjectInfo] = []
        folders: builtins.list[str] = []
        with self._lock:
            self.stats.prefixes.append(prefix)
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                batch = [ObjectInfo(o["Key"], int(o.get("Size", 0)), o.get("ETag")) for o in page.get("Contents", ())
                         if not o["Key"].endswith("/")]
                files.extend(batch)
                folders.extend(p["Prefix"] for p in page.get("CommonPrefixes", ()))
                with self._lock:
                    self.stats.requests += 1
                    self.stats.objects += len(batch)
                    self.stats.bytes += sum(o.size for o in batch)
                    if self.progress is not None:
                        self.progress.set_postfix_str(f"{self.stats.objects} objects, {human_size(self.stats.bytes)}",
                                                      refresh=False)
                        self.progress.update(1)
        except (ClientError, BotoCoreError) as e:
            raise s3_error(e, "ListObjectsV2", self.bucket, prefix, self.profile) from None
        return files, folders


def _single_object(client: Any, bucket: str, key: str) -> ObjectInfo | None:
    """HeadObject of a SOURCE naming one object; None when it is a folder prefix."""
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError:
        return None
    return ObjectInfo(key, int(head.get("ContentLength", 0)), head.get("ETag"))


@dataclass
class Listing:
    """What :func:`list_objects` found: the flow-log objects (keys relative to ``prefix``)
    and what it took, with the session and client that found them."""

    session: Any
    client: Any
    bucket: str
    prefix: str
    region: str | None
    objects: list[FlowLogObject]
    single_file: bool
    stats: ListingStats


def list_objects(uri: str, *, window: Window, accounts: Sequence[str] | None = None,
                 regions: Sequence[str] | None = None, profile: str | None = None,
                 progress: bool | None = None, any_name: bool = False) -> Listing:
    """List the flow-log objects of ``uri`` for ``window`` (pruned listing, then discovery;
    ``any_name``: see :func:`flowtools.layout.discover`)."""
    bucket, prefix = parse_uri(uri)
    session, client = connect(profile)
    region = bucket_region(client, bucket, profile)
    single = None
    if prefix and not prefix.endswith("/"):
        single = _single_object(client, bucket, prefix)
        if single is None:
            prefix += "/"
    if single is not None:
        base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        obj = parse_key(prefix[len(base):], single.size, single.etag, any_name=True)
        assert obj is not None  # with any_name every key parses
        return Listing(session, client, bucket, base, region, [obj], True, ListingStats())
    bar = progress_bar(progress, total=None, unit="page", desc=f"listing s3://{bucket}/{prefix}")
    lister = Lister(client, bucket, window=window, accounts=accounts, regions=regions, profile=profile,
                    progress=bar.bar)
    try:
        listing = lister.list(prefix)
    finally:
        bar.close()
    relative = [ObjectInfo(o.key[len(prefix):], o.size, o.etag) for o in listing]
    return Listing(session, client, bucket, prefix, region, discover(relative, any_name=any_name), False, lister.stats)
