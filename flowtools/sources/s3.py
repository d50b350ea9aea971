"""``s3://bucket/prefix`` as a SOURCE: pruned listing, then streaming or a local cache.

**Listing, pruned before it starts.** The walk follows AWS's layouts down from the
SOURCE prefix with delimiter listings (``Delimiter='/'``), one level at a time and many
prefixes at once: user prefixes above ``AWSLogs/`` (up to :data:`MAX_USER_PREFIX_DEPTH`
folders deep: point SOURCE at the prefix that holds ``AWSLogs/`` to list nothing else), the organisation segment, accounts
(``{account}/`` or ``aws-account-id={account}/``, filtered by ``accounts``), the service
folder, regions (filtered by ``regions``; given regions are not even listed). Below a
region the walk does not list years and months: it goes straight to the day folders of
the window (``yyyy/MM/dd/`` or ``year=/month=/day=``), lists each with a delimiter (the
files of a daily layout, and the hour folders of an hourly one), and lists only the hour
folders of the window (:func:`flowtools.layout.partition_prefixes`, with the pruning
slack). A 2-hour window in a bucket of a year of 50 accounts' logs lists a few prefixes
per account and region, never the rest. A side of the window left open lists that side's
days up to now (an open start: the region folder recursively). File timestamps then
prune the listed keys (:func:`flowtools.layout.select`) exactly as for a local folder.

**Reading**, two ways (``s3_mode``):

* ``cache``: the selected objects are downloaded in parallel (:data:`DOWNLOAD_WORKERS`)
  into the :class:`~flowtools.sources.cache.ObjectCache` (kept by bucket, key and ETag:
  an unchanged object is never downloaded twice; interrupted downloads resume) and read
  from there like a local folder.
* ``stream``: the engines read ``s3://`` directly (Polars' object store, the reader of both
  engines) with the credentials and endpoint of the boto3 session; nothing is written.
* ``auto`` (default): ``cache`` when the selected objects fit the cache budget
  (:data:`CACHE_BUDGET_ENV`, default :data:`DEFAULT_CACHE_BUDGET` bytes, and at most half
  the free disk space of the cache folder), else ``stream``.

Credentials, region and endpoint come from boto3's standard chain (``profile``, the
environment, SSO, roles, ``AWS_ENDPOINT_URL``). Throttling and transient errors are
retried with back-off by botocore (:mod:`flowtools.aws`); a missing bucket, denied access
or expired credentials raise :class:`~flowtools.errors.SourceError` naming the bucket and
key, never a secret. ``source_file`` is the key relative to SOURCE, as for a local copy.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flowtools import aws
from flowtools.aws_names import ACCOUNT_ID, REGION_NAME
from flowtools.aws_names import ORGANIZATION_ID as _ORG
from flowtools.errors import SourceError, UsageError
from flowtools.layout import (
    PRUNE_SLACK,
    FlowLogObject,
    ObjectInfo,
    discover,
    parse_key,
    partition_prefixes,
)
from flowtools.read import text as tx
from flowtools.sources.cache import ObjectCache, download, human_size, materialize_key
from flowtools.window import Window

#: Folders explored above ``AWSLogs/`` when the SOURCE prefix does not reach it.
MAX_USER_PREFIX_DEPTH = 3
#: Prefixes listed at once, and objects downloaded at once.
LIST_WORKERS = 16
DOWNLOAD_WORKERS = 16
#: Bytes read to find a text object's header line when streaming.
HEAD_BYTES = 1 << 16
#: ``auto`` reads through the cache when the selected objects are at most this many bytes.
DEFAULT_CACHE_BUDGET = 20 * 10**9
CACHE_BUDGET_ENV = "FLOWTOOLS_CACHE_BUDGET"
MODES = ("auto", "cache", "stream")

_URI = re.compile(r"^s3://(?P<bucket>[^/]+)(?:/(?P<prefix>.*))?$")
_ACCOUNT = ACCOUNT_ID
_HIVE_ACCOUNT = re.compile(r"^aws-account-id=(\d{12})$")
_REGION = REGION_NAME
_HIVE_REGION = re.compile(r"^aws-region=([a-z0-9-]+)$")
_YEAR, _MONTH_OR_DAY = re.compile(r"^\d{4}$"), re.compile(r"^\d{2}$")


def parse_uri(text: str) -> tuple[str, str]:
    """(bucket, prefix) of ``s3://bucket[/prefix]``; the prefix keeps a trailing ``/``."""
    m = _URI.match(text)
    if m is None or not m["bucket"]:
        raise UsageError(f"not an S3 URI: {text!r} (expected s3://bucket/prefix)")
    return m["bucket"], (m["prefix"] or "")


# -- errors -----------------------------------------------------------------------------------

def s3_error(e: BaseException, action: str, bucket: str, key: str | None = None,
             profile: str | None = None) -> SourceError:
    """The SourceError for a botocore error during ``action`` on ``s3://bucket[/key]``."""
    where = f"s3://{bucket}/{key}" if key is not None else f"s3://{bucket}"
    mapped = aws.credentials_error(e, profile, SourceError)
    if mapped is not None:
        return mapped
    code, message = aws.error_code(e)
    if code in ("NoSuchBucket",) or (code == "404" and action == "HeadBucket"):
        return SourceError(f"{where}: no such bucket ({code or '404'}): check the bucket name and the account "
                           "your credentials belong to")
    if code in ("NoSuchKey", "404"):
        return SourceError(f"{where}: object not found ({code}) — it was removed after the listing; run again")
    if code in aws.EXPIRED:
        return SourceError(f"{action} {where}: AWS credentials expired ({code}): refresh them "
                           f"({aws.login_hint(profile)}) and run again")
    if code in aws.ACCESS_DENIED:
        need = {"ListObjectsV2": f"s3:ListBucket on arn:aws:s3:::{bucket}",
                "GetObject": f"s3:GetObject on arn:aws:s3:::{bucket}/{key or '*'} (and kms:Decrypt for SSE-KMS objects)",
                "HeadBucket": f"s3:ListBucket on arn:aws:s3:::{bucket}"}.get(action, f"s3:{action}")
        return SourceError(f"access denied: {action} {where} ({code}: {message or 'Access Denied'}); "
                           f"the principal needs {need}")
    if code in aws.BAD_CREDENTIALS:
        return SourceError(f"{action} {where}: AWS rejected the credentials ({code}): check them "
                           f"({aws.login_hint(profile)})")
    if code in aws.THROTTLED:
        return SourceError(f"{action} {where}: still throttled ({code}) after {aws.MAX_ATTEMPTS} attempts with "
                           "back-off; run again later")
    from botocore import exceptions as bx

    if isinstance(e, bx.EndpointConnectionError | bx.ConnectTimeoutError | bx.ReadTimeoutError):
        return SourceError(f"{action} {where}: cannot reach S3: {e}")
    return SourceError(f"{action} {where} failed: {code + ': ' if code else ''}{message or e}")


# -- listing ----------------------------------------------------------------------------------

@dataclass
class ListingStats:
    """What the listing cost: requests (pages) and the prefixes listed."""

    requests: int = 0
    prefixes: list[str] = field(default_factory=list)
    objects: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class _Node:
    prefix: str  # absolute, "" or ending in "/"
    state: str
    depth: int = 0


def _child_state(state: str, seg: str, depth: int) -> tuple[str, int] | None:
    """The layout state of folder ``seg`` below a folder in ``state`` (None: not ours)."""
    if state == "root":
        if seg == "AWSLogs":
            return "awslogs", 0
        return ("root", depth + 1) if depth + 1 <= MAX_USER_PREFIX_DEPTH else None
    if state == "awslogs" and _ORG.match(seg) and not _ACCOUNT.match(seg):
        return "org", 0
    if state in ("awslogs", "org"):
        if _ACCOUNT.match(seg):
            return "account", 0
        if _HIVE_ACCOUNT.match(seg):
            return "hive_account", 0
        return None
    if state == "account":
        return ("service", 0) if seg == "vpcflowlogs" else None
    if state == "hive_account":
        return ("hive_service", 0) if seg == "aws-service=vpcflowlogs" else None
    if state == "service":
        return ("region", 0) if _REGION.match(seg) else None
    if state == "hive_service":
        return ("hive_region", 0) if _HIVE_REGION.match(seg) else None
    # Below a region (only reached when SOURCE itself points into the dates)
    if state == "region":
        return ("year", 0) if _YEAR.match(seg) else None
    if state == "year":
        return ("month", 0) if _MONTH_OR_DAY.match(seg) else None
    if state == "month":
        return ("day", 0) if _MONTH_OR_DAY.match(seg) else None
    if state == "day":
        return ("hour", 0) if _MONTH_OR_DAY.match(seg) else None
    if state == "hive_region":
        return ("hive_year", 0) if seg.startswith("year=") else None
    if state == "hive_year":
        return ("hive_month", 0) if seg.startswith("month=") else None
    if state == "hive_month":
        return ("hive_day", 0) if seg.startswith("day=") else None
    if state == "hive_day":
        return ("hour", 0) if seg.startswith("hour=") else None
    return "leaf", 0


def _initial_state(prefix: str) -> tuple[str, int]:
    """The layout state of the SOURCE prefix itself (what its own segments say)."""
    state, depth = "root", 0
    for seg in [s for s in prefix.split("/") if s]:
        nxt = _child_state(state, seg, depth)
        if nxt is None:  # the prefix is somewhere we do not know: list it all
            return "leaf", 0
        state, depth = nxt
    return state, depth


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
        self._days = self._hour_days = None
        if window.start is not None:  # an open end lists up to now
            bounded = Window(window.start, window.end or max(now, window.start) + PRUNE_SLACK + timedelta(hours=1))
            self._days = [(p, h) for _, p, h in partition_prefixes(bounded, hourly=False)]
            hours = partition_prefixes(bounded, hourly=True)
            self._hour_days = {(p[:11], h.rsplit("/", 2)[-2].removeprefix("hour=")) for _, p, h in hours}

    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object the window can need below ``prefix`` (absolute keys)."""
        state, depth = _initial_state(prefix)
        frontier = [_Node(prefix, state, depth)]
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
    def _expand(self, node: _Node) -> tuple[list[ObjectInfo], list[_Node]]:
        if node.state == "service" and self.regions:  # given regions are not listed
            return [], [_Node(f"{node.prefix}{r}/", "region") for r in self.regions]
        if node.state == "hive_service" and self.regions:
            return [], [_Node(f"{node.prefix}aws-region={r}/", "hive_region") for r in self.regions]
        if node.state in ("region", "hive_region") and self._days is not None:
            hive = node.state == "hive_region"
            return [], [_Node(node.prefix + (h if hive else p), "hive_day" if hive else "day")
                        for p, h in self._days]
        if node.state in ("leaf", "hour", "region", "hive_region"):
            return self._page(node.prefix, delimiter=False)[0], []
        files, folders = self._page(node.prefix, delimiter=True)
        children = []
        for folder in folders:
            seg = folder[len(node.prefix):-1]  # CommonPrefixes are prefix + segment + "/"
            nxt = _child_state(node.state, seg, node.depth)
            if nxt is None:
                continue
            state, depth = nxt
            if state in ("account", "hive_account") and self.accounts is not None:
                account = seg if state == "account" else _HIVE_ACCOUNT.match(seg)[1]
                if account not in self.accounts:
                    continue
            if state in ("region", "hive_region") and self.regions is not None:
                region = seg if state == "region" else _HIVE_REGION.match(seg)[1]
                if region not in self.regions:
                    continue
            if state == "hour" and self._hour_days is not None and not self._hour_wanted(node, seg):
                continue
            children.append(_Node(folder, state, depth))
        return files, children

    def _hour_wanted(self, node: _Node, seg: str) -> bool:
        hour = seg.removeprefix("hour=")
        if node.state == "day":  # .../yyyy/MM/dd/
            parts = node.prefix.rstrip("/").split("/")[-3:]
            return ("/".join(parts) + "/", hour) in self._hour_days
        m = re.search(r"year=(\d{4})/month=(\d{2})/day=(\d{2})/$", node.prefix)
        return m is None or (f"{m[1]}/{m[2]}/{m[3]}/", hour) in self._hour_days

    def _page(self, prefix: str, *, delimiter: bool) -> tuple[list[ObjectInfo], list[str]]:
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix, "PaginationConfig": {"PageSize": 1000}}
        if delimiter:
            kwargs["Delimiter"] = "/"
        files: list[ObjectInfo] = []
        folders: list[str] = []
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


# -- the store ----------------------------------------------------------------------------------

@dataclass
class TransferStats:
    """How the objects were read: mode, listing cost, downloads and cache hits."""

    mode: str = "stream"
    list_requests: int = 0
    prefixes_listed: int = 0
    objects_listed: int = 0
    files_downloaded: int = 0
    bytes_downloaded: int = 0
    files_from_cache: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def line(self) -> str:
        text = (f"s3: {self.mode} mode; {self.list_requests} list request(s) over {self.prefixes_listed} "
                f"prefix(es), {self.objects_listed} object(s) listed")
        if self.mode == "cache":
            text += (f"; {self.files_downloaded} downloaded ({human_size(self.bytes_downloaded)}), "
                     f"{self.files_from_cache} from the cache")
        return text


class S3Store:
    """Objects below ``s3://bucket/prefix``; keys relative to the prefix (ObjectStore)."""

    scannable = True

    def __init__(self, session: Any, client: Any, bucket: str, prefix: str, *, region: str | None,
                 profile: str | None = None, mode: str = "auto", cache: ObjectCache | None = None):
        if mode not in MODES:
            raise UsageError(f"s3_mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.session, self.client, self.bucket, self.prefix = session, client, bucket, prefix
        self.region, self.profile, self.requested_mode = region, profile, mode
        self.cache = cache or ObjectCache()
        self.label = f"s3://{bucket}/{prefix}"
        self.stats = TransferStats()
        self._local: dict[str, Path] | None = None  # key -> cached copy (cache mode)
        self._heads: dict[str, bytes] = {}  # stream mode: header bytes fetched ahead

    # ObjectStore ---------------------------------------------------------------------------
    @property
    def storage_options(self) -> dict[str, str] | None:
        return None if self._local is not None else storage_options(self.session, self.client, self.region)

    def path(self, key: str) -> str:
        if self._local is not None:
            return str(self._local[key])
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def read_bytes(self, key: str) -> bytes:
        if self._local is not None:
            return self._local[key].read_bytes()
        return self._get(key)

    def read_head(self, key: str) -> bytes:
        if self._local is not None:
            return tx.read_head(str(self._local[key]))
        head = self._heads.pop(key, None)
        return head if head is not None else self._head(key)

    def _head(self, key: str) -> bytes:
        return tx.read_head(self._get(key, f"bytes=0-{HEAD_BYTES - 1}"))

    def _get(self, key: str, byte_range: str | None = None) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        kwargs = {"Bucket": self.bucket, "Key": self.prefix + key}
        if byte_range:
            kwargs["Range"] = byte_range
        try:
            return self.client.get_object(**kwargs)["Body"].read()
        except (ClientError, BotoCoreError) as e:
            raise s3_error(e, "GetObject", self.bucket, self.prefix + key, self.profile) from None

    def prepare(self, objects: Sequence[FlowLogObject], progress: bool | None = None) -> list[FlowLogObject]:
        """Choose the mode for these objects; in cache mode, download what is missing."""
        total = sum(o.size for o in objects)
        mode = self.requested_mode
        if mode == "auto":
            mode = "cache" if total <= cache_budget(self.cache.root) else "stream"
        self.stats.mode = mode
        if mode == "stream":  # the header lines, many at once (the reader asks one by one)
            text = [o.key for o in objects if o.format == "text" and o.fields is None and o.size]
            with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS) as pool:
                self._heads = dict(zip(text, pool.map(self._head, text), strict=True))
            return list(objects)
        self._local = {}
        missing = []
        for o in objects:
            p = self.cache.get(self.bucket, self.prefix + o.key, o.etag, o.size)
            if p is None:
                missing.append(o)
            else:
                self._local[o.key] = p
        self.stats.files_from_cache = len(objects) - len(missing)
        if missing:
            self._download(missing, progress)
        return list(objects)

    def _download(self, objects: Sequence[FlowLogObject], progress: bool | None) -> None:
        def one(o: FlowLogObject, on_bytes) -> int:
            key = self.prefix + o.key
            path, moved = self.cache.fetch(self.client, self.bucket, key, o.etag, o.size, on_bytes=on_bytes,
                                           on_error=lambda e: s3_error(e, "GetObject", self.bucket, key, self.profile))
            self._local[o.key] = path
            return moved

        files, moved = download_all(objects, one, progress=progress, desc=f"downloading from s3://{self.bucket}")
        self.stats.files_downloaded += files
        self.stats.bytes_downloaded += moved

    def close(self) -> None:
        pass

    def attach_duckdb(self, con: Any) -> None:
        """Give a DuckDB connection the session's S3 credentials (httpfs from its wheel), so
        ad hoc SQL can read ``s3://`` paths with the same access as the load."""
        from flowtools.engines import load_extension

        load_extension(con, "httpfs")
        opts = storage_options(self.session, self.client, self.region)
        params = {"KEY_ID": opts["aws_access_key_id"], "SECRET": opts["aws_secret_access_key"],
                  "REGION": opts.get("aws_region") or "us-east-1"}
        if opts.get("aws_session_token"):
            params["SESSION_TOKEN"] = opts["aws_session_token"]
        endpoint = opts.get("aws_endpoint_url")
        if endpoint:
            params["ENDPOINT"] = re.sub(r"^https?://", "", endpoint).rstrip("/")
            params["URL_STYLE"] = "path"
            params["USE_SSL"] = "false" if endpoint.startswith("http://") else "true"
        body = ", ".join(f"{k} {v}" if v in ("true", "false") else f"{k} '{_sql_text(v)}'" for k, v in params.items())
        con.execute(f"CREATE OR REPLACE SECRET flowtools_s3 (TYPE s3, {body})")


def _sql_text(value: str) -> str:
    return value.replace("'", "''")


def cache_budget(root: Path) -> int:
    """Bytes ``auto`` may put in the cache: the budget, at most half the free disk space."""
    budget = int(os.environ.get(CACHE_BUDGET_ENV) or DEFAULT_CACHE_BUDGET)
    probe = root
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return budget
    return min(budget, free // 2)


def storage_options(session: Any, client: Any, region: str | None) -> dict[str, str]:
    """Polars/object-store options from the boto3 session (credentials, region, endpoint)."""
    creds = session.get_credentials()
    if creds is None:
        raise SourceError("no AWS credentials found: configure a profile (--profile NAME), environment variables "
                          "(AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or an instance role")
    frozen = creds.get_frozen_credentials()
    opts = {"aws_access_key_id": frozen.access_key, "aws_secret_access_key": frozen.secret_key}
    if frozen.token:
        opts["aws_session_token"] = frozen.token
    if region:
        opts["aws_region"] = region
    endpoint = client.meta.endpoint_url or ""
    if endpoint and "amazonaws.com" not in endpoint:  # a custom endpoint (AWS_ENDPOINT_URL, MinIO, moto)
        opts["aws_endpoint_url"] = endpoint
        if endpoint.startswith("http://"):
            opts["aws_allow_http"] = "true"
    return opts


def download_all(objects: Sequence[FlowLogObject], one, *, progress: bool | None, desc: str) -> tuple[int, int]:
    """Run ``one(object, on_bytes) -> bytes moved`` for every object, :data:`DOWNLOAD_WORKERS`
    at a time, under one progress bar of bytes and files; returns (files, bytes moved).
    The first error stops the rest and is raised."""
    bar = _bar(progress, total=sum(o.size for o in objects), unit="B", unit_scale=True, files=len(objects), desc=desc)
    moved = 0

    def run(o: FlowLogObject) -> int:
        n = one(o, bar.update)
        bar.file_done()
        return n

    try:
        with ThreadPoolExecutor(max_workers=DOWNLOAD_WORKERS) as pool:
            futures = [pool.submit(run, o) for o in objects]
            try:
                for fut in futures:
                    moved += fut.result()
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    finally:
        bar.close()
    return len(objects), moved


class _Bar:
    """tqdm over bytes with a files counter; silent when progress is off."""

    def __init__(self, bar, files: int):
        self.bar, self.files, self.done = bar, files, 0
        self._lock = threading.Lock()

    def update(self, n: int) -> None:
        if self.bar is not None:
            with self._lock:
                self.bar.update(n)

    def file_done(self) -> None:
        if self.bar is not None:
            with self._lock:
                self.done += 1
                self.bar.set_postfix_str(f"{self.done}/{self.files} files", refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _bar(progress: bool | None, *, total: int | None, unit: str, desc: str, unit_scale: bool = False, files: int = 0):
    show = sys.stderr.isatty() if progress is None else progress
    if not show:
        return _Bar(None, files)
    from tqdm.auto import tqdm

    return _Bar(tqdm(total=total, unit=unit, unit_scale=unit_scale, desc=desc, leave=False, file=sys.stderr),
                files)


# -- entry points ---------------------------------------------------------------------------------

def _client(profile: str | None) -> tuple[Any, Any]:
    session = aws.session(profile, SourceError)
    client = session.client("s3", config=aws.client_config(pool=max(LIST_WORKERS, DOWNLOAD_WORKERS)))
    return session, client


def _bucket_region(client: Any, bucket: str, profile: str | None) -> str | None:
    """The bucket's region (HeadBucket's ``x-amz-bucket-region``); a missing bucket is an error.
    A denied HeadBucket is not (a policy may allow listing a prefix only)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        head = client.head_bucket(Bucket=bucket)
        return head["ResponseMetadata"]["HTTPHeaders"].get("x-amz-bucket-region") or client.meta.region_name
    except ClientError as e:
        code, _ = aws.error_code(e)
        if code in ("404", "NoSuchBucket"):
            raise s3_error(e, "HeadBucket", bucket, profile=profile) from None
        if code in aws.EXPIRED or code in aws.BAD_CREDENTIALS:
            raise s3_error(e, "HeadBucket", bucket, profile=profile) from None
        headers = e.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
        return headers.get("x-amz-bucket-region") or client.meta.region_name
    except BotoCoreError as e:
        raise s3_error(e, "HeadBucket", bucket, profile=profile) from None


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
    session, client = _client(profile)
    region = _bucket_region(client, bucket, profile)
    single = None
    if prefix and not prefix.endswith("/"):
        single = _single_object(client, bucket, prefix)
        if single is None:
            prefix += "/"
    if single is not None:
        base = prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""
        objects = [parse_key(prefix[len(base):], single.size, single.etag, any_name=True)]
        return Listing(session, client, bucket, base, region, objects, True, ListingStats())
    bar = _bar(progress, total=None, unit="page", desc=f"listing s3://{bucket}/{prefix}")
    lister = Lister(client, bucket, window=window, accounts=accounts, regions=regions, profile=profile,
                    progress=bar.bar)
    try:
        listing = lister.list(prefix)
    finally:
        bar.close()
    relative = [ObjectInfo(o.key[len(prefix):], o.size, o.etag) for o in listing]
    return Listing(session, client, bucket, prefix, region, discover(relative, any_name=any_name), False, lister.stats)


def open_s3(uri: str, *, window: Window, accounts: Sequence[str] | None = None, regions: Sequence[str] | None = None,
            profile: str | None = None, mode: str = "auto", progress: bool | None = None,
            any_name: bool = False) -> tuple[S3Store, list[FlowLogObject], bool]:
    """(store, flow-log objects, single_file) for an ``s3://`` SOURCE (see the module docstring)."""
    found = list_objects(uri, window=window, accounts=accounts, regions=regions, profile=profile, progress=progress,
                         any_name=any_name)
    store = S3Store(found.session, found.client, found.bucket, found.prefix, region=found.region, profile=profile,
                    mode=mode)
    store.stats.list_requests, store.stats.prefixes_listed = found.stats.requests, len(found.stats.prefixes)
    store.stats.objects_listed = found.stats.objects
    return store, found.objects, found.single_file


@dataclass
class FetchSummary:
    """What ``flowtools fetch`` did."""

    source: str
    dest: str
    files: int = 0
    files_downloaded: int = 0
    bytes_downloaded: int = 0
    files_present: int = 0
    files_pruned: int = 0
    list_requests: int = 0

    def line(self) -> str:
        return (f"fetch: {self.files} file(s) for the window into {self.dest}: {self.files_downloaded} downloaded "
                f"({human_size(self.bytes_downloaded)}), {self.files_present} already there; {self.files_pruned} outside "
                f"the window; {self.list_requests} list request(s)")


def fetch(uri: str, dest: str | os.PathLike, *, start=None, end=None, all: bool = False,
          accounts: str | Iterable[str] | None = None, regions: str | Iterable[str] | None = None,
          profile: str | None = None, progress: bool | None = None) -> FetchSummary:
    """Copy the flow-log objects of ``uri`` that the window can need into ``dest``, in the
    same layout (keys relative to the SOURCE prefix), for offline work: ``dest`` is then a
    local SOURCE giving the same rows (and ``source_file`` values). Files already in
    ``dest`` with the object's size are not downloaded again; interrupted downloads resume."""
    from flowtools.layout import select
    from flowtools.options import comma_list as _csv_list

    window = Window.parse(start, end)
    if window.is_open and not all:
        raise UsageError(f"{uri}: fetch needs --start/--end (or --all to copy everything)")
    accounts_l, regions_l = _csv_list(accounts), _csv_list(regions)
    found = list_objects(uri, window=window, accounts=accounts_l, regions=regions_l, profile=profile,
                         progress=progress)
    kept, pruned = select(found.objects, window, accounts=accounts_l, regions=regions_l)
    root = Path(dest)
    root.mkdir(parents=True, exist_ok=True)
    summary = FetchSummary(uri, str(root), files=len(kept), files_pruned=len(pruned),
                           list_requests=found.stats.requests)
    todo, targets = [], {}
    for o in kept:
        target = materialize_key(root, o.key)
        if target.exists() and target.stat().st_size == o.size:
            summary.files_present += 1
        else:
            todo.append(o)
            targets[o.key] = target

    def one(o: FlowLogObject, on_bytes) -> int:
        target, key = targets[o.key], found.prefix + o.key
        target.parent.mkdir(parents=True, exist_ok=True)
        return download(found.client, found.bucket, key, target, etag=o.etag, size=o.size, on_bytes=on_bytes,
                        on_error=lambda e: s3_error(e, "GetObject", found.bucket, key, profile))

    summary.files_downloaded, summary.bytes_downloaded = download_all(
        todo, one, progress=progress, desc=f"fetching from s3://{found.bucket}")
    return summary
