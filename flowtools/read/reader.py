"""Read flow-log objects into the canonical schema, chunk by chunk, plus a read report.

The plan: read each text file's header (each Parquet file's schema), group files by field
list, and read each group in chunks of at most :data:`CHUNK_FILES` files in one validated
Polars pass (see :mod:`flowtools.read.text`). A chunk that fails is retried file by file,
and a file that still fails is salvaged from its bytes. Each chunk is projected onto the
canonical schema of :mod:`flowtools.fields` (all columns known before the first chunk, so
unknown fields of later files are columns from the start), derived columns are added,
records outside the window dropped, and the chunk handed to a sink: a DuckDB table (so
memory stays bounded by a chunk) or a list of Polars frames.

A file that is not what it should be is skipped with the reason (:mod:`flowtools.read.sniff`):
a ``.gz`` that is not gzip (its first bytes), gzip corrupt from the start (the byte), a
``.log.parquet`` that is not Parquet or lost its footer, a header line or Parquet schema
that names no flow log (:func:`~flowtools.read.sniff.fields_problem`). A ``.gz`` holding
plain text with a header line is read, and reported. A file with header lines after its
first line (objects concatenated with ``cat``) is read again from its bytes, each run of
lines with the fields of the header above it (:func:`~flowtools.read.text.split_at_headers`).

Costs beyond the engine's own read, for many small files: planning decompresses the first
64 KB of every text file in Python (~0.1 ms a file); per-file bookkeeping (record counts,
line numbers, the per-file columns) works on runs of ``__file``, so it costs per file, not
per record; each canonical chunk is one Arrow chunk, so DuckDB takes it without a copy.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from flowtools.errors import ReadError
from flowtools.fields import (
    BY_COLUMN,
    DERIVED_COLUMNS,
    FIELDS,
    MILLISECONDS_THRESHOLD,
    column_name,
    parse_log_format,
)
from flowtools.layout import FlowLogObject
from flowtools.read import text as tx
from flowtools.read.report import BadLine, FileIssue, FileRead, ReadReport
from flowtools.read.sniff import (
    GZIP_MAGIC,
    describe_bytes,
    fields_problem,
    is_binary,
    parquet_problem,
)
from flowtools.window import Window

_POLARS: dict[str, pl.DataType] = {"int32": pl.Int32(), "int64": pl.Int64(), "string": pl.String()}
_ENGINE_ERRORS = (pl.exceptions.PolarsError, OSError, ValueError, RuntimeError)
#: Files read in one engine pass, at most; with :data:`CHUNK_BYTES` it bounds the memory a
#: chunk needs before it reaches the sink.
CHUNK_FILES = 512
#: Stored (compressed) bytes read in one engine pass, at most (a single larger file is a chunk
#: of its own): about 1 million records of gzip text, whose parse holds about 1 KB each, so a
#: chunk's working set stays near 1 GB however large the files are. (A first exposure run at
#: 19.9 M records, with the allocator setting of ``flowtools/__init__.py``: 47.0 s and 3.46 GB
#: with 32 MB chunks, 45.2 s and 2.02 GB with 16 MB.)
CHUNK_BYTES = 16 << 20


class ObjectStore(Protocol):
    """Where objects' bytes come from (a local folder, S3, a cache, CloudWatch).

    Read-only (a property or a plain attribute will do): ``storage_options``, what Polars
    needs to scan ``path(key)`` (S3 credentials) or None; ``scannable``, False when the
    engines cannot scan ``path(key)`` (such objects are parsed from ``read_bytes``)."""

    label: str

    @property
    def storage_options(self) -> dict[str, str] | None: ...

    @property
    def scannable(self) -> bool: ...

    def path(self, key: str) -> str:
        """A path or URL the engines can scan directly."""

    def read_bytes(self, key: str) -> bytes:
        """The object's bytes."""

    def read_head(self, key: str) -> bytes:
        """The first decompressed bytes of a text object (enough for the header line)."""

    def prepare(self, objects: Sequence[FlowLogObject], progress: bool | None = None) -> list[FlowLogObject]:
        """Called once with the selected objects before reading (downloads, CloudWatch
        fetches); returns the objects to read (the same, or what the fetch found)."""

    def close(self) -> None:
        """Release what ``prepare`` made (temporary files)."""


def canonical_schema() -> dict[str, pl.DataType]:
    """Polars schema of the canonical flow columns (fields then derived columns): a new dict."""
    return dict(_CANONICAL)


_CANONICAL: dict[str, pl.DataType] = {f.column: _POLARS[f.type] for f in FIELDS} | {
    name: pl.Datetime("us", "UTC") if kind == "timestamp" else pl.String() for name, kind in DERIVED_COLUMNS}


@functools.lru_cache(maxsize=256)
def _looks_like_header(tokens: tuple[str, ...]) -> bool:
    """:func:`text.looks_like_header`, once per distinct first line (files share a few)."""
    return tx.looks_like_header(tokens)


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


@dataclass
class _Group:
    kind: str  # "text" | "parquet"
    fields: tuple[str, ...]  # text: field names in file order; parquet: column names
    has_header: bool
    paths: list[str]
    parquet_schema: pl.Schema = field(default_factory=pl.Schema)  # parquet: the files' schema


class _Reader:
    """One read: plans groups, reads chunks, reports, hands canonical chunks to a sink."""

    def __init__(self, store: ObjectStore, objects: Sequence[FlowLogObject], window: Window,
                 report: ReadReport, sink: Callable[[pl.DataFrame], None], progress: Any = None):
        self.store = store
        self.objects = {store.path(o.key): o for o in objects}
        self.window = window
        self.report = report
        self.sink = sink
        self.progress = progress
        #: the per-file derived columns, one row per file (``__file`` is its path)
        self.meta = pl.DataFrame(
            {
                "__file": list(self.objects),
                "source_file": [o.key for o in self.objects.values()],
                "flow_log_id": [o.flow_log_id for o in self.objects.values()],
                "source_account_id": [o.account_id for o in self.objects.values()],
                "source_region": [o.region for o in self.objects.values()],
            },
            schema={"__file": pl.String} | {c: pl.String for c in
                                             ("source_file", "flow_log_id", "source_account_id", "source_region")},
        )
        self.fields_of: dict[str, tuple[str, ...]] = {}
        self.extra: list[str] = []  # unknown field columns, in order of first appearance
        #: files read with a problem that is not a bad line (a truncated gzip stream, a .gz
        #: that is plain text): (reason, partial lines dropped), reported with the file
        self.notes: dict[str, tuple[str, int]] = {}

    # -- report ------------------------------------------------------------------------
    def skip(self, path: str, reason: str) -> None:
        self.report.add_issue(FileIssue(self.objects[path].key, reason, True))

    def _tick(self, n: int) -> None:
        if self.progress is not None:
            self.progress.update(n)

    # -- planning ----------------------------------------------------------------------
    def plan(self, fallback_fields: tuple[str, ...] | None) -> list[_Group]:
        text: dict[tuple[tuple[str, ...], bool], list[str]] = defaultdict(list)
        parquet: dict[tuple[tuple[str, str], ...], list[str]] = defaultdict(list)
        schemas: dict[tuple[tuple[str, str], ...], pl.Schema] = {}
        for path, o in self.objects.items():
            if o.size == 0:
                self.skip(path, "empty file")
                continue
            if o.format == "parquet":
                try:
                    schema = pl.scan_parquet(path, storage_options=self.store.storage_options,
                                             hive_partitioning=False).collect_schema()
                except _ENGINE_ERRORS as e:
                    self.skip(path, self._parquet_problem(path, e))
                    continue
                problem = fields_problem(list(schema), "columns")
                if problem is not None:
                    self.skip(path, problem)
                    continue
                columns = tuple((k, str(v)) for k, v in schema.items())
                schemas[columns] = schema
                self.fields_of[path] = tuple(k.replace("_", "-") for k in schema if k not in _DERIVED)
                parquet[columns].append(path)
                continue
            if o.fields is not None:  # known from outside (a CloudWatch Logs stream)
                self.fields_of[path] = o.fields
                text[(o.fields, False)].append(path)
                continue
            try:
                head = self.store.read_head(o.key)
            except OSError as e:
                self.skip(path, f"unreadable: {e}")
                continue
            key = self._text_key(path, o, head, fallback_fields)
            if key is None:
                continue
            self.fields_of[path] = key[0]
            text[key].append(path)
        groups = [_Group("text", f, h, p) for (f, h), p in text.items()]
        groups += [_Group("parquet", tuple(k for k, _ in c), False, p, schemas[c]) for c, p in parquet.items()]
        known = set(canonical_schema())
        for g in groups:
            for name in g.fields:
                c = column_name(name)
                if c not in known and not c.startswith("__") and c not in self.extra:
                    self.extra.append(c)
        return groups

    def _text_key(self, path: str, o: FlowLogObject, head: bytes,
                  fallback_fields: tuple[str, ...] | None) -> tuple[tuple[str, ...], bool] | None:
        """(field list, has header line) of a text file from its first bytes, or None when
        it cannot be read (skipped, with the reason: not gzip, not text, no header line,
        a header naming no flow log). A ``.gz`` holding plain text with a header line is
        read, with a note saying so (a problem file: an error under ``strict``)."""
        gzipped = getattr(head, "gzip", head[:2] == GZIP_MAGIC)  # a store may give plain bytes
        raw_start = getattr(head, "raw_start", head[:8])
        problem = getattr(head, "problem", None)
        if problem:
            self.skip(path, problem)
            return None
        not_gzip = o.key.lower().endswith(".gz") and not gzipped
        if not gzipped and is_binary(head):
            what = "not a gzip file" if not_gzip else "not a text flow log"
            self.skip(path, f"{what} (first bytes {describe_bytes(raw_start)})")
            return None
        line = tx.first_line(head)
        if not line:
            self.skip(path, "empty file (the gzip data holds no lines)" if gzipped else "empty file (no lines)")
            return None
        tokens = tuple(line.split(" "))
        if _looks_like_header(tokens):
            problem = fields_problem(tokens, "header fields")
            if problem is not None:
                self.skip(path, problem)
                return None
            key = (tokens, True)
        elif fallback_fields is not None and tx.CWL_EXPORT_TIMESTAMP.match(tokens[0]):
            # CloudWatch Logs export to S3: a timestamp before each record, no header.
            key = ((tx.SKIP_FIELD, *fallback_fields), False)
        elif fallback_fields is not None:
            key = (fallback_fields, False)
        elif tx.looks_like_names(tokens):  # a header line, of something else
            self.skip(path, fields_problem(tokens, "header fields") or "not a flow log")
            return None
        else:
            shown = line if len(line) <= 60 else line[:57] + "..."
            if not_gzip:
                self.skip(path, f"not a gzip file (first bytes {describe_bytes(raw_start)}), nor text with "
                                f"a header line (first line: {shown!r})")
            else:
                self.skip(path, f"no header line (first line: {shown!r}; give the format with --log-format / "
                                "log_format=)")
            return None
        if not_gzip:
            self.notes[path] = ("not gzip-compressed despite its .gz name: read as plain text", 0)
        return key

    def _parquet_problem(self, path: str, e: BaseException) -> str:
        return parquet_problem(path, lambda: self.store.read_bytes(self.objects[path].key), _first_line(e))

    def output_columns(self) -> dict[str, pl.DataType]:
        """The final schema: canonical columns, then unknown fields as strings."""
        schema = canonical_schema()
        return schema | {self._extra_name(c): pl.String() for c in self.extra}

    @staticmethod
    def _extra_name(c: str) -> str:
        # An unknown field named like a derived column is renamed rather than overwritten.
        return f"{c}_field" if c in dict(DERIVED_COLUMNS) else c

    # -- reading -----------------------------------------------------------------------
    def read(self, groups: list[_Group]) -> None:
        for g in groups:
            for chunk in self._chunks(g.paths):
                if g.kind == "text":
                    self._text_chunk(g, chunk)
                else:
                    self._parquet_chunk(g, chunk)

    def _chunks(self, paths: list[str]) -> list[list[str]]:
        """``paths`` cut into chunks of at most :data:`CHUNK_FILES` files and
        :data:`CHUNK_BYTES` stored bytes (a larger single file is a chunk of its own)."""
        chunks: list[list[str]] = []
        current: list[str] = []
        size = 0
        for path in paths:
            n = self.objects[path].size or 0
            if current and (len(current) >= CHUNK_FILES or size + n > CHUNK_BYTES):
                chunks.append(current)
                current, size = [], 0
            current.append(path)
            size += n
        if current:
            chunks.append(current)
        return chunks

    def _emit(self, checked: tx.Checked, paths: Sequence[str]) -> None:
        """Report per file (records, bad lines with line numbers); send good rows on."""
        bad_by_file: dict[str, list[BadLine]] = defaultdict(list)
        for path, line, reason in checked.bad.iter_rows():  # bad lines only: few
            bad_by_file[path].append(BadLine(self.objects[path].key, int(line), reason))
        for path in paths:
            o = self.objects[path]
            n = checked.lines.get(path, 0)
            nbad = len(bad_by_file.get(path, ()))
            self.report.files.append(FileRead(o.key, o.flow_log_id, o.account_id, o.region, o.layout, o.format,
                                              self.fields_of.get(path, ()), n - nbad, o.size))
            note, partial = self.notes.pop(path, (None, 0))
            if nbad or note:
                reason = "; ".join(r for r in (note, "malformed lines" if nbad else None) if r)
                self.report.add_issue(FileIssue(o.key, reason, False, nbad + partial, n - nbad),
                                      bad_by_file.get(path, []))
        self.sink(self._canonical(checked.good))
        self._tick(len(paths))

    def _file_columns(self, df: pl.DataFrame) -> pl.DataFrame:
        """The per-file derived columns (``source_file``, ``flow_log_id``, ...) of each row.

        Rows of one file are contiguous, so the per-file values are looked up once per run
        of ``__file`` and gathered by run id (a hash join on the path would hash every row).
        """
        runs = df.get_column("__file").rle().struct.field("value").cast(pl.String).to_frame("__file")
        per_run = runs.join(self.meta, on="__file", how="left", maintain_order="left").drop("__file")
        return per_run[df.get_column("__file").rle_id()]

    def _canonical(self, df: pl.DataFrame) -> pl.DataFrame:
        """Project a chunk onto the output schema; derived columns; window filter."""
        out = self.output_columns()
        field_cols = [f.column for f in FIELDS]
        missing = [pl.lit(None, out[c]).alias(c) for c in field_cols if c not in df.columns]
        missing += [pl.lit(None, pl.String).alias(c) for c in self.extra if c not in df.columns]
        lf = pl.concat([df, self._file_columns(df)], how="horizontal").lazy()
        lf = lf.with_columns(missing).rename({c: self._extra_name(c) for c in self.extra
                                              if self._extra_name(c) != c})
        seconds = {
            c: pl.when(pl.col(c) > MILLISECONDS_THRESHOLD).then(pl.col(c) // 1000).otherwise(pl.col(c))
            for c in ("start", "end")
        }
        lf = lf.with_columns(**seconds)
        kept = [c for c in _ORIGIN if _kept_name(c) in df.columns]  # a file flowtools wrote: its rows' origin
        if kept:
            lf = lf.with_columns(pl.coalesce(_kept_name(c), c).alias(c) for c in kept)
        lf = lf.with_columns(
            start_time=pl.from_epoch("start", "s").dt.replace_time_zone("UTC"),
            end_time=pl.from_epoch("end", "s").dt.replace_time_zone("UTC"),
        )
        if self.window.end_s is not None:
            lf = lf.filter(pl.col("start") < self.window.end_s)
        if self.window.start_s is not None:
            lf = lf.filter(pl.col("end") >= self.window.start_s)
        return lf.select([pl.col(c).cast(t) for c, t in out.items()]).collect(engine="in-memory")  # one chunk

    def _text_chunk(self, g: _Group, paths: list[str]) -> None:
        fields, header_lines = list(g.fields), (1 if g.has_header else 0)
        if self.store.scannable:
            try:
                checked = tx.check(self._scan_text(g, paths), fields, header_lines=header_lines)
            except _ENGINE_ERRORS:
                if len(paths) > 1:  # find the culprit: file by file
                    for p in paths:
                        self._text_chunk(g, [p])
                    return
            else:
                # Files with header lines inside (concatenated objects) are read again from
                # their bytes, segment by segment; the others are done.
                multi = checked.headers
                self._emit(checked.without(multi), [p for p in paths if p not in multi])
                for p in sorted(multi):
                    self._salvage_text(g, p)
                return
        for p in paths:
            self._salvage_text(g, p)

    def _scan_text(self, g: _Group, paths: list[str]) -> pl.DataFrame:
        """Raw lines of ``paths``: first without room for extra fields (cheaper; fails on a
        line with too many), then, if that failed, with it."""
        n, header, options = len(g.fields), g.has_header, self.store.storage_options
        try:
            return tx.scan_files(paths, n, has_header_line=header, storage_options=options, ragged=False).collect()
        except _ENGINE_ERRORS:
            return tx.scan_files(paths, n, has_header_line=header, storage_options=options).collect()

    def _salvage_text(self, g: _Group, path: str) -> None:
        """A file read from its bytes: one the engine cannot scan as it stands (truncated
        or corrupt gzip, invalid UTF-8: what can be decompressed is kept, the cause
        reported), or one with header lines inside (:meth:`_parse_text`)."""
        o = self.objects[path]
        try:
            data = self.store.read_bytes(o.key)
        except OSError as e:
            self.skip(path, f"unreadable: {e}")
            return
        text_bytes, problem = tx.decompress_salvage(data)
        try:
            checked = self._parse_text(g, path, text_bytes)
        except _ENGINE_ERRORS as e:
            self.skip(path, f"unreadable: {_first_line(e)}")
            return
        if not checked.lines and problem:
            self.skip(path, problem)
            return
        if problem:
            self.notes[path] = (problem, 1 if "incomplete last line" in problem else 0)
        self._emit(checked, [path])

    def _parse_text(self, g: _Group, path: str, data: bytes) -> tx.Checked:
        """Parse and check decompressed text; a file with header lines after its first line
        is split there and each segment read with its header's fields (header lines are
        neither records nor bad lines; line numbers stay the file's)."""
        header_lines = 1 if g.has_header else 0
        raw = tx.parse_bytes(data, len(g.fields), path, has_header_line=g.has_header)
        checked = tx.check(raw, list(g.fields), header_lines=header_lines, check_encoding=True)
        if not checked.headers:
            return checked
        segments = tx.split_at_headers(data, g.fields, g.has_header)
        if len(segments) == 1:
            return checked
        known = set(self.output_columns())
        goods, bads, lines = [], [], 0
        for seg in segments:
            raw = tx.parse_bytes(seg.data, len(seg.fields), path, has_header_line=seg.has_header)
            c = tx.check(raw, list(seg.fields), header_lines=1 if seg.has_header else 0, check_encoding=True)
            goods.append(c.good)
            bads.append(c.bad.with_columns(pl.col("__line") + (seg.first_line - 1)))
            lines += c.lines.get(path, 0)
            lost = [f for f in seg.fields if column_name(f) not in known and not f.startswith("__")]
            if lost:
                self.report.warnings.append(
                    f"{self.objects[path].key}: line {seg.first_line}: the header line names field(s) "
                    f"{', '.join(lost)} that no file's first header did; their values are not kept")
        return tx.Checked(pl.concat(goods, how="diagonal_relaxed"), {path: lines} if lines else {},
                          pl.concat(bads))

    def _parquet_chunk(self, g: _Group, paths: list[str]) -> None:
        try:
            lf = pl.scan_parquet(paths, include_file_paths="__file", storage_options=self.store.storage_options,
                                 hive_partitioning=False)
            df = lf.select(_parquet_select(g.parquet_schema) + [tx.file_column()]).collect()
            lines = tx.lines_per_file(df)
        except _ENGINE_ERRORS as e:
            if len(paths) > 1:
                for p in paths:
                    self._parquet_chunk(g, [p])
                return
            self.skip(paths[0], self._parquet_problem(paths[0], e))
            return
        self._emit(tx.Checked(df, lines, tx.no_bad_lines()), paths)


#: The derived columns (see :data:`flowtools.fields.DERIVED_COLUMNS`).
_DERIVED = frozenset(c for c, _ in DERIVED_COLUMNS)
#: Derived columns that say where a record came from (not computable from the record): a
#: Parquet file that holds them (one flowtools wrote) keeps their values. ``source_file``
#: is not one of them: it is always the key of the object read, relative to SOURCE (the
#: partition store relies on it to know which rows an object gave).
_ORIGIN = ("flow_log_id", "source_account_id", "source_region")


def _kept_name(c: str) -> str:
    return f"__kept_{c}"


def _parquet_select(schema: pl.Schema) -> list[pl.Expr]:
    """AWS Parquet columns to canonical ones: names normalised, types cast, '-' as NULL.

    A file flowtools wrote (``COPY flows TO 'x.parquet'``, the partition store's files)
    also holds the derived columns: ``start_time``/``end_time`` and ``source_file`` are
    dropped (computed again from ``start``/``end`` and the object's key) and
    ``flow_log_id``/``source_account_id``/``source_region`` are kept where not null (they
    win over what the key of the file says), so such a file loads back as the same flows,
    without a second copy of any derived column."""
    exprs = []
    for name in schema:
        c = column_name(name)
        if c in _DERIVED:
            if c in _ORIGIN:
                exprs.append(pl.col(name).cast(pl.String).alias(_kept_name(c)))
            continue
        f = BY_COLUMN.get(c)
        expr = pl.col(name)
        if f is None or f.type == "string":
            expr = expr.cast(pl.String)
            expr = pl.when(expr != "-").then(expr)
        else:
            expr = expr.cast(_POLARS[f.type], strict=False)
        exprs.append(expr.alias(c))
    return exprs


def read_objects(
    store: ObjectStore,
    objects: Sequence[FlowLogObject],
    window: Window,
    report: ReadReport,
    *,
    sink: Callable[[pl.DataFrame], None] | None = None,
    strict: bool = False,
    log_format: str | Sequence[str] | None = None,
    progress: Any = None,
    on_schema: Callable[[dict[str, pl.DataType]], None] | None = None,
) -> pl.DataFrame | None:
    """Read ``objects`` from ``store`` into the canonical schema, filling ``report``.

    With a ``sink``, each canonical chunk is handed to it (after ``on_schema`` was called
    once with the output schema) and ``None`` is returned; without one, the chunks are
    concatenated into one Polars DataFrame. ``strict`` raises :class:`ReadError` naming the
    first problem file before any chunk is read.
    """
    fallback = None
    if log_format is not None:
        fallback = tuple(parse_log_format(log_format) if isinstance(log_format, str) else log_format)
    frames: list[pl.DataFrame] = []
    reader = _Reader(store, objects, window, report, sink or frames.append, progress)
    groups = reader.plan(fallback)
    schema = reader.output_columns()
    if on_schema is not None:
        on_schema(schema)

    def check_strict() -> None:
        if strict and report.issues:
            first = report.warning_lines()[0].removeprefix("warning: ")
            raise ReadError(f"{first} (strict mode; {len(report.issues)} problem file(s) so far)")

    check_strict()
    reader.read(groups)
    check_strict()
    report.records_parsed = sum(f.records for f in report.files)
    if sink is not None:
        return None
    out = pl.concat(frames, how="vertical") if frames else pl.DataFrame(schema=schema)
    report.records = out.height
    return out
