"""Engine set-up shared by readers and sources: DuckDB connections with offline extensions,
a memory limit and a spill folder.

Memory: a DuckDB connection gets ``memory_limit`` = :data:`MEMORY_FRACTION` of the memory
this process may use (the smaller of the machine's memory and a container's cgroup limit,
v2 ``memory.max`` or v1 ``memory.limit_in_bytes``) and spills beyond it to a private temp
folder; ``$FLOWTOOLS_DUCKDB_MEMORY`` (e.g. ``4GB``) and ``$FLOWTOOLS_TEMP_DIR`` override
them. ``preserve_insertion_order`` is off (large scans and copies need less memory; every
flowtools result that has an order sorts explicitly).

DuckDB extensions cannot be downloaded here (nor, often, on users' locked-down hosts):
they come from the pinned PyPI wheel (``duckdb-extension-httpfs``, for ``s3://`` paths in SQL), copied
into DuckDB's extension folder once by ``duckdb_extensions.import_extension`` and then
loaded without any network access.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import duckdb

_IMPORTED: set[str] = set()


#: Share of the usable memory a DuckDB connection may take before it spills to disk.
MEMORY_FRACTION = 0.5
MEMORY_ENV = "FLOWTOOLS_DUCKDB_MEMORY"
TEMP_DIR_ENV = "FLOWTOOLS_TEMP_DIR"


def connect() -> duckdb.DuckDBPyConnection:
    """A new in-memory DuckDB connection with a memory limit that spills to a private temp
    folder (see the module doc for the limits and their overrides)."""
    con = duckdb.connect(":memory:", config={"autoinstall_known_extensions": False})
    con.execute(f"SET temp_directory = '{_temp_dir()}'")
    con.execute(f"SET memory_limit = '{memory_limit()}'")
    con.execute("SET preserve_insertion_order = false")
    # Relations over the partition store's Parquet files are bound again at every step of
    # an analysis: keep the files' footers instead of reading them each time.
    con.execute("SET parquet_metadata_cache = true")
    # DuckDB draws its own progress bar on stdout for queries over 2 s, even when stdout is
    # a file or a pipe: it would land in front of `--format json` output. flowtools' bars
    # (tqdm, on stderr) say what is going on instead.
    try:
        con.execute("SET enable_progress_bar = false")
    except duckdb.Error:  # in Jupyter without ipywidgets DuckDB refuses any change (and draws no bar)
        pass
    return con


#: Where a container's memory limit is read (cgroup v2, then v1).
CGROUP_LIMIT_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def usable_memory(cgroup_files: tuple[str, ...] = CGROUP_LIMIT_FILES) -> int:
    """Bytes this process may use: physical memory, capped by a container's cgroup limit."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") if hasattr(os, "sysconf") else 8 << 30
    for path in cgroup_files:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit() and 0 < int(text) < total:  # "max" or a huge number: no limit
            total = int(text)
    return total


def memory_limit() -> str:
    """DuckDB's ``memory_limit``: ``$FLOWTOOLS_DUCKDB_MEMORY`` or a share of usable memory."""
    given = os.environ.get(MEMORY_ENV, "").strip()
    if given:
        return given.replace("'", "")
    return f"{max(256, int(usable_memory() * MEMORY_FRACTION) >> 20)}MiB"


def _temp_dir() -> str:
    given = os.environ.get(TEMP_DIR_ENV)
    if given:
        d = given
    else:
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



# Spark (optional: the ``flowtools[spark]`` extra, and Java 17 or later) ---------------

#: Settings of the local session :func:`spark_session` starts when none is given or active:
#: few shuffle partitions (flowtools' aggregates are small; Spark's default 200 costs
#: seconds of task overhead on one machine), no web UI, UTC as the session time zone
#: (records' times are UTC), no Spark job just to list the store's files, and no constraint
#: propagation (the optimiser infers filters from every join and CASE of a plan: seconds on
#: the exposure plans, for filters that do not matter on their small tables).
SPARK_LOCAL_CONFIG = {
    "spark.sql.constraintPropagation.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.driver.memory": "2g",
}
#: Settings for a local session over SMALL data (tests, the sample, a notebook's first
#: look; pass them as ``config`` to :func:`spark_session`): one shuffle partition, adaptive
#: execution off (each shuffle would be a job of its own, re-planned) and whole-stage code
#: generation off (compiling each stage costs more than it saves on a few hundred thousand
#: rows). Together they take exposure over the 160 k-record sample from about 110 to 70 CPU
#: seconds on a fresh session. Not for large data: they give up parallelism after a shuffle
#: and the generated code's speed.
SPARK_SMALL_DATA_CONFIG = {
    "spark.sql.shuffle.partitions": "1",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.codegen.wholeStage": "false",
}
SPARK_MISSING = ("engine 'spark' needs pyspark (install the extra: pip install 'flowtools[spark]') "
                 "and Java 17 or later (JAVA_HOME or java on PATH)")


def spark_session(spark: Any = None, *, master: str = "local[*]", config: dict[str, str] | None = None) -> Any:
    """The SparkSession flowtools runs on: ``spark`` when given, else the active session of
    this process (``SparkSession.getActiveSession()``: a notebook's, EMR's, Databricks'),
    else a new local one (``master``, default ``local[*]``, with :data:`SPARK_LOCAL_CONFIG`
    updated by ``config``). Starting a local session starts a JVM: about 10 s and a few
    hundred MB. Without pyspark, or when the JVM cannot start (no Java 17), raises
    :class:`~flowtools.errors.UsageError` saying what to install."""
    from flowtools.errors import UsageError

    if spark is not None:
        return spark
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise UsageError(SPARK_MISSING) from None
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    builder = SparkSession.builder.master(master).appName("flowtools")
    for key, value in {**SPARK_LOCAL_CONFIG, **(config or {})}.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as e:  # the JVM did not start: PySparkRuntimeError, FileNotFoundError
        raise UsageError(f"{SPARK_MISSING}: the local Spark session did not start ({e})") from None
    session.sparkContext.setLogLevel("ERROR")
    return session
