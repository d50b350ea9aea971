"""Object keys <-> partitions, and pruning by time window.

Works on key listings (key relative to SOURCE, size), never on a file system, so the
same code serves local folders, S3 listings and caches. Two modules:

- :mod:`flowtools.layout.keys`: the one key grammar (AWS's folder layouts, file names,
  CloudWatch Logs exports), :func:`parse_key`, and the partitions a window needs;
- :mod:`flowtools.layout.discovery`: which listed objects are flow logs (:func:`discover`)
  and which of them a window, accounts and regions keep (:func:`select_explained`).

Every public name of both is importable from here.
"""

from flowtools.layout.discovery import (
    ANY_NAME_SUFFIXES,
    IGNORED_EXAMPLES,
    Discovered,
    Ignored,
    Selection,
    any_name_candidate,
    discover,
    select,
    select_explained,
    time_span,
)
from flowtools.layout.keys import (
    AWSLOGS,
    BATCH,
    CWL_EXPORT_KEY,
    FILE_NAME,
    HIVE_KEYS,
    NEXT_LEVELS,
    PRUNE_SLACK,
    SERVICE,
    FlowLogObject,
    Format,
    Layout,
    Level,
    ObjectInfo,
    Segment,
    next_segment,
    parse_key,
    parse_segments,
    partition_of,
    partition_prefixes,
)

__all__ = [
    "ANY_NAME_SUFFIXES", "AWSLOGS", "BATCH", "CWL_EXPORT_KEY", "FILE_NAME", "HIVE_KEYS", "IGNORED_EXAMPLES",
    "NEXT_LEVELS", "PRUNE_SLACK", "SERVICE", "Discovered", "FlowLogObject", "Format", "Ignored", "Layout", "Level",
    "ObjectInfo", "Segment", "Selection", "any_name_candidate", "discover", "next_segment", "parse_key",
    "parse_segments", "partition_of", "partition_prefixes", "select", "select_explained", "time_span",
]
