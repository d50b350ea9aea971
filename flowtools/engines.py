"""Engine set-up shared by readers and sources: DuckDB connections with offline extensions.

DuckDB extensions cannot be downloaded here (nor, often, on users' locked-down hosts):
they come from the pinned PyPI wheel (``duckdb-extension-httpfs``, for ``s3://`` paths in SQL), copied
into DuckDB's extension folder once by ``duckdb_extensions.import_extension`` and then
loaded without any network access.
"""

from __future__ import annotations

import os
import tempfile

import duckdb

_IMPORTED: set[str] = set()


def connect() -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection that spills to a private temp folder."""
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    con.execute(f"SET temp_directory = '{_temp_dir()}'")
    return con


def _temp_dir() -> str:
    uid = os.getuid() if hasattr(os, "getuid") else "user"
    d = os.path.join(tempfile.gettempdir(), f"flowtools-duckdb-{uid}")
    os.makedirs(d, exist_ok=True)
    return d.replace("'", "''")


def load_extension(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Load a DuckDB extension from its PyPI wheel (never from the network)."""
    if name not in _IMPORTED:
        from duckdb_extensions import import_extension

        import_extension(name)
        _IMPORTED.add(name)
    con.execute(f"LOAD {name}")

