"""The scenario generator: layouts, names, formats, inventory shapes, ground truth, determinism.

Files are read here with gzip / pyarrow directly (not with flowtools' reader), so these
tests say what the generator writes, whatever the reader does with it.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import os
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from flowtools.analyses.watchlist import Watchlist
from flowtools.errors import UsageError
from flowtools.fields import BY_NAME, DEFAULT_FORMAT, field_type
from flowtools.sample import SampleSummary, generate
from flowtools.sample.scenario import WATCHLIST
from flowtools.sample.traffic import ANSWERED

BASE = int(datetime(2026, 11, 20, tzinfo=UTC).timestamp())
NAME = re.compile(
    r"^(?P<account>\d{12})_vpcflowlogs_(?P<region>[a-z]{2}-[a-z]+-\d)_(?P<fl>fl-[0-9a-f]{17})_"
    r"(?P<ts>\d{8}T\d{4}Z)_(?P<hash>[0-9a-f]{8})\.log\.(?P<ext>gz|parquet)$"
)
DAILY = re.compile(r"(^|/)AWSLogs/(o-[a-z0-9]{10,32}/)?(?P<account>\d{12})/vpcflowlogs/(?P<region>[a-z0-9-]+)/"
                   r"(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})(/(?P<h>\d{2}))?$")
HIVE = re.compile(r"(^|/)AWSLogs/(o-[a-z0-9]{10,32}/)?aws-account-id=(?P<account>\d{12})/aws-service=vpcflowlogs/"
                  r"aws-region=(?P<region>[a-z0-9-]+)/year=(?P<y>\d{4})/month=(?P<m>\d{2})/day=(?P<d>\d{2})"
                  r"(/hour=(?P<h>\d{2}))?$")
KINDS = {"network-interfaces": "NetworkInterfaces", "instances": "Reservations", "vpcs": "Vpcs",
         "subnets": "Subnets", "security-groups": "SecurityGroups"}
NOT_INTERNET = [ipaddress.ip_network(c) for c in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                                  "100.64.0.0/10", "fc00::/7", "fe80::/10")]


def public(addr: str) -> bool:
    ip = ipaddress.ip_address(addr)
    return not any(ip.version == n.version and ip in n for n in NOT_INTERNET)


def flow_log_files(root: Path, ext: str = "gz") -> list[Path]:
    return sorted(p for p in root.rglob(f"*.log.{ext}"))


def read_text(path: Path) -> tuple[list[str], list[list[str]]]:
    lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
    assert lines[-1] == "", f"{path.name}: no final newline"
    return lines[0].split(" "), [line.split(" ") for line in lines[1:-1]]


# -- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def day(tmp_path_factory) -> tuple[Path, SampleSummary]:
    """A full day (every case happens) at a small scale."""
    out = tmp_path_factory.mktemp("day")
    return out, generate(out, seed=0, hours=24, scale=0.3)


@pytest.fixture(scope="module")
def records(day) -> list[dict]:
    """Every record of the day's text files, as {field: token} plus file facts."""
    root, _ = day
    rows = []
    for path in flow_log_files(root):
        header, lines = read_text(path)
        m = NAME.match(path.name)
        for n, tokens in enumerate(lines, start=2):
            assert len(tokens) == len(header), f"{path.name}:{n}: {len(tokens)} fields, header has {len(header)}"
            rec = dict(zip(header, tokens, strict=True))
            rec["_file"] = path
            rec["_fl"] = m["fl"]
            rows.append(rec)
    return rows


@pytest.fixture(scope="module")
def truth(day) -> dict:
    return json.loads((day[0] / "truth.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def inventory(day) -> dict[str, list[dict]]:
    """kind -> all documents' items, over every account and region."""
    out: dict[str, list[dict]] = defaultdict(list)
    for path in sorted((day[0] / "inventory").glob("*.json")):
        m = re.match(r"^(\d{12})-([a-z]{2}-[a-z]+-\d)-describe-([a-z-]+)\.json$", path.name)
        assert m and m[3] in KINDS, path.name
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert list(doc) == [KINDS[m[3]]]
        out[m[3]] += doc[KINDS[m[3]]]
    return out


@pytest.fixture(scope="module")
def enis(inventory) -> dict[str, dict]:
    return {n["NetworkInterfaceId"]: n for n in inventory["network-interfaces"]}


def seconds(token: str) -> int:
    v = int(token)
    return v // 1000 if v > 10**11 else v


# -- what it writes -----------------------------------------------------------------------

def test_summary(day):
    root, s = day
    assert s.out_dir == root and s.files > 100 and s.records > 10_000
    assert s.accounts == ("111111111111", "222222222222", "333333333333")
    assert s.regions == ("eu-west-1", "us-east-1")
    assert (s.start, s.end) == (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
    assert len(s.flow_logs) == 7
    for rel in s.paths:
        assert (root / rel).is_file(), rel
    assert len(flow_log_files(root)) == s.files
    assert not flow_log_files(root, "parquet")
    assert "flow-log files" in str(s)


def test_layouts_org_segment_and_user_prefix(day):
    root, _ = day
    seen = set()
    for path in flow_log_files(root):
        rel = path.relative_to(root)
        folder = rel.parent.as_posix()
        m = DAILY.search(folder) or HIVE.search(folder)
        assert m, f"no known layout: {folder}"
        name = NAME.match(path.name)
        assert name, f"not AWS's file-name pattern: {path.name}"
        assert (m["account"], m["region"]) == (name["account"], name["region"])
        ts = datetime.strptime(name["ts"], "%Y%m%dT%H%MZ").replace(tzinfo=UTC)
        assert (m["y"], m["m"], m["d"]) == (f"{ts:%Y}", f"{ts:%m}", f"{ts:%d}")
        if m["h"] is not None:
            assert m["h"] == f"{ts:%H}"
        hive = folder.startswith("AWSLogs/aws-account-id=") or "/aws-account-id=" in folder
        seen.add(("hive" if hive else "plain") + ("-hourly" if m["h"] else "-daily"))
        if "/o-" in f"/{folder}":
            seen.add("org")
        if not folder.startswith("AWSLogs/"):
            seen.add(f"prefix:{folder.split('/AWSLogs/')[0]}")
    assert {"plain-daily", "plain-hourly", "hive-daily", "hive-hourly", "org", "prefix:central"} <= seen


def test_text_files_headers_and_formats(day):
    root, _ = day
    headers: dict[str, tuple[str, ...]] = {}
    folders: dict[str, set[tuple[str, ...]]] = defaultdict(set)
    for path in flow_log_files(root):
        header, lines = read_text(path)
        assert lines, f"{path.name} holds no record"
        fl = NAME.match(path.name)["fl"]
        assert headers.setdefault(fl, tuple(header)) == tuple(header), "a flow log's format never changes"
        folders[path.parent.as_posix()].add(tuple(header))
    formats = set(headers.values())
    assert DEFAULT_FORMAT in formats
    # a v3-v5 custom format in a non-default order
    wanted = {"tcp-flags", "flow-direction", "traffic-path", "pkt-srcaddr", "pkt-dstaddr", "vpc-id",
              "subnet-id", "instance-id", "region", "az-id", "type"}
    assert any(wanted <= set(f) and f[: len(DEFAULT_FORMAT)] != DEFAULT_FORMAT
               and max(BY_NAME[n].version for n in f) == 5 for f in formats)
    assert any({"ecs-cluster-arn", "ecs-task-id", "reject-reason"} <= set(f) for f in formats)
    newer = [f for f in formats if "interface-type" in f]
    assert newer and any(name not in BY_NAME for name in newer[0]), "an unknown (future) field"
    assert any(len(h) > 1 for h in folders.values()), "two formats share a partition folder"


def test_records_fields_and_time(records):
    end = BASE + 24 * 3600
    millis_logs = set()
    for r in records:
        assert r["log-status"] in ("OK", "NODATA", "SKIPDATA")
        start, stop = seconds(r["start"]), seconds(r["end"])
        if int(r["start"]) > 10**11:
            millis_logs.add(r["_fl"])
        assert BASE <= start <= stop < end
        assert stop - start <= 600
        ts = NAME.match(r["_file"].name)["ts"]
        file_time = int(datetime.strptime(ts, "%Y%m%dT%H%MZ").replace(tzinfo=UTC).timestamp())
        assert file_time - stop // 300 * 300 in (0, 300), "file = 5-minute batch of end (or one late)"
        for name, token in r.items():
            if name.startswith("_") or token == "-":
                continue
            if field_type(name) != "string":
                int(token)
        if r["log-status"] == "OK":
            assert r["action"] in ("ACCEPT", "REJECT")
            assert int(r["protocol"]) in (1, 6, 17, 58)
        else:
            assert r["srcaddr"] == r["dstaddr"] == r["action"] == "-"
    assert len(millis_logs) == 1
    statuses = {r["log-status"] for r in records}
    assert statuses == {"OK", "NODATA", "SKIPDATA"}
    assert sum(1 for r in records if int(r["start"]) > 10**11) < 0.02 * len(records)


def test_some_files_are_one_batch_late(records):
    late = {r["_file"] for r in records
            if int(datetime.strptime(NAME.match(r["_file"].name)["ts"], "%Y%m%dT%H%MZ")
                   .replace(tzinfo=UTC).timestamp()) != seconds(r["end"]) // 300 * 300}
    assert late


def test_record_patterns(records, enis):
    by_type = {i: n["InterfaceType"] for i, n in enis.items()}
    ips = {i: n["PrivateIpAddress"] for i, n in enis.items()}
    # account-id "unknown" on the load balancer's interface
    unknown = {r["interface-id"] for r in records if r["account-id"] == "unknown"}
    assert unknown and all(by_type[i] == "network_load_balancer" for i in unknown)
    assert any(r.get("reject-reason") == "BPA" and r["action"] == "REJECT" for r in records)
    # TCP flags: short 3/19, long 2,0,..,1 / 18,0,..,1, reset 4
    flags = {r.get("tcp-flags") for r in records}
    assert {"0", "1", "2", "3", "4", "18", "19"} <= flags
    # NAT gateway (AWS's worked example): the inside leg shows the NAT's address in
    # dstaddr and the internet host in pkt-dstaddr; the outside leg is translated
    nat = [r for r in records if by_type.get(r["interface-id"]) in ("nat_gateway", "natGateway")
           and r["log-status"] == "OK" and "pkt-dstaddr" in r]
    assert any(r["dstaddr"] == ips[r["interface-id"]] and public(r["pkt-dstaddr"]) for r in nat)
    assert any(r["srcaddr"] == ips[r["interface-id"]] and public(r["dstaddr"]) for r in nat)
    assert any(public(r["srcaddr"]) and r["dstaddr"] == ips[r["interface-id"]] for r in nat)
    # a transit gateway carries traffic whose packet addresses are internet hosts
    tgw = [r for r in records if by_type.get(r["interface-id"]) == "transit_gateway"]
    assert any(public(r["pkt-dstaddr"]) or public(r["pkt-srcaddr"]) for r in tgw
               if r["log-status"] == "OK")
    # IPv6, ICMP (ports 0 0), UDP
    assert any(r.get("type") == "IPv6" and r["dstport"] == "443" for r in records)
    assert any(r["protocol"] == "1" and r["srcport"] == r["dstport"] == "0" for r in records)
    assert any(r["protocol"] == "17" and r["dstport"] == "51820" for r in records)


def test_long_session_spans_hour(records, truth):
    entry = next(e for e in truth["exposure"] if e["port"] == 2222)
    assert entry["active_from"] < "2026-11-20T05:00:00Z" < entry["active_to"]
    mine = [r for r in records if r["interface-id"] == entry["interface_id"] and "2222" in (r["srcport"], r["dstport"])]
    inbound = sorted((int(r["start"]), int(r["tcp-flags"])) for r in mine if r["dstport"] == "2222")
    outbound = sorted((int(r["start"]), int(r["tcp-flags"])) for r in mine if r["srcport"] == "2222")
    assert [f for _, f in inbound] == [2] + [0] * (len(inbound) - 2) + [1]
    assert [f for _, f in outbound] == [18] + [0] * (len(outbound) - 2) + [1]
    assert all(f == 0 for s, f in inbound if s >= BASE + 5 * 3600 and (s, f) != inbound[-1])


# -- inventory and ip-ranges --------------------------------------------------------------

def test_inventory_shapes(inventory, enis, records):
    assert set(inventory) == set(KINDS)
    for n in inventory["network-interfaces"]:
        for key in ("NetworkInterfaceId", "InterfaceType", "Description", "PrivateIpAddress",
                    "PrivateIpAddresses", "Ipv6Addresses", "VpcId", "SubnetId", "OwnerId",
                    "RequesterManaged", "Groups", "TagSet"):
            assert key in n, key
    types = {n["InterfaceType"] for n in inventory["network-interfaces"]}
    assert {"nat_gateway", "natGateway", "network_load_balancer", "transit_gateway", "interface"} <= types
    nlb = next(n for n in enis.values() if n["InterfaceType"] == "network_load_balancer")
    assert nlb["Description"] == "ELB net/api-nlb/0123456789abcdef" and nlb["RequesterManaged"]
    instances = [i for r in inventory["instances"] for i in r["Instances"]]
    names = [t["Value"] for i in instances for t in i["Tags"] if t["Key"] == "Name"]
    assert any("<b>" in n and '"' in n and any(ord(c) < 32 for c in n) for n in names)
    assert all(i["InstanceId"].startswith("i-") and i["NetworkInterfaces"] for i in instances)
    vpcs = inventory["vpcs"]
    assert any(v.get("Ipv6CidrBlockAssociationSet") for v in vpcs)
    rules = [p for g in inventory["security-groups"] for p in g["IpPermissions"]]
    assert any(p["IpProtocol"] == "-1" and "0.0.0.0/0" in [r["CidrIp"] for r in p["IpRanges"]]
               for p in rules)
    assert any("::/0" in [r["CidrIpv6"] for r in p["Ipv6Ranges"]] for p in rules)
    # every interface in the logs is in the inventory
    assert {r["interface-id"] for r in records} <= set(enis)


def test_estate_addresses(inventory, enis):
    for v in inventory["vpcs"]:
        net = ipaddress.ip_network(v["CidrBlock"])
        assert net.subnet_of(ipaddress.ip_network("10.0.0.0/8")) or net.subnet_of(ipaddress.ip_network("172.16.0.0/12"))
    for n in enis.values():
        assert re.match(r"^eni-[0-9a-f]{17}$", n["NetworkInterfaceId"])
        assert n["OwnerId"] in ("111111111111", "222222222222", "333333333333")


def test_ip_ranges_fixture(day, records):
    doc = json.loads((day[0] / "ip-ranges.json").read_text())
    assert {"syncToken", "createDate", "prefixes", "ipv6_prefixes"} <= set(doc)
    nets = [(ipaddress.ip_network(p["ip_prefix"]), p["service"]) for p in doc["prefixes"]]
    nets += [(ipaddress.ip_network(p["ipv6_prefix"]), p["service"]) for p in doc["ipv6_prefixes"]]
    services = {s for _, s in nets}
    assert {"AMAZON", "S3", "EC2", "CLOUDFRONT"} <= services
    # every AWS service name a record shows is backed by a matching range
    for r in records:
        for side in ("src", "dst"):
            svc = r.get(f"pkt-{side}-aws-service", "-")
            if svc != "-":
                ip = ipaddress.ip_address(r[f"pkt-{side}addr"])
                assert any(ip.version == n.version and ip in n and s == svc for n, s in nets)


# -- ground truth -------------------------------------------------------------------------

def test_truth_schema(truth, enis):
    assert truth["generator"] == "flowtools.sample"
    assert (truth["seed"], truth["hours"], truth["scale"], truth["fmt"]) == (0, 24, 0.3, "text")
    assert truth["window"] == {"start": "2026-11-20T00:00:00Z", "end": "2026-11-21T00:00:00Z"}
    for e in truth["exposure"]:
        assert {"account_id", "region", "vpc_id", "interface_id", "port", "protocol", "status", "peers",
                "connections", "description", "active_from", "active_to"} <= set(e)
        assert e["interface_id"] in enis
        assert e["protocol"] in ("tcp", "udp", "icmp", "icmpv6")
        assert (e["port"] is None) == (e["protocol"] in ("icmp", "icmpv6"))
        assert e["status"] in ("exposed", "reachable", "blocked")
        assert 1 <= e["peers"] <= e["connections"]
        assert e["active_from"] <= e["active_to"]
    for c in truth["configured"]:
        assert {"interface_id", "port", "port_to", "protocol"} <= set(c) and c["interface_id"] in enis
    for n in truth["not_exposure"]:
        assert {"interface_id", "port", "protocol", "why"} <= set(n) and n["interface_id"] in enis
    keys = {(e["interface_id"], e["port"], e["protocol"]) for e in truth["exposure"]}
    assert len(keys) == len(truth["exposure"])
    assert not keys & {(n["interface_id"], n["port"], n["protocol"]) for n in truth["not_exposure"]}


def test_truth_covers_every_case(truth, enis):
    def find(**kw):
        return [e for e in truth["exposure"] if all(e[k] == v for k, v in kw.items())]

    itype = {i: n["InterfaceType"] for i, n in enis.items()}
    assert any(itype[e["interface_id"]] == "network_load_balancer" for e in find(port=443, status="exposed"))
    assert find(port=8443, status="exposed")
    assert find(port=51820, protocol="udp", status="exposed")
    assert find(port=53, protocol="udp", status="exposed")
    assert find(protocol="icmp", status="exposed") and find(protocol="icmp", status="reachable")
    assert find(protocol="icmpv6", status="exposed")
    assert len(find(status="reachable", protocol="tcp")) == 2
    assert {e["port"] for e in find(status="blocked")} >= {23, 3389, 3306}
    assert find(port=22, status="exposed")
    preview = find(port=8080, status="exposed")
    assert preview and preview[0]["active_from"] >= "2026-11-20T02:00:00Z" and preview[0]["active_to"] < "2026-11-20T03:00:00Z"
    assert not any(itype[e["interface_id"]] in ("nat_gateway", "natGateway", "transit_gateway")
                   for e in truth["exposure"])
    configured = {(c["protocol"], c["port"], c["port_to"]) for c in truth["configured"]}
    assert {("tcp", 8000, 8100), ("all", None, None)} <= configured
    why = " ".join(n["why"] for n in truth["not_exposure"])
    assert "NAT gateway" in why and "S3" in why and "estate's own public IP" in why
    assert any(itype[n["interface_id"]] == "transit_gateway" for n in truth["not_exposure"])


def test_truth_agrees_with_records(truth, records):
    """Light cross-checks (the truth comes from the scenario, not from these records)."""
    inbound = defaultdict(set)
    for r in records:
        if r["log-status"] == "OK" and r["action"] == "ACCEPT" and public(r["srcaddr"]):
            inbound[r["interface-id"]].add((r["dstport"], r["protocol"]))
    for e in truth["exposure"]:
        if e["status"] != "blocked" and e["protocol"] in ("tcp", "udp"):
            proto = "6" if e["protocol"] == "tcp" else "17"
            assert (str(e["port"]), proto) in inbound[e["interface_id"]], e
    for n in truth["not_exposure"]:  # the naive method would report it
        proto = {"tcp": "6", "udp": "17"}[n["protocol"]]
        assert (str(n["port"]), proto) in inbound[n["interface_id"]], n
    for e in truth["exposure"]:
        if e["status"] == "blocked":  # internet SYNs there were all rejected
            assert (str(e["port"]), "6") not in inbound[e["interface_id"]], e


# -- determinism, options, parquet --------------------------------------------------------

def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_deterministic(tmp_path):
    a = _tree(Path(generate(tmp_path / "a", seed=7, hours=2).out_dir))
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    code = f"from flowtools.sample import generate; generate({str(tmp_path / 'b')!r}, seed=7, hours=2)"
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    b = _tree(tmp_path / "b")
    assert a.keys() == b.keys()
    assert [k for k in a if a[k] != b[k]] == []
    c = _tree(Path(generate(tmp_path / "c", seed=8, hours=2).out_dir))
    assert a["truth.json"] != c["truth.json"]
    assert set(k for k in a if ".log." in k) != set(k for k in c if ".log." in k)
    assert a["inventory/111111111111-us-east-1-describe-network-interfaces.json"] == \
        c["inventory/111111111111-us-east-1-describe-network-interfaces.json"]


def test_slicing_changes_no_byte(tmp_path):
    """Records are built and written a time slice at a time; the slice length (5-minute
    slices, so every record delivered late crosses a slice boundary; 35 minutes, not
    aligned to hours; the whole window) must not change a byte of what is written."""
    def tree(minutes):
        summary = generate(tmp_path / str(minutes), seed=5, hours=2, scale=0.15, _slice_minutes=minutes)
        return summary, _tree(tmp_path / str(minutes))

    whole, reference = tree(120)
    late = 0
    for path in flow_log_files(tmp_path / "120"):  # the case the slicing must get right
        ts = int(datetime.strptime(NAME.match(path.name)["ts"], "%Y%m%dT%H%MZ").replace(tzinfo=UTC).timestamp())
        header, lines = read_text(path)
        end = header.index("end")
        late += sum(int(t[end]) < ts for t in lines if t[end] != "-" and len(t[end]) == 10)
    assert late > 0
    for minutes in (5, 35):
        summary, files = tree(minutes)
        assert files.keys() == reference.keys()
        assert [k for k in files if files[k] != reference[k]] == [], f"{minutes}-minute slices"
        assert (summary.files, summary.records, summary.bytes) == (whole.files, whole.records, whole.bytes)
    with pytest.raises(UsageError, match="_slice_minutes"):
        generate(tmp_path / "x", hours=1, _slice_minutes=7)


def test_gzip_header_is_fixed(day):
    data = flow_log_files(day[0])[0].read_bytes()
    assert data[:2] == b"\x1f\x8b" and data[4:8] == b"\0\0\0\0", "gzip mtime must be 0"


def test_hours_and_scale(tmp_path):
    one = generate(tmp_path / "one", hours=1)
    t = json.loads((tmp_path / "one" / "truth.json").read_text())
    assert t["window"]["end"] == "2026-11-20T01:00:00Z"
    assert all(e["active_to"] < "2026-11-20T01:00:00Z" for e in t["exposure"])
    assert not any(e["port"] in (2222, 8080) for e in t["exposure"] if e["status"] == "exposed"), \
        "cases of later hours"
    double = generate(tmp_path / "double", hours=1, scale=2.0)
    assert 1.6 < double.records / one.records < 2.4


def test_parquet(tmp_path):
    s = generate(tmp_path, hours=1, scale=0.3, fmt="parquet")
    files = flow_log_files(tmp_path, "parquet")
    assert files and len(files) == s.files and not flow_log_files(tmp_path)
    seen_null = False
    for path in files:
        assert NAME.match(path.name)
        table = pq.read_table(path)
        for name, typ in zip(table.schema.names, table.schema.types, strict=True):
            assert "-" not in name
            expected = {"int32": "int32", "int64": "int64", "string": "string"}[field_type(name)]
            assert str(typ) == expected, (path.name, name, typ)
        for name in ("version", "srcport", "dstport", "protocol"):
            assert str(table.schema.field(name).type) == "int32"
        for name in ("packets", "bytes", "start", "end"):
            assert str(table.schema.field(name).type) == "int64"
        if "tcp_flags" in table.schema.names:
            assert str(table.schema.field("tcp_flags").type) == "int32"
        for col in table.columns:
            if str(col.type) == "string":
                assert "-" not in col.to_pylist(), "'-' is NULL in Parquet"
        seen_null = seen_null or any(col.null_count for col in table.columns)
    assert seen_null
    assert json.loads((tmp_path / "truth.json").read_text())["fmt"] == "parquet"


def test_options_and_folders(tmp_path):
    with pytest.raises(UsageError, match="fmt"):
        generate(tmp_path / "x", fmt="csv")
    with pytest.raises(UsageError, match="hours"):
        generate(tmp_path / "x", hours=0)
    with pytest.raises(UsageError, match="scale"):
        generate(tmp_path / "x", scale=0)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="not empty"):
        generate(foreign, hours=1)
    again = tmp_path / "again"
    first = generate(again, hours=1, seed=1)
    second = generate(again, hours=1, seed=2)  # an earlier sample is replaced, not mixed in
    assert len(flow_log_files(again)) == second.files
    assert set(first.paths) != set(second.paths)


# -- the decisions' truth ---------------------------------------------------------------------

def test_window_totals_are_what_expand_writes():
    """The truth's per-conversation totals (records, packets, bytes of one half) equal the
    records the generator writes, for conversations of one and of many windows."""
    from flowtools.sample.estate import Estate
    from flowtools.sample.scenario import Scenario
    from flowtools.sample.traffic import expand, window_totals

    estate = Estate()
    groups = {g.name: g for g in Scenario(estate, seed=1, hours=6, scale=0.3).build()}
    for name in ("web-1/https", "vpn/wireguard", "app-2/c2"):
        g = groups[name]
        for leg in g.legs:
            agg = estate.agg(leg.iface)
            records = expand(replace(g, legs=[leg]), estate.agg)
            for half in leg.halves:
                side = "f" if half.initiator else "r"
                conv = g.conversations if half.initiator else g.conversations.filter(pl.col("kind").is_in(ANSWERED))
                n, packets, nbytes = window_totals(conv, agg, side)
                mine = records.filter(pl.col("flow_direction") == half.direction)
                assert (int(n.sum()), int(packets.sum()), int(nbytes.sum())) == (
                    mine.height, mine["packets"].sum(), mine["bytes"].sum()), (name, leg.iface, half.direction)


def test_watchlist_file(day):
    root, summary = day
    assert "watchlist.txt" in summary.paths
    text = (root / "watchlist.txt").read_text(encoding="utf-8")
    entries = Watchlist.parse(text).entries
    assert [(e.text, e.label) for e in entries] == list(WATCHLIST)
    assert any(e.network.prefixlen < 32 and e.network.version == 4 for e in entries)
    assert "," in text and "#" in text  # both separators, a comment


def test_decisions_truth_schema(truth, enis):
    (single,) = truth["single_peer"]
    assert (single["port"], single["protocol"], single["peers"], single["connections"]) == (7777, "udp", 1, 1)
    listed = {item for item, _ in WATCHLIST}
    for w in truth["watchlist"]:
        assert w["interface_id"] in enis and w["entry"] in listed and w["direction"] in ("to listed", "from listed")
        assert w["action"] in ("ACCEPT", "REJECT") and 1 <= w["records"] <= w["packets"] and w["bytes"] >= 40
        assert ipaddress.ip_address(w["listed_address"]) in ipaddress.ip_network(w["entry"])
    types = {i: n["InterfaceType"] for i, n in enis.items()}
    for e in truth["egress"]:
        assert types[e["interface_id"]] == "interface" and e["bytes"] > 0
        assert e["via"] == "direct" or types[e["via"]] in ("nat_gateway", "natGateway")  # via a NAT gateway
    assert len({(e["interface_id"], e["via"], e["destination"]) for e in truth["egress"]}) == len(truth["egress"])
    for s in truth["scanners"]:
        assert s["ports"] >= 5 or s["interfaces"] >= 3
        assert s["outcome"] in ("answered", "accepted", "blocked") and public(s["source"])
    assert {s["outcome"] for s in truth["scanners"]} >= {"answered", "blocked"}
    assert truth["changes"] is None


def test_single_peer_records_tie(truth, records):
    """The single-peer service's records: request and reply with the same start in every
    window, the reply written first; no flags, no direction in that format."""
    (single,) = truth["single_peer"]
    mine = [r for r in records if r["interface-id"] == single["interface_id"] and r["protocol"] == "17"
            and "7777" in (r["srcport"], r["dstport"])]
    assert mine and "flow-direction" not in mine[0] and "tcp-flags" not in mine[0]
    windows = defaultdict(list)
    for r in mine:
        windows[(r["_file"], r["start"])].append("request" if r["dstport"] == "7777" else "reply")
    assert {tuple(v) for v in windows.values()} == {("reply", "request")}
    assert {r["srcaddr"] for r in mine if r["dstport"] == "7777"} == {"192.0.2.77"}
    assert {r["srcport"] for r in mine if r["dstport"] == "7777"} == {"50123"}


def test_reports_logs_nodata_only_where_it_has_no_traffic():
    """Case 17: reports is idle on day 1 (NODATA in every window) and serves from day 2:
    no NODATA window overlaps its traffic."""
    from flowtools.sample.estate import Estate
    from flowtools.sample.scenario import REPORTS_LIVE_HOUR, Scenario

    estate = Estate()
    scenario = Scenario(estate, seed=0, hours=48, scale=0.2)
    scenario.build()
    agg = estate.agg("reports")
    busy = scenario._busy_windows("reports", agg)
    nodata = next(f for f in scenario.status_frames() if f["iface"][0] == "reports")["start"].to_numpy()
    assert busy.size and busy.min() >= scenario.base + REPORTS_LIVE_HOUR * 3600
    assert not set(busy) & set(nodata)
    assert len(set(busy) | set(nodata)) == 48 * 3600 // agg
