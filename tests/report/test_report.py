"""`flowtools report` without a browser: one self-contained file, plotly.js once, code
hidden, user-controlled strings escaped; parameters, kernel and errors of the renderer."""

from __future__ import annotations

import gzip
import html
import json
import re
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from flowlog_files import SAMPLES, daily_key, write_log

from flowtools.cli import main
from flowtools.errors import UsageError
from flowtools.report import READ_REPORT_MIME, render
from flowtools.report.render import ReportError, export_html, inject_parameters, remote_references


class _Page(HTMLParser):
    """An independent reading of a page: URL-bearing attributes, inline scripts, ids, meta."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.scripts: list[str] = []
        self.script_srcs: list[str] = []
        self.ids: set[str] = set()
        self.meta: dict[str, str] = {}
        self.styles: list[str] = []
        self.handlers: list[tuple[str, str, str]] = []  # event-handler attributes: (tag, name, value)
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        for k, v in attrs:
            if v and k in ("src", "href", "srcset", "action", "data", "poster", "xlink:href"):
                self.urls.append((tag, k, v))
            if k == "id" and v:
                self.ids.add(v)
            if k == "style" and v:
                self.styles.append(v)
            if k.startswith("on"):
                self.handlers.append((tag, k, v or ""))
        if tag == "meta" and "http-equiv" in a:
            self.meta[a["http-equiv"].lower()] = a.get("content", "")
        if tag == "script" and a.get("src"):
            self.script_srcs.append(a["src"])
        if tag in ("script", "style"):
            self._in = tag
            if tag == "script":
                self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts[-1] += data
        elif self._in == "style":
            self.styles.append(data)


def parse(text: str) -> _Page:
    page = _Page()
    page.feed(text)
    return page


# -- the report on the sample ---------------------------------------------------------------

def test_one_self_contained_file_with_plotly_once_and_code_hidden(sample_report):
    text = sample_report.text
    page = parse(text)
    remote = [u for u in page.urls if re.match(r"(?i)\s*([a-z][a-z0-9+.-]*:)?//", u[2])]
    assert remote == []  # no CDN, no remote script, stylesheet, image or link
    assert page.script_srcs == []  # every script inline
    assert not any(re.search(r"(?i)(url\(|@import)\s*['\"]?\s*(https?:)?//", s) for s in page.styles)
    assert "default-src 'none'" in page.meta["content-security-policy"]  # the browser loads nothing either
    bundles = [s for s in page.scripts if len(s) > 1_000_000]
    assert len(bundles) == 1 and len(re.findall(r"plotly\.js v\d+\.\d+\.\d+", text)) == 1  # plotly.js exactly once
    assert "mathjax" not in " ".join(page.script_srcs).lower()
    assert "import flowtools" not in text and "internet_exposure(" not in text  # code hidden
    figures = int(re.search(r"(\d+) figure\(s\)", sample_report.stderr).group(1))
    assert figures >= 4 and text.count('class="plotly-graph-div"') == figures
    assert "findings" in page.ids


BAD_KEY = daily_key("111111111111", "us-east-1", ts="20261120T1005Z", flow_log="fl-0badf11e")


def test_the_cli_prints_the_read_report_and_where_the_report_is(tainted_report, tainted_options):
    # tainted_report is `python -m flowtools.cli report` run as a process on the sample plus a corrupt object
    bad_key = tainted_options["bad_key"]
    assert tainted_report.stdout.strip() == str(tainted_report.path.resolve())  # stdout: where it is
    lines = tainted_report.stderr.strip().splitlines()
    assert lines[0].startswith("flowtools report: running 02_internet_exposure")
    assert re.fullmatch(rf"warning: {re.escape(bad_key)}: skipped: .+", lines[1])  # the read report, from the kernel
    assert re.fullmatch(r"flowtools: \d+ file\(s\) read, 1 skipped, [1-9]\d* outside the window; [1-9]\d* "
                        r"record\(s\); 0 line\(s\) skipped", lines[2])
    assert re.fullmatch(r"flowtools report: wrote .*exposure report\.html \(\d+\.\d MB, \d+ figure\(s\)\) in "
                        r"\d+\.\d s", lines[3]) and len(lines) == 4
    assert "WARNING" not in tainted_report.stderr and "Traceback" not in tainted_report.stderr  # no kernel chatter
    page = tainted_report.text
    start = tainted_options["window"][0].replace("Z", ":00Z")
    assert f"[{start}" in page  # the window it covers
    assert bad_key in page and READ_REPORT_MIME not in page  # the warning's text is shown; the JSON is not


def test_an_empty_folder_is_an_error_before_any_kernel_starts(tmp_path, capsys, monkeypatch):
    def no_kernel(*args, **kwargs):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(render, "execute", no_kernel)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.txt").write_text("not a flow log")
    assert main(["report", str(tmp_path / "empty"), "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"warning: {tmp_path / 'empty'}: no flow-log files found: 1 file(s) ignored because their "
                   "names do not follow AWS's pattern {account}_vpcflowlogs_{region}_{id}_{time}_{hash}.log.gz "
                   "(e.g. README.txt); read them anyway with --any-name (any_name=True)",
                   "flowtools: 0 file(s) read, 0 skipped, 0 outside the window; 0 record(s); 0 line(s) skipped",
                   f"flowtools: error: no flow-log records in {tmp_path / 'empty'} for the window [-inf, +inf); "
                   "nothing to report"]
    # files outside the window: pruned by name, still before a kernel starts
    source = tmp_path / "logs"
    write_log(source, daily_key(ts="20261120T1000Z"), ["2 123456789010 eni-1 1.2.3.4 10.0.0.1 443 80 6 1 40 "
                                                        "1794391200 1794391260 ACCEPT OK"])
    assert main(["report", str(source), "--out", str(tmp_path / "r.html"), "--start", "2030-01-01",
                 "--end", "2030-01-02"]) == 1
    err = capsys.readouterr().err
    assert "1 outside the window; 0 record(s)" in err
    assert "no files overlap the window [2030-01-01T00:00:00Z, 2030-01-02T00:00:00Z)" in err  # and the span
    assert "no flow-log records in" in err and "[2030-01-01T00:00:00Z, 2030-01-02T00:00:00Z); nothing to report" in err
    assert not (tmp_path / "r.html").exists()


@pytest.fixture(scope="module")
def only_a_bad_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("only-a-bad-file")
    (root / BAD_KEY).parent.mkdir(parents=True)
    (root / BAD_KEY).write_bytes(b"\x1f\x8b\x08\x00 truncated")
    return root


def test_no_records_after_reading_stops_after_the_loading_cell(only_a_bad_file, tmp_path, capsys):
    assert main(["report", str(only_a_bad_file), "--out", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("flowtools report: running 02_internet_exposure")
    assert re.fullmatch(rf"warning: {re.escape(BAD_KEY)}: skipped: .+", err[1])  # from the kernel
    assert err[2:] == ["flowtools: 0 file(s) read, 1 skipped, 0 outside the window; 0 record(s); 0 line(s) skipped",
                       f"flowtools: error: no flow-log records in {only_a_bad_file} for the window [-inf, +inf); "
                       "nothing to report"]
    assert not (tmp_path / "r.html").exists()


def test_a_strict_read_failure_is_an_error_naming_the_file(only_a_bad_file, tmp_path, capsys):
    assert main(["report", str(only_a_bad_file), "--out", str(tmp_path / "r.html"), "--strict"]) == 1
    err = capsys.readouterr().err
    assert re.search(rf"flowtools: error: 02_internet_exposure\.ipynb: a cell failed .*ReadError: "
                     rf"{re.escape(BAD_KEY)}: skipped: ", err)
    assert not (tmp_path / "r.html").exists()


def _sample_truth() -> dict:
    return json.loads((SAMPLES / "truth.json").read_text(encoding="utf-8"))


def test_the_read_report_of_the_sample_is_on_stderr(sample_report):
    # every line after each file's header, read with gzip directly (not with flowtools)
    records = sum(gzip.decompress(p.read_bytes()).count(b"\n") - 1 for p in SAMPLES.rglob("*.log.gz"))
    assert re.search(rf"^flowtools: \d+ file\(s\) read, 0 skipped, 0 outside the window; {records} record\(s\); "
                     r"0 line\(s\) skipped$", sample_report.stderr, re.MULTILINE)  # the whole sample
    assert "warning:" not in sample_report.stderr


def test_report_size_and_time_on_the_sample(sample_report):
    size = sample_report.path.stat().st_size
    print(f"\nsample report: {size / 1e6:.1f} MB in {sample_report.seconds:.1f} s ({sample_report.path})")
    assert 1_000_000 < size < 10_000_000  # plotly.js (~4.7 MB) once, plus the data of a day


def test_the_report_holds_the_findings_and_the_method_comparison(sample_report):
    text = sample_report.text
    table = text[text.index('<table id="findings">'):]
    table = table[:table.index("</table>")]
    rows = table.count("<tr>") - 1
    truth = _sample_truth()
    # the sample's ground truth: exposed, reachable, blocked (the single-peer service included)
    assert rows == len(truth["exposure"]) + len(truth["single_peer"])
    assert "TCP SYN from internet peers accepted, SYN-ACK sent" in table  # evidence
    assert f"{len(truth['not_exposure'])} false positives" in text  # the naive reading's (truth's not_exposure)
    assert "configured" in text and "sandbox-1" in text  # security groups open, nothing observed


def test_strings_from_the_inventory_are_escaped(tainted_report, tainted_names):
    import plotly.io._json as plotly_json

    text = tainted_report.text
    for markup in tainted_names.values():
        assert markup not in text  # never raw: not in the HTML, not in plotly's JSON
        assert html.escape(markup, quote=False) in text or html.escape(markup) in text  # shown as text
    label = html.escape(tainted_names["web-1"], quote=False)  # what plotly gets, and draws as text
    assert plotly_json.to_json_plotly(label).strip('"') in text
    page = parse(text)
    assert not [u for u in page.urls if u[2] == "x"]  # <img src=x> never became an element
    assert [h for h in page.handlers if h != ("input", "oninput", "flowtoolsFilter(this)")] == []
    assert not any(s.strip() == "alert(1)" for s in page.scripts)


def _table(text: str, ident: str) -> str:
    table = text[text.index(f'<table id="{ident}">'):]
    return table[:table.index("</table>")]


def test_the_sample_report_starts_with_the_summary_and_what_needs_action(sample_report):
    text = sample_report.text
    truth = _sample_truth()
    assert text.index("Findings by risk and status") < text.index('id="needs-action"') < text.index('id="findings"')
    summary = _table(text, "risk-summary")
    totals = {m.group(1): int(m.group(2)) for m in re.finditer(r"<tr><td[^>]*>(\w+)</td>(?:<td[^>]*>\d+</td>)*"
                                                                   r"<td[^>]*>(\d+)</td></tr>", summary)}
    assert list(totals) == ["critical", "high", "medium", "low"]
    findings = len(truth["exposure"]) + len(truth["single_peer"]) + len(truth["configured"])
    assert sum(totals.values()) == findings  # every finding counted once
    action = _table(text, "needs-action")
    assert action.count("<tr>") - 1 == min(10, totals["critical"] + totals["high"])  # the default top 10
    assert "bastion" in action and "status-critical" in action and "status-low" not in action
    assert "nothing to compare" in text  # no --previous: the changes section says so


def test_previous_findings_show_what_changed_and_param_sets_a_notebook_parameter(tainted_report, tainted_names,
                                                                                 tainted_options):
    text = tainted_report.text
    assert _table(text, "needs-action").count("<tr>") - 1 == tainted_options["action_rows"]  # --param
    assert re.search(r"What changed since \S*findings\.json: [1-9]\d* new, 1 changed, 1 gone", text)
    assert "no longer seen (was exposed)" in text and tainted_options["gone"]["interface_id"] in text
    assert "status reachable -&gt; exposed; risk high -&gt; critical" in text  # the bastion's SSH: changed
    assert html.escape(tainted_names["bastion"], quote=False) in text  # the name of the after side, escaped


@pytest.mark.parametrize(("args", "message"), [
    (["--param", "nothing=1"], "does not declare 'nothing' in its parameters cell (it declares action_rows, end, "),
    (["--param", "start=2026-11-20"], "--param start: set it with --start"),
    (["--param", "action_rows"], "use NAME=VALUE"),
    (["--notebook", "03_traffic_overview", "--previous", str(SAMPLES / "truth.json")],
     "--previous: 03_traffic_overview.ipynb does not declare a parameter 'previous'"),
    (["--previous", str(SAMPLES / "truth.json")], None),
])
def test_bad_params_are_usage_errors_before_any_kernel_starts(args, message, tmp_path, capsys, monkeypatch):
    def no_kernel(*a, **kw):
        raise AssertionError("a kernel was started")

    monkeypatch.setattr(render, "execute", no_kernel)
    code = main(["report", str(SAMPLES), "--out", str(tmp_path / "r.html"), *args])
    err = capsys.readouterr().err
    if message is None:  # truth.json is not a findings array: the file is named, exit 1
        assert code == 1 and f"{SAMPLES / 'truth.json'}: not a JSON array of findings" in err
    else:
        assert code == 2 and message in err
    assert not (tmp_path / "r.html").exists()


def test_param_values_are_json_when_they_parse_else_strings():
    declared = {"n", "flag", "names", "every", "none"}
    got = render.parse_parameters(["n=5", "flag=true", 'names=["a", "b"]', "every=1h", "none=null", "n=7"], declared)
    assert got == {"n": 7, "flag": True, "names": ["a", "b"], "every": "1h", "none": None}


# -- the renderer -----------------------------------------------------------------------------

def test_remote_references_finds_what_a_browser_would_fetch():
    page = """<html><head><link rel="stylesheet" href="https://cdn.example/x.css">
    <script src="//cdn.example/require.js"></script><style>@import "https://f.example/a.css";
    .a { background: url( 'http://i.example/b.png') }</style></head><body>
    <img srcset="a.png 1x, https://i.example/c.png 2x"><a href="#local">x</a><img src="data:image/png;base64,AA">
    <div style="background:url(https://i.example/d.png)"></div>
    <script>var tiles = "https://tile.example/{z}/{x}/{y}.png"; // text in a script is not a reference</script>
    </body></html>"""
    found = remote_references(page)
    assert len(found) == 6, found
    assert not any("tile.example" in f or "#local" in f or "data:" in f for f in found)


def _notebook(*sources: str, parameters: str | None = 'source = None\nengine = "duckdb"\n') -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_markdown_cell("# t")]
    if parameters is not None:
        cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    cells += [nbformat.v4.new_code_cell(s) for s in sources]
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                          "display_name": "Python 3"}})


def test_parameters_are_injected_after_the_parameters_cell_papermill_style():
    nb = _notebook("x = 1")
    inject_parameters(nb, {"source": "/data/it's here", "engine": "polars", "start": None})
    inject_parameters(nb, {"source": "/data/again"})  # a second injection replaces the first
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert tags == [[], ["parameters"], ["injected-parameters"], []]
    assert nb.cells[2].source.splitlines()[1:] == ["source = '/data/again'"]
    inject_parameters(nb, {"source": "/data/it's here", "engine": "polars", "start": None})
    namespace: dict = {}
    exec(nb.cells[2].source, namespace)  # noqa: S102 - the injected cell is valid Python
    assert namespace["source"] == "/data/it's here" and namespace["engine"] == "polars"
    assert "start" not in namespace  # unset and not declared: left out


def test_parameters_the_notebook_does_not_declare_or_that_are_not_literals_are_usage_errors():
    with pytest.raises(UsageError, match="does not declare inventory"):
        inject_parameters(_notebook("x = 1"), {"inventory": "/inv"})
    with pytest.raises(UsageError, match="not a Python literal"):
        inject_parameters(_notebook("x = 1"), {"source": object()})
    nb = _notebook("x = 1", parameters=None)  # no parameters cell: injected at the top
    inject_parameters(nb, {"source": "/s"})
    assert nb.cells[0].metadata["tags"] == ["injected-parameters"]


def test_the_kernel_is_this_python_whatever_kernel_specs_are_installed(tmp_path, monkeypatch):
    decoy = tmp_path / "jupyter" / "kernels" / "python3"
    decoy.mkdir(parents=True)
    (decoy / "kernel.json").write_text('{"argv": ["/bin/false", "{connection_file}"], "display_name": "decoy", '
                                       '"language": "python"}')
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))  # searched before every other kernel folder
    path = tmp_path / "probe.ipynb"
    nbformat.write(_notebook("import os, sys; print(sys.executable); print(os.environ['PLOTLY_RENDERER'])",
                             "print(source)"), path)
    nb = render.execute(path, {"source": "/s"}, cwd=tmp_path)
    out = [o.text.strip() for c in nb.cells for o in c.get("outputs", [])]
    assert out == [f"{sys.executable}\nnotebook", "/s"]


def test_a_failing_cell_names_the_notebook_and_the_error(tmp_path):
    path = tmp_path / "broken.ipynb"
    nbformat.write(_notebook("raise ValueError('no such thing')"), path)
    with pytest.raises(ReportError, match=r"broken\.ipynb: a cell failed \(the cell starting \"raise ValueError"
                                          r"\('no such thing'\)\"\): ValueError: no such thing"):
        render.report(tmp_path / "out.html", parameters={}, notebook=path)
    assert not (tmp_path / "out.html").exists()  # nothing half-written
    nbformat.write(_notebook("from flowtools.errors import UsageError\nraise UsageError('bad engine')"), path)
    with pytest.raises(UsageError, match="bad engine"):
        render.execute(path, {}, cwd=tmp_path)


def test_the_read_report_is_taken_out_of_the_outputs_and_its_text_stays():
    nb = _notebook()
    payload = {"source": "/logs", "window": "[-inf, +inf)", "records": 0, "warnings": ["warning: a.log.gz: skipped"],
               "summary": "flowtools: 0 file(s) read"}
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={
        "text/plain": "warning: a.log.gz: skipped\nflowtools: 0 file(s) read", READ_REPORT_MIME: payload})]
    assert render.read_report(nb, remove=False) == payload
    page = export_html(nb, title="t")
    assert "warning: a.log.gz: skipped" in page and READ_REPORT_MIME not in page and '"records"' not in page
    assert render.read_report(nb) is None  # export took it out
    assert render.read_report(_notebook()) is None  # a notebook that shows none


def test_export_refuses_a_page_with_a_remote_reference_and_drops_plotlys_mathjax_loader():
    nb = _notebook()
    mathjax = ('<script type="text/javascript" src="https://cdnjs.cloudflare.com/ajax/libs/mathjax/3.2.2/es5/'
               'tex-svg.min.js"></script>')
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"text/html": mathjax + "<div>fig</div>"})]
    page = export_html(nb, title="t")
    assert "mathjax" not in page.lower() and "<div>fig</div>" in page
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data",
                                                  data={"text/html": '<img src="https://example.com/x.png">'})]
    with pytest.raises(ReportError, match="not be self-contained.*example.com"):
        export_html(nb, title="t")


# -- the command line -------------------------------------------------------------------------

@pytest.mark.parametrize(("args", "code", "message"), [
    (["--start", "yesterday-ish"], 2, "bad time value"),
    (["--start", "2026-11-21", "--end", "2026-11-20"], 2, "empty time window"),
    (["--notebook", "99_nothing"], 2, "notebook '99_nothing' not found"),
    (["--inventory", "/nonexistent/inventory"], 1, "inventory not found"),
    (["--ip-ranges", "/nonexistent/ip-ranges.json"], 1, "ip-ranges file not found"),
])
def test_cli_errors_come_before_any_kernel_starts(args, code, message, tmp_path, capsys):
    assert main(["report", str(SAMPLES), "--out", str(tmp_path / "r.html"), *args]) == code
    assert message in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


def test_cli_source_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "r.html")]) == 1
    assert "SOURCE not found" in capsys.readouterr().err
    assert main(["report", "s3://bucket/prefix", "--out", str(tmp_path / "r.html")]) == 2
    assert "needs --start/--end" in capsys.readouterr().err


def test_the_watchlist_of_a_notebook_is_the_parameter_else_sources_watchlist_txt(tmp_path):
    from flowtools.report import watchlist_path

    assert watchlist_path(SAMPLES) == str(SAMPLES / "watchlist.txt")  # the sample has one
    assert watchlist_path(tmp_path) is None  # a folder without one: the notebook says so
    assert watchlist_path(tmp_path, "/lists/intel.txt") == "/lists/intel.txt"  # the parameter wins
    assert watchlist_path("s3://bucket/prefix") is None
