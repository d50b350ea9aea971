"""Athena: the same flow logs queried in place in S3, past one machine.

:mod:`flowtools.athena.ddl` writes ``CREATE EXTERNAL TABLE`` statements with partition
projection for every S3 layout AWS delivers (and for flowtools' own partition store);
:mod:`flowtools.athena.run` runs any SQL in Athena through boto3 and returns a Polars frame
with what the query scanned and cost; :mod:`flowtools.athena.exposure` runs the exposure
analysis in Athena from SQL generated out of the analysis itself, and
:mod:`flowtools.athena.local` runs that SQL on DuckDB instead, without AWS. See
``docs/athena.md``.
"""

from __future__ import annotations

from flowtools.athena.ddl import LAYOUTS, TableSpec, ddl, partition_filter, table_spec
from flowtools.athena.exposure import AthenaExposure, ExposureSql, exposure, exposure_sql
from flowtools.athena.local import LocalAthena
from flowtools.athena.run import AthenaResult, QueryCancelled, QueryFailed, run_query

__all__ = ["LAYOUTS", "AthenaExposure", "AthenaResult", "ExposureSql", "LocalAthena", "QueryCancelled", "QueryFailed",
           "TableSpec", "ddl", "exposure", "exposure_sql", "partition_filter", "run_query", "table_spec"]
