"""The local object cache: S3 objects downloaded once, kept by bucket, key and ETag.

Layout under :func:`cache_dir` (``$FLOWTOOLS_CACHE_DIR``, else ``~/.cache/flowtools``)::

    objects/s3/{bucket}/{h[:2]}/{h}.{etag}{suffix}      h = sha256(bucket "/" key)

* The object's key never becomes a path: whatever it holds (``../``, ``//``, a leading
  ``/``, backslashes, control characters), the file lands inside the cache folder. Only
  the bucket name (validated) and a known suffix (``.log.gz``, ``.log.parquet``, ``.gz``)
  appear in the name, so engines and people see what the file is.
* ``{etag}`` makes a changed object a new file: an unchanged one (same ETag and size) is
  never downloaded again, and the older copy is removed when the new one lands.
* Downloads go to ``<file>.part`` and are renamed into place when complete, so the cache
  survives interrupted runs and restarts; a later run resumes a ``.part`` with a ranged
  GET that only succeeds while the ETag still matches (``If-Match``), else starts over.
  A lock on the ``.part`` file keeps two processes from writing the same download.

:func:`materialize_key` is the other mapping, for ``flowtools fetch``: the key as a path
below a destination folder (the same layout as the bucket), made safe segment by segment
and checked to stay below it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flowtools.errors import SourceError

CACHE_ENV = "FLOWTOOLS_CACHE_DIR"
#: Bytes per read from S3 while downloading (also the progress granularity).
CHUNK_BYTES = 1 << 20
_SUFFIXES = (".log.gz", ".log.parquet", ".parquet", ".gz")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ETAG_CHARS = re.compile(r"[^0-9A-Za-z-]")


def cache_dir() -> Path:
    """flowtools' cache folder: ``$FLOWTOOLS_CACHE_DIR``, else ``~/.cache/flowtools``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "flowtools"


def _suffix(key: str) -> str:
    name = key.rsplit("/", 1)[-1].lower()
    return next((s for s in _SUFFIXES if name.endswith(s)), "")


def _etag(etag: str | None) -> str:
    text = _ETAG_CHARS.sub("", etag or "")
    return text[:80] or "noetag"


@dataclass
class CacheReport:
    """What the cache holds: files and bytes, per bucket."""

    root: str
    files: int = 0
    bytes: int = 0
    partial_files: int = 0
    buckets: dict[str, dict[str, int]] = field(default_factory=dict)  # files and bytes per bucket

    def lines(self) -> list[str]:
        out = [f"cache     {self.root}", f"objects   {self.files} file(s), {human_size(self.bytes)}"
               + (f"; {self.partial_files} partial download(s)" if self.partial_files else "")]
        for bucket, d in sorted(self.buckets.items()):
            out.append(f"  s3://{bucket}: {d['files']} file(s), {human_size(d['bytes'])}")
        return out


def human_size(n: float) -> str:
    """``1.2 MB`` style (powers of 1000)."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class ObjectCache:
    """S3 objects on local disk, keyed by (bucket, key, ETag); see the module docstring."""

    def __init__(self, root: str | os.PathLike | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "objects"

    def path_for(self, bucket: str, key: str, etag: str | None) -> Path:
        """Where the object's copy lives (whether it is there or not)."""
        if not _BUCKET.match(bucket):  # S3 bucket names are safe; anything else is hashed too
            bucket = "bucket-" + hashlib.sha256(bucket.encode()).hexdigest()[:16]
        h = hashlib.sha256(f"{bucket}/{key}".encode("utf-8", "surrogatepass")).hexdigest()
        return self.root / "s3" / bucket / h[:2] / f"{h}.{_etag(etag)}{_suffix(key)}"

    def get(self, bucket: str, key: str, etag: str | None, size: int | None) -> Path | None:
        """The cached copy when present and complete (its size matches), else None."""
        p = self.path_for(bucket, key, etag)
        try:
            st = p.stat()
        except OSError:
            return None
        return p if size is None or st.st_size == size else None

    def fetch(self, client: Any, bucket: str, key: str, etag: str | None, size: int | None,
              on_bytes: Callable[[int], None] | None = None, on_error: Callable[[BaseException], Exception] | None = None
              ) -> tuple[Path, int]:
        """The cached copy, downloading it (or the rest of a partial download) when needed.

        Returns (path, bytes transferred now). ``on_error`` turns a botocore error into the
        exception to raise (it names the object)."""
        p = self.path_for(bucket, key, etag)
        if self.get(bucket, key, etag, size) is not None:
            return p, 0
        p.parent.mkdir(parents=True, exist_ok=True)
        moved = download(client, bucket, key, p, etag=etag, size=size, on_bytes=on_bytes, on_error=on_error)
        for old in p.parent.glob(p.name.split(".", 1)[0] + ".*"):  # older versions of the object
            if old != p and not old.name.endswith(".part"):
                old.unlink(missing_ok=True)
        return p, moved

    def report(self) -> CacheReport:
        rep = CacheReport(str(self.root))
        base = self.root / "s3"
        if not base.is_dir():
            return rep
        for bucket_dir in sorted(base.iterdir()):
            d = {"files": 0, "bytes": 0}
            for f in bucket_dir.rglob("*"):
                if not f.is_file():
                    continue
                if f.name.endswith(".part"):
                    rep.partial_files += 1
                    continue
                n = f.stat().st_size
                d["files"] += 1
                d["bytes"] += n
            rep.buckets[bucket_dir.name] = d
            rep.files += d["files"]
            rep.bytes += d["bytes"]
        return rep

    def clear(self) -> CacheReport:
        """Remove every cached object (and partial download); returns what was there."""
        rep = self.report()
        if self.root.exists():
            shutil.rmtree(self.root)
        return rep


def download(client: Any, bucket: str, key: str, target: Path, *, etag: str | None = None, size: int | None = None,
             on_bytes: Callable[[int], None] | None = None,
             on_error: Callable[[BaseException], Exception] | None = None) -> int:
    """Download s3://bucket/key to ``target`` through ``target.part`` (resumed when a
    previous run left one and the object's ETag still matches); returns bytes transferred."""
    import fcntl

    from botocore.exceptions import BotoCoreError, ClientError

    part = target.with_name(target.name + ".part")
    moved = 0
    with open(part, "ab") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # another process downloading the same object: wait for it
        try:
            if target.exists() and (size is None or target.stat().st_size == size):
                return 0  # it finished while we waited
            have = f.seek(0, os.SEEK_END)
            if size is not None and have > size:
                f.truncate(0)
                have = 0
            kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
            if have and etag:
                kwargs.update(Range=f"bytes={have}-", IfMatch=etag)
            elif have:
                f.truncate(0)
                have = 0
            if size is not None and have == size:
                body = None
            else:
                try:
                    body = client.get_object(**kwargs)["Body"]
                except ClientError as e:
                    code = str(e.response.get("Error", {}).get("Code", ""))
                    if not have or code not in ("PreconditionFailed", "InvalidRange", "412", "416"):
                        raise
                    f.truncate(0)  # the object changed since the partial download: start over
                    f.seek(0)
                    have = 0
                    body = client.get_object(Bucket=bucket, Key=key)["Body"]
            if body is not None:
                for chunk in body.iter_chunks(CHUNK_BYTES):
                    f.write(chunk)
                    moved += len(chunk)
                    if on_bytes is not None:
                        on_bytes(len(chunk))
            f.flush()
            got = f.tell()
            if size is not None and got != size:
                raise SourceError(f"s3://{bucket}/{key}: download incomplete ({got} of {size} bytes); run again "
                                  "to resume it")
            os.replace(part, target)
        except (ClientError, BotoCoreError) as e:
            if on_error is None:
                raise
            raise on_error(e) from None
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
    return moved


def materialize_key(dest: Path, key: str) -> Path:
    """The path of ``key`` below ``dest`` (``flowtools fetch``): the same layout as the
    bucket, each segment made safe (``.``/``..``/empty segments dropped or escaped,
    backslashes and control characters percent-encoded), and checked to stay below ``dest``."""
    parts = []
    for seg in key.split("/"):
        if seg in ("", "."):
            continue
        seg = quote(seg, safe=" !$&'()+,;=@[]^`{}~-._#")
        if seg == "..":
            seg = "%2E%2E"
        parts.append(seg[:255])
    if not parts:
        raise SourceError(f"cannot store object key {key!r}: it names no file")
    base = dest.resolve()
    p = base.joinpath(*parts)
    if not p.resolve().is_relative_to(base):
        raise SourceError(f"object key {key!r} would be written outside {dest}; refused")
    return p
