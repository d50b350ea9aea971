"""Where flow logs come from: local folders, S3, CloudWatch Logs.

:func:`open_source` turns any SOURCE form into an object store (bytes), the flow-log
objects found (parsed keys) and whether SOURCE is one file; the modules per form are
:mod:`~flowtools.sources.local`, :mod:`~flowtools.sources.s3` and
:mod:`~flowtools.sources.cloudwatch`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

from flowtools.errors import UsageError
from flowtools.layout import FlowLogObject, discover, parse_key
from flowtools.window import Window

if TYPE_CHECKING:
    from flowtools.sources.cloudwatch import CloudWatchStore
    from flowtools.sources.local import LocalStore
    from flowtools.sources.s3 import S3Store

    #: What :func:`open_source` opens: each is a :class:`flowtools.read.reader.ObjectStore`.
    SourceStore: TypeAlias = LocalStore | S3Store | CloudWatchStore

__all__ = ["open_source"]


def open_source(source: str | os.PathLike[str], *, window: Window, all: bool = False,
                accounts: Sequence[str] | None = None, regions: Sequence[str] | None = None,
                log_format: str | Sequence[str] | None = None, profile: str | None = None,
                s3_mode: str = "auto", progress: bool | None = None, any_name: bool = False,
                ) -> tuple[SourceStore, list[FlowLogObject], bool]:
    """(store, flow-log objects, single_file) for any SOURCE form: a local folder or file,
    ``s3://bucket/prefix`` (:mod:`flowtools.sources.s3`) or ``cwlogs://LOG_GROUP``
    (:mod:`flowtools.sources.cloudwatch`). Remote SOURCEs need a window or ``all``."""
    text = str(source)
    remote = text.startswith(("s3://", "cwlogs://"))
    if remote and window.is_open and not all:
        raise UsageError(f"{text}: a remote SOURCE needs --start/--end (or --all to read everything)")
    if text.startswith("s3://"):
        from flowtools.sources.s3 import open_s3

        return open_s3(text, window=window, accounts=accounts, regions=regions, profile=profile, mode=s3_mode,
                       progress=progress, any_name=any_name)
    if text.startswith("cwlogs://"):
        from flowtools.sources.cloudwatch import open_cloudwatch

        return open_cloudwatch(text, window=window, regions=regions, log_format=log_format, profile=profile,
                               progress=progress)
    from flowtools.sources.local import open_local

    store, listing, single = open_local(source)
    if not single:
        return store, discover(listing, any_name=any_name), single
    obj = parse_key(listing[0].key, listing[0].size, any_name=True)
    assert obj is not None  # with any_name every key parses
    return store, [obj], single
