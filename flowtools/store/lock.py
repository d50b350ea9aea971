"""The build lock: one writer per store at a time; readers never lock.

A local store is locked with ``fcntl.flock`` on ``<root>/_lock`` (an advisory lock the
kernel releases when the holding process exits, however it exits: no stale lock after a
crash). The file holds the holder's pid, host and start time, for the message the
waiting side prints. A second build **waits** for the lock, up to ``timeout`` seconds
(default :data:`LOCK_TIMEOUT_S`), then fails with a :class:`StoreLockedError` naming the
holder. Once it holds the lock it re-reads the manifest, so it only does what the first
build left to do.

``flock`` works between processes on one machine (and between threads of one process, as
each lock opens its own file description); it is not reliable on NFS.

A store on ``s3://`` is locked by the object ``<prefix>/_lock`` (:class:`S3Lock`), created
with a conditional PUT (``If-None-Match: *``: S3 creates it for one writer only). It names
its holder and lasts :data:`S3_LOCK_TTL_S` seconds after its last write; the holder
rewrites it every third of that (a heartbeat thread, ``If-Match`` its own version) and
deletes it when done. A build killed without deleting it blocks others until it expires;
then the next build takes it over (a conditional PUT on the expired version: one winner).
Ages are measured on S3's clock (the object's ``Last-Modified`` against the response's
``Date``), not the machines'. If a holder cannot renew it (network down for longer than the
TTL) and another build takes over, the old holder's next manifest commit fails (it is
conditional on the version it read), so the store stays consistent.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

from flowtools.errors import FlowtoolsError, SourceError

LOCK = "_lock"
#: Seconds a build waits for another build's lock before giving up.
LOCK_TIMEOUT_S = 3600.0
_POLL_S = 0.1
#: Seconds an S3 lock object lives after its holder's last heartbeat.
S3_LOCK_TTL_S = 300.0
#: Seconds between two polls of a held S3 lock.
S3_POLL_S = 1.0


class StoreLockedError(FlowtoolsError):
    """Another build holds the store's lock for longer than we may wait."""


class StoreLock:
    """``with StoreLock(root):`` holds the build lock of the store at ``root``."""

    def __init__(self, root: str | os.PathLike, *, timeout: float | None = LOCK_TIMEOUT_S,
                 on_wait: Callable[[str], None] | None = None) -> None:
        self.path = Path(root) / LOCK
        self.timeout = timeout
        self.on_wait = on_wait  # called once with the holder's description when we must wait
        self._fd: int | None = None

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "another process"
        except OSError:
            return "another process"

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited and self.on_wait is not None:
                    self.on_wait(self.holder())
                waited = True
                if deadline is not None and time.monotonic() >= deadline:
                    os.close(fd)
                    raise StoreLockedError(
                        f"{self.path.parent}: the store is being built by {self.holder()}; gave up waiting after "
                        f"{self.timeout:.0f} s (run again when that build has finished)") from None
                time.sleep(_POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since "
                      f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def describe_holder(body: bytes) -> str:
    """The holder named in a lock object's body."""
    try:
        return str(json.loads(body).get("holder") or "another build")
    except (ValueError, AttributeError):
        return "another build"


def _holder_text() -> str:
    return (f"pid {os.getpid()} on {socket.gethostname()} since "
            f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")


class LockLocation(Protocol):
    """What :class:`S3Lock` needs of an S3 store (:class:`flowtools.store.location.S3`, which
    imports this module)."""

    bucket: str
    uri: str

    @property
    def client(self) -> Any: ...

    def key(self, rel: str) -> str: ...

    def error(self, e: BaseException, action: str, key: str | None = None) -> SourceError: ...

    def remove(self, rels: list[str]) -> None: ...


class S3Lock:
    """``with S3Lock(location):`` holds the build lock of an S3 store (see the module doc)."""

    def __init__(self, location: LockLocation, *, timeout: float | None = LOCK_TIMEOUT_S,
                 on_wait: Callable[[str], None] | None = None, ttl: float | None = None) -> None:
        self.loc = location
        self.key = location.key(LOCK)
        self.timeout = timeout
        self.on_wait = on_wait
        self.ttl = S3_LOCK_TTL_S if ttl is None else ttl
        self.holder_text = _holder_text()
        self.etag: str | None = None
        self.lost: str | None = None  # why the heartbeat lost the lock
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None
        self._mutex = threading.Lock()

    def _body(self) -> bytes:
        return json.dumps({"holder": self.holder_text, "ttl_s": self.ttl}).encode()

    def _put(self, **cond: str) -> str | None:
        """PUT the lock object under a condition; its new ETag, or None when the condition failed."""
        from botocore.exceptions import BotoCoreError, ClientError

        from flowtools import aws

        try:
            return self.loc.client.put_object(Bucket=self.loc.bucket, Key=self.key, Body=self._body(),
                                              **cond).get("ETag")
        except ClientError as e:
            if aws.error_code(e)[0] in ("PreconditionFailed", "412", "ConditionalRequestConflict", "409",
                                        "NoSuchKey", "404"):
                return None
            raise self.loc.error(e, "PutObject", self.key) from None
        except BotoCoreError as e:
            raise self.loc.error(e, "PutObject", self.key) from None

    def _current(self) -> tuple[str, str, float] | None:
        """(ETag, holder, age in seconds on S3's clock) of the lock object, None when there is none."""
        from botocore.exceptions import BotoCoreError, ClientError

        from flowtools import aws

        try:
            got = self.loc.client.get_object(Bucket=self.loc.bucket, Key=self.key)
            body = got["Body"].read()
        except ClientError as e:
            if aws.error_code(e)[0] in ("NoSuchKey", "404"):
                return None
            raise self.loc.error(e, "GetObject", self.key) from None
        except BotoCoreError as e:
            raise self.loc.error(e, "GetObject", self.key) from None
        date = got.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
        now = parsedate_to_datetime(date).timestamp() if date else time.time()
        age = now - got["LastModified"].timestamp()
        try:
            ttl = float(json.loads(body).get("ttl_s", self.ttl))
        except (ValueError, AttributeError, TypeError):
            ttl = self.ttl
        return got["ETag"], describe_holder(body), age - ttl

    def holder(self) -> str:
        cur = self._current()
        return "nobody" if cur is None else cur[1]

    def acquire(self) -> None:
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        waited = False
        while True:
            etag = self._put(IfNoneMatch="*")
            if etag is not None:
                break
            cur = self._current()
            if cur is not None:
                old, holder, overdue = cur
                if overdue > 0:  # expired: take it over (one winner: conditional on that version)
                    etag = self._put(IfMatch=old)
                    if etag is not None:
                        break
                    continue
                if not waited and self.on_wait is not None:
                    self.on_wait(f"{holder}; s3 lock s3://{self.loc.bucket}/{self.key}")
                waited = True
                if deadline is not None and time.monotonic() >= deadline:
                    raise StoreLockedError(
                        f"{self.loc.uri}: the store is being built by {holder}; gave up waiting after "
                        f"{self.timeout:.0f} s (run again when that build has finished; a killed build's lock "
                        f"expires {self.ttl:.0f} s after its last heartbeat)")
            time.sleep(S3_POLL_S)
        self.etag = etag
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name="flowtools-store-lock", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            with self._mutex:
                held = self.etag
                assert held is not None  # set before this thread starts; release() stops it first
                try:
                    etag = self._put(IfMatch=held)
                except Exception as e:  # noqa: BLE001 - kept for the build to report
                    self.lost = f"cannot renew the lock: {e}"
                    continue
                if etag is None:
                    self.lost = "the lock was taken over by another build"
                    return
                self.etag = etag

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        with self._mutex:
            if self.etag is None:
                return
            cur = self._current()
            if cur is not None and cur[0] == self.etag:  # still ours
                self.loc.remove([LOCK])
            self.etag = None

    def __enter__(self) -> S3Lock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
