"""The curated notebooks: stored without outputs, parametrised, running top to bottom on the
sample (errors fail), found by the package, shipped in the wheel, served by `make lab`."""

from __future__ import annotations

import gzip
import json
import os
import re
import runpy
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import nbformat
import pytest
from flowlog_files import REPO, SAMPLES

import flowtools.notebook
from flowtools.analyses.watchlist import Watchlist
from flowtools.report.render import execute, figure_count, notebooks, read_report

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_quickstart", "02_internet_exposure", "03_traffic_overview", "04_investigate_resource",
            "05_ad_hoc_sql", "06_at_scale"]
PARAMETERS = ("source", "start", "end", "inventory", "ip_ranges", "engine", "strict", "load_options")
#: Figures each notebook shows on the sample.
FIGURES = {"01_quickstart": 0, "02_internet_exposure": 5, "03_traffic_overview": 8, "04_investigate_resource": 1,
           "05_ad_hoc_sql": 0, "06_at_scale": 0}


def test_the_curated_notebooks_are_there_and_found_by_the_package():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED
    assert notebooks() == NOTEBOOKS  # an editable install reads the checkout's notebooks/


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs_with_an_explanation_and_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), "clear the outputs before committing"
    assert all(set(c.metadata) <= {"tags"} for c in nb.cells), "no execution or widget metadata"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith(f"# {path.stem[:2]} · ")
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and code[0] is params[0], "one cell tagged `parameters`, the first code cell"
    namespace: dict = {}
    exec(params[0].source, namespace)  # noqa: S102 - plain assignments
    assert set(PARAMETERS) <= set(namespace)
    assert namespace["source"] is None and namespace["engine"] == "duckdb"  # the embedded sample by default
    assert nb.metadata.kernelspec.name == "python3"
    assert set(nb.metadata) <= {"kernelspec", "language_info"}
    boot = code[1].source  # the next cell loads through the package's bootstrap, nothing repeated
    assert "notebook.start(source, start=start, end=end, inventory=inventory, ip_ranges=ip_ranges" in boot
    assert "flowtools.load(" not in boot and "sample_paths" not in boot
    sources = "\n".join(c.source for c in code)
    assert not re.search(r"\.sql\(\s*f[\"']", sources), "SQL takes values as parameters, never formatted in"
    assert "flowtools.enrich." not in sources  # the callable only: the subpackage's modules may move


def test_the_bootstrap_loads_the_sample_by_default_and_prints_the_read_report(sample_dir, capsys):
    window = {"start": "2026-11-20T02:00Z", "end": "2026-11-20T03:00Z"}
    session = flowtools.notebook.start(**window)  # outside IPython: the read report is printed
    assert capsys.readouterr().out.strip() == session.flows.report.summary_line()
    assert session.flows.report.records > 0 and session.source == str(SAMPLES)
    assert session.inventory is not None and session.inventory_path == str(SAMPLES / "inventory")
    assert session.ip_ranges is not None and session.ip_ranges_path == str(SAMPLES / "ip-ranges.json")
    own = flowtools.notebook.start(str(SAMPLES), engine="polars", load_options={"regions": "eu-west-1"}, **window)
    assert own.inventory is None and own.ip_ranges is None  # a SOURCE given: no sample inventory
    assert own.flows.engine == "polars" and own.flows.to_polars()["source_region"].unique().to_list() == ["eu-west-1"]


def test_importing_the_bootstrap_does_nothing(tmp_path):
    run = subprocess.run([sys.executable, "-c", "import flowtools.notebook"], capture_output=True, text=True,
                         cwd=tmp_path, env={**os.environ, "FLOWTOOLS_CACHE_DIR": str(tmp_path / "cache")}, timeout=60)
    assert run.returncode == 0 and run.stdout == run.stderr == ""
    assert list(tmp_path.iterdir()) == []  # no sample generated, nothing cached


def _errors(nb) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]


def _html(nb) -> str:
    return "".join(o.get("data", {}).get("text/html", "") for c in nb.cells for o in c.get("outputs", []))


def _text(nb) -> str:
    """Printed text and the text form of displayed values (the read report is one)."""
    return "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for c in nb.cells
                   for o in c.get("outputs", []))


def _sample_records() -> int:
    """The sample's records: every line after each file's header (read with gzip directly)."""
    return sum(gzip.decompress(p.read_bytes()).count(b"\n") - 1 for p in SAMPLES.rglob("*.log.gz"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom_on_the_sample(sample_dir, path, tmp_path, request):
    if path.stem == "02_internet_exposure":  # the run of the session's sample report (the sample, its inventory
        nb = request.getfixturevalue("sample_report").notebook  # and ip-ranges: what no parameters default to)
    else:
        # no parameters: the embedded sample (06 without its Spark section: a JVM and a cold Spark
        # exposure cost a minute; tests/spark checks the same calls give the same findings)
        nb = execute(path, {"spark": False} if path.stem == "06_at_scale" else {}, cwd=tmp_path)
    assert not _errors(nb)
    assert all(c.outputs for c in nb.cells if c.cell_type == "code" and "parameters" not in c.metadata.get("tags", [])
               and "injected-parameters" not in c.metadata.get("tags", [])), "every cell shows something"
    assert figure_count(nb) == FIGURES[path.stem]
    records = _sample_records()
    assert f"{records} record(s)" in _text(nb)  # the whole sample was read
    assert read_report(nb)["records"] == records  # and `flowtools report` can tell (the read report's JSON)
    html = _html(nb)
    assert "<table" in html
    if path.stem == "02_internet_exposure":
        assert 'id="findings"' in html and "TCP SYN from internet peers accepted, SYN-ACK sent" in html
        assert "sandbox-1" in html  # configured but not observed (security groups in the inventory)
        # the summary first: findings by risk and status, then the few that need action
        assert html.index("Findings by risk and status") < html.index('id="needs-action"') < html.index('id="findings"')
        action = html[html.index('id="needs-action"'):]
        action = action[:action.index("</table>")]
        assert "status-critical" in action and "bastion" in action
        assert "status-low" not in action and "status-medium" not in action  # critical and high only
        assert "No earlier findings given" in _text(nb)  # no `previous`: the changes section says so
    if path.stem == "06_at_scale":
        assert "Spark section skipped (spark = False)" in _text(nb)
        assert "from the Athena SQL" in _text(nb) and "equal" in _text(nb)
    if path.stem == "03_traffic_overview":
        truth = json.loads((SAMPLES / "truth.json").read_text(encoding="utf-8"))
        assert "Egress: bytes sent to the internet, by sender and destination" in html
        assert truth["egress"][0]["interface_id"] in html  # the sample's biggest sender is listed
        answered = [s["source"] for s in truth["scanners"] if s["outcome"] == "answered"]
        assert f"{len(answered)} answered" in _text(nb) and all(s in html for s in answered)
        seen = {h["listed_address"] for h in truth["watchlist"]}
        entries = len(Watchlist.load(SAMPLES / "watchlist.txt"))
        assert f"{SAMPLES / 'watchlist.txt'}: {entries} entries, {len(seen)} listed address(es) seen" in _text(nb)
        assert all(h["label"] in html for h in truth["watchlist"])


@pytest.mark.slow
def test_exposure_notebook_on_polars_with_a_window(tainted_report, tainted_options):
    # the session's tainted report: 02_internet_exposure with engine="polars" and a window (a failing cell
    # fails the report); its stderr says how many figures the notebook showed
    assert tainted_options["engine"] == "polars"
    start, end = (t.replace("Z", ":00Z") for t in tainted_options["window"])
    assert f"[{start}, {end})" in tainted_report.text
    figures = int(re.search(r"(\d+) figure\(s\)", tainted_report.stderr).group(1))
    assert figures == FIGURES["02_internet_exposure"]


@pytest.mark.slow
def test_exposure_notebook_with_nothing_in_the_window_and_no_inventory(sample_dir, tmp_path):
    nb = execute("02_internet_exposure", {"source": str(SAMPLES), "start": "2030-01-01", "end": "2030-01-02"},
                 cwd=tmp_path)
    assert not _errors(nb)
    assert "0 record(s)" in _text(nb) and "No security groups in the inventory" in _text(nb)
    assert "none: names, owners and security groups unknown" in _html(nb)


@pytest.mark.slow
def test_investigate_an_instance_by_id(sample_dir, tmp_path):
    nb = execute("04_investigate_resource", {"resource": "i-0f3fbbf9971257c25", "start": "2026-11-20T02:00Z",
                                             "end": "2026-11-20T04:00Z"}, cwd=tmp_path)
    assert not _errors(nb)
    assert "i-0f3fbbf9971257c25: 1 interface(s)" in _text(nb)
    assert "eni-053c9b051d6a34459" in _html(nb) and "web-2" in _html(nb)


def test_the_wheel_build_copies_the_notebooks_into_the_package(tmp_path, monkeypatch):
    import setuptools
    from setuptools.dist import Distribution

    captured: dict = {}
    monkeypatch.setattr(setuptools, "setup", lambda **kw: captured.update(kw))
    runpy.run_path(str(REPO / "setup.py"))
    command = captured["cmdclass"]["build_py"](Distribution({"name": "flowtools", "packages": []}))
    command.initialize_options()
    command.build_lib = str(tmp_path)
    command.finalize_options()
    command.run()
    copied = sorted((tmp_path / "flowtools" / "notebooks").glob("*.ipynb"))
    assert [p.name for p in copied] == [p.name for p in NOTEBOOKS]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(copied, NOTEBOOKS, strict=True))
    assert "graft notebooks" in (REPO / "MANIFEST.in").read_text()  # and the sdist carries them


# -- make lab -------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


def _run_in_kernel(websocket, url: str, code: str) -> str:
    """Execute ``code`` through the server's kernel websocket; return its stdout."""
    ws = websocket.create_connection(url, timeout=60)
    try:
        msg_id = uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": uuid.uuid4().hex,
                       "date": "", "version": "5.3"},
            "parent_header": {}, "metadata": {}, "channel": "shell",
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True}}))
        out = ""
        while True:
            msg = json.loads(ws.recv())
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out += msg["content"]["text"]
            elif msg["msg_type"] == "error":
                raise AssertionError(msg["content"]["evalue"])
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return out
    finally:
        ws.close()


@pytest.mark.slow
def test_make_lab_serves_the_notebooks_with_the_venvs_python_as_kernel(tmp_path):
    pytest.importorskip("jupyterlab", reason="JupyterLab is in the lab extra: pip install -e '.[lab]'")
    websocket = pytest.importorskip("websocket", reason="websocket-client comes with jupyter_server")
    if shutil.which("make") is None:
        pytest.skip("make not found")
    decoy = tmp_path / "user-data" / "kernels" / "python3"  # a user-level spec for another Python
    decoy.mkdir(parents=True)
    (decoy / "kernel.json").write_text('{"argv": ["/bin/false", "{connection_file}"], "display_name": "decoy", '
                                       '"language": "python"}')
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "JUPYTER_DATA_DIR": str(tmp_path / "user-data"), "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    lab_args = (f"--no-browser --ServerApp.ip=127.0.0.1 --ServerApp.port={port} --ServerApp.port_retries=0 "
                f"--IdentityProvider.token={token}")
    log = (tmp_path / "lab.log").open("wb")
    server = subprocess.Popen(["make", "-s", "-o", ".venv/.installed", "lab", f"BIN={os.path.dirname(sys.executable)}",
                               f"LAB_ARGS={lab_args}"], cwd=REPO, env=env, stdout=log, stderr=log,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    base, auth = f"http://127.0.0.1:{port}", f"token={token}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                _get(f"{base}/api/status?{auth}")
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"make lab did not start: {(tmp_path / 'lab.log').read_text()[-3000:]}")
                time.sleep(0.5)
        contents = _get(f"{base}/api/contents?{auth}")["content"]
        assert sorted(c["name"] for c in contents if c["type"] == "notebook") == [f"{n}.ipynb" for n in EXPECTED]
        assert _get(f"{base}/api/kernelspecs?{auth}")["default"] == "python3"
        request = urllib.request.Request(f"{base}/api/kernels?{auth}", data=b'{"name": "python3"}', method="POST",
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as r:
            kernel = json.loads(r.read())["id"]
        out = _run_in_kernel(websocket, f"ws://127.0.0.1:{port}/api/kernels/{kernel}/channels?{auth}",
                             "import sys, flowtools; print(sys.prefix)")
        assert out.strip() == sys.prefix  # the venv's Python, with flowtools, not the decoy
    finally:
        os.killpg(server.pid, signal.SIGTERM)  # the group make leads (start_new_session)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
