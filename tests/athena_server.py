"""Athena in tests: moto's Athena behind a proxy that pages its results and patches its
executions (:class:`AthenaProxy`), for tests/athena (see tests/athena/conftest.py).

moto runs no SQL: results are preset through its ``/moto-api/static/athena/query-results``
endpoint (each StartQueryExecution takes the next preset result), and executions go
QUEUED -> RUNNING -> SUCCEEDED by moto's state manager. What moto cannot do is done by
:class:`AthenaProxy`: split GetQueryResults into pages with a ``NextToken`` (moto answers
in one piece) and patch GetQueryExecution answers (a FAILED state with its reason, the
bytes scanned).
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import aws_server

_TOKEN = "athena-page-"


class AthenaProxy(aws_server.FaultProxy):
    """A FaultProxy that also pages GetQueryResults and patches GetQueryExecution."""

    def __post_init__(self):
        super().__post_init__()
        self.page_size: int | None = None
        self.execution_patch: dict[str, Any] = {}

    def actions(self) -> list[str]:
        """The Athena operations received, in order."""
        return [s.action for s in self.seen(service="athena")]

    def _forward(self, h, body: bytes):
        target = h.headers.get("X-Amz-Target", "")
        if target.endswith(".GetQueryResults") and self.page_size:
            request = json.loads(body or b"{}")
            offset = int(str(request.pop("NextToken", _TOKEN + "0")).removeprefix(_TOKEN))
            request.pop("MaxResults", None)
            status, headers, payload = super()._forward(h, json.dumps(request).encode())
            if status != 200:
                return status, headers, payload
            answer = json.loads(payload)
            rows = answer["ResultSet"]["Rows"]
            answer["ResultSet"]["Rows"] = rows[offset: offset + self.page_size]
            if offset + self.page_size < len(rows):
                answer["NextToken"] = f"{_TOKEN}{offset + self.page_size}"
            return status, headers, json.dumps(answer).encode()
        status, headers, payload = super()._forward(h, body)
        if target.endswith(".GetQueryExecution") and self.execution_patch and status == 200:
            answer = json.loads(payload)
            qe = answer["QueryExecution"]
            for k, v in self.execution_patch.items():  # dicts are merged (Status, Statistics)
                qe[k] = (qe.get(k) or {}) | v if isinstance(v, dict) else v
            payload = json.dumps(answer).encode()
        return status, headers, payload


def post(url: str, body: dict) -> None:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()
