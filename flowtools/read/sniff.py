"""What a file is, when it is not what its name says: magic bytes, and whether a list of
field names (a header line, Parquet columns) is a flow log's.

Everything here works on a few bytes or a few names per file, never on records.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from flowtools.fields import BY_COLUMN, column_name

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
#: First bytes of formats people put where a flow log was expected.
_MAGICS = (
    (GZIP_MAGIC, "gzip data"),
    (PARQUET_MAGIC, "a Parquet file"),
    (b"PK\x03\x04", "a zip archive"),
    (b"BZh", "bzip2 data"),
    (b"\xfd7zXZ\x00", "xz data"),
    (b"\x28\xb5\x2f\xfd", "zstd data"),
    (b"\x04\x22\x4d\x18", "lz4 data"),
    (b"ORC", "an ORC file"),
    (b"Obj\x01", "an Avro file"),
    (b"{", "JSON?"),
    (b"[", "JSON?"),
)

#: A field list is a flow log's when it names at least this many fields of the catalogue
#: (:mod:`flowtools.fields`) ...
MIN_KNOWN_FIELDS = 2
# ... and no more unknown names than known ones. Why: AWS accepts any custom format, so a
# flow log may omit almost any field (``${srcaddr} ${dstaddr} ${dstport}`` is valid and
# useful), and names fields the catalogue does not know yet (fields added by AWS later);
# but a table whose columns are mostly foreign (``a, b``; ``id, name, srcaddr``) is some
# other data, and reading it would add all-NULL records and foreign columns.


def describe_bytes(first: bytes) -> str:
    """``1f 8b 08 00 (gzip data)``: the first bytes in hex and what they look like."""
    shown = " ".join(f"{b:02x}" for b in first[:4]) or "none (empty)"
    for magic, what in _MAGICS:
        if first.startswith(magic):
            return f"{shown}: {what}"
    if first[:4] and all(32 <= b < 127 or b in (9, 10, 13) for b in first[:4]):
        return f"{shown}: text {first[:4].decode('ascii')!r}"
    return shown


def is_binary(data: bytes) -> bool:
    """Bytes that are not text: a NUL, or a known binary format's magic."""
    return b"\x00" in data[:4096] or any(data.startswith(m) for m, what in _MAGICS if not what.endswith("?"))


def parquet_problem(path: str, read_bytes: Callable[[], bytes], engine_error: str) -> str:
    """Why a Parquet file the engine could not open is unreadable, from its magic bytes:
    not Parquet at all, truncated (footer missing), or what the engine said.

    A local ``path`` costs two small reads; otherwise ``read_bytes`` fetches the object
    (only for a file that already failed)."""
    try:
        if os.path.isfile(path):
            with open(path, "rb") as f:
                head = f.read(4)
                f.seek(max(0, os.path.getsize(path) - 4))
                tail = f.read(4)
        else:
            data = read_bytes()
            head, tail = data[:4], data[-4:]
    except OSError:
        return f"unreadable Parquet file: {engine_error}"
    if head != PARQUET_MAGIC:
        return f"not a Parquet file (first bytes {describe_bytes(head)}, not PAR1)"
    if tail != PARQUET_MAGIC:
        return "truncated Parquet file (footer missing: it does not end with PAR1)"
    return f"unreadable Parquet file: {engine_error}"


def _shown(names: Sequence[str], limit: int = 8) -> str:
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def fields_problem(names: Sequence[str], what: str = "columns") -> str | None:
    """Why ``names`` (a header line's fields, a Parquet file's columns) are not a flow log's
    field list, or None when they are (the rule: :data:`MIN_KNOWN_FIELDS`, see above).

    ``what`` names them in the message (``columns``, ``header fields``).
    """
    known = [n for n in names if column_name(n) in BY_COLUMN]
    unknown = [n for n in names if column_name(n) not in BY_COLUMN]
    if not known:
        return f"not a flow log: none of the flow-log fields ({what} found: {_shown(names)})"
    if len(known) < MIN_KNOWN_FIELDS:
        return (f"not a flow log: only one flow-log field, {known[0]}, where a flow log has at least "
                f"{MIN_KNOWN_FIELDS} ({what} found: {_shown(names)})")
    if len(unknown) > len(known):
        return (f"not a flow log: {len(unknown)} of its {len(names)} {what} are not flow-log fields "
                f"({_shown(unknown)}; flow-log fields: {_shown(known)})")
    return None
