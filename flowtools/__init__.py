"""flowtools: AWS VPC Flow Logs in DuckDB and Polars; what the internet really reaches."""

from flowtools.errors import FlowtoolsError
from flowtools.flows import Flows, load
from flowtools.read.report import ReadReport
from flowtools.window import Window

__version__ = "0.1.0"

__all__ = ["Flows", "FlowtoolsError", "ReadReport", "Window", "load", "__version__"]
