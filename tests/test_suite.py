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
