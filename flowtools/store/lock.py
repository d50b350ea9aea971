"""The build lock: one writer per store at a time; readers never lock.

A local store is locked with ``fcntl.flock`` on ``<root>/_lock`` (an advisory lock the
kernel releases when the holding process exits, however it exits: no stale lock after a
crash). The file holds the holder's pid, host and start time, for the message the
waiting side prints. A second build **waits** for the lock, up to ``timeout`` seconds
(default :data:`LOCK_TIMEOUT_S`), then fails with a :class:`StoreLockedError` naming the
holder. Once it holds the lock it re-reads the manifest, so it only does what the first
build left to do.

``flock`` works between processes on one machine (and between threads of one process, as
each lock opens its own file description); it is not reliable on NFS. Stores on
``s3://`` are not supported yet (no lock object).
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
from pathlib import Path

from flowtools.errors import FlowtoolsError

LOCK = "_lock"
#: Seconds a build waits for another build's lock before giving up.
LOCK_TIMEOUT_S = 3600.0
_POLL_S = 0.1


class StoreLockedError(FlowtoolsError):
    """Another build holds the store's lock for longer than we may wait."""


class StoreLock:
    """``with StoreLock(root):`` holds the build lock of the store at ``root``."""

    def __init__(self, root: str | os.PathLike, *, timeout: float | None = LOCK_TIMEOUT_S, on_wait=None):
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

    def __exit__(self, *exc) -> None:
        self.release()
