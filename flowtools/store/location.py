"""Where a store lives: a local folder or ``s3://bucket/prefix``.

A :class:`Local` or :class:`S3` location gives the rest of the store what differs between
the two: the manifest's reading and atomic replacement, the build lock, the URL of a file
for the engines (with Polars' ``storage_options`` and DuckDB's credentials), how written
files are published and how files are removed.

Files are always written on local disk first. A local store writes them in place (under a
temporary name, renamed when complete). An S3 store writes them into a private staging
folder (under the system's temp folder, or ``$FLOWTOOLS_TEMP_DIR``), and at each commit
:meth:`S3.publish` uploads them (one object per file, whole: S3 never shows a partial
object), after noting their names in a journal object, *before* the manifest that lists
them is written: a reader never sees a file that is not complete. The staging folder holds
at most one commit's files (see :data:`flowtools.store.update.COMMIT_OBJECTS`).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowtools.errors import SourceError, UsageError
from flowtools.store.manifest import MANIFEST, Manifest

if TYPE_CHECKING:
    import duckdb

JOURNAL = "_journal"
#: Files uploaded at once by an S3 store's commit.
UPLOAD_WORKERS = 8


def is_remote(root: str | os.PathLike) -> bool:
    return "://" in str(root)


def open_location(root: str | os.PathLike | Local | S3, *, profile: str | None = None) -> Local | S3:
    """The location of a store root: ``s3://bucket/prefix`` or a local folder."""
    if isinstance(root, Local | S3):
        return root
    text = str(root)
    if text.startswith("s3://"):
        return S3(text, profile=profile)
    if is_remote(text):
        raise UsageError(f"{text}: a store is a local folder or s3://bucket/prefix")
    return Local(Path(text).expanduser())


class Local:
    """A store in a local folder."""

    remote = False
    storage_options: dict[str, str] | None = None

    def __init__(self, root: Path):
        self.root = Path(root)
        self.uri = str(self.root)

    def url(self, rel: str) -> str:
        return str(self.root / rel)

    def load_manifest(self) -> Manifest:
        return Manifest.load(self.root)

    def save_manifest(self, m: Manifest) -> None:
        m.save(self.root)

    def attach_duckdb(self, con: duckdb.DuckDBPyConnection) -> None:
        pass


class S3:
    """A store below ``s3://bucket/prefix`` (credentials, region and endpoint from boto3's
    standard chain and ``profile``, as for an ``s3://`` SOURCE)."""

    remote = True

    def __init__(self, uri: str, *, profile: str | None = None):
        from flowtools.sources.s3_client import parse_uri

        self.bucket, prefix = parse_uri(uri)
        self.prefix = prefix.rstrip("/") + "/" if prefix.strip("/") else ""
        self.uri = f"s3://{self.bucket}/{self.prefix}"
        self.profile = profile
        self._client = self._session = None
        self._region: str | None = None
        self._manifest_etag: str | None = None

    # -- the client ------------------------------------------------------------------------
    @property
    def client(self) -> Any:
        if self._client is None:
            from flowtools.sources.s3_client import bucket_region, connect

            self._session, self._client = connect(self.profile)
            self._region = bucket_region(self._client, self.bucket, self.profile)
        return self._client

    @property
    def storage_options(self) -> dict[str, str]:
        """Polars / object-store options (credentials, region, endpoint)."""
        from flowtools.sources.s3 import storage_options

        client = self.client
        return storage_options(self._session, client, self._region)

    def error(self, e: BaseException, action: str, key: str | None = None) -> SourceError:
        from flowtools.sources.s3_client import s3_error

        return s3_error(e, action, self.bucket, key, self.profile)

    def key(self, rel: str) -> str:
        return self.prefix + rel

    def url(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{rel}"

    # -- the manifest ------------------------------------------------------------------------
    def load_manifest(self) -> Manifest:
        """The committed manifest (empty when there is none); remembers its ETag, so that
        :meth:`save_manifest` replaces exactly that version."""
        from botocore.exceptions import BotoCoreError, ClientError

        from flowtools import aws

        key = self.key(MANIFEST)
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=key)
            text = got["Body"].read().decode()
        except ClientError as e:
            if aws.error_code(e)[0] in ("NoSuchKey", "404"):
                self._manifest_etag = None
                return Manifest()
            raise self.error(e, "GetObject", key) from None
        except BotoCoreError as e:
            raise self.error(e, "GetObject", key) from None
        self._manifest_etag = got.get("ETag")
        return Manifest.from_text(text, self.url(MANIFEST))

    def save_manifest(self, m: Manifest) -> None:
        """Replace the manifest: one PUT (S3 shows the old or the new object, never a mix),
        conditional on the version this build read (``If-Match``, or ``If-None-Match: *``
        for the first), so a build whose lock was taken over cannot overwrite a newer one."""
        from botocore.exceptions import BotoCoreError, ClientError

        from flowtools import aws
        from flowtools.store.lock import StoreLockedError

        key = self.key(MANIFEST)
        cond = {"IfMatch": self._manifest_etag} if self._manifest_etag else {"IfNoneMatch": "*"}
        try:
            put = self.client.put_object(Bucket=self.bucket, Key=key, Body=m.to_text().encode(),
                                         ContentType="application/json", **cond)
        except ClientError as e:
            if aws.error_code(e)[0] in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409"):
                raise StoreLockedError(
                    f"{self.url(MANIFEST)}: the manifest changed while this build held the lock (its lock expired "
                    "and another build took it over?); nothing of this commit is published: run the build again"
                ) from None
            raise self.error(e, "PutObject", key) from None
        except BotoCoreError as e:
            raise self.error(e, "PutObject", key) from None
        self._manifest_etag = put.get("ETag")

    # -- files ---------------------------------------------------------------------------------
    def publish(self, staging: Path, rels: list[str], journal: str) -> None:
        """Upload staged files (``staging / rel`` to ``rel``), after listing them in the
        journal object ``_journal/<journal>``; each staged copy is deleted once uploaded."""
        if not rels:
            return
        self._put(f"{JOURNAL}/{journal}", "\n".join(rels) + "\n")

        def one(rel: str) -> None:
            from boto3.s3.transfer import TransferConfig
            from botocore.exceptions import BotoCoreError, ClientError

            path = staging / rel
            try:
                self.client.upload_file(str(path), self.bucket, self.key(rel),
                                        Config=TransferConfig(use_threads=False))
            except (ClientError, BotoCoreError) as e:
                raise self.error(e, "PutObject", self.key(rel)) from None
            path.unlink()

        with ThreadPoolExecutor(max_workers=UPLOAD_WORKERS) as pool:
            list(pool.map(one, rels))

    def remove(self, rels: list[str]) -> None:
        """Delete objects (missing ones are fine), 1000 per request."""
        from botocore.exceptions import BotoCoreError, ClientError

        keys = [self.key(r) for r in rels]
        for i in range(0, len(keys), 1000):
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={
                    "Objects": [{"Key": k} for k in keys[i:i + 1000]], "Quiet": True})
            except (ClientError, BotoCoreError) as e:
                raise self.error(e, "DeleteObjects", keys[i]) from None

    def journals(self) -> dict[str, list[str]]:
        """Journal name -> the files it lists (builds that did not finish)."""
        from botocore.exceptions import BotoCoreError, ClientError

        out: dict[str, list[str]] = {}
        base = self.key(JOURNAL + "/")
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
                for item in page.get("Contents", ()):
                    body = self.client.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read().decode()
                    out[item["Key"][len(base):]] = [r for r in body.splitlines() if r]
        except (ClientError, BotoCoreError) as e:
            raise self.error(e, "ListObjectsV2", base) from None
        return out

    def drop_journals(self, names: Iterable[str]) -> None:
        self.remove([f"{JOURNAL}/{n}" for n in names])

    def _put(self, rel: str, text: str) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=self.key(rel), Body=text.encode())
        except (ClientError, BotoCoreError) as e:
            raise self.error(e, "PutObject", self.key(rel)) from None

    # -- engines --------------------------------------------------------------------------------
    def attach_duckdb(self, con: duckdb.DuckDBPyConnection) -> None:
        """Give a DuckDB connection read access to the store (httpfs from its wheel, a secret
        scoped to the store's prefix, so a SOURCE's own secret does not replace it)."""
        from flowtools.engines import load_extension
        from flowtools.sources.s3 import duckdb_secret

        load_extension(con, "httpfs")
        name = "flowtools_store_" + re.sub(r"[^a-z0-9]+", "_", self.uri.lower())[5:60]
        duckdb_secret(con, name, self.storage_options, scope=self.uri)


def staging_folder() -> Path:
    """A new private folder for an S3 store's files before upload (``$FLOWTOOLS_TEMP_DIR``,
    else the system's temp folder); the caller removes it."""
    from flowtools.engines import TEMP_DIR_ENV

    base = os.environ.get(TEMP_DIR_ENV) or None
    if base:
        os.makedirs(base, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="flowtools-store-", dir=base))


def remove_staging(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)

