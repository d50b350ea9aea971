"""AWS ip-ranges: loading, longest-prefix classification, the cache, and update() from a local server."""

from __future__ import annotations

import http.server
import ipaddress
import json
import threading
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowtools.cli import main
from flowtools.enrichment.ip_ranges import (
    CLASSIFY_SCHEMA,
    IpRanges,
    IpRangesError,
    cache_path,
    update,
)

FIXTURE = Path(str(resources.files("flowtools").joinpath("data", "ip-ranges-fixture.json")))


@pytest.fixture(scope="module")
def ranges() -> IpRanges:
    return IpRanges.load(FIXTURE)


def by_address(df: pl.DataFrame) -> dict[str, dict]:
    return {r["address"]: r for r in df.iter_rows(named=True)}


def test_fixture_loads(ranges):
    assert ranges.sync_token == "1795089600" and ranges.create_date == "2026-11-19-12-00-00"
    assert ranges.create_time.isoformat() == "2026-11-19T12:00:00+00:00"
    assert ranges.counts() == {"ipv4": 18, "ipv6": 8} and len(ranges) == 26
    assert "AMAZON" in ranges.services() and "EC2_INSTANCE_CONNECT" in ranges.services()
    assert ranges.prefixes().filter(pl.col("ip_version") == 6).height == 8
    assert "syncToken='1795089600'" in repr(ranges)


@pytest.mark.parametrize("address,service,region,border_group,prefix", [
    ("52.95.7.10", "S3", "us-east-1", "us-east-1", "52.95.7.0/24"),  # /24 in EC2 /16 in AMAZON /10
    ("52.95.200.1", "EC2", "us-east-1", "us-east-1", "52.95.0.0/16"),
    ("52.100.0.1", "AMAZON", "us-east-1", "us-east-1", "52.64.0.0/10"),  # only the AMAZON /10 matches
    ("3.230.0.1", "AMAZON", "us-east-1", "us-east-1", "3.224.0.0/12"),  # a range only in AMAZON
    ("18.206.107.29", "EC2_INSTANCE_CONNECT", "us-east-1", "us-east-1", "18.206.107.24/29"),
    ("18.206.107.32", "EC2", "us-east-1", "us-east-1", "18.204.0.0/14"),
    ("15.181.233.1", "EC2", "us-west-2", "us-west-2-lax-1", "15.181.232.0/21"),  # a Local Zone
    ("13.33.255.255", "CLOUDFRONT", "GLOBAL", "GLOBAL", "13.32.0.0/15"),
    ("::ffff:52.95.7.10", "S3", "us-east-1", "us-east-1", "52.95.7.0/24"),  # IPv4-mapped
    ("2600:1f18:2000::1", "S3", "us-east-1", "us-east-1", "2600:1f18:2000::/40"),
    ("2600:1F18:20FF:FFFF::1", "S3", "us-east-1", "us-east-1", "2600:1f18:2000::/40"),
    ("2600:1f18:7fff::1", "EC2", "us-east-1", "us-east-1", "2600:1f18::/33"),
    ("2600:1f18:8000::1", "AMAZON", "us-east-1", "us-east-1", "2600:1f00::/24"),
    ("2a05:d000::5", "AMAZON", "eu-west-1", "eu-west-1", "2a05:d000::/25"),
    ("2600:900f:ffff::1", "CLOUDFRONT", "GLOBAL", "GLOBAL", "2600:9000::/28"),
])
def test_most_specific_non_amazon_service(ranges, address, service, region, border_group, prefix):
    row = by_address(ranges.classify([address]))[address]
    assert row == {"address": address, "aws_service": service, "aws_region": region,
                   "aws_network_border_group": border_group, "aws_prefix": prefix}
    assert ranges.lookup(address).service == service


def test_outside_every_range_and_invalid_strings_are_null(ranges):
    inputs = ["198.51.100.7", "2001:db8::1", "10.0.0.1", "not-an-ip", "", "10.0.0.0/8", "300.1.1.1",
              "fe80::1%eth0", None, "52.95.7.10", "198.51.100.7"]
    df = ranges.classify(inputs)
    assert df.schema == pl.Schema(CLASSIFY_SCHEMA)
    assert df["address"].to_list() == ["198.51.100.7", "2001:db8::1", "10.0.0.1", "not-an-ip", "", "10.0.0.0/8",
                                       "300.1.1.1", "fe80::1%eth0", "52.95.7.10"]  # distinct, first-seen order
    nulls = df.filter(pl.col("address") != "52.95.7.10")
    assert nulls.select(pl.exclude("address").is_null().all()).row(0) == (True,) * 4
    assert ranges.classify([]).schema == pl.Schema(CLASSIFY_SCHEMA)
    assert ranges.classify(pl.Series(["52.95.7.10", None])).height == 1


def doc(v4=(), v6=()) -> dict:
    return {"syncToken": "1", "createDate": "2026-01-01-00-00-00",
            "prefixes": [{"ip_prefix": p, "service": s, "region": "us-east-1", "network_border_group": "us-east-1"}
                         for p, s in v4],
            "ipv6_prefixes": [{"ipv6_prefix": p, "service": s, "region": "us-east-1",
                               "network_border_group": "us-east-1"} for p, s in v6]}


def test_a_service_beats_a_more_specific_amazon_range():
    r = IpRanges(doc(v4=[("52.95.0.0/16", "EC2"), ("52.95.7.0/24", "AMAZON"), ("52.0.0.0/8", "AMAZON")],
                     v6=[("2600:1f18::/33", "EC2"), ("2600:1f18::/48", "AMAZON")]))
    got = by_address(r.classify(["52.95.7.1", "52.1.1.1", "2600:1f18::1"]))
    assert (got["52.95.7.1"]["aws_service"], got["52.95.7.1"]["aws_prefix"]) == ("EC2", "52.95.0.0/16")
    assert got["52.1.1.1"]["aws_service"] == "AMAZON"
    assert got["2600:1f18::1"]["aws_service"] == "EC2"


def test_ipv6_prefixes_longer_than_64_bits():
    r = IpRanges(doc(v6=[("2600:1f18::/33", "EC2"), ("2600:1f18::/80", "AMAZON"),
                         ("2600:1f18::7/128", "ROUTE53_HEALTHCHECKS"), ("2600:1f19::/96", "AMAZON")]))
    got = by_address(r.classify(["2600:1f18::7", "2600:1f18::8", "2600:1f19::1", "2600:1f19:0:0:1::1"]))
    assert [got[a]["aws_service"] for a in got] == ["ROUTE53_HEALTHCHECKS", "EC2", "AMAZON", None]
    assert got["2600:1f19::1"]["aws_prefix"] == "2600:1f19::/96"


def test_the_same_prefix_for_two_services_keeps_the_first_listed():
    r = IpRanges(doc(v4=[("54.0.0.0/16", "ROUTE53_HEALTHCHECKS"), ("54.0.0.0/16", "EC2")]))
    assert r.lookup("54.0.1.1").service == "ROUTE53_HEALTHCHECKS"


_NETWORKS = [(ipaddress.ip_network(p["ip_prefix"]), p) for p in json.loads(FIXTURE.read_text())["prefixes"]] + [
    (ipaddress.ip_network(p["ipv6_prefix"]), p) for p in json.loads(FIXTURE.read_text())["ipv6_prefixes"]]


def reference(address: str) -> str | None:
    """Brute force over every prefix: the most specific non-AMAZON, else the most specific AMAZON.
    An IPv4-mapped IPv6 address is its IPv4 address (flowtools.addresses, "IPv4-mapped")."""
    ip = ipaddress.ip_address(address)
    ip = ip.ipv4_mapped or ip if ip.version == 6 else ip
    hits = [(n.prefixlen, p["service"]) for n, p in _NETWORKS if n.version == ip.version and ip in n]
    services = sorted((h for h in hits if h[1] != "AMAZON"), reverse=True) or sorted(hits, reverse=True)
    return services[0][1] if services else None


@st.composite
def addresses(draw) -> str:
    net, _ = draw(st.sampled_from(_NETWORKS))
    if draw(st.booleans()):  # inside a listed range, or just around it
        offset = draw(st.integers(-2, net.num_addresses + 1))
        value = int(net.network_address) + offset
        return str(ipaddress.ip_address(value % (2 ** net.max_prefixlen) if net.version == 4 else value % 2 ** 128))
    return str(draw(st.ip_addresses(v=net.version)))


@settings(max_examples=300)
@given(st.lists(addresses(), min_size=1, max_size=20))
def test_classify_agrees_with_brute_force(ranges, batch):
    got = by_address(ranges.classify(batch))
    for a in batch:
        assert got[a]["aws_service"] == reference(a), a


@pytest.mark.parametrize("mapped,plain", [
    ("::ffff:3e0:0", "3.224.0.0"),  # drawn once by the property test above, in hex form
    ("::ffff:52.95.7.10", "52.95.7.10"),
    ("::FFFF:18.206.107.29", "18.206.107.29"),
    ("::ffff:10.1.2.3", "10.1.2.3"),  # outside every range either way
])
def test_an_ipv4_mapped_address_is_its_ipv4_address(ranges, mapped, plain):
    got = by_address(ranges.classify([mapped, plain]))
    assert {k: v for k, v in got[mapped].items() if k != "address"} == \
        {k: v for k, v in got[plain].items() if k != "address"}
    assert got[mapped]["aws_service"] == reference(plain)


def test_cost_follows_distinct_addresses(ranges):
    many = [f"52.95.{i // 256}.{i % 256}" for i in range(65536)] * 2
    df = ranges.classify(many)
    assert df.height == 65536
    assert df.group_by("aws_service").len().sort("aws_service").rows() == [("EC2", 65280), ("S3", 256)]


def test_load_errors(tmp_path):
    with pytest.raises(IpRangesError, match="ip-ranges file not found: .*nope.json"):
        IpRanges.load(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(IpRangesError, match=r"bad.json is not valid JSON \(line 1\)"):
        IpRanges.load(tmp_path / "bad.json")
    (tmp_path / "shape.json").write_text('{"syncToken": "1", "createDate": "x"}')
    with pytest.raises(IpRangesError, match="shape.json is not AWS ip-ranges.json: missing 'prefixes'"):
        IpRanges.load(tmp_path / "shape.json")
    (tmp_path / "cidr.json").write_text(json.dumps(doc(v4=[("52.95.0.0/33", "EC2")])))
    with pytest.raises(IpRangesError, match=r"cidr.json: prefixes\[0\] is not a valid entry"):
        IpRanges.load(tmp_path / "cidr.json")


def test_cache_location_and_the_missing_cache_message(tmp_path, monkeypatch):
    monkeypatch.delenv("FLOWTOOLS_CACHE_DIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_path() == tmp_path / "home" / ".cache" / "flowtools" / "ip-ranges.json"
    monkeypatch.setenv("FLOWTOOLS_CACHE_DIR", str(tmp_path / "cache"))
    assert cache_path() == tmp_path / "cache" / "ip-ranges.json"
    with pytest.raises(IpRangesError) as e:
        IpRanges.cached()
    assert str(e.value) == (
        f"no cached ip-ranges.json at {tmp_path / 'cache' / 'ip-ranges.json'}: run `flowtools ip-ranges update` "
        "to download AWS's file (https://ip-ranges.amazonaws.com/ip-ranges.json), or pass --ip-ranges PATH")


@contextmanager
def serving(routes: dict[str, tuple[int, bytes]]):
    """A local HTTP server on 127.0.0.1 answering fixed bodies (never the internet)."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = routes.get(self.path, (404, b"not found"))
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def site():
    body = FIXTURE.read_bytes()
    with serving({"/ip-ranges.json": (200, body), "/broken": (200, b"<html>oops</html>"),
                  "/shape": (200, b'{"hello": 1}')}) as url:
        yield url


def test_update_from_a_local_server(site, tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWTOOLS_CACHE_DIR", str(tmp_path / "cache"))
    got = update(f"{site}/ip-ranges.json")
    assert cache_path().read_bytes() == FIXTURE.read_bytes()
    assert got.source == str(cache_path()) and got.sync_token == "1795089600"
    assert IpRanges.cached().classify(["52.95.7.10"])["aws_service"].to_list() == ["S3"]
    dest = tmp_path / "elsewhere" / "ranges.json"
    assert update(f"{site}/ip-ranges.json", dest).source == str(dest) and dest.exists()


@pytest.mark.parametrize("path,message", [
    ("/missing", "failed: HTTP 404"),
    ("/broken", "did not return JSON"),
    ("/shape", "is not AWS ip-ranges.json: missing 'syncToken'"),
])
def test_a_failed_update_leaves_the_cache_alone(site, tmp_path, monkeypatch, path, message):
    monkeypatch.setenv("FLOWTOOLS_CACHE_DIR", str(tmp_path))
    update(f"{site}/ip-ranges.json")
    before = cache_path().read_bytes()
    with pytest.raises(IpRangesError, match=message):
        update(f"{site}{path}")
    assert cache_path().read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ip-ranges.json"]  # no temporary files left


def test_update_when_nothing_answers(tmp_path):
    with serving({}) as url:
        pass  # the port is closed again
    with pytest.raises(IpRangesError, match=f"cannot download {url}/ip-ranges.json"):
        update(f"{url}/ip-ranges.json", tmp_path / "x.json", timeout=5)


def test_cli_update_and_show(site, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FLOWTOOLS_CACHE_DIR", str(tmp_path))
    assert main(["ip-ranges", "show"]) == 1
    assert "run `flowtools ip-ranges update`" in capsys.readouterr().err
    assert main(["ip-ranges", "update", "--url", f"{site}/ip-ranges.json"]) == 0
    out = capsys.readouterr().out
    assert "syncToken   1795089600" in out and "createDate  2026-11-19-12-00-00" in out
    assert "18 IPv4, 8 IPv6; 6 services" in out and str(tmp_path / "ip-ranges.json") in out
    assert main(["ip-ranges", "show"]) == 0 and "1795089600" in capsys.readouterr().out
    assert main(["ip-ranges", "show", "--dest", str(FIXTURE)]) == 0
    assert main(["ip-ranges", "update", "--url", f"{site}/broken"]) == 1
    assert "did not return JSON" in capsys.readouterr().err
