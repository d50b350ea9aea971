"""Text flow-log files (``.log.gz``, header line first) parsed by Polars' CSV reader.

Every field is read as a string into positional columns plus one ``__extra`` column, then
validated and cast in one vectorised pass (:func:`check`): a line with too few fields
(Polars pads them with NULL), too many (they land in ``__extra``), a non-numeric number or
undecodable bytes is flagged, and dropped; the good lines of the same file are kept. Only
the flagged lines get a reason and a line number, so a clean read pays for the flag alone.

What costs what, per 1.8 M records of small files (2 cores): the scan (gzip, CSV) is the
same as a plain untyped ``scan_csv``; the one copy of its many small chunks into one chunk
~0.3 s CPU; the casts and the ``-`` checks ~0.5 s CPU. Everything after works on one chunk.

Files whose bytes Polars cannot read at all (truncated gzip, invalid UTF-8) go through
:func:`decompress_salvage` and :func:`parse_bytes`, which keep what can be decompressed
and apply the same rules; the problem they report names the byte offset of the damage and
the lines read before it. A line of field names after the first line (files concatenated
with ``cat``) is found by one hash lookup per row in :func:`check`; only such files are
read again, split at those lines (:func:`split_at_headers`).
"""

from __future__ import annotations

import io
import itertools
import os
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from flowtools.fields import BY_COLUMN, NULL_TOKEN, column_name, field_type
from flowtools.read.sniff import GZIP_MAGIC, fields_problem

_POLARS = {"int32": pl.Int32, "int64": pl.Int64, "string": pl.String}
_HEADER_TOKEN = re.compile(r"^[a-z][a-z0-9_-]*$")
#: A CloudWatch Logs export to S3 puts the event's ISO timestamp before each record.
CWL_EXPORT_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
#: Pseudo field for a token that is read and dropped (the export timestamp).
SKIP_FIELD = "__skip"
#: Marker Polars' lossy decoding puts where bytes were not UTF-8.
_REPLACEMENT = "\ufffd"


def looks_like_header(tokens: Sequence[str]) -> bool:
    """A header line is distinct field names (identifiers), at least one of them known."""
    return (
        bool(tokens)
        and all(_HEADER_TOKEN.match(t) for t in tokens)
        and len(set(tokens)) == len(tokens)
        and any(column_name(t) in BY_COLUMN for t in tokens)
    )


def looks_like_names(tokens: Sequence[str]) -> bool:
    """A line of two or more distinct field-like names (a header line, if of something else)."""
    return len(tokens) > 1 and all(_HEADER_TOKEN.match(t) for t in tokens) and len(set(tokens)) == len(tokens)


def raw_schema(n: int) -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {f"__f{i}": pl.String() for i in range(n)}
    return schema | {"__extra": pl.String()}


def _csv_options(n: int, has_header_line: bool, *, ragged: bool = True) -> dict:
    return dict(
        separator=" ",
        schema=raw_schema(n) if ragged else {f"__f{i}": pl.String for i in range(n)},
        has_header=False,
        skip_lines=1 if has_header_line else 0,
        quote_char=None,
        truncate_ragged_lines=ragged,
        missing_columns="insert",
    )


def scan_files(paths: Sequence[str], n_fields: int, *, has_header_line: bool = True,
               storage_options: dict[str, str] | None = None,
               ragged: bool = True) -> pl.LazyFrame:
    """Lazy scan of text files sharing one field list, into raw string columns.

    ``ragged=False`` reads no ``__extra`` column (it is then all NULL), which is cheaper, and
    fails on a line with more fields than ``n_fields``: read such files again with ``ragged``.
    ``__file`` (the path each row came from) is made Categorical in the scan: as a String
    it would repeat a ~200-byte path on every row (1.8 M rows: 340 MB to write and copy).
    """
    lf = pl.scan_csv(
        list(paths),
        include_file_paths="__file",
        storage_options=storage_options,
        **_csv_options(n_fields, has_header_line, ragged=ragged),
    ).with_columns(file_column())
    return lf if ragged else lf.with_columns(__extra=pl.lit(None, pl.String))


def file_column() -> pl.Expr:
    """``__file`` as a Categorical (one small code per row)."""
    return pl.col("__file").cast(pl.Categorical)


def parse_bytes(data: bytes, n_fields: int, file: str, *, has_header_line: bool = True) -> pl.DataFrame:
    """Raw string columns of decompressed text bytes (lossy UTF-8: bad bytes are flagged)."""
    if not data.strip():
        return pl.DataFrame(schema=raw_schema(n_fields) | {"__file": pl.Categorical})
    df = pl.read_csv(
        io.BytesIO(data), encoding="utf8-lossy",
        **_csv_options(n_fields, has_header_line),
    )
    return df.with_columns(__file=pl.lit(file, pl.String).cast(pl.Categorical))


@dataclass
class Checked:
    """One validated read: good lines typed, line counts per file, bad lines explained."""

    good: pl.DataFrame  # typed field columns (canonical names) and ``__file``, good lines only
    lines: dict[str, int]  # records (good and bad lines) per file that has any
    bad: pl.DataFrame  # ``__file``, ``__line`` (1-based, header counted), ``__reason``; sorted
    #: files holding header lines after their first line (objects concatenated with
    #: ``cat``): rows read with the wrong field list; read them with :func:`split_at_headers`
    headers: set[str] = field(default_factory=set)

    def without(self, files: set[str]) -> Checked:
        """This read minus the rows, counts and bad lines of ``files``."""
        if not files:
            return self
        names = list(files)
        return Checked(
            self.good.filter(~pl.col("__file").cast(pl.String).is_in(names)),
            {f: n for f, n in self.lines.items() if f not in files},
            self.bad.filter(~pl.col("__file").is_in(names)),
        )


def _rules(fields: Sequence[str], check_encoding: bool) -> tuple[list[pl.Expr], pl.Expr, pl.Expr]:
    """(typed column per field, bad-line flag, reason) over raw ``__f0..`` / ``__extra``."""
    n = len(fields)
    raw_cols = [pl.col(f"__f{i}") for i in range(n)]
    typed = []
    numeric_fail = []
    for i, name in enumerate(fields):
        c = raw_cols[i]
        t = field_type(name)
        if t == "string":
            typed.append(pl.when(c != NULL_TOKEN).then(c).alias(column_name(name)))
        else:
            casted = c.cast(_POLARS[t], strict=False)
            typed.append(casted.alias(column_name(name)))
            numeric_fail.append((name, i, casted.is_null() & c.is_not_null() & (c != NULL_TOKEN)))
    too_many = pl.col("__extra").is_not_null()
    too_few = pl.any_horizontal([c.is_null() for c in raw_cols])  # a field missing (or empty)
    bad_encoding = (
        pl.any_horizontal([c.str.contains(_REPLACEMENT, literal=True) for c in raw_cols])
        if check_encoding else pl.lit(False)
    )
    bad_number = pl.any_horizontal([e for _, _, e in numeric_fail]) if numeric_fail else pl.lit(False)
    bad = too_many | too_few | bad_encoding | bad_number
    present = pl.sum_horizontal([c.is_not_null().cast(pl.Int32) for c in raw_cols])
    reason = (
        pl.when(present == 0).then(pl.lit("empty line"))
        .when(bad_encoding).then(pl.lit("undecodable bytes (not UTF-8)"))
        .when(too_many).then(pl.lit(f"more than {n} fields (the header has {n})"))
        .when(too_few).then(pl.format("{} fields (the header has " + str(n) + ")", present))
    )
    for name, i, fail in numeric_fail:
        reason = reason.when(fail).then(pl.format(f"{name}: not a valid {field_type(name)}: '{{}}'", raw_cols[i]))
    return typed, bad, reason


def check(raw: pl.DataFrame, fields: Sequence[str], *, header_lines: int, check_encoding: bool = False) -> Checked:
    """Validate and type raw lines (``__f0..``, ``__extra``, ``__file``; files' lines contiguous).

    One vectorised pass types every field (``-`` -> NULL) and flags bad lines: too few or
    too many fields, a number that does not parse, undecodable bytes (``check_encoding``).
    Reasons, which format strings, are computed for the bad lines only; line numbers come
    from each file's position among the raw rows.
    """
    typed, bad, reason = _rules(fields, check_encoding)
    header_row = _header_candidate(fields)
    # A scan of many small files gives a few hundred rows per chunk. One copy into a single
    # chunk costs less than evaluating the rules chunk by chunk, and the in-memory engine
    # keeps the result in one chunk (the streaming one would split it into morsels): later
    # steps and the hand-over to DuckDB (Arrow batches must align) need no further copy.
    raw = raw.rechunk()
    out = raw.lazy().select([*typed, pl.col("__file"), bad.alias("__bad"), header_row.alias("__hdr")]
                            ).collect(engine="in-memory")
    lines = lines_per_file(raw)
    headers = _files_with_headers(raw, out.drop_in_place("__hdr"), len(fields))
    mask = out.drop_in_place("__bad")
    if not mask.any():
        return Checked(out, lines, no_bad_lines(), headers)
    explained = (
        raw.lazy().with_row_index("__row").filter(mask)
        .select(pl.col("__file").cast(pl.String), pl.col("__row").cast(pl.Int64).alias("__row"),
                reason.alias("__reason"))
        .collect()
    )
    starts = dict(zip(lines, itertools.accumulate(lines.values(), initial=0), strict=False))  # contiguous; accumulate yields one more
    first = pl.DataFrame({"__file": list(starts), "__first": list(starts.values())},
                         schema={"__file": pl.String, "__first": pl.Int64})
    explained = explained.join(first, on="__file").select(
        "__file", (pl.col("__row") - pl.col("__first") + 1 + header_lines).alias("__line"), "__reason"
    ).sort("__file", "__line")
    return Checked(out.filter(~mask), lines, explained, headers)


def _header_names(fields: Sequence[str]) -> list[str]:
    """Names a header line may start with: the catalogue's fields and this header's."""
    return sorted({f.name for f in BY_COLUMN.values()} | {f for f in fields if not f.startswith("__")})


def _header_candidate(fields: Sequence[str]) -> pl.Expr:
    """Rows that may be a header line: the first token is a field name (one hash lookup
    per row; :func:`_files_with_headers` checks the few candidates fully)."""
    return pl.col("__f0").is_in(_header_names(fields))


def _files_with_headers(raw: pl.DataFrame, candidate: pl.Series, n: int) -> set[str]:
    """Files with a row that is a header line: every token a field-like name (vectorised
    over the candidate rows only, which a clean file has none of)."""
    if not candidate.any():
        return set()
    rows = raw.filter(candidate)
    cols = [pl.col(f"__f{i}") for i in range(n)] + [pl.col("__extra")]
    is_header = pl.all_horizontal([c.is_null() | c.str.contains(_HEADER_TOKEN.pattern) for c in cols])
    hit = rows.filter(is_header & (pl.sum_horizontal([c.is_not_null() for c in cols]) >= 2))
    return set(hit.get_column("__file").cast(pl.String).unique().to_list())


@dataclass
class Segment:
    """A run of lines under one header line: its fields, its bytes (header line first
    when ``has_header``) and the file line number its bytes start at (1-based)."""

    fields: tuple[str, ...]
    has_header: bool
    first_line: int
    data: bytes


def split_at_headers(data: bytes, fields: Sequence[str], has_header: bool) -> list[Segment]:
    """Split decompressed text at each header line after the first (files concatenated
    with ``cat``): each segment is read with its own header's fields.

    A header line here is a line of field names (:func:`looks_like_header`, starting with a
    catalogue field or one of ``fields``) that :func:`flowtools.read.sniff.fields_problem`
    accepts; other lines are records (or bad lines). One regex pass over the bytes (C speed);
    Python runs per header line found.
    """
    names = b"|".join(re.escape(n.encode()) for n in _header_names(fields))
    pattern = re.compile(rb"^(?:" + names + rb")(?: [a-z][a-z0-9_-]*)+[ \t\r]*$", re.M)
    segments: list[Segment] = []
    start, cur_fields, cur_header, line = 0, tuple(fields), has_header, 1
    for m in pattern.finditer(data):
        if m.start() == 0 and has_header:
            continue  # the first header: already ``fields``
        tokens = tuple(m.group().decode().split())
        if not looks_like_header(tokens) or fields_problem(tokens) is not None:
            continue
        if m.start() > start:
            segments.append(Segment(cur_fields, cur_header, line, data[start : m.start()]))
            line += data.count(b"\n", start, m.start())
        start, cur_fields, cur_header = m.start(), tokens, True
    segments.append(Segment(cur_fields, cur_header, line, data[start:]))
    return segments


def lines_per_file(df: pl.DataFrame) -> dict[str, int]:
    """Rows per ``__file``, in read order (one run per file: a file's rows are contiguous)."""
    runs = df.get_column("__file").rle().struct.unnest()
    lines = dict(zip(runs.get_column("value").cast(pl.String).to_list(), runs.get_column("len").to_list(),
                     strict=True))
    if len(lines) != runs.height:  # never seen; the reader then retries file by file
        raise RuntimeError("the engine interleaved the rows of several files")
    return lines


def no_bad_lines() -> pl.DataFrame:
    return pl.DataFrame(schema={"__file": pl.String, "__line": pl.Int64, "__reason": pl.String})


#: Compressed bytes fed to zlib at a time when salvaging (the decompressor is copied before
#: each step, so a corrupt byte is located within the step without starting over).
_INFLATE_STEP = 1 << 16


def _error_offset(before: zlib._Decompress, chunk: bytes, base: int) -> tuple[int, bytes]:
    """(file offset of the byte in ``chunk`` at which zlib fails, what it decompressed
    before), given a copy of the decompressor as it was before ``chunk``. Byte by byte:
    a failing file only (~30 ms per 64 KB step)."""
    out = []
    for i in range(len(chunk)):
        try:
            out.append(before.decompress(chunk[i : i + 1]))
        except zlib.error:
            return base + i, b"".join(out)
    return base + len(chunk), b"".join(out)


def _inflate(data: bytes) -> tuple[bytes, str | None]:
    """Decompress every gzip member of ``data`` as far as the bytes allow:
    (bytes decompressed, problem or None); the problem names the byte offset."""
    out: list[bytes] = []
    pos = 0
    while pos < len(data):
        d = zlib.decompressobj(wbits=31)
        while not d.eof:
            chunk = data[pos : pos + _INFLATE_STEP]
            if not chunk:
                return b"".join(out), "truncated gzip stream"
            before = d.copy()
            try:
                out.append(d.decompress(chunk))
            except zlib.error as e:
                at, good = _error_offset(before, chunk, pos)
                out.append(good)
                reason = str(e).split(": ", 1)[-1]
                return b"".join(out), f"corrupt gzip data at byte {at} ({reason})"
            pos += len(chunk) - len(d.unused_data)
        rest = data[pos : pos + 2]
        if rest and rest != GZIP_MAGIC:
            if data[pos:].strip(b"\x00"):
                return b"".join(out), f"trailing garbage after the gzip data at byte {pos}"
            break
    return b"".join(out), None


def decompress_salvage(data: bytes) -> tuple[bytes, str | None]:
    """Decompress gzip (all members) as far as the bytes allow.

    Returns (text bytes up to the last complete line, problem or None): ``truncated gzip
    stream (N lines read before the cut)``, ``corrupt gzip data at byte B (zlib's reason;
    N lines read before it)``, ``trailing garbage after the gzip data at byte B``, each
    followed by ``; incomplete last line dropped`` when a partial line was dropped. Bytes
    without the gzip magic are taken as plain text. Cost: one pass of zlib over the file.
    """
    if not data.startswith(GZIP_MAGIC):
        return data, None
    text, problem = _inflate(data)
    if problem is not None:
        cut = text.rfind(b"\n")
        partial = text[cut + 1 :] if cut >= 0 else text
        text = text[: cut + 1] if cut >= 0 else b""
        lines = text.count(b"\n")
        if problem.startswith("truncated"):
            problem += f" ({lines} lines read before the cut)"
        elif problem.startswith("corrupt"):
            problem = problem[:-1] + f"; {lines} lines read before it)"
        if partial:
            problem += "; incomplete last line dropped"
    return text, problem


def first_line(data: bytes) -> str:
    """The first line of decompressed text (for the header)."""
    end = data.find(b"\n")
    line = data if end < 0 else data[:end]
    return line.decode("utf-8", errors="replace").strip()


class Head(bytes):
    """The first decompressed bytes of a text object (:func:`read_head`), with what the
    raw bytes were: ``gzip`` (they start with gzip's magic), ``raw_start`` (their first
    bytes) and ``problem`` (why decompression failed at once, else None)."""

    gzip: bool = False
    raw_start: bytes = b""
    problem: str | None = None


def read_head(path_or_bytes: str | os.PathLike[str] | bytes | bytearray, limit: int = 1 << 16) -> Head:
    """Decompressed first bytes of a (possibly gzip) file, enough for the header line.

    Never raises for bad data (it may run in a download pool): a gzip stream corrupt from
    the start gives an empty :class:`Head` whose ``problem`` says where."""
    if isinstance(path_or_bytes, bytes | bytearray):
        raw = bytes(path_or_bytes[:limit])
    else:
        with open(path_or_bytes, "rb") as f:
            raw = f.read(limit)
    if not raw.startswith(GZIP_MAGIC):
        head = Head(raw)
    else:
        d = zlib.decompressobj(wbits=31)
        try:
            head = Head(d.decompress(raw, limit))
            problem = None
        except zlib.error as e:
            head = Head(b"")
            problem = f"corrupt gzip data at byte {_error_offset(zlib.decompressobj(wbits=31), raw, 0)[0]} " \
                      f"({str(e).split(': ', 1)[-1]})"
        head.gzip, head.problem = True, problem
    head.raw_start = raw[:8]
    return head
