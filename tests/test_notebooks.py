"""The curated notebooks: stored without outputs, parametrised, and running top to bottom on the sample."""

from __future__ import annotations

import json

import nbformat
import pytest
from flowlog_files import REPO

from flowtools.report.render import execute, notebooks

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
EXPECTED = ["01_quickstart", "02_internet_exposure", "03_traffic_overview", "04_investigate_resource",
            "05_ad_hoc_sql"]


def test_the_curated_notebooks_are_there_and_found_by_the_package():
    assert [p.stem for p in NOTEBOOKS] == EXPECTED
    assert [p.stem for p in notebooks()] == EXPECTED


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_without_outputs_with_an_explanation_and_a_parameters_cell(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), "clear the outputs before committing"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    params = [c for c in code if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and code[0] is params[0]
    for name in ("source", "start", "end", "inventory", "ip_ranges", "engine"):
        assert f"\n{name} = " in "\n" + params[0].source
    assert "plotly" not in json.dumps(nb.metadata)


def _errors(nb) -> list[str]:
    return [f"{o.ename}: {o.evalue}" for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_runs_top_to_bottom_on_the_sample(sample_dir, path, tmp_path):
    nb = execute(path, {}, cwd=tmp_path)  # parameters None: the embedded sample
    assert not _errors(nb)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert outputs, "a notebook that shows nothing"
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    if path.stem in ("02_internet_exposure", "03_traffic_overview", "04_investigate_resource"):
        assert html.count('class="plotly-graph-div"') >= 1
    if path.stem == "02_internet_exposure":
        assert 'id="findings"' in html and "exposed" in html


def test_exposure_notebook_on_polars_with_a_window(sample_dir, tmp_path):
    nb = execute("02_internet_exposure", {"engine": "polars", "start": "2026-11-20T02:00Z",
                                          "end": "2026-11-20T03:00Z"}, cwd=tmp_path)
    assert not _errors(nb)
    text = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "record(s)" in text
