"""flowtools: AWS VPC Flow Logs in DuckDB and Polars; what the internet really reaches."""

import os

# Polars' allocator (its own jemalloc, configured by $_RJEM_MALLOC_CONF when Polars loads):
# keep freed pages up to 5 s before giving them back to the kernel. flowtools allocates and
# frees a chunk's worth of memory over and over; with the default, a quarter of a store
# build's CPU time went to the kernel's page faults (docs/design.md, "Partition store").
# Set the variable yourself to override; it has no effect once Polars is imported.
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:5000,muzzy_decay_ms:5000")

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
