"""``s3://bucket/prefix`` as a SOURCE: pruned listing, then streaming or a local cache.

The pieces: :mod:`~flowtools.sources.s3_client` (URI, client, errors, progress bar),
:mod:`~flowtools.sources.s3_listing` (the listing, pruned before it starts by the key
grammar of :mod:`flowtools.layout`), :mod:`~flowtools.sources.s3_fetch` (the download pool
and ``flowtools fetch``), and this module: the store the readers read through, and
:func:`open_s3`. Their public names are importable from here too.

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
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flowtools.errors import SourceError, UsageError
from flowtools.layout import FlowLogObject
from flowtools.read import text as tx
from flowtools.sources.cache import ObjectCache, human_size
from flowtools.sources.s3_client import DOWNLOAD_WORKERS, LIST_WORKERS, parse_uri, s3_error
from flowtools.sources.s3_fetch import FetchSummary, OnBytes, download_all, fetch
from flowtools.sources.s3_listing import (
    MAX_USER_PREFIX_DEPTH,
    Lister,
    Listing,
    ListingStats,
    list_objects,
)
from flowtools.window import Window

__all__ = ["CACHE_BUDGET_ENV", "DEFAULT_CACHE_BUDGET", "DOWNLOAD_WORKERS", "HEAD_BYTES", "LIST_WORKERS",
           "MAX_USER_PREFIX_DEPTH", "MODES", "FetchSummary", "Lister", "Listing", "ListingStats", "S3Store",
           "TransferStats", "cache_budget", "download_all", "fetch", "list_objects", "open_s3", "parse_uri",
           "s3_error", "storage_options"]

#: Bytes read to find a text object's header line when streaming.
HEAD_BYTES = 1 << 16
#: ``auto`` reads through the cache when the selected objects are at most this many bytes.
DEFAULT_CACHE_BUDGET = 20 * 10**9
CACHE_BUDGET_ENV = "FLOWTOOLS_CACHE_BUDGET"
MODES = ("auto", "cache", "stream")


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
        local: dict[str, Path] = {}
        self._local = local
        missing = []
        for o in objects:
            p = self.cache.get(self.bucket, self.prefix + o.key, o.etag, o.size)
            if p is None:
                missing.append(o)
            else:
                local[o.key] = p
        self.stats.files_from_cache += len(objects) - len(missing)  # prepare runs once per batch of a build
        if missing:
            self._download(missing, progress, into=local)
        return list(objects)

    def _download(self, objects: Sequence[FlowLogObject], progress: bool | None, *, into: dict[str, Path]) -> None:
        """Download ``objects`` to the cache; ``into``: key -> the cached copy, for each."""

        def one(o: FlowLogObject, on_bytes: OnBytes) -> int:
            key = self.prefix + o.key
            path, moved = self.cache.fetch(self.client, self.bucket, key, o.etag, o.size, on_bytes=on_bytes,
                                           on_error=lambda e: s3_error(e, "GetObject", self.bucket, key, self.profile))
            into[o.key] = path
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
        duckdb_secret(con, "flowtools_s3", storage_options(self.session, self.client, self.region))


def duckdb_secret(con: Any, name: str, opts: dict[str, str], scope: str | None = None) -> None:
    """Create (or replace) the DuckDB S3 secret ``name`` from :func:`storage_options`
    (credentials, region, a custom endpoint such as moto's, path-style); ``scope``: an
    ``s3://`` prefix the secret is limited to (DuckDB picks the longest matching scope)."""
    params = {"KEY_ID": opts["aws_access_key_id"], "SECRET": opts["aws_secret_access_key"],
              "REGION": opts.get("aws_region") or "us-east-1"}
    if scope:
        params["SCOPE"] = scope
    if opts.get("aws_session_token"):
        params["SESSION_TOKEN"] = opts["aws_session_token"]
    endpoint = opts.get("aws_endpoint_url")
    if endpoint:
        params["ENDPOINT"] = re.sub(r"^https?://", "", endpoint).rstrip("/")
        params["URL_STYLE"] = "path"
        params["USE_SSL"] = "false" if endpoint.startswith("http://") else "true"
    body = ", ".join(f"{k} {v}" if v in ("true", "false") else f"{k} '{_sql_text(v)}'" for k, v in params.items())
    con.execute(f"CREATE OR REPLACE SECRET {name} (TYPE s3, {body})")


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
