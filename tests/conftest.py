"""Shared fixtures: both engines, the embedded sample, the reports made once per session;
the Hypothesis profiles."""

from __future__ import annotations

import copy
import io
import json
import os
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flowlog_files import ENGINES, SAMPLES, daily_key
from hypothesis import settings

# Property tests are deterministic unless asked otherwise: the default profile derandomizes
# (each test draws the same examples on every run and machine) and keeps no example
# database, so `make test` passes or fails by the code alone. To explore new examples
# locally: HYPOTHESIS_PROFILE=random make test (or pytest --hypothesis-profile=random);
# a failure there prints the example to turn into a regression test.
settings.register_profile("deterministic", derandomize=True, database=None, deadline=None,
                          print_blob=True)
settings.register_profile("random", derandomize=False, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))


# -- two workers (pytest-xdist): `make test` runs `-n 2 --dist loadgroup` ---------------------
#: Tests that share an expensive session fixture stay on one worker: the rendered reports
#: (a kernel and a whole notebook run each) and the one SparkSession (a JVM). Every other
#: test module is its own group (its module fixtures are computed once). The groups are
#: queued heaviest first so that neither worker waits alone at the end.
XDIST_GROUPS = {"tests/spark/": "spark", "tests/report/": "reports", "tests/test_notebooks.py": "reports"}
#: Queue order of the heavy groups, longest first (worker seconds measured under `make test`:
#: spark 160, reports 110, then 80 to 20): the rest, short, follow in collection order and fill
#: the gaps, so the two workers end together.
XDIST_FIRST = ("spark", "reports", "tests/sources/test_s3.py", "tests/analyses/test_exposure.py",
               "tests/analyses/test_decisions_truth.py", "tests/test_cli_decisions.py", "tests/enrich/test_collect.py",
               "tests/store/test_s3_store.py", "tests/analyses/test_exposure_split.py",
               "tests/analyses/test_sample_truth.py", "tests/test_sample.py")


def xdist_group(nodeid: str) -> str:
    """The xdist group of a test: its entry in :data:`XDIST_GROUPS`, else its module."""
    path = nodeid.split("::", 1)[0]
    path = path if path.startswith("tests/") else f"tests/{path}"
    return next((group for prefix, group in XDIST_GROUPS.items() if path.startswith(prefix)), path)


def loadgroup(config) -> bool:
    """Whether this run schedules by xdist groups. On the controller ``--dist loadgroup``;
    in a worker (where the groups are made: it collects and marks the tests) xdist sets
    ``dist`` to "no" and ``loadgroup`` to True."""
    return bool(getattr(config.option, "loadgroup", False)) or getattr(config.option, "dist", "no") == "loadgroup"


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which turns the marks into groups
def pytest_collection_modifyitems(config, items):
    if not loadgroup(config):
        return
    for item in items:
        item.add_marker(pytest.mark.xdist_group(xdist_group(item.nodeid)))
    rank = {group: i for i, group in enumerate(XDIST_FIRST)}
    items.sort(key=lambda item: rank.get(xdist_group(item.nodeid), len(rank)))  # stable


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Every test run gets its own cache folder (and so its own partition stores: a load
    builds the SOURCE's store there), inherited by the CLI and notebook kernels it starts;
    nothing is written to the user's ~/.cache. Tests that need another set their own.
    Under pytest-xdist the workers share one (the sample's partition store is built once
    per run; two workers building it at once wait on the store's lock)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.getbasetemp().parent / "flowtools-cache"
        folder.mkdir(exist_ok=True)
    else:
        folder = tmp_path_factory.mktemp("flowtools-cache")
    saved = {k: os.environ.get(k) for k in ("FLOWTOOLS_CACHE_DIR", "FLOWTOOLS_STORE")}
    os.environ["FLOWTOOLS_CACHE_DIR"] = str(folder)
    os.environ.pop("FLOWTOOLS_STORE", None)
    yield folder
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(autouse=True)
def _fixed_terminal(monkeypatch):
    """Tables fit the terminal: every test sees the same 100x24 one, whatever runs it (a
    terminal, CI, a pytest-xdist worker). A test may set its own COLUMNS."""
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("LINES", "24")


@pytest.fixture(params=ENGINES)
def engine(request) -> str:
    return request.param


@pytest.fixture(scope="session")
def sample_dir() -> Path:
    """The embedded sample (data/samples), generated by `flowtools sample` with seed 0."""
    if not (SAMPLES / "truth.json").exists():
        pytest.fail("data/samples is missing: run `make samples`")
    return SAMPLES


# -- reports: `flowtools report` run once per session ---------------------------------------
# A report is a kernel and a whole notebook run (the slowest thing the suite does): the
# report tests (tests/report) and the notebook tests (tests/test_notebooks.py) read the same
# two, and every assertion about them reads the files these fixtures wrote.

#: Name tags put into a copy of the sample inventory: the value the issue names, and two
#: that would set a DOM marker if they ever became markup.
TAINTED_NAMES = {
    "web-1": "<script>alert(1)</script>",
    "bastion": "<img src=x onerror=\"document.body.dataset.xss='img'\">",
    "api-1": "\"><svg onload=\"document.body.dataset.xss='svg'\">",
}
#: A window of the sample in which all three have findings (shorter: a faster report).
TAINTED_WINDOW = ("2026-11-20T06:00Z", "2026-11-20T12:00Z")
#: ``--param`` of the tainted report: fewer rows in "Needs action" than the window has.
TAINTED_ACTION_ROWS = 2
#: A finding of the earlier run that the tainted window does not have ("gone").
GONE = {"account_id": "111111111111", "region": "us-east-1", "interface_id": "eni-0000000000000dead",
        "resource_name": "retired-host", "protocol": "tcp", "port": 3389, "port_to": None, "status": "exposed",
        "risk": "critical", "peers": 12}
#: The corrupt object in the tainted report's SOURCE (the read report must name it).
BAD_KEY = daily_key("111111111111", "us-east-1", ts="20261120T1005Z", flow_log="fl-0badf11e")


@dataclass
class Report:
    path: Path
    stdout: str
    stderr: str
    seconds: float
    #: The executed notebook (before the report took its read report out), when run in-process.
    notebook: Any = None

    @property
    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


def make_report(out: Path, *args: str) -> Report:
    """Run `flowtools report SAMPLES --out OUT ARGS...` in-process (exit 0 expected),
    keeping a copy of the notebook the report executed."""
    from flowtools.cli import main
    from flowtools.report import render

    executed: list[Any] = []
    real = render.execute

    def recording(*a: Any, **kw: Any) -> Any:
        nb = real(*a, **kw)
        executed.append(copy.deepcopy(nb))
        return nb

    stdout, stderr = io.StringIO(), io.StringIO()
    t = time.perf_counter()
    with pytest.MonkeyPatch.context() as mp, redirect_stdout(stdout), redirect_stderr(stderr):
        mp.setattr(render, "execute", recording)
        code = main(["report", str(SAMPLES), "--out", str(out), *args])
    assert code == 0, stderr.getvalue()
    assert len(executed) == 1
    return Report(out, stdout.getvalue(), stderr.getvalue(), time.perf_counter() - t, executed[0])


def sample_with(root: Path, bad_key: str) -> Path:
    """The sample's flow-log files (symlinks: the folder walk does not follow linked folders,
    so each file is linked) plus one corrupt object at ``bad_key``."""
    for path in (SAMPLES / "AWSLogs").rglob("*.log*"):
        link = root / path.relative_to(SAMPLES)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
    (root / bad_key).parent.mkdir(parents=True, exist_ok=True)
    (root / bad_key).write_bytes(b"\x1f\x8b\x08\x00 truncated")  # a gzip magic and nothing valid
    return root


@pytest.fixture(scope="session")
def sample_report(tmp_path_factory, sample_dir) -> Report:
    """The report on the whole sample, with its inventory and ip-ranges (in-process: its
    ``notebook`` is the executed 02_internet_exposure, which the notebook tests check)."""
    out = tmp_path_factory.mktemp("sample-report") / "exposure-report.html"
    return make_report(out, "--inventory", str(SAMPLES / "inventory"), "--ip-ranges", str(SAMPLES / "ip-ranges.json"))


@pytest.fixture(scope="session")
def tainted_names() -> dict[str, str]:
    """Original Name tag -> the markup it is replaced with in :func:`tainted_inventory`."""
    return dict(TAINTED_NAMES)


@pytest.fixture(scope="session")
def tainted_inventory(tmp_path_factory, sample_dir) -> Path:
    """The sample's inventory with markup in Name tags (:data:`TAINTED_NAMES`)."""
    out = tmp_path_factory.mktemp("tainted-inventory")
    seen = set()
    for path in (SAMPLES / "inventory").glob("*.json"):
        doc = json.loads(path.read_text())
        for reservation in doc.get("Reservations", []):
            for instance in reservation["Instances"]:
                for tag in instance.get("Tags", []):
                    if tag["Key"] == "Name" and tag["Value"] in TAINTED_NAMES:
                        seen.add(tag["Value"])
                        tag["Value"] = TAINTED_NAMES[tag["Value"]]
        (out / path.name).write_text(json.dumps(doc))
    assert seen == set(TAINTED_NAMES)
    return out


@pytest.fixture(scope="session")
def tainted_options() -> dict:
    """What the tainted report was given beyond the sample: the ``gone`` finding of the
    earlier run, ``action_rows``, its window and engine, and the corrupt object's key."""
    return {"gone": dict(GONE), "action_rows": TAINTED_ACTION_ROWS, "window": TAINTED_WINDOW,
            "engine": "polars", "bad_key": BAD_KEY}


@pytest.fixture(scope="session")
def previous_findings(tmp_path_factory) -> Path:
    """An earlier run's findings (``flowtools exposure --format json`` shape): :data:`GONE`
    and the sample's bastion SSH, then only reachable by a single peer (changed since)."""
    truth = json.loads((SAMPLES / "truth.json").read_text(encoding="utf-8"))
    bastion = next(e for e in truth["exposure"] if e["resource_name"] == "bastion" and e["port"] == 22)
    earlier = {k: bastion[k] for k in ("account_id", "region", "interface_id", "protocol", "port")}
    earlier.update(resource_name="bastion", port_to=None, status="reachable", risk="high", peers=1)
    out = tmp_path_factory.mktemp("previous") / "findings.json"
    out.write_text(json.dumps([GONE, earlier]), encoding="utf-8")
    return out


@pytest.fixture(scope="session")
def tainted_report(tmp_path_factory, sample_dir, tainted_inventory, previous_findings) -> Report:
    """`flowtools report` as a user runs it (a process of its own, whose stdout and stderr
    are the terminal's): the sample plus the corrupt object :data:`BAD_KEY`, a shorter
    window, the Polars engine, markup in Name tags, compared with :func:`previous_findings`,
    and ``--param action_rows=TAINTED_ACTION_ROWS``."""
    folder = tmp_path_factory.mktemp("tainted-report")
    source = sample_with(folder / "logs", BAD_KEY)
    out = folder / "exposure report.html"  # a space in the name
    t = time.perf_counter()
    run = subprocess.run([sys.executable, "-m", "flowtools.cli", "report", str(source), "--out", str(out),
                          "--inventory", str(tainted_inventory), "--ip-ranges", str(SAMPLES / "ip-ranges.json"),
                          "--start", TAINTED_WINDOW[0], "--end", TAINTED_WINDOW[1], "--engine", "polars",
                          "--previous", str(previous_findings), "--param", f"action_rows={TAINTED_ACTION_ROWS}"],
                         capture_output=True, text=True, timeout=600, cwd=folder)
    assert run.returncode == 0, run.stderr  # a bad file is a warning, as for every command
    return Report(out, run.stdout, run.stderr, time.perf_counter() - t)


# -- the sample loaded and analysed once per engine per session -----------------------------
# Loading the sample and running the exposure analysis on it are the costly steps of the
# tests that check analyses against truth.json; they share these (read-only) results.

class SampleRuns:
    """The sample's truth and inventory, its flows per engine and its exposure findings per
    (engine, method), each computed on first use and kept for the session. Read-only."""

    def __init__(self, root: Path) -> None:
        import flowtools

        self.root = root
        self.truth = json.loads((root / "truth.json").read_text(encoding="utf-8"))
        self.inventory = flowtools.Inventory.load(root / "inventory")
        self._flows: dict[str, Any] = {}
        self._findings: dict[tuple[str, str], list[dict]] = {}

    def flows(self, engine: str) -> Any:
        """``flowtools.load(SAMPLE, engine=engine)``: the whole sample."""
        import flowtools

        if engine not in self._flows:
            self._flows[engine] = flowtools.load(self.root, engine=engine, progress=False)
        return self._flows[engine]

    def findings(self, engine: str, method: str = "full") -> list[dict]:
        """``internet_exposure`` of the whole sample with its inventory (``full``: with the
        configured findings), as :func:`findings_records` dicts. Copy before changing one."""
        import flowtools
        from flowtools.analyses import findings_records

        if (engine, method) not in self._findings:
            self._findings[(engine, method)] = findings_records(flowtools.internet_exposure(
                self.flows(engine), inventory=self.inventory, method=method, include_configured=method == "full"))
        return self._findings[(engine, method)]


@pytest.fixture(scope="session")
def sample_runs(sample_dir) -> SampleRuns:
    """:class:`SampleRuns` of the embedded sample, shared by every test module."""
    return SampleRuns(sample_dir)


@pytest.fixture(scope="session")
def moto_url():
    """One moto server (a real HTTP endpoint on 127.0.0.1) for the session's AWS tests; a
    folder's conftest may start its own. Tests that reset it (``aws_server.prepare``) forget
    every bucket, so session-scoped state belongs on another server."""
    import aws_server

    with aws_server.moto_server() as url:
        yield url
