"""Notebook -> one self-contained HTML report.

:func:`report` executes a curated notebook (``02_internet_exposure`` by default) with
parameters, papermill-style (a cell tagged ``injected-parameters`` right after the cell
tagged ``parameters``), with nbclient on the Python of this environment, and exports it
with nbconvert to one HTML file that works offline:

* code hidden (``exclude_input``);
* plotly.js embedded once: the kernel uses plotly's ``notebook`` renderer (the default
  renderer of a headless kernel, ``plotly_mimetype``, produces output nbconvert silently
  drops), which inlines plotly.js with the first figure;
* no CDN or remote URL: nbconvert's ``basic`` template (no MathJax, no require.js) inside
  a page of our own, the MathJax loader plotly adds to every figure removed, a
  Content-Security-Policy that lets the page load nothing from the network, and a final
  check that fails (:class:`ReportError`) rather than write a page with a remote reference;
* strings from logs and the inventory are escaped by the figure and table functions that
  display them (:mod:`flowtools.report.figures`).

The read report comes back from the kernel: the notebook's loading step displays it as
:data:`~flowtools.report.READ_REPORT_MIME` JSON next to its text
(:func:`flowtools.report.show_read_report`); :func:`read_report` takes it out of the
executed notebook (the page keeps the text) and :func:`report` returns it, so the CLI
prints the warnings and the summary like every other command. A window with no records
is not a report: :func:`report` stops after the loading cell (:class:`NothingToReport`),
and :func:`preflight` finds an empty local SOURCE before a kernel starts.
"""

from __future__ import annotations

import ast
import html
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

from flowtools.errors import FlowtoolsError, UsageError
from flowtools.report import READ_REPORT_MIME

__all__ = ["NothingToReport", "ReportError", "ReportResult", "declared_parameters", "execute", "export_html",
           "notebook_path", "notebooks", "parse_parameters", "preflight", "read_report", "remote_references", "report"]

DEFAULT_NOTEBOOK = "02_internet_exposure"
#: Seconds one cell may run before the report gives up (a month of logs can take minutes).
CELL_TIMEOUT = 1800
#: Tags of the parameters cell and of the cell :func:`execute` adds after it (papermill's names).
PARAMETERS_TAG, INJECTED_TAG = "parameters", "injected-parameters"
#: plotly's HTML renderers put this loader of MathJax from a CDN before every figure
#: (plotly/io/_base_renderers.py: ``include_mathjax="cdn"``, not configurable). Reports
#: typeset no LaTeX: it is removed.
_PLOTLY_MATHJAX = re.compile(r"<script[^>]*\ssrc=[\"']https?://[^\"']*mathjax[^\"']*[\"'][^>]*>\s*</script>",
                             re.IGNORECASE)
#: What the page may load: nothing from the network; inline scripts and styles (plotly.js
#: and the table filter are inline), images and fonts only as data: URIs.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                           "img-src data: blob:; font-src data:")


class ReportError(FlowtoolsError):
    """A notebook failed while making a report, or the report would not be self-contained."""


class NothingToReport(ReportError):
    """The window holds no flow-log records: no report is written. ``read_report`` is the
    read report (:func:`flowtools.report.read_report_payload`) that says why."""

    def __init__(self, read_report: dict[str, Any]) -> None:
        self.read_report = read_report
        super().__init__(f"no flow-log records in {read_report['source']} for the window {read_report['window']}; "
                         f"nothing to report")


# -- the read report ------------------------------------------------------------------------

def _read_report_outputs(cells: Any) -> list[Any]:
    return [o for cell in cells for o in cell.get("outputs", []) if READ_REPORT_MIME in o.get("data", {})]


def read_report(nb: Any, *, remove: bool = True) -> dict[str, Any] | None:
    """The read report an executed notebook displayed (the last one: a notebook that loads
    twice reports its latest load), or None when it displayed none (a notebook that does
    not load through :func:`flowtools.report.show_read_report`). ``remove`` drops the JSON
    from the outputs; their text stays."""
    found = _read_report_outputs(nb.cells)
    payload = dict(found[-1]["data"][READ_REPORT_MIME]) if found else None
    if remove:
        for output in found:
            del output["data"][READ_REPORT_MIME]
    return payload


def preflight(source: str | os.PathLike, window: Any, *, accounts: Any = None, regions: Any = None) -> None:
    """Before a kernel starts: for a local SOURCE, list and prune it as :func:`flowtools.load`
    first does (a folder walk and file names; no file is opened) and raise
    :class:`NothingToReport` when no flow-log file can hold records of ``window``.

    Remote SOURCEs are not listed here (listing twice costs requests): their empty
    windows are found by the kernel's load, after the loading cell."""
    if "://" in str(source):
        return
    from flowtools.layout import select_explained
    from flowtools.read.report import ReadReport
    from flowtools.report import read_report_payload
    from flowtools.sources import open_source

    def names(value: Any) -> list[str] | None:  # "a,b" (the CLI's form) or a list
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        return list(value) if value else None

    store, objects, _ = open_source(source, window=window)
    store.close()
    selection = select_explained(objects, window, accounts=names(accounts), regions=names(regions))
    if selection.kept:
        return
    listed = ReadReport(source=str(source), window=str(window))
    listed.record_selection(objects, selection, window)  # the same warnings as a load's
    raise NothingToReport(read_report_payload(listed))


# -- finding the notebooks ------------------------------------------------------------------

def _notebook_dirs() -> list[Path]:
    """Where the notebooks are: the package's copy (a wheel: the build copies
    ``notebooks/`` into ``flowtools/notebooks``), then the checkout's ``notebooks/`` (an
    editable install; the one source)."""
    dirs = []
    packaged = resources.files("flowtools").joinpath("notebooks")
    if packaged.is_dir():
        dirs.append(Path(str(packaged)))
    dirs.append(Path(__file__).resolve().parents[2] / "notebooks")
    return dirs


def notebooks() -> list[Path]:
    """The curated notebooks (``NN_name.ipynb``), in order."""
    for d in _notebook_dirs():
        found = sorted(d.glob("[0-9][0-9]_*.ipynb"))
        if found:
            return found
    return []


def notebook_path(name: str | os.PathLike) -> Path:
    """A curated notebook by name (``02_internet_exposure``, with or without ``.ipynb``)
    or the path of any notebook."""
    p = Path(name)
    if p.suffix == ".ipynb" and p.exists():
        return p
    stem = p.stem if p.suffix == ".ipynb" else str(name)
    for nb in notebooks():
        if nb.stem == stem:
            return nb
    known = ", ".join(n.stem for n in notebooks()) or "none found"
    raise UsageError(f"notebook {str(name)!r} not found; curated notebooks: {known}")


# -- executing ------------------------------------------------------------------------------

def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _declared(cell: Any) -> set[str]:
    """Names the parameters cell assigns."""
    try:
        tree = ast.parse(cell.source)
    except SyntaxError:
        return set()
    return {t.id for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)}


def declared_parameters(notebook: str | os.PathLike) -> set[str]:
    """The names a notebook's cell tagged ``parameters`` assigns (empty without one).
    Reads the file only (no kernel)."""
    import nbformat

    nb = nbformat.read(notebook_path(notebook), as_version=4)
    return next((_declared(c) for c in nb.cells if PARAMETERS_TAG in _tags(c)), set())


def parse_parameters(items: list[str] | None, declared: set[str], *, reserved: dict[str, str] | None = None,
                     notebook: str = "the notebook") -> dict[str, Any]:
    """``NAME=VALUE`` strings (``flowtools report --param``) as parameters: VALUE parsed as
    JSON when it parses (``5``, ``true``, ``null``, ``["a"]``, ``{"k": 1}``), else taken as
    a string (``1h``, ``i-0abc``). A NAME the notebook's parameters cell does not declare,
    a missing ``=`` and a NAME in ``reserved`` (a parameter an option sets: name -> the
    option) are :class:`UsageError`. A later NAME replaces an earlier one."""
    import json

    out: dict[str, Any] = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"--param {item!r}: use NAME=VALUE (e.g. --param action_rows=5)")
        if reserved and name in reserved:
            raise UsageError(f"--param {name}: set it with {reserved[name]}")
        if name not in declared:
            raise UsageError(f"--param {name}: {notebook} does not declare {name!r} in its parameters cell "
                             f"(it declares {', '.join(sorted(declared)) or 'nothing'})")
        try:
            out[name] = json.loads(text)
        except ValueError:
            out[name] = text
    return out


def inject_parameters(nb: Any, parameters: dict[str, Any]) -> None:
    """Add a cell tagged ``injected-parameters`` assigning ``parameters`` right after the
    cell tagged ``parameters`` (at the top when there is none), replacing an earlier
    injected cell, as papermill does. Values must be Python literals (str, numbers, bool,
    None, lists, dicts). A parameter the parameters cell does not declare is left out when
    it is unset (None, False, empty) and a :class:`UsageError` otherwise."""
    import nbformat

    nb.cells = [c for c in nb.cells if INJECTED_TAG not in _tags(c)]
    index = next((i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in _tags(c)), None)
    if index is not None:
        declared = _declared(nb.cells[index])
        parameters = {k: v for k, v in parameters.items() if k in declared or v not in (None, False, {}, [], "")}
        unknown = sorted(set(parameters) - declared)
        if unknown:
            raise UsageError(f"the notebook's parameters cell does not declare {', '.join(unknown)} "
                             f"(it declares {', '.join(sorted(declared)) or 'nothing'})")
    for k, v in parameters.items():
        try:
            literal = ast.literal_eval(repr(v)) == v  # only literals survive the round trip
        except (ValueError, SyntaxError):
            literal = False
        if not literal:
            raise UsageError(f"parameter {k}: {v!r} is not a Python literal (str, number, bool, None, list, dict)")
    source = "# Parameters injected by flowtools report\n" + "".join(f"{k} = {v!r}\n" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
    nb.cells.insert(0 if index is None else index + 1, cell)


def _kernel_manager_class() -> type:
    """A kernel manager that starts this Python (the environment flowtools runs in) for
    every notebook, whatever kernel specs are installed (a user-level ``python3`` spec may
    point at another Python without flowtools), with the kernel's messages encrypted
    (CurveZMQ) when pyzmq supports it."""
    import zmq
    from ipykernel.kernelspec import RESOURCES, get_kernel_dict
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class ThisPythonKernelManager(AsyncKernelManager):
        @property
        def kernel_spec(self) -> KernelSpec:
            return KernelSpec(resource_dir=RESOURCES, **get_kernel_dict())

        @default("transport_encryption")
        def _transport_encryption_default(self) -> str:
            return "auto" if zmq.has("curve") else "disabled"

    return ThisPythonKernelManager


def execute(notebook: str | os.PathLike, parameters: dict[str, Any] | None = None, *,
            cwd: str | os.PathLike | None = None, timeout: int = CELL_TIMEOUT, require_records: bool = False) -> Any:
    """Execute a notebook with ``parameters`` and return the executed ``NotebookNode``.

    The kernel is this Python (:func:`sys.executable`), started in ``cwd`` (default: the
    notebook's folder), with ``PLOTLY_RENDERER=notebook`` so that figures are HTML with
    plotly.js inlined once. A failing cell raises :class:`ReportError` naming the
    notebook, the cell and the error (a :class:`UsageError` in the notebook stays one).
    ``require_records``: when the loading cell displays a read report with no records,
    stop there (the kernel is shut down) and raise :class:`NothingToReport`.
    """
    import nbclient
    import nbformat

    path = notebook_path(notebook)
    nb = nbformat.read(path, as_version=4)
    inject_parameters(nb, parameters or {})

    def stop_when_empty(cell: Any, **_: Any) -> None:  # nbclient calls it after each cell, before its error check
        found = _read_report_outputs([cell])
        if require_records and found and not found[-1]["data"][READ_REPORT_MIME].get("records"):
            raise NothingToReport(dict(found[-1]["data"][READ_REPORT_MIME]))

    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     kernel_manager_class=_kernel_manager_class(),
                                     resources={"metadata": {"path": str(cwd or path.parent)}},
                                     on_cell_executed=stop_when_empty)
    env = {**os.environ, "PLOTLY_RENDERER": "notebook"}
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as kernel_log:
        try:
            client.execute(env=env, stderr=kernel_log)
        except nbclient.exceptions.CellExecutionError as e:
            cls = UsageError if e.ename == "UsageError" else ReportError
            failed = next((c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))),
                          None)
            where = f" (the cell starting {failed.source.strip().splitlines()[0][:60]!r})" if failed else ""
            raise cls(f"{path.name}: a cell failed{where}: {e.ename}: {e.evalue}") from None
        except (nbclient.exceptions.DeadKernelError, RuntimeError, TimeoutError) as e:
            kernel_log.seek(0)
            tail = "".join(kernel_log.readlines()[-20:]).strip()
            raise ReportError(f"{path.name}: the kernel ({sys.executable}) failed: {e}"
                              + (f"\n{tail}" if tail else "")) from None
    return nb


# -- exporting ------------------------------------------------------------------------------

class _References(HTMLParser):
    """Remote references of a page: URL attributes and CSS ``url()``/``@import``."""

    URL_ATTRIBUTES = frozenset({"src", "href", "srcset", "action", "formaction", "data", "poster", "background",
                                "xlink:href", "manifest", "ping"})
    REMOTE = re.compile(r"^\s*(?:[a-z][a-z0-9+.-]*:)?//", re.IGNORECASE)  # http://, https://, //host, ws://...
    CSS = re.compile(r"(?:url\(\s*[\"']?|@import\s+[\"']?)\s*((?:[a-z][a-z0-9+.-]*:)?//[^\"')\s]*)", re.IGNORECASE)

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if not value:
                continue
            if name in self.URL_ATTRIBUTES and any(self.REMOTE.match(v) for v in value.split(",")):
                self.found.append(f"<{tag} {name}={value!r}>")
            elif name == "style":
                self.found += [f"<{tag} style> {u}" for u in self.CSS.findall(value)]
        self._style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._style = False

    def handle_data(self, data: str) -> None:
        if self._style:
            self.found += [f"<style> {u}" for u in self.CSS.findall(data)]


def remote_references(page: str) -> list[str]:
    """Everything in ``page`` that a browser would fetch from the network or follow to
    another site: ``src``/``href``/... attributes with a scheme-qualified or protocol-relative
    URL and CSS ``url()``/``@import`` of one. Text inside scripts (plotly.js mentions tile
    servers it never loads for these charts) is not a reference."""
    parser = _References()
    parser.feed(page)
    parser.close()
    return parser.found


def _offline_outputs(nb: Any) -> None:
    """Remove the MathJax loader plotly adds to every figure and the machine-readable read
    report from the notebook's outputs."""
    read_report(nb)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "text/html" in data:
                text = data["text/html"]
                text = "".join(text) if isinstance(text, list) else text
                data["text/html"] = _PLOTLY_MATHJAX.sub("", text)


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="flowtools {version}">
<title>{title}</title>
<style>
body {{ font: 14px/1.45 -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1400px;
       padding: 16px 24px; color: #222; }}
h1, h2, h3 {{ font-weight: 600; }}
a.anchor-link {{ display: none; }}
table {{ border-collapse: collapse; }}
.jp-RenderedHTMLCommon, .jp-OutputArea-output, .output_html {{ max-width: 100%; overflow-x: auto; }}
th, td {{ padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: left; }}
pre {{ white-space: pre-wrap; }}
.jp-InputArea, .input, .prompt, .jp-InputPrompt, .jp-OutputPrompt {{ display: none; }}
footer {{ color: #777; font-size: 12px; margin-top: 32px; }}
</style>
</head>
<body>
{body}
<footer>Generated by flowtools {version} on {generated}; self-contained: it loads nothing from the network.</footer>
</body>
</html>
"""


def export_html(nb: Any, *, title: str) -> str:
    """One self-contained HTML page of an executed notebook's outputs (code hidden).

    Raises :class:`ReportError` when the page would still refer to a remote resource.
    """
    from nbconvert import HTMLExporter

    from flowtools import __version__

    _offline_outputs(nb)
    exporter = HTMLExporter(template_name="basic", exclude_input=True, exclude_input_prompt=True,
                            exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nb)
    page = _PAGE.format(title=html.escape(title), body=body, version=__version__, csp=CONTENT_SECURITY_POLICY,
                        generated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    remote = remote_references(page)
    if remote:
        raise ReportError(f"the report would not be self-contained: {len(remote)} remote reference(s), "
                          f"first {remote[0]}")
    return page


def figure_count(nb: Any) -> int:
    """How many plotly figures an executed notebook shows (HTML outputs with a plot div)."""
    return sum(1 for cell in nb.cells for o in cell.get("outputs", [])
               if 'class="plotly-graph-div"' in o.get("data", {}).get("text/html", ""))


@dataclass
class ReportResult:
    """What :func:`report` wrote: the file, its size, the time taken, the figure count and
    the read report."""

    path: Path
    bytes: int
    seconds: float
    figures: int
    #: What the notebook's load read (:func:`read_report`); None when it displayed none.
    read_report: dict[str, Any] | None = None


def report(out: str | os.PathLike, *, parameters: dict[str, Any], notebook: str | os.PathLike = DEFAULT_NOTEBOOK,
           title: str = "flowtools: internet exposure report") -> ReportResult:
    """Execute ``notebook`` with ``parameters`` and write the HTML report to ``out``.

    The notebook runs in ``out``'s folder: give absolute paths (the CLI does). The file is
    written whole or not at all (a temporary file renamed into place). When the notebook's
    load finds no records, nothing is written: :class:`NothingToReport` is raised right
    after the loading cell.
    """
    t = time.perf_counter()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    nb = execute(notebook, parameters, cwd=out.parent, require_records=True)
    read = read_report(nb)
    page = export_html(nb, title=title)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    return ReportResult(out, out.stat().st_size, time.perf_counter() - t, figure_count(nb), read)
