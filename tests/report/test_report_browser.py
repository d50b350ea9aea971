"""The report from `flowtools report` in a real browser (Debian's headless `chromium`,
installed by .ci/run; skipped elsewhere with a message, never skipped under CI=true).

The page is opened with the network off, over the DevTools protocol: every console
error, uncaught exception, failed or blocked load (Content-Security-Policy), network
request and JavaScript dialog (`alert`) is recorded.
"""

from __future__ import annotations

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: What the page shows once scripts ran: figures declared and drawn, the findings table,
#: the text plotly drew, a DOM marker that injected markup would set.
STATE = """(() => {
  const figures = Array.from(document.querySelectorAll('.plotly-graph-div'));
  const table = document.querySelector('table#findings');
  return {
    figures: figures.length,
    drawn: figures.filter(g => g._fullLayout && g.querySelector('svg.main-svg')
                              && g.querySelectorAll('.cartesianlayer .trace, .pielayer .trace').length > 0).length,
    mainSvgs: figures.map(g => g.querySelectorAll('svg.main-svg').length),
    rows: table ? table.querySelectorAll('tbody tr').length : -1,
    tableText: table ? table.textContent : '',
    svgText: figures.map(g => Array.from(g.querySelectorAll('text')).map(t => t.textContent).join('\\n')).join('\\n'),
    xss: document.body.dataset.xss || null,
    injected: document.querySelectorAll('.plotly-graph-div img, .plotly-graph-div script, table#findings img, '
                                        + 'table#findings script, table#findings svg').length,
  };
})()"""

FILTER = """(() => {
  const box = document.querySelector('.flowtools-table input[type=search]');
  box.value = 'web-2';
  box.dispatchEvent(new Event('input'));
  return Array.from(document.querySelectorAll('table#findings tbody tr')).filter(r => r.style.display !== 'none')
    .map(r => r.textContent);
})()"""


def _figures_in_output(stderr: str) -> int:
    m = re.search(r"(\d+) figure\(s\)", stderr)
    assert m, stderr
    return int(m.group(1))


def test_sample_report_renders_offline_without_errors(browser, sample_report, tmp_path):
    page = browser.open(sample_report.path.resolve().as_uri())
    figures = _figures_in_output(sample_report.stderr)  # the figures the notebook output holds
    assert figures >= 4
    state = browser.wait_for(f"(s => s.drawn >= {figures} ? s : null)({STATE})", timeout=30) or browser.evaluate(STATE)
    browser.pump(1.0)  # late errors

    assert page.errors == []
    assert page.remote_requests == []
    assert page.dialogs == []
    assert state["figures"] == figures and state["drawn"] == figures, state["mainSvgs"]
    assert all(n >= 1 for n in state["mainSvgs"])
    assert state["rows"] >= 30  # the sample's 39 findings (exposed, reachable, blocked)
    assert "exposed" in state["tableText"] and "web-1" in state["tableText"]
    # The sample's own markup-laden Name tag is drawn as text, once escaped (not bold, not "&lt;")
    assert '<b>legacy</b> "ftp"' in state["svgText"]
    assert "&lt;b&gt;" not in state["svgText"] + state["tableText"]

    visible = browser.evaluate(FILTER)
    assert visible and all("web-2" in row for row in visible) and len(visible) < state["rows"]

    shot = browser.screenshot(tmp_path / "exposure-report.png")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000
    print(f"screenshot: {shot}")


def test_markup_in_inventory_tags_runs_no_script(browser, tainted_report, tainted_names):
    page = browser.open(tainted_report.path.resolve().as_uri())
    state = browser.wait_for(f"(s => s.drawn >= 4 ? s : null)({STATE})", timeout=30) or browser.evaluate(STATE)
    browser.pump(1.0)

    assert page.dialogs == []  # no alert(1)
    assert state["xss"] is None  # no onerror / onload handler ran
    assert state["injected"] == 0  # no element made from a tag value
    assert page.errors == [] and page.remote_requests == []  # <img src=x> never became a request
    assert state["drawn"] == state["figures"] >= 4
    for name in tainted_names.values():  # shown as text, exactly
        assert name in state["tableText"]
    assert tainted_names["web-1"] in state["svgText"]


def test_the_browser_check_sees_errors_requests_and_dialogs(browser, tmp_path):
    """The harness itself: a page that does everything the report must not do."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom')</script><script>missing()</script>"
                   "<img src='https://example.com/x.png'><script>alert(1)</script></body></html>")
    page = browser.open(bad.as_uri())
    browser.pump(0.5)
    assert any("boom" in e for e in page.errors)
    assert any("missing" in e for e in page.errors)
    assert page.remote_requests == ["https://example.com/x.png"]
    assert page.dialogs == ["alert(1)"]
