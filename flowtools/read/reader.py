"""Read flow-log objects into one canonical Polars frame plus a read report.

The plan: read each text file's header, group files by field list, scan each group in one
Polars pass (validated, see :mod:`flowtools.read.text`); a group that fails is retried file
by file, and a file that still fails is salvaged from its bytes. Parquet files are scanned
per schema. Every result is projected onto the canonical schema of
:mod:`flowtools.fields`, derived columns are added, and records outside the window dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

import polars as pl

from flowtools.errors import ReadError
from flowtools.fields import (
    BY_COLUMN,
    FIELDS,
    MILLISECONDS_THRESHOLD,
    column_name,
    parse_log_format,
)
from flowtools.layout import FlowLogObject
from flowtools.read import text as tx
from flowtools.read.report import BadLine, FileIssue, FileRead, ReadReport
from flowtools.window import Window

_POLARS = {"int32": pl.Int32, "int64": pl.Int64, "string": pl.String}
_ENGINE_ERRORS = (pl.exceptions.PolarsError, OSError, ValueError, RuntimeError)


class ObjectStore(Protocol):
    """Where objects' bytes come from (a local folder, S3, a cache)."""

    label: str
    storage_options: dict | None
    #: False when the engines cannot scan ``path(key)`` (e.g. CloudWatch streams):
    #: such objects are parsed from ``read_bytes``.
    scannable: bool

    def path(self, key: str) -> str:
        """A path or URL the engines can scan directly."""

    def read_bytes(self, key: str) -> bytes:
        """The object's bytes."""

    def read_head(self, key: str) -> bytes:
        """The first decompressed bytes of a text object (enough for the header line)."""


def canonical_schema() -> dict[str, pl.DataType]:
    """Polars schema of the canonical flow columns (fields then derived columns)."""
    schema: dict[str, pl.DataType] = {f.column: _POLARS[f.type] for f in FIELDS}
    schema |= {
        "start_time": pl.Datetime("us", "UTC"),
        "end_time": pl.Datetime("us", "UTC"),
        "source_file": pl.String,
        "flow_log_id": pl.String,
        "source_account_id": pl.String,
        "source_region": pl.String,
    }
    return schema


def empty_frame() -> pl.DataFrame:
    return pl.DataFrame(schema=canonical_schema())


class _Collector:
    """Gathers per-group results and report entries."""

    def __init__(self, report: ReadReport, objects: dict[str, FlowLogObject], store: ObjectStore):
        self.report = report
        self.objects = objects  # by scan path
        self.store = store
        self.frames: list[pl.DataFrame] = []
        self.fields_of: dict[str, tuple[str, ...]] = {}

    def add(self, validated: pl.DataFrame, header_lines: int, fmt: str, paths: Sequence[str]) -> None:
        """Keep good rows; report bad rows per file with their line numbers."""
        bad = validated.filter(pl.col("__bad"))
        counts = dict.fromkeys(paths, 0) | dict(validated.group_by("__file").agg(pl.len()).iter_rows())
        bad_by_file: dict[str, list[BadLine]] = defaultdict(list)
        if bad.height:
            first = validated.group_by("__file").agg(pl.col("__row").min().alias("__first"))
            bad = bad.join(first, on="__file").with_columns(
                __line=pl.col("__row").cast(pl.Int64) - pl.col("__first") + 1 + header_lines
            ).sort("__file", "__line")
            for path, line, reason in bad.select("__file", "__line", "__reason").iter_rows():
                key = self.objects[path].key
                bad_by_file[path].append(BadLine(key, int(line), reason))
        for path, n in counts.items():
            nbad = len(bad_by_file.get(path, ()))
            self._file_read(path, n - nbad, fmt)
            if nbad:
                self.report.add_issue(
                    FileIssue(self.objects[path].key, "malformed lines", False, nbad, n - nbad),
                    bad_by_file[path],
                )
        self.frames.append(validated.filter(~pl.col("__bad")).drop("__bad", "__reason", "__row"))

    def _file_read(self, path: str, records: int, fmt: str) -> None:
        o = self.objects[path]
        self.report.files.append(
            FileRead(o.key, o.flow_log_id, o.account_id, o.region, o.layout, fmt,
                     self.fields_of.get(path, ()), records, o.size)
        )

    def skip(self, path: str, reason: str) -> None:
        self.report.add_issue(FileIssue(self.objects[path].key, reason, True))


def read_objects(
    store: ObjectStore,
    objects: Sequence[FlowLogObject],
    window: Window,
    report: ReadReport,
    *,
    strict: bool = False,
    log_format: str | Sequence[str] | None = None,
    progress=None,
) -> pl.DataFrame:
    """Read ``objects`` from ``store`` into the canonical frame, filling ``report``."""
    fallback_fields = None
    if log_format is not None:
        fallback_fields = tuple(parse_log_format(log_format) if isinstance(log_format, str) else log_format)
    by_path = {store.path(o.key): o for o in objects}
    col = _Collector(report, by_path, store)

    text_groups: dict[tuple[tuple[str, ...], bool], list[str]] = defaultdict(list)
    parquet_paths: list[str] = []
    for path, o in by_path.items():
        if o.format == "parquet":
            parquet_paths.append(path)
            continue
        if o.size == 0:
            col.skip(path, "empty file")
            continue
        try:
            head = store.read_head(o.key)
        except OSError as e:
            col.skip(path, f"unreadable: {e}")
            continue
        line = tx.first_line(head)
        tokens = line.split(" ") if line else []
        if not line:
            col.skip(path, "empty or unreadable file (no header line)")
            continue
        if tx.looks_like_header(tokens):
            key = (tuple(tokens), True)
        elif fallback_fields is not None and tx.CWL_EXPORT_TIMESTAMP.match(tokens[0]):
            # CloudWatch Logs export to S3: a timestamp before each record, no header.
            key = ((tx.SKIP_FIELD, *fallback_fields), False)
        elif fallback_fields is not None:
            key = (fallback_fields, False)
        else:
            col.skip(path, "no header line (give the format with --log-format / log_format=)")
            continue
        col.fields_of[path] = key[0]
        text_groups[key].append(path)
        if progress is not None:
            progress.update(0)

    for (fields, has_header), paths in text_groups.items():
        _read_text_group(store, col, list(fields), has_header, paths, progress)
    if parquet_paths:
        _read_parquet(store, col, parquet_paths, progress)

    if strict and report.issues:
        first = report.warning_lines()[0].removeprefix("warning: ")
        raise ReadError(f"{first} (strict mode; {len(report.issues)} problem file(s) in all)")

    return _assemble(col, window, report)


def _read_text_group(store, col: _Collector, fields, has_header, paths, progress) -> None:
    header_lines = 1 if has_header else 0
    if not getattr(store, "scannable", True) and len(paths) > 1:
        for p in paths:
            _read_text_group(store, col, fields, has_header, [p], None)
        if progress is not None:
            progress.update(len(paths))
        return
    try:
        if not getattr(store, "scannable", True):
            raise OSError("not scannable")
        lf = tx.scan_files(paths, len(fields), has_header_line=has_header, storage_options=store.storage_options)
        col.add(tx.validate(lf, fields).collect(), header_lines, "text", paths)
        if progress is not None:
            progress.update(len(paths))
        return
    except _ENGINE_ERRORS:
        if len(paths) == 1:
            pass
        else:
            for p in paths:
                _read_text_group(store, col, fields, has_header, [p], None)
            if progress is not None:
                progress.update(len(paths))
            return
    # One file the engine cannot read as it stands: salvage from its bytes.
    path = paths[0]
    o = col.objects[path]
    try:
        data = store.read_bytes(o.key)
    except OSError as e:
        col.skip(path, f"unreadable: {e}")
        return
    text_bytes, problem = tx.decompress_salvage(data)
    try:
        raw = tx.parse_bytes(text_bytes, len(fields), path, has_header_line=has_header)
        validated = tx.validate(raw.lazy(), fields, check_encoding=True).collect()
    except _ENGINE_ERRORS as e:
        col.skip(path, f"unreadable: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        return
    if validated.height == 0 and problem:
        col.skip(path, problem)
        return
    n_issues = len(col.report.issues)
    col.add(validated, header_lines, "text", [path])
    if problem:
        # Attach the file-level problem to the file's issue (or create one).
        mine = [i for i in col.report.issues[n_issues:] if i.file == o.key]
        if mine:
            mine[0].reason = f"{problem}; malformed lines"
        else:
            kept = int(validated.height)
            col.report.add_issue(FileIssue(o.key, problem, False, 1 if "incomplete last line" in problem else 0, kept))
    if progress is not None:
        progress.update(1)


def _parquet_select(schema: pl.Schema) -> list[pl.Expr]:
    exprs = []
    for name, dtype in schema.items():
        if name in ("__file",):
            continue
        c = column_name(name)
        f = BY_COLUMN.get(c)
        target = _POLARS[f.type] if f else pl.String
        expr = pl.col(name)
        if f is not None and f.type == "string" or f is None:
            expr = expr.cast(pl.String)
            expr = pl.when(expr != "-").then(expr)
        else:
            expr = expr.cast(target, strict=False)
        exprs.append(expr.alias(c))
    return exprs


def _read_parquet(store, col: _Collector, paths: list[str], progress) -> None:
    groups: dict[tuple, list[str]] = defaultdict(list)
    schemas = {}
    for p in paths:
        o = col.objects[p]
        if o.size == 0:
            col.skip(p, "empty file")
            continue
        try:
            schema = pl.read_parquet_schema(p) if store.storage_options is None else pl.scan_parquet(
                p, storage_options=store.storage_options).collect_schema()
        except _ENGINE_ERRORS as e:
            col.skip(p, f"unreadable Parquet file: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
            continue
        key = tuple((k, str(v)) for k, v in schema.items())
        schemas[key] = schema
        col.fields_of[p] = tuple(k.replace("_", "-") for k in schema)
        groups[key].append(p)
    for key, group in groups.items():
        _read_parquet_group(store, col, schemas[key], group)
        if progress is not None:
            progress.update(len(group))


def _read_parquet_group(store, col, schema, paths) -> None:
    try:
        lf = pl.scan_parquet(paths, include_file_paths="__file", storage_options=store.storage_options)
        df = lf.select(_parquet_select(schema) + [pl.col("__file")]).with_row_index("__row").collect()
    except _ENGINE_ERRORS as e:
        if len(paths) > 1:
            for p in paths:
                _read_parquet_group(store, col, schema, [p])
            return
        col.skip(paths[0], f"unreadable Parquet file: {str(e).splitlines()[0] if str(e) else type(e).__name__}")
        return
    df = df.with_columns(__bad=pl.lit(False), __reason=pl.lit(None, pl.String))
    col.add(df, 0, "parquet", paths)


def _assemble(col: _Collector, window: Window, report: ReadReport) -> pl.DataFrame:
    schema = canonical_schema()
    field_cols = [f.column for f in FIELDS]
    derived = {"start_time", "end_time", "source_file", "flow_log_id", "source_account_id", "source_region"}
    extra: list[str] = []
    frames = []
    for df in col.frames:
        for c in df.columns:
            if c not in schema and not c.startswith("__") and c not in extra:
                extra.append(c)
    for df in col.frames:
        missing = [pl.lit(None, schema[c]).alias(c) for c in field_cols if c not in df.columns]
        missing += [pl.lit(None, pl.String).alias(c) for c in extra if c not in df.columns]
        frames.append(df.with_columns(missing).select(field_cols + extra + ["__file"]))
    # Unknown columns named like a derived column are renamed rather than overwritten.
    renamed = {c: f"{c}_field" for c in extra if c in derived}
    if not frames:
        out = empty_frame()
        for c in extra:
            out = out.with_columns(pl.lit(None, pl.String).alias(renamed.get(c, c)))
        report.records = 0
        return out
    meta = pl.DataFrame(
        {
            "__file": list(col.objects),
            "source_file": [o.key for o in col.objects.values()],
            "flow_log_id": [o.flow_log_id for o in col.objects.values()],
            "source_account_id": [o.account_id for o in col.objects.values()],
            "source_region": [o.region for o in col.objects.values()],
        },
        schema={"__file": pl.String, "source_file": pl.String, "flow_log_id": pl.String,
                "source_account_id": pl.String, "source_region": pl.String},
    )
    lf = pl.concat(frames, how="vertical").lazy().rename(renamed)
    seconds = {
        c: pl.when(pl.col(c) > MILLISECONDS_THRESHOLD).then(pl.col(c) // 1000).otherwise(pl.col(c))
        for c in ("start", "end")
    }
    lf = lf.with_columns(**seconds).join(meta.lazy(), on="__file", how="left", maintain_order="left")
    lf = lf.with_columns(
        start_time=pl.from_epoch("start", "s").dt.replace_time_zone("UTC"),
        end_time=pl.from_epoch("end", "s").dt.replace_time_zone("UTC"),
    )
    report.records_parsed = sum(f.records for f in report.files)
    if window.end_s is not None:
        lf = lf.filter(pl.col("start") < window.end_s)
    if window.start_s is not None:
        lf = lf.filter(pl.col("end") >= window.start_s)
    ordered = list(schema) + [renamed.get(c, c) for c in extra]
    out = lf.select(ordered).collect()
    out = out.with_columns([pl.col(c).cast(t) for c, t in schema.items() if out.schema[c] != t])
    report.records = out.height
    return out
