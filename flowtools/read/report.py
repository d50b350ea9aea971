"""The read report: what was found, read, skipped, and why. Nothing is lost silently."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flowtools.layout import FlowLogObject, Selection
    from flowtools.window import Window

#: Bad lines kept per file in the report (all are counted; the first ones are listed).
BAD_LINES_KEPT_PER_FILE = 100


@dataclass
class BadLine:
    """One skipped line: file (key relative to SOURCE), 1-based line number, reason."""

    file: str
    line: int
    reason: str


@dataclass
class FileIssue:
    """A problem with one file: skipped whole (``skipped``) or read in part."""

    file: str
    reason: str
    skipped: bool
    lines_skipped: int = 0
    records_kept: int = 0


@dataclass
class FileRead:
    """One file that was read: its format (field names), records parsed, layout."""

    file: str
    flow_log_id: str | None
    account_id: str | None
    region: str | None
    layout: str | None
    format: str  # "text" | "parquet" | "cloudwatch"
    fields: tuple[str, ...]
    records: int
    bytes: int


@dataclass
class ReadReport:
    """What a load found and did: files read/skipped, records, bad lines with reasons."""

    source: str
    window: str
    files_found: int = 0
    #: files not opened: the sum of the three counts below
    files_pruned: int = 0
    #: files of the selected accounts and regions that cannot overlap the window
    files_pruned_window: int = 0
    files_excluded_accounts: int = 0  # by the accounts filter (--accounts)
    files_excluded_regions: int = 0  # by the regions filter (--regions)
    #: listed files that are not flow logs by their names (an inventory, a README)
    files_ignored: int = 0
    records: int = 0  # records in the result (in the window)
    records_parsed: int = 0  # records parsed from the files opened (before the window filter)
    files: list[FileRead] = field(default_factory=list)
    issues: list[FileIssue] = field(default_factory=list)
    bad_lines: list[BadLine] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Remote SOURCEs: how the objects were fetched (mode, list requests, downloads,
    #: cache hits, CloudWatch streams and events); None for local folders.
    transfer: dict[str, Any] | None = None

    @property
    def files_read(self) -> int:
        return len(self.files)

    @property
    def files_skipped(self) -> int:
        return sum(1 for i in self.issues if i.skipped)

    @property
    def lines_skipped(self) -> int:
        return sum(i.lines_skipped for i in self.issues)

    @property
    def bytes_read(self) -> int:
        return sum(f.bytes for f in self.files)

    @property
    def ok(self) -> bool:
        """True when no file or line was skipped."""
        return not self.issues

    def add_issue(self, issue: FileIssue, bad_lines: Sequence[BadLine] = ()) -> None:
        self.issues.append(issue)
        self.bad_lines.extend(bad_lines[:BAD_LINES_KEPT_PER_FILE])

    def warning_lines(self) -> list[str]:
        """One line per problem file: key, lines skipped, first line numbers and reasons."""
        out = []
        by_file: dict[str, list[BadLine]] = {}
        for b in self.bad_lines:
            by_file.setdefault(b.file, []).append(b)
        for i in self.issues:
            if i.skipped:
                out.append(f"warning: {i.file}: skipped: {i.reason}")
                continue
            if not i.lines_skipped:  # read whole, with a problem (a .gz that is plain text)
                out.append(f"warning: {i.file}: {i.reason} ({i.records_kept} record(s) read)")
                continue
            first = by_file.get(i.file, [])[:3]
            detail = "; ".join(f"line {b.line}: {b.reason}" for b in first)
            more = "" if i.lines_skipped <= len(first) else f"; ... ({i.lines_skipped - len(first)} more)"
            text = f"warning: {i.file}: {i.lines_skipped} line(s) skipped"
            if i.reason:
                text += f" ({i.reason})"
            if detail:
                text += f": {detail}{more}"
            out.append(text)
        out.extend(f"warning: {w}" for w in self.warnings)
        return out

    def record_selection(self, objects: Sequence[FlowLogObject], sel: Selection, window: Window, *,
                         any_name: bool = False) -> None:
        """Count what discovery and selection left out, and warn when that is everything:
        no flow-log files (saying what was ignored and why), a filter matching none of them
        (listing what exists), or a window outside the files' time span."""
        from flowtools.layout import ANY_NAME_SUFFIXES, time_span
        from flowtools.window import iso

        ignored = getattr(objects, "ignored", None)
        self.files_found = len(objects)
        self.files_ignored = ignored.count if ignored is not None else 0
        self.files_pruned_window = len(sel.pruned_window)
        self.files_excluded_accounts = len(sel.excluded_accounts)
        self.files_excluded_regions = len(sel.excluded_regions)
        self.files_pruned = self.files_pruned_window + self.files_excluded_accounts + self.files_excluded_regions
        n = len(objects)
        if not objects:
            text = f"{self.source}: no flow-log files found"
            if ignored is None or not ignored.count:
                text += " (no files listed)"
            elif ignored.candidates:
                others = ignored.count - ignored.candidates
                text += (f": {ignored.candidates} file(s) ignored because their names do not follow AWS's pattern "
                         "{account}_vpcflowlogs_{region}_{id}_{time}_{hash}.log.gz "
                         f"(e.g. {', '.join(ignored.examples)}); read them anyway with --any-name "
                         "(any_name=True)")
                if others:
                    text += f"; {others} other file(s) ignored"
            else:
                text += f" ({ignored.count} other file(s) ignored: {ignored.suffixes()}; e.g. {', '.join(ignored.examples)})"
                if any_name:
                    text += f"; --any-name reads only names ending in {', '.join(ANY_NAME_SUFFIXES)}"
            self.warnings.append(text)
            return
        for option, matched, wanted, found in (
            ("--accounts", sel.matched_accounts, sel.accounts, {o.account_id for o in objects}),
            ("--regions", sel.matched_regions, sel.regions, {o.region for o in objects}),
        ):
            if matched == 0 and wanted is not None:  # a filter given (else matched is None)
                name = option.removeprefix("--")
                self.warnings.append(f"{option} {','.join(wanted)} matched none of the {n} flow-log files; "
                                     f"{name} found: {', '.join(sorted(f for f in found if f)) or '-'}")
        if not sel.kept and sel.pruned_window and not window.is_open:
            span = time_span(sel.pruned_window)
            of = " of the selected accounts and regions" if sel.accounts or sel.regions else ""
            text = f"no files overlap the window {window}"
            if span is not None:
                text += f"; the flow-log files{of} found span {iso(span[0])} .. {iso(span[1])}"
            self.warnings.append(text)

    def selection_text(self) -> str:
        """``3 outside the window, 2 excluded by --regions``: the files not opened, by cause."""
        return selection_text({k: getattr(self, k) for k in
                               ("files_pruned_window", "files_excluded_accounts", "files_excluded_regions")})

    def summary_line(self) -> str:
        return (
            f"flowtools: {self.files_read} file(s) read, {self.files_skipped} skipped, "
            f"{self.selection_text()}; {self.records} record(s); "
            f"{self.lines_skipped} line(s) skipped"
            + (f"; {self.transfer['summary']}" if self.transfer and self.transfer.get("summary") else "")
        )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(
            files_read=self.files_read,
            files_skipped=self.files_skipped,
            lines_skipped=self.lines_skipped,
            bytes_read=self.bytes_read,
        )
        for f in d["files"]:
            f["fields"] = list(f["fields"])
        return d


def selection_text(report: dict[str, Any]) -> str:
    """``3 outside the window, 2 excluded by --regions`` from a report's dict
    (:meth:`ReadReport.to_dict`, or ``flowtools info``'s JSON)."""
    text = f"{report.get('files_pruned_window', 0)} outside the window"
    for key, option in (("files_excluded_accounts", "--accounts"), ("files_excluded_regions", "--regions")):
        if report.get(key):
            text += f", {report[key]} excluded by {option}"
    return text
