"""``cwlogs://LOG_GROUP`` as a SOURCE: flow-log records from CloudWatch Logs.

Flow logs publish to a log group with one stream per interface (``eni-...-all``); each
event's message is one record, without a header. So:

* **The format** comes from ``--log-format`` (``log_format=``) when given, else from
  ``DescribeFlowLogs`` for the group (``LogFormat``, and ``FlowLogId`` for
  ``flow_log_id``). When several flow logs with different formats publish to one group,
  each record is matched to the format with its number of fields (an interface covered
  by two of them has one combined stream); formats that cannot be told apart by their
  field count need ``--log-format``.
* **Streams** are listed (``DescribeLogStreams``, paginated) and pruned by their first and
  last event times against the window widened by :data:`CLOUDWATCH_SLACK`; then the
  events of each stream in the window are read with ``FilterLogEvents`` (paginated),
  :data:`STREAM_WORKERS` streams at a time, into a temporary text file per stream, which
  the text reader parses with the same field catalogue and rules as S3 files (bad lines
  are reported with their position in the stream). The files are removed after the load.
* ``source_file`` is ``cwlogs://GROUP/STREAM``; ``source_region`` the region read
  (``regions``, else the session's region); one region after another when several are
  given (a region without the group is skipped with a warning).

Throttling is retried with back-off by botocore (:mod:`flowtools.aws`); a missing group,
denied access or expired credentials raise :class:`~flowtools.errors.SourceError`.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import polars as pl

from flowtools import aws
from flowtools.errors import SourceError, UsageError
from flowtools.fields import DEFAULT_FORMAT, parse_log_format
from flowtools.layout import FlowLogObject
from flowtools.read import text as tx
from flowtools.window import Window

#: CloudWatch event timestamps are the records' capture times give or take delivery: the
#: window is widened by this much on both sides when pruning streams and reading events
#: (records outside the window are dropped by the reader, exactly as for files).
CLOUDWATCH_SLACK = timedelta(minutes=30)
STREAM_WORKERS = 8
SCHEME = "cwlogs://"


def parse_uri(text: str) -> str:
    """The log group of ``cwlogs://LOG_GROUP`` (names may contain ``/``)."""
    group = text[len(SCHEME):] if text.startswith(SCHEME) else ""
    if not group:
        raise UsageError(f"not a CloudWatch Logs SOURCE: {text!r} (expected cwlogs://LOG_GROUP)")
    return group


def _error(e: BaseException, action: str, group: str, region: str, profile: str | None) -> SourceError:
    mapped = aws.credentials_error(e, profile, SourceError)
    if mapped is not None:
        return mapped
    code, message = aws.error_code(e)
    where = f"log group {group!r} in {region}"
    if code == "ResourceNotFoundException":
        return SourceError(f"{SCHEME}{group}: no such {where} ({message or code})")
    if code in aws.EXPIRED:
        return SourceError(f"{action} on {where}: AWS credentials expired ({code}): refresh them "
                           f"({aws.login_hint(profile)}) and run again")
    if code in aws.ACCESS_DENIED:
        need = {"DescribeFlowLogs": "ec2:DescribeFlowLogs (or give the format with --log-format)"}.get(
            action, f"logs:{action} on the log group")
        return SourceError(f"access denied: {action} on {where} ({code}: {message}); the principal needs {need}")
    if code in aws.BAD_CREDENTIALS:
        return SourceError(f"{action} on {where}: AWS rejected the credentials ({code}): check them "
                           f"({aws.login_hint(profile)})")
    if code in aws.THROTTLED:
        return SourceError(f"{action} on {where}: still throttled ({code}) after {aws.MAX_ATTEMPTS} attempts; "
                           "run again later")
    return SourceError(f"{action} on {where} failed: {code + ': ' if code else ''}{message or e}")


@dataclass(frozen=True)
class FlowLogFormat:
    """A format records of the group may have: its fields and the flow logs that use it."""

    fields: tuple[str, ...]
    flow_log_ids: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()  # the flow logs' ResourceIds (eni-, subnet-, vpc-)

    def flow_log_for(self, stream: str) -> str | None:
        """The flow log a stream's records of this format come from, when that is certain."""
        for fl, resource in zip(self.flow_log_ids, self.resources, strict=False):
            if resource and stream.startswith(resource):
                return fl
        return self.flow_log_ids[0] if len(self.flow_log_ids) == 1 else None


@dataclass
class CloudWatchStats:
    """What reading the group cost (``report.transfer``)."""

    mode: str = "cloudwatch"
    streams_listed: int = 0
    streams_pruned: int = 0
    streams_read: int = 0
    streams_empty: int = 0
    events: int = 0
    requests: int = 0
    formats: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def line(self) -> str:
        return (f"cloudwatch: {self.streams_read} stream(s) read ({self.events} event(s), {self.requests} request(s)), "
                f"{self.streams_pruned} outside the window, {self.streams_empty} without events in it")


@dataclass(frozen=True)
class _Stream:
    region: str
    name: str


class CloudWatchStore:
    """The streams of one log group; after :meth:`prepare`, their events in temp files."""

    scannable = True
    storage_options = None

    def __init__(self, session: Any, group: str, formats: dict[str, list[FlowLogFormat]], window: Window,
                 profile: str | None = None):
        self.session, self.group, self.formats, self.window, self.profile = session, group, formats, window, profile
        self.label = SCHEME + group
        self.stats = CloudWatchStats()
        self.warnings: list[str] = []
        self._dir: Path | None = None
        self._files: dict[str, Path] = {}
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, region: str) -> Any:
        with self._lock:
            if region not in self._clients:
                self._clients[region] = self.session.client(
                    "logs", region_name=region, config=aws.client_config(pool=STREAM_WORKERS))
            return self._clients[region]

    # ObjectStore ------------------------------------------------------------------------------
    def path(self, key: str) -> str:
        return str(self._files[key])

    def read_bytes(self, key: str) -> bytes:
        return self._files[key].read_bytes()

    def read_head(self, key: str) -> bytes:
        return tx.read_head(str(self._files[key]))

    def prepare(self, objects: Sequence[FlowLogObject], progress: bool | None = None) -> list[FlowLogObject]:
        """Read the events of the streams of ``objects`` in the window, in parallel."""
        folder = self._dir = Path(tempfile.mkdtemp(prefix="flowtools-cwlogs-"))
        show = sys.stderr.isatty() if progress is None else progress
        bar = None
        if show and objects:
            from tqdm.auto import tqdm

            bar = tqdm(total=len(objects), unit="stream", desc=f"reading {self.label}", leave=False, file=sys.stderr)
        out: list[FlowLogObject] = []
        try:
            with ThreadPoolExecutor(max_workers=STREAM_WORKERS) as pool:
                futures = [pool.submit(self._read_stream, folder, i, o) for i, o in enumerate(objects)]
                for fut in futures:
                    found = fut.result()
                    out.extend(found)
                    if bar is not None:
                        bar.update(1)
        finally:
            if bar is not None:
                bar.close()
        return out

    def _read_stream(self, folder: Path, index: int, o: FlowLogObject) -> list[FlowLogObject]:
        from botocore.exceptions import BotoCoreError, ClientError

        region, stream = o.region, o.key[len(SCHEME) + len(self.group) + 1:]
        assert region is not None  # a stream's object names its region (open_cloudwatch)
        kwargs: dict[str, Any] = {"logGroupName": self.group, "logStreamNames": [stream]}
        if self.window.start is not None:
            kwargs["startTime"] = int((self.window.start - CLOUDWATCH_SLACK).timestamp() * 1000)
        if self.window.end is not None:
            kwargs["endTime"] = int((self.window.end + CLOUDWATCH_SLACK).timestamp() * 1000)
        messages: list[str] = []
        requests = 0
        try:
            for page in self.client(region).get_paginator("filter_log_events").paginate(**kwargs):
                requests += 1
                messages.extend(e.get("message", "").rstrip("\r\n") for e in page.get("events", ()))
        except (ClientError, BotoCoreError) as e:
            raise _error(e, "FilterLogEvents", self.group, region, self.profile) from None
        with self._lock:
            self.stats.requests += requests
            self.stats.events += len(messages)
            if messages:
                self.stats.streams_read += 1
            else:
                self.stats.streams_empty += 1
        if not messages:
            return []
        formats = self.formats[region]
        return [self._write(folder / f"{index}-{i}.log", o, stream, fmt, lines, several=len(formats) > 1)
                for i, (fmt, lines) in enumerate(self._split(messages, formats))]

    @staticmethod
    def _split(messages: list[str], formats: list[FlowLogFormat]) -> list[tuple[FlowLogFormat, list[str]]]:
        """Messages per format, by field count (one format: all of them, bad lines included)."""
        if len(formats) == 1:
            return [(formats[0], messages)]
        frame = pl.DataFrame({"m": messages}).with_columns(
            i=pl.col("m").str.strip_chars().str.split(" ").list.len()
            .replace_strict({len(f.fields): i for i, f in enumerate(formats)}, default=0, return_dtype=pl.Int32))
        parts = frame.partition_by("i", as_dict=True, maintain_order=True)
        return [(formats[i], part["m"].to_list()) for (i,), part in sorted(parts.items())]

    def _write(self, path: Path, o: FlowLogObject, stream: str, fmt: FlowLogFormat, lines: list[str], *,
               several: bool) -> FlowLogObject:
        data = ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")
        path.write_bytes(data)
        key = o.key
        if several:  # one stream, records of several flow logs: an object per format
            key = f"{o.key}#{fmt.flow_log_for(stream) or len(fmt.fields)}"
        with self._lock:
            self._files[key] = path
        return replace(o, key=key, size=len(data), fields=fmt.fields, flow_log_id=fmt.flow_log_for(stream))

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None


def _formats(session: Any, group: str, region: str, log_format: str | Sequence[str] | None,
             profile: str | None) -> list[FlowLogFormat]:
    """The formats records of ``group`` can have in ``region`` (see the module docstring)."""
    if log_format is not None:
        fields = tuple(parse_log_format(log_format) if isinstance(log_format, str) else log_format)
        return [FlowLogFormat(fields)]
    from botocore.exceptions import BotoCoreError, ClientError

    ec2 = session.client("ec2", region_name=region, config=aws.client_config())
    by_fields: dict[tuple[str, ...], list[tuple[str, str]]] = {}
    try:
        pages = ec2.get_paginator("describe_flow_logs").paginate(
            Filters=[{"Name": "log-group-name", "Values": [group]}])
        for page in pages:
            for fl in page.get("FlowLogs", ()):
                if fl.get("LogDestinationType", "cloud-watch-logs") != "cloud-watch-logs":
                    continue
                if fl.get("LogGroupName") not in (None, group):
                    continue
                text = (fl.get("LogFormat") or "").strip()  # empty: the default format
                fields = tuple(parse_log_format(text)) if text else DEFAULT_FORMAT
                by_fields.setdefault(fields, []).append((fl.get("FlowLogId", ""), fl.get("ResourceId", "")))
    except (ClientError, BotoCoreError) as e:
        raise _error(e, "DescribeFlowLogs", group, region, profile) from None
    if not by_fields:
        raise SourceError(f"{SCHEME}{group}: DescribeFlowLogs in {region} names no flow log publishing to this group, "
                          "so the record format is unknown: give it with --log-format (e.g. the default "
                          "'${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} "
                          "${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}')")
    formats = [FlowLogFormat(f, tuple(i for i, _ in ids), tuple(r for _, r in ids)) for f, ids in by_fields.items()]
    counts = [len(f.fields) for f in formats]
    if len(set(counts)) != len(counts):
        raise SourceError(f"{SCHEME}{group}: flow logs with different formats of the same length publish to this "
                          f"group ({'; '.join(' '.join(f.fields) for f in formats)}): records cannot be told apart; "
                          "give the format with --log-format")
    return formats


def _streams(client: Any, group: str, region: str, window: Window, profile: str | None,
             stats: CloudWatchStats) -> list[_Stream]:
    from botocore.exceptions import BotoCoreError, ClientError

    lo = None if window.start is None else (window.start - CLOUDWATCH_SLACK).timestamp() * 1000
    hi = None if window.end is None else (window.end + CLOUDWATCH_SLACK).timestamp() * 1000
    kept = []
    try:
        for page in client.get_paginator("describe_log_streams").paginate(logGroupName=group):
            stats.requests += 1
            for s in page.get("logStreams", ()):
                stats.streams_listed += 1
                # lastEventTimestamp lags by up to an hour; lastIngestionTime bounds it. A stream
                # without either (new, or an emulator's) is read: one request tells.
                first = s.get("firstEventTimestamp")
                last = max(s.get("lastEventTimestamp") or 0, s.get("lastIngestionTime") or 0) or None
                if (lo is not None and last is not None and last < lo) or (
                        hi is not None and first is not None and first > hi):
                    stats.streams_pruned += 1
                    continue
                kept.append(_Stream(region, s["logStreamName"]))
    except (ClientError, BotoCoreError) as e:
        raise _error(e, "DescribeLogStreams", group, region, profile) from None
    return kept


def open_cloudwatch(uri: str, *, window: Window, regions: Sequence[str] | None = None,
                    log_format: str | Sequence[str] | None = None,
                    profile: str | None = None, progress: bool | None = None
                    ) -> tuple[CloudWatchStore, list[FlowLogObject], bool]:
    """(store, one object per stream that can hold records of the window, False)."""
    group = parse_uri(uri)
    session = aws.session(profile, SourceError)
    region_list = list(regions) if regions else [session.region_name or "us-east-1"]
    store = CloudWatchStore(session, group, {}, window, profile)
    objects: list[FlowLogObject] = []
    missing: list[str] = []
    for region in region_list:
        try:
            streams = _streams(store.client(region), group, region, window, profile, store.stats)
        except SourceError as e:
            if len(region_list) > 1 and "no such log group" in str(e):
                missing.append(region)
                store.warnings.append(f"{SCHEME}{group}: no such log group in {region}; skipped")
                continue
            raise
        store.formats[region] = _formats(session, group, region, log_format, profile)
        store.stats.formats.extend(" ".join(f.fields) for f in store.formats[region])
        fields = store.formats[region][0].fields if len(store.formats[region]) == 1 else None
        for s in streams:
            objects.append(FlowLogObject(
                key=f"{SCHEME}{group}/{s.name}", size=0, format="cloudwatch", layout=None, account_id=None,
                region=region, flow_log_id=None, file_time=None, partition_start=None, partition_span=None,
                fields=fields))
    if missing and len(missing) == len(region_list):
        raise SourceError(f"{SCHEME}{group}: no such log group in {', '.join(missing)}")
    return store, objects, False
