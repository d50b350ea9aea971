"""Athena: the same flow logs queried in place in S3, past one machine.

:mod:`flowtools.athena.ddl` writes ``CREATE EXTERNAL TABLE`` statements with partition
projection for every S3 layout AWS delivers (and for flowtools' own partition store);
:mod:`flowtools.athena.run` runs any SQL in Athena through boto3 and returns a Polars frame
with what the query scanned and cost. See ``docs/athena.md``.
"""

from __future__ import annotations

from flowtools.athena.ddl import LAYOUTS, TableSpec, ddl, partition_filter, table_spec
from flowtools.athena.run import AthenaResult, QueryCancelled, QueryFailed, run_query

__all__ = ["LAYOUTS", "AthenaResult", "QueryCancelled", "QueryFailed", "TableSpec", "ddl", "partition_filter",
           "run_query", "table_spec"]
