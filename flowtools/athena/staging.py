"""Side tables too long to inline in an Athena query, staged in S3 for the query's time.

Athena refuses a query string above 256 KB; :mod:`flowtools.athena.exposure` writes its
small side tables as ``VALUES`` lists and hands the long ones (the oriented address pairs,
typically) to a stager: :class:`S3Stager` writes each as one tab-separated text object and
declares it as an external table of the query's database (``CREATE EXTERNAL TABLE``, a
free DDL query); :meth:`S3Stager.clean_up` drops the tables and deletes the objects.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import duckdb
import polars as pl

from flowtools import aws
from flowtools.athena.run import AthenaError
from flowtools.athena.transpile import values_sql
from flowtools.errors import UsageError

__all__ = ["INLINE_BYTES", "S3Stager", "Stager", "stageable"]

#: A side table whose ``VALUES`` list is longer than this is staged in S3 when a staging
#: location is known (:func:`flowtools.athena.exposure.exposure`).
INLINE_BYTES = 16_384

#: Stages a side table where Athena reads it (for tables too long to inline) and returns
#: the table name to select from, or None to inline it.
Stager = Callable[[str, duckdb.DuckDBPyRelation], "str | None"]


#: Hive DDL types of the side tables' DuckDB types.
_HIVE_TYPES = {"VARCHAR": "string", "INTEGER": "int", "BIGINT": "bigint", "BOOLEAN": "boolean", "DOUBLE": "double",
               "SMALLINT": "smallint", "TINYINT": "tinyint", "FLOAT": "float", "TIMESTAMP": "timestamp",
               "DATE": "date"}


def stageable(relation: duckdb.DuckDBPyRelation) -> bool:
    """Whether a side table is staged rather than inlined: longer than :data:`INLINE_BYTES`
    as ``VALUES``, of types a Hive text table holds, with no tab, newline or backslash in
    its values (the text format has no room for them)."""
    if any(str(t) not in _HIVE_TYPES for t in relation.types) or len(values_sql(relation)) <= INLINE_BYTES:
        return False
    frame = relation.pl()
    return not any(frame[c].cast(pl.String).str.contains(r"[\t\n\\]").any() for c in frame.columns)


class S3Stager:
    """Stages long side tables in S3 as tab-separated text, each declared as a table of the
    query's database; :meth:`clean_up` drops the tables and deletes the objects."""

    def __init__(self, location: str, session: Any, run: Callable[[str], pl.DataFrame]) -> None:
        if not location.startswith("s3://"):
            raise UsageError(f"bad staging location {location!r}: expected s3://bucket/prefix/")
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        self.run_id = uuid.uuid4().hex[:12]
        self.bucket, self.prefix = bucket, (prefix.rstrip("/") + "/" if prefix.strip("/") else "") + self.run_id + "/"
        self.s3 = session.client("s3", config=aws.client_config())
        self.run = run
        self.tables: list[str] = []
        self.keys: list[str] = []

    def __call__(self, name: str, relation: duckdb.DuckDBPyRelation) -> str | None:
        if not stageable(relation):
            return None
        types = [str(t) for t in relation.types]
        frame = relation.pl()
        text = frame.select(pl.col(c).cast(pl.String) for c in frame.columns)
        key = f"{self.prefix}{name}/data.tsv"
        body = text.write_csv(separator="\t", include_header=False, null_value="\\N", quote_style="never")
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.s3.put_object(Bucket=self.bucket, Key=key, Body=body.encode())
        except (ClientError, BotoCoreError) as e:
            raise AthenaError(f"staging a side table at s3://{self.bucket}/{key} failed: {e}") from None
        self.keys.append(key)
        table = f"flowtools_{self.run_id}_{name}"
        cols = ", ".join(f"`{c}` {_HIVE_TYPES[t]}" for c, t in zip(relation.columns, types, strict=True))
        self.run(f"CREATE EXTERNAL TABLE `{table}` ({cols}) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' "
                 f"STORED AS TEXTFILE LOCATION 's3://{self.bucket}/{self.prefix}{name}/'")
        self.tables.append(table)
        return f'"{table}"'

    def clean_up(self) -> None:
        """Delete the staged objects, then drop their tables (best effort: a failure is
        skipped). The objects go first: they are quick to delete, whereas each drop is a
        query to wait for (an interrupt then leaves a table over no data, never data)."""
        from botocore.exceptions import BotoCoreError, ClientError

        for key in self.keys:
            try:
                self.s3.delete_object(Bucket=self.bucket, Key=key)
            except (ClientError, BotoCoreError):
                pass
        for table in self.tables:
            try:
                self.run(f"DROP TABLE IF EXISTS `{table}`")
            except AthenaError:
                pass
