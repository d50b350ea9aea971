"""Reports: plotly figures from frames (:mod:`.figures`) and notebook -> HTML (:mod:`.render`).

This module is light (no plotly, no nbclient): the notebooks' loading step uses
:func:`sample_paths` and :func:`show_read_report`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeAlias

__all__ = ["READ_REPORT_MIME", "read_report_payload", "sample_paths", "show_read_report", "watchlist_path"]

#: MIME type of the machine-readable read report a notebook's loading step displays next
#: to its text (:func:`show_read_report`); ``flowtools report`` reads it from the executed
#: notebook (:func:`flowtools.report.render.read_report`) and removes it from the HTML.
READ_REPORT_MIME = "application/vnd.flowtools.read-report+json"

PathArg: TypeAlias = str | os.PathLike[str]


def sample_paths(source: PathArg | None = None, inventory: PathArg | None = None, ip_ranges: PathArg | None = None,
                 ) -> tuple[PathArg, PathArg | None, PathArg | None]:
    """Notebook defaults: ``(source, inventory, ip_ranges)`` with None replaced by the
    embedded sample (``data/samples`` of the checkout; in an installed package without
    it, a sample generated once into the cache folder with the same seed)."""
    if source is not None:
        return source, inventory, ip_ranges
    root = Path(__file__).resolve().parents[2] / "data" / "samples"
    if not (root / "truth.json").exists():
        from flowtools import sample
        from flowtools.sources.cache import cache_dir

        root = cache_dir() / "sample"
        if not (root / "truth.json").exists():
            sample.generate(root, seed=0)
    inventory = inventory if inventory is not None else str(root / "inventory")
    ip_ranges = ip_ranges if ip_ranges is not None else str(root / "ip-ranges.json")
    return os.fspath(root), inventory, ip_ranges


def watchlist_path(source: str | os.PathLike, watchlist: str | os.PathLike | None = None) -> str | None:
    """A notebook's watchlist: ``watchlist`` when given, else ``watchlist.txt`` in a local
    SOURCE folder (the embedded sample has one: give the folder :func:`sample_paths`
    returned), else None (no watchlist: the notebook says so). Only checks that the file
    exists; :meth:`flowtools.analyses.watchlist.Watchlist.load` reads it."""
    if watchlist is not None:
        return os.fspath(watchlist)
    if "://" in str(source):
        return None
    found = Path(source) / "watchlist.txt"
    return os.fspath(found) if found.is_file() else None


def read_report_payload(report: Any) -> dict[str, Any]:
    """The read report as the small JSON document :data:`READ_REPORT_MIME` carries: the
    counts, the warning lines (one per problem file, as every command prints them) and
    the one-line summary. Not the per-file list: a year of logs is 100,000 files."""
    return {"source": report.source, "window": report.window, "files_found": report.files_found,
            "files_pruned": report.files_pruned, "files_read": report.files_read,
            "files_skipped": report.files_skipped, "records": report.records,
            "lines_skipped": report.lines_skipped, "warnings": report.warning_lines(),
            "summary": report.summary_line()}


def show_read_report(report: Any) -> None:
    """Show a :class:`~flowtools.ReadReport` in a notebook: the warning lines then the
    summary line as text, with the same report as :data:`READ_REPORT_MIME` JSON in the
    same output (Jupyter shows the text; ``flowtools report`` reads the JSON). Outside
    IPython the text is printed."""
    payload = read_report_payload(report)
    text = "\n".join([*payload["warnings"], payload["summary"]])
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - ipykernel is a dependency
        get_ipython = None
    if get_ipython is None or get_ipython() is None:
        print(text)
        return
    display({"text/plain": text, READ_REPORT_MIME: payload}, raw=True)
