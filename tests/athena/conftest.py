"""Athena in tests: moto in server mode on 127.0.0.1 behind an
:class:`athena_server.AthenaProxy` that records every call (and pages results, patches
executions): fixtures to preset results and slow queries down."""

from __future__ import annotations

from typing import Any

import aws_server
import pytest
from athena_server import AthenaProxy
from athena_server import post as _post


@pytest.fixture(scope="module")
def moto_url():
    with aws_server.moto_server() as url:
        yield url


@pytest.fixture
def athena(moto_url, monkeypatch, tmp_path):
    """Fresh moto state, dummy credentials, every boto3 call through an :class:`AthenaProxy`."""
    aws_server.prepare(moto_url, monkeypatch, tmp_path)
    with AthenaProxy(moto_url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield proxy
    _post(f"{moto_url}/moto-api/state-manager/unset-transition", {"model_name": "athena::execution"})


@pytest.fixture
def preset(moto_url):
    """``preset(rows, column_info)``: the result of the next query moto starts; ``rows`` are
    lists of strings (None: a NULL cell), exactly as Athena returns them (a SELECT's first
    row holds the column labels)."""
    def put(rows: list[list[str | None]], column_info: list[dict[str, Any]]) -> None:
        data = [{"Data": [{} if v is None else {"VarCharValue": v} for v in row]} for row in rows]
        _post(f"{moto_url}/moto-api/static/athena/query-results",
              {"results": [{"rows": data, "column_info": column_info}]})
    return put


@pytest.fixture
def slow_queries(moto_url):
    """``slow_queries(polls)``: each state lasts ``polls`` GetQueryExecution calls."""
    def set_polls(polls: int) -> None:
        _post(f"{moto_url}/moto-api/state-manager/set-transition",
              {"model_name": "athena::execution", "transition": {"progression": "manual", "times": polls}})
    return set_polls
