"""AWS in tests: moto in server mode on 127.0.0.1, and a fault-injecting proxy in front of it.

Real HTTP end to end: boto3 reaches the server through ``AWS_ENDPOINT_URL`` (honoured by
every client), so retries, paginators and error parsing run exactly as against AWS.

Context managers (any test module)::

    with moto_server() as url:                  # moto on a free port of 127.0.0.1
        with FaultProxy(url) as proxy:          # our proxy on another free port
            proxy.throttle("DescribeVpcs", times=2)      # 503 RequestLimitExceeded twice
            proxy.paginate("DescribeNetworkInterfaces", page_size=2)
            ...point AWS_ENDPOINT_URL at proxy.url...
            assert proxy.count(action="DescribeVpcs") == 3

Pytest fixtures, in a test module (see tests/enrich/test_collect.py)::

    @pytest.fixture(scope="module")
    def moto_url():
        with aws_server.moto_server() as url:
            yield url

    @pytest.fixture
    def aws(moto_url, monkeypatch, tmp_path):       # fresh state, dummy credentials
        return aws_server.prepare(moto_url, monkeypatch, tmp_path)

    @pytest.fixture
    def fault_proxy(aws, monkeypatch):              # every boto3 client goes through it
        with aws_server.proxied(aws, monkeypatch) as proxy:
            yield proxy

Requests that moto itself cannot fail on demand are faked by the proxy: throttling
(EC2 ``RequestLimitExceeded`` 503, STS ``Throttling`` 400), ``AccessDenied`` /
``UnauthorizedOperation`` 403, ``ExpiredToken`` 400, and pages with a ``NextToken`` for EC2
Describe calls that moto answers in one piece (DescribeNetworkInterfaces ignores
MaxResults in moto 5.2).
"""

from __future__ import annotations

import http.client
import http.server
import json
import logging
import os
import re
import threading
import urllib.parse
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest

DUMMY_ACCESS_KEY = "testing"
DUMMY_SECRET_KEY = "testing"
#: The account moto gives the dummy credentials.
DEFAULT_ACCOUNT = "123456789012"

_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te", "trailer", "upgrade",
               "proxy-authorization", "proxy-authenticate"}
#: EC2 list calls the proxy can page: action -> the element holding the items.
EC2_LIST_ELEMENTS = {
    "DescribeNetworkInterfaces": "networkInterfaceSet",
    "DescribeInstances": "reservationSet",
    "DescribeVpcs": "vpcSet",
    "DescribeSubnets": "subnetSet",
    "DescribeSecurityGroups": "securityGroupInfo",
}
_TOKEN_PREFIX = "proxy-page-"


# -- moto ------------------------------------------------------------------------------------

@contextmanager
def moto_server() -> Iterator[str]:
    """moto's ThreadedMotoServer on 127.0.0.1 and a free port (port 0: no race); yields its URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no request log lines
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def reset(url: str) -> None:
    """Forget every resource the server holds (moto's reset API)."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).read()


def use_endpoint(monkeypatch: pytest.MonkeyPatch, url: str, home=None, region: str = "us-east-1") -> None:
    """Point every boto3 client at ``url`` with dummy credentials; hide the developer's AWS
    config (profiles, SSO) unless ``home`` holds test config files."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                 "AWS_CONTAINER_CREDENTIALS_FULL_URI"):
        monkeypatch.delenv(name, raising=False)
    missing = "/nonexistent/flowtools-tests"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "config") if home else f"{missing}/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "credentials") if home else f"{missing}/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", DUMMY_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)


# -- the proxy -------------------------------------------------------------------------------

@dataclass
class Seen:
    """One request that went through the proxy."""

    service: str
    action: str
    region: str
    access_key: str
    params: dict[str, str]
    status: int = 0
    injected: str | None = None  # the error code the proxy answered with, if any


@dataclass
class Fault:
    """An error the proxy answers instead of forwarding, for matching requests."""

    status: int
    code: str
    message: str
    action: str | None = None
    service: str | None = None
    region: str | None = None
    access_key: str | None = None
    times: int | None = 1  # None: every matching request
    hits: int = 0
    params: dict[str, str] | None = None  # request parameters that must match (S3: Bucket, Key, prefix)

    def matches(self, seen: Seen) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        if self.params and any(seen.params.get(k) != v for k, v in self.params.items()):
            return False
        return all(want is None or want == got for want, got in (
            (self.action, seen.action), (self.service, seen.service), (self.region, seen.region),
            (self.access_key, seen.access_key)))


@dataclass
class _Pager:
    page_size: int
    region: str | None = None
    pages_served: int = 0


@dataclass
class FaultProxy:
    """An HTTP proxy on 127.0.0.1 that forwards to ``upstream`` (moto), counts requests,
    injects errors on chosen requests and splits EC2 list responses into pages."""

    upstream: str
    requests: list[Seen] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    pagers: dict[str, _Pager] = field(default_factory=dict)

    def __post_init__(self):
        self._lock = threading.Lock()
        parsed = urllib.parse.urlsplit(self.upstream)
        self._up_host, self._up_port = parsed.hostname, parsed.port or 80
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what to do -------------------------------------------------------------------------

    def inject(self, *, status: int, code: str, message: str = "", action: str | None = None,
               service: str | None = None, region: str | None = None, access_key: str | None = None,
               times: int | None = 1, params: dict[str, str] | None = None) -> Fault:
        """Answer the next ``times`` matching requests (None: all) with this error; ``params``
        narrows the match to requests with these parameters (e.g. ``{"Key": ...}`` for S3)."""
        fault = Fault(status, code, message or code, action, service, region, access_key, times, params=params)
        with self._lock:
            self.faults.append(fault)
        return fault

    def throttle(self, action: str | None = None, *, service: str = "ec2", times: int | None = 1, **match) -> Fault:
        """AWS's throttling answer: EC2 ``RequestLimitExceeded`` (503), S3 ``SlowDown`` (503),
        else ``Throttling`` (400)."""
        if service == "s3":
            return self.inject(status=503, code="SlowDown", message="Please reduce your request rate.",
                               action=action, service=service, times=times, **match)
        if service == "ec2":
            return self.inject(status=503, code="RequestLimitExceeded", message="Request limit exceeded.",
                               action=action, service=service, times=times, **match)
        return self.inject(status=400, code="Throttling", message="Rate exceeded", action=action,
                           service=service, times=times, **match)

    def deny(self, action: str | None = None, *, service: str = "ec2", times: int | None = None, **match) -> Fault:
        """403 ``UnauthorizedOperation`` (EC2) or ``AccessDenied`` (STS and others)."""
        code = {"ec2": "UnauthorizedOperation", "logs": "AccessDeniedException"}.get(service, "AccessDenied")
        message = ("You are not authorized to perform this operation." if service == "ec2" else
                   f"User: arn:aws:iam::{DEFAULT_ACCOUNT}:user/tester is not authorized to perform: "
                   f"{service}:{action or '*'}")
        return self.inject(status=403, code=code, message=message, action=action, service=service, times=times,
                           **match)

    def expire(self, action: str | None = None, *, service: str = "ec2", code: str = "ExpiredToken",
               times: int | None = None, **match) -> Fault:
        """400 ``ExpiredToken``: the security token included in the request is expired."""
        return self.inject(status=400, code=code, message="The security token included in the request is expired",
                           action=action, service=service, times=times, **match)

    def paginate(self, action: str = "DescribeNetworkInterfaces", page_size: int = 2,
                 region: str | None = None) -> None:
        """Split the answers of an EC2 list call into pages of ``page_size`` items with a
        ``NextToken`` (the token encodes the offset; MaxResults/NextToken are stripped before
        moto sees the request)."""
        if action not in EC2_LIST_ELEMENTS:
            raise ValueError(f"cannot paginate {action}: one of {sorted(EC2_LIST_ELEMENTS)}")
        self.pagers[action] = _Pager(page_size, region)

    # -- what happened ----------------------------------------------------------------------

    def seen(self, **match) -> list[Seen]:
        """Requests so far, filtered by attributes (``action=``, ``region=``, ``injected=``...)."""
        with self._lock:
            return [s for s in self.requests if all(getattr(s, k) == v for k, v in match.items())]

    def count(self, **match) -> int:
        return len(self.seen(**match))

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()
            self.faults.clear()
            self.pagers.clear()

    # -- the work ---------------------------------------------------------------------------

    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        seen = _describe(h.headers, body, h.command, h.path)
        with self._lock:
            self.requests.append(seen)
            fault = next((f for f in self.faults if f.matches(seen)), None)
            if fault:
                fault.hits += 1
        if fault:
            seen.status, seen.injected = fault.status, fault.code
            payload, ctype = _error_body(seen, fault)
            return _reply(h, fault.status, {"Content-Type": ctype}, payload)

        pager = self.pagers.get(seen.action) if seen.service == "ec2" else None
        if pager and pager.region not in (None, seen.region):
            pager = None
        offset = 0
        if pager:
            offset = int(seen.params.get("NextToken", _TOKEN_PREFIX + "0").removeprefix(_TOKEN_PREFIX))
            params = [(k, v) for k, v in urllib.parse.parse_qsl(body.decode(), keep_blank_values=True)
                      if k not in ("NextToken", "MaxResults")]
            body = urllib.parse.urlencode(params).encode()
        status, headers, payload = self._forward(h, body)
        if pager and status == 200:
            payload = _page(payload, EC2_LIST_ELEMENTS[seen.action], offset, pager.page_size)
            with self._lock:
                pager.pages_served += 1
        seen.status = status
        _reply(h, status, headers, payload)

    def _forward(self, h: http.server.BaseHTTPRequestHandler, body: bytes) -> tuple[int, dict, bytes]:
        conn = http.client.HTTPConnection(self._up_host, self._up_port, timeout=60)
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP_BY_HOP}
            headers["Content-Length"] = str(len(body))
            conn.request(h.command, h.path, body=body if h.command not in ("GET", "HEAD") or body else None,
                         headers=headers)
            resp = conn.getresponse()
            payload = resp.read()
            out = {k: v for k, v in resp.getheaders() if k.lower() not in _HOP_BY_HOP}
            return resp.status, out, payload
        finally:
            conn.close()


def _handler_for(proxy: FaultProxy):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _any(self):
            proxy._handle(self)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _any

        def log_message(self, format, *args):  # quiet
            pass

    return Handler


def _s3_action(method: str, path: str) -> tuple[str, dict[str, str]]:
    """S3's REST operations by method, path and query (path-style requests)."""
    parts = urllib.parse.urlsplit(path)
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    bucket, _, key = urllib.parse.unquote(parts.path).lstrip("/").partition("/")
    params = query | {"Bucket": bucket} | ({"Key": key} if key else {})
    if not key:
        if method == "HEAD":
            return "HeadBucket", params
        if method == "GET" and query.get("list-type") == "2":
            return "ListObjectsV2", params
        if method == "GET" and "location" in query:
            return "GetBucketLocation", params
        if method == "GET":
            return "ListObjects", params
        return {"PUT": "CreateBucket", "DELETE": "DeleteBucket", "POST": "DeleteObjects"}.get(method, method), params
    return {"HEAD": "HeadObject", "GET": "GetObject", "PUT": "PutObject", "DELETE": "DeleteObject"}.get(
        method, method), params


def _describe(headers, body: bytes, method: str = "POST", path: str = "/") -> Seen:
    m = _CREDENTIAL.search(headers.get("Authorization", "")) or _CREDENTIAL.search(
        urllib.parse.unquote(path))  # presigned URLs carry the credential in the query
    access_key, region, service = (m.group(1), m.group(2), m.group(3)) if m else ("", "", "")
    params: dict[str, str] = {}
    if service == "s3":
        action, params = _s3_action(method, path)
        return Seen(service, action, region, access_key, params)
    target = headers.get("X-Amz-Target")
    if target:  # JSON protocols name the operation in a header
        action = target.rsplit(".", 1)[-1]
    else:
        try:
            params = dict(urllib.parse.parse_qsl(body.decode(), keep_blank_values=True))
        except UnicodeDecodeError:
            params = {}
        action = params.get("Action", "")
    return Seen(service, action, region, access_key, params)


def _error_body(seen: Seen, fault: Fault) -> tuple[bytes, str]:
    request_id = str(uuid.uuid4())
    if seen.service == "s3":  # REST-XML: <Error> at the top (HEAD answers carry no body)
        text = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{_xml_escape(fault.code)}</Code>'
                f"<Message>{_xml_escape(fault.message)}</Message><RequestId>{request_id}</RequestId></Error>")
        return text.encode(), "application/xml"
    if seen.params.get("Action") is None and seen.action:  # JSON protocol
        return json.dumps({"__type": fault.code, "message": fault.message}).encode(), "application/x-amz-json-1.1"
    code, message = _xml_escape(fault.code), _xml_escape(fault.message)
    if seen.service == "ec2":
        text = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>")
    else:  # the query protocol (STS, IAM, ...)
        text = (f'<ErrorResponse xmlns="https://{seen.service}.amazonaws.com/doc/"><Error><Type>Sender</Type>'
                f"<Code>{code}</Code><Message>{message}</Message></Error><RequestId>{request_id}</RequestId>"
                "</ErrorResponse>")
    return text.encode(), "text/xml"


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _page(payload: bytes, element: str, offset: int, size: int) -> bytes:
    root = ET.fromstring(payload)
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    holder = root.find(ns + element)
    if holder is None:
        return payload
    items = list(holder)
    for item in items:
        holder.remove(item)
    holder.extend(items[offset: offset + size])
    for old in root.findall(ns + "nextToken"):
        root.remove(old)
    if offset + size < len(items):
        ET.SubElement(root, ns + "nextToken").text = f"{_TOKEN_PREFIX}{offset + size}"
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _reply(h: http.server.BaseHTTPRequestHandler, status: int, headers: dict, payload: bytes) -> None:
    h.send_response(status)
    for k, v in headers.items():
        if k.lower() not in ("server", "date"):
            h.send_header(k, v)
    h.send_header("Content-Length", str(len(payload)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(payload)


# -- S3 test data ----------------------------------------------------------------------------

#: Where tests/sources/conftest.py puts the embedded sample.
SAMPLE_BUCKET = "flowtools-sample"
SAMPLE_PREFIX = "org-logs/"


def upload_folder(client, root, bucket: str, prefix: str = "") -> int:
    """Put every file below ``root`` into ``bucket`` under ``prefix`` (keys = relative paths)."""
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    root = Path(root)
    files = [p for p in Path(root).rglob("*") if p.is_file()]
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda p: client.upload_file(str(p), bucket, prefix + p.relative_to(root).as_posix()), files))
    return len(files)


def bucket_name(request) -> str:
    """A bucket name unique to the test (valid S3 characters)."""
    name = "".join(c if c.isalnum() else "-" for c in request.node.name.lower()).strip("-")
    return ("t-" + name)[:55].rstrip("-") + f"-{os.getpid() % 1000}"


# -- for pytest fixtures ---------------------------------------------------------------------

def prepare(url: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> str:
    """Per test: forget moto's state, set dummy credentials and ``AWS_ENDPOINT_URL``; the AWS
    config folder is ``tmp_path / "aws-home"`` (write ``config`` / ``credentials`` there)."""
    reset(url)
    home = tmp_path / "aws-home"
    home.mkdir(exist_ok=True)
    use_endpoint(monkeypatch, url, home)
    return url


@contextmanager
def proxied(url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """A FaultProxy in front of ``url`` with ``AWS_ENDPOINT_URL`` pointing at it."""
    with FaultProxy(url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        yield proxy
