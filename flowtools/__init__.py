"""flowtools: AWS VPC Flow Logs in DuckDB and Polars; what the internet really reaches."""

from flowtools.analyses import internet_exposure
from flowtools.enrichment.inventory import Inventory
from flowtools.enrichment.ip_ranges import IpRanges
from flowtools.enrichment.joins import enrich
from flowtools.errors import FlowtoolsError
from flowtools.flows import Flows, load
from flowtools.read.report import ReadReport
from flowtools.window import Window

__version__ = "0.1.0"

__all__ = ["Flows", "FlowtoolsError", "Inventory", "IpRanges", "ReadReport", "Window", "__version__",
           "enrich", "internet_exposure", "load"]
