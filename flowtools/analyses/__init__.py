"""Analyses: functions from a flows frame (DuckDB relation or Polars LazyFrame) to a frame."""

from flowtools.analyses.exposure import findings_records, findings_schema, internet_exposure

__all__ = ["findings_records", "findings_schema", "internet_exposure"]
