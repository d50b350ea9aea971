"""`flowtools report`: one self-contained, offline HTML file; user-controlled strings escaped.

The browser test opens the report in headless Chromium (Debian's `chromium`, installed by
.ci/run): no console errors, every plotly figure drawn, the findings table present, a
screenshot saved; an inventory Name tag holding markup runs no script.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from flowlog_files import SAMPLES

from flowtools.cli import main

TAG = '<script>alert(1)</script><img src=x onerror="document.body.setAttribute(\'data-xss\', \'1\')">'


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.scripts: list[str] = []
        self.ids: set[str] = set()
        self.attrs: list[tuple[str, str | None]] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            self.attrs.append((k, v))
            if k in ("src", "href") and v and re.match(r"(?i)\s*(https?:)?//", v):
                self.refs.append(v)
            if k == "id" and v:
                self.ids.add(v)
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def parse(text: str) -> _Dom:
    dom = _Dom()
    dom.feed(text)
    return dom


@pytest.fixture(scope="module")
def tainted_inventory(tmp_path_factory, sample_dir) -> Path:
    """The sample's inventory with every instance Name tag prefixed by markup."""
    out = tmp_path_factory.mktemp("inventory")
    for path in (SAMPLES / "inventory").glob("*.json"):
        doc = json.loads(path.read_text())
        for r in doc.get("Reservations", []):
            for inst in r["Instances"]:
                for tag in inst.get("Tags", []):
                    if tag["Key"] == "Name":
                        tag["Value"] = f"{TAG} {tag['Value']}"
        (out / path.name).write_text(json.dumps(doc))
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory, tainted_inventory) -> Path:
    out = tmp_path_factory.mktemp("report") / "exposure-report.html"
    code = main(["report", str(SAMPLES), "--inventory", str(tainted_inventory), "--ip-ranges",
                 str(SAMPLES / "ip-ranges.json"), "--out", str(out)])
    assert code == 0 and out.exists()
    return out


def test_self_contained_offline_and_code_hidden(report):
    text = report.read_text(encoding="utf-8")
    dom = parse(text)
    assert dom.refs == []  # no CDN, no remote script, stylesheet or link
    assert not any("@import" in s for s in dom.scripts)
    assert text.count("window.Plotly = Plotly") == 1  # plotly.js embedded exactly once
    assert "flowtools.internet_exposure(" not in text and "import flowtools" not in text  # code hidden
    assert "findings" in dom.ids
    assert 1 < report.stat().st_size < 20 * 2**20


def test_user_controlled_strings_are_escaped(report):
    text = report.read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in text
    assert "<img src=x onerror" not in text  # the markup is text, never an element
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text  # shown as text
    dom = parse(text)
    assert not any("alert(1)" == s.strip() for s in dom.scripts)
    assert ("onerror", "document.body.setAttribute('data-xss', '1')") not in dom.attrs


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is required under CI=true (.ci/run installs it: apt-get install -y chromium)")
        pytest.skip("chromium not installed: `sudo apt-get install -y chromium` (Debian) to run the browser test")
    return found


def test_renders_in_a_headless_browser_without_errors_or_injected_script(report, tmp_path):
    chromium = _chromium()
    flags = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-dev-shm-usage", "--no-first-run", "--virtual-time-budget=20000",
             "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}"]
    url = report.resolve().as_uri()
    run = subprocess.run([*flags, "--dump-dom", url], capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stderr[-2000:]
    dom_text = run.stdout
    console = [line for line in run.stderr.splitlines() if ":CONSOLE" in line]
    errors = [line for line in console if re.search(r"Uncaught|Error|Refused", line)]
    assert not errors, errors
    figures = report.read_text(encoding="utf-8").count('class="plotly-graph-div"')
    assert figures >= 4
    assert dom_text.count('class="plot-container plotly"') == figures  # every figure drawn
    assert dom_text.count("main-svg") >= figures
    dom = parse(dom_text)
    assert "findings" in dom.ids
    assert ("data-xss", "1") not in dom.attrs
    assert not any(s.strip() == "alert(1)" for s in dom.scripts)
    shot = tmp_path / "report.png"
    run = subprocess.run([*flags, "--window-size=1280,2400", f"--screenshot={shot}", url],
                         capture_output=True, text=True, timeout=180)
    assert run.returncode == 0 and shot.exists() and shot.stat().st_size > 10_000
