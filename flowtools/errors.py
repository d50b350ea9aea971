"""One exception family. The CLI turns these into a clean message and exit code 1."""

from __future__ import annotations


class FlowtoolsError(Exception):
    """Root of every error flowtools raises on purpose."""


class UsageError(FlowtoolsError):
    """The caller asked for something that cannot be (bad time value, bad option mix)."""


class SourceError(FlowtoolsError):
    """A SOURCE cannot be listed or read (missing folder, missing bucket, denied access)."""


class ReadError(FlowtoolsError):
    """A flow-log file or line is bad and ``strict`` was asked for."""


class InventoryError(FlowtoolsError):
    """An inventory file is malformed or cannot be read."""


class QueryError(FlowtoolsError):
    """A user's SQL query failed."""
