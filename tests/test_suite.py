"""The suite itself: deterministic by default (a fresh clone's `make test` passes or fails by
the code alone, never by the draw of a random generator)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings


@pytest.mark.skipif(os.environ.get("HYPOTHESIS_PROFILE", "deterministic") != "deterministic",
                    reason="a randomized run was asked for")
def test_property_tests_draw_the_same_examples_on_every_run():
    current = settings()
    assert current.derandomize is True
    assert current.database is None  # no replay of examples found on another run or machine


#: Session fixtures that must be computed on one worker only, and the xdist group that
#: holds every test using them (tests/conftest.py: XDIST_GROUPS).
SHARED = {"sample_report": "reports", "tainted_report": "reports", "spark": "spark"}


def test_tests_sharing_an_expensive_session_fixture_run_on_one_worker(request):
    """Under `make test` (two xdist workers, loadgroup) a test that uses a rendered report or
    the SparkSession outside its group would render or start it a second time."""
    from conftest import loadgroup, xdist_group

    seen = {}
    for item in request.session.items:
        for fixture, group in SHARED.items():
            if fixture in getattr(item, "fixturenames", ()):
                seen[item.nodeid] = (xdist_group(item.nodeid), group)
    misplaced = {n: g for n, g in seen.items() if g[0] != g[1]}
    assert not misplaced, f"add these to XDIST_GROUPS in tests/conftest.py: {misplaced}"
    if loadgroup(request.config):
        # xdist schedules by the "@group" suffix it adds to the node id from the marks: a
        # mark added after xdist's hook ran would group nothing (each test its own unit)
        ungrouped = [i.nodeid for i in request.session.items if not i.nodeid.endswith(f"@{xdist_group(i.nodeid)}")]
        assert not ungrouped, f"not grouped for xdist: {ungrouped[:3]}"
    assert xdist_group("tests/analyses/test_exposure.py::test_x[duckdb]") == "tests/analyses/test_exposure.py"
