"""Headless Chromium driven over the DevTools protocol (a pipe: stdlib only, no websocket,
no port, no browser download). The reports these tests read are made once per session by
fixtures of tests/conftest.py (the notebook tests read them too)."""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

# -- headless Chromium over the DevTools protocol -------------------------------------------------

INSTALL_HINT = "install Debian's chromium (`sudo apt-get install -y chromium`; .ci/run does it)"


@pytest.fixture(scope="session")
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"headless chromium is required under CI=true: {INSTALL_HINT}")
        pytest.skip(f"chromium not found: {INSTALL_HINT} to run the browser tests")
    return found


@dataclass
class Page:
    """What happened while a page was open: DevTools events, by kind."""

    events: list[dict] = field(default_factory=list)

    def of(self, method: str) -> list[dict]:
        return [e["params"] for e in self.events if e.get("method") == method]

    @property
    def errors(self) -> list[str]:
        """Uncaught exceptions, console.error/assert, and browser log errors (failed loads,
        Content-Security-Policy violations)."""
        out = [f"exception: {e['exceptionDetails'].get('exception', {}).get('description') or e['exceptionDetails']['text']}"
               for e in self.of("Runtime.exceptionThrown")]
        out += [f"console.{c['type']}: {' '.join(str(a.get('value', a.get('description'))) for a in c['args'])}"
                for c in self.of("Runtime.consoleAPICalled") if c["type"] in ("error", "assert")]
        out += [f"log {e['entry']['source']}: {e['entry']['text']}" for e in self.of("Log.entryAdded")
                if e["entry"]["level"] == "error"]
        return out

    @property
    def dialogs(self) -> list[str]:
        return [f"{d['type']}({d['message']})" for d in self.of("Page.javascriptDialogOpening")]

    @property
    def remote_requests(self) -> list[str]:
        local = ("file:", "data:", "blob:", "about:")
        return [r["request"]["url"] for r in self.of("Network.requestWillBeSent")
                if not r["request"]["url"].startswith(local)]


_ONTO_FDS_3_AND_4 = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
                     "os.execv(sys.argv[3], sys.argv[3:])")


class Chromium:
    """One headless Chromium with the DevTools protocol on a pipe (``--remote-debugging-pipe``:
    JSON messages separated by NUL on file descriptors 3 and 4)."""

    def __init__(self, executable: str, profile: Path, log: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--mute-audio",
                f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        self._log = log.open("wb")
        self.process = subprocess.Popen(  # a Python puts the pipe ends on fds 3 and 4, then becomes chromium
            [sys.executable, "-c", _ONTO_FDS_3_AND_4, str(to_browser_r), str(from_browser_w), *args],
            pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=self._log, start_new_session=True)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._id = 0
        self.session: str | None = None
        self.page = Page()

    # protocol ------------------------------------------------------------------------------
    def _receive(self, timeout: float) -> dict | None:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the DevTools pipe")
                self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def _event(self, message: dict) -> None:
        self.page.events.append(message)
        if message.get("method") == "Page.javascriptDialogOpening":  # never leave the page blocked
            self.send("Page.handleJavaScriptDialog", {"accept": False})

    def send(self, method: str, params: dict | None = None) -> int:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if self.session and not method.startswith(("Target.", "Browser.")):
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        return self._id

    def call(self, method: str, params: dict | None = None, *, timeout: float = 60) -> dict:
        ident = self.send(method, params)
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(max(0.0, deadline - time.monotonic()))
            if message is None:
                raise TimeoutError(f"DevTools {method}: no answer in {timeout} s")
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"DevTools {method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self._event(message)

    def pump(self, seconds: float) -> None:
        """Collect events for ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            message = self._receive(left)
            if message is not None and "method" in message:
                self._event(message)

    # pages ---------------------------------------------------------------------------------
    def open(self, url: str, *, offline: bool = True, width: int = 1280, timeout: float = 60) -> Page:
        """Open ``url`` in a new tab with the network off and wait for its load event."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.page = Page()
        for domain in ("Runtime", "Log", "Page", "Network"):
            self.call(f"{domain}.enable")
        if offline:
            self.call("Network.emulateNetworkConditions",
                      {"offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False})
        self.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout
        while not self.page.of("Page.loadEventFired"):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url}: no load event in {timeout} s")
            self.pump(0.2)
        return self.page

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"evaluate: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout: float = 30) -> Any:
        """Evaluate ``expression`` until it is truthy (and return it) or ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.evaluate(expression)
            if value or time.monotonic() > deadline:
                return value
            self.pump(0.25)

    def screenshot(self, path: Path) -> Path:
        """The whole page as a PNG."""
        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        shot = self.call("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=10)
            self.process.wait(timeout=10)
        except (RuntimeError, TimeoutError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)  # the group chromium leads (start_new_session)
                self.process.wait()
            os.close(self._to_browser)
            os.close(self._from_browser)
            self._log.close()


@pytest.fixture
def browser(chromium, tmp_path):
    b = Chromium(chromium, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        yield b
    finally:
        b.close()
