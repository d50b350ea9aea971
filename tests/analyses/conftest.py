"""Fixtures for analysis tests: canonical flow frames built from short specs, on both engines.

``flow(...)`` makes one record (a dict of canonical columns; every other column is NULL);
``tcp(...)``, ``udp(...)``, ``icmp(...)`` make the records of one conversation the way an
interface logs it. ``frames(records)`` gives the same rows as a Polars LazyFrame and as a
DuckDB relation on a fresh in-memory connection. The ``exposure`` fixture is
parametrised over both engines: it runs the analysis on the engine under test, checks
that the result is a lazy frame of that engine, and that both engines give identical
findings.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import duckdb
import polars as pl
import pytest

from flowtools.analyses.exposure import findings_records, internet_exposure
from flowtools.enrichment.inventory import Inventory
from flowtools.fields import BY_COLUMN, CANONICAL_COLUMNS

ACCOUNT = "123456789012"
REGION = "us-east-1"
#: 2026-11-20T10:00:00Z: records are placed relative to it.
T0 = int(datetime(2026, 11, 20, 10, 0, tzinfo=UTC).timestamp())
_TYPES = {"int32": pl.Int32, "int64": pl.Int64, "string": pl.String}


def canonical_schema() -> dict[str, pl.DataType]:
    schema: dict[str, pl.DataType] = {}
    for c in CANONICAL_COLUMNS:
        f = BY_COLUMN.get(c)
        if f is not None:
            schema[c] = _TYPES[f.type]
        elif c in ("start_time", "end_time"):
            schema[c] = pl.Datetime("us", "UTC")
        else:
            schema[c] = pl.String
    return schema


SCHEMA = canonical_schema()


def flow(iface: str, src: str, dst: str, sport: int | None = None, dport: int | None = None, *,
         proto: int = 6, flags: int | None = None, action: str = "ACCEPT", direction: str | None = None,
         t: int = 0, dur: int = 5, nbytes: int = 1000, packets: int = 10, pkt_src: str | None = None,
         pkt_dst: str | None = None, account: str = ACCOUNT, **extra: Any) -> dict[str, Any]:
    """One record of interface ``iface``, ``t`` seconds after T0, lasting ``dur`` seconds."""
    rec = {
        "version": 5 if direction else (3 if flags is not None or pkt_src or pkt_dst else 2),
        "account_id": account, "interface_id": iface, "srcaddr": src, "dstaddr": dst,
        "srcport": sport, "dstport": dport, "protocol": proto, "packets": packets, "bytes": nbytes,
        "start": T0 + t, "end": T0 + t + dur, "action": action, "log_status": "OK",
        "tcp_flags": flags, "pkt_srcaddr": pkt_src, "pkt_dstaddr": pkt_dst, "flow_direction": direction,
    }
    rec.update(extra)
    return rec


def tcp(iface: str, client: str, cport: int, server: str, sport: int, *, local: str = "server",
        client_flags: tuple[int | None, ...] = (3,), server_flags: tuple[int | None, ...] | None = (19,),
        direction: bool = True, client_action: str = "ACCEPT", server_action: str = "ACCEPT",
        t: int = 0, window: int = 60, **extra: Any) -> list[dict[str, Any]]:
    """A TCP conversation as ``iface`` logs it: one record per window and side, the
    client's windows with ``client_flags``, the server's with ``server_flags`` (None: the
    server never answers). ``local`` says which side is the interface's own
    (``"server"``: requests are ingress). ``direction=False`` leaves flow_direction out."""
    client_dir = "ingress" if local == "server" else "egress"
    server_dir = "egress" if local == "server" else "ingress"
    out = []
    for i, f in enumerate(client_flags):
        out.append(flow(iface, client, server, cport, sport, flags=f, action=client_action,
                        direction=client_dir if direction else None, t=t + i * window, nbytes=400, **extra))
    for i, f in enumerate(server_flags or ()):
        out.append(flow(iface, server, client, sport, cport, flags=f, action=server_action,
                        direction=server_dir if direction else None, t=t + i * window, nbytes=4000, **extra))
    return out


def udp(iface: str, client: str, cport: int, server: str, sport: int, *, local: str = "server",
        answered: bool = True, direction: bool = True, t: int = 0, **extra: Any) -> list[dict[str, Any]]:
    """A UDP exchange (request, and an answer unless ``answered=False``) as ``iface`` logs it."""
    client_dir = "ingress" if local == "server" else "egress"
    server_dir = "egress" if local == "server" else "ingress"
    out = [flow(iface, client, server, cport, sport, proto=17, direction=client_dir if direction else None,
                t=t, nbytes=80, **extra)]
    if answered:
        out.append(flow(iface, server, client, sport, cport, proto=17,
                        direction=server_dir if direction else None, t=t, nbytes=300, **extra))
    return out


def icmp(iface: str, remote: str, local: str, *, reply_action: str | None = "ACCEPT", v6: bool = False,
         direction: bool = True, t: int = 0, reply_t: int | None = None, **extra: Any) -> list[dict[str, Any]]:
    """An echo request from ``remote`` to ``local`` (ports 0 0) and its reply (None: no reply)."""
    proto = 58 if v6 else 1
    out = [flow(iface, remote, local, 0, 0, proto=proto, direction="ingress" if direction else None,
                t=t, nbytes=84, packets=1, **extra)]
    if reply_action:
        out.append(flow(iface, local, remote, 0, 0, proto=proto, action=reply_action,
                        direction="egress" if direction else None, t=t if reply_t is None else reply_t,
                        nbytes=84, packets=1, **extra))
    return out


def frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """Records as a canonical-schema DataFrame (missing columns NULL, derived times)."""
    rows = [{k: r.get(k) for k in SCHEMA if k not in ("start_time", "end_time")} for r in records]
    df = pl.DataFrame(rows, schema={k: v for k, v in SCHEMA.items() if k not in ("start_time", "end_time")},
                      orient="row")
    df = df.with_columns(
        start_time=pl.from_epoch("start", "s").dt.replace_time_zone("UTC"),
        end_time=pl.from_epoch("end", "s").dt.replace_time_zone("UTC"),
    )
    return df.select(list(SCHEMA))


def native(records: list[dict[str, Any]], engine: str) -> Any:
    """The records as the engine's native frame (DuckDB: a fresh in-memory connection)."""
    df = frame(records)
    if engine == "polars":
        return df.lazy()
    return duckdb.connect().from_arrow(df.to_arrow())


def write_inventory(folder: Path, documents: dict[str, Any]) -> Path:
    """Write ``{kind: document}`` as ``ACCOUNT-REGION-describe-<kind>.json`` (or a full
    file name as key) and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, doc in documents.items():
        fname = name if name.endswith(".json") else f"{ACCOUNT}-{REGION}-describe-{name}.json"
        (folder / fname).write_text(json.dumps(doc, indent=4), encoding="utf-8")
    return folder


def eni(interface_id: str, private_ip: str, *, interface_type: str = "interface", description: str = "",
        public_ip: str | None = None, instance_id: str | None = None, ipv6: tuple[str, ...] = (),
        secondary: tuple[str, ...] = (), vpc_id: str = "vpc-0abc", owner: str = ACCOUNT,
        requester_managed: bool = False) -> dict[str, Any]:
    """One entry of ``describe-network-interfaces`` in the AWS CLI's shape."""
    assoc = {"IpOwnerId": "amazon", "PublicDnsName": "", "PublicIp": public_ip} if public_ip else None
    primary: dict[str, Any] = {"Primary": True, "PrivateIpAddress": private_ip}
    if assoc:
        primary = {"Association": assoc, **primary}
    d: dict[str, Any] = {}
    if assoc:
        d["Association"] = assoc
    d["Attachment"] = {"AttachmentId": "eni-attach-1", "DeviceIndex": 0, "Status": "attached",
                       **({"InstanceId": instance_id, "InstanceOwnerId": owner} if instance_id else {})}
    d.update({
        "AvailabilityZone": "us-east-1a", "Description": description, "Groups": [],
        "InterfaceType": interface_type,
        "Ipv6Addresses": [{"Ipv6Address": a} for a in ipv6],
        "NetworkInterfaceId": interface_id, "OwnerId": owner, "PrivateIpAddress": private_ip,
        "PrivateIpAddresses": [primary] + [{"Primary": False, "PrivateIpAddress": a} for a in secondary],
        "RequesterManaged": requester_managed, "SourceDestCheck": True, "Status": "in-use",
        "SubnetId": "subnet-0abc", "TagSet": [], "VpcId": vpc_id,
    })
    return d


def _key(records: list[dict[str, Any]], kw: dict[str, Any]) -> str:
    inv = kw.get("inventory")
    tables = None if inv is None else [
        getattr(inv, t).drop("source_file").rows() for t in ("interfaces", "instances", "vpcs", "subnets")]
    return json.dumps([records, {k: v for k, v in kw.items() if k != "inventory"}, tables],
                      sort_keys=True, default=str)


#: Findings per (engine, input): the parametrised runs of one test compute each engine once
#: (a DuckDB run costs about a second of CPU even on a few records: the engine binds each
#: step of the plan as it is built), so a test must not patch the analysis before calling
#: ``exposure(...)``; it calls the analysis itself for that.
_RESULTS: dict[tuple[str, str], list[dict[str, Any]]] = {}


class ExposureRunner:
    """Runs the analysis on one engine and checks the other engine agrees."""

    def __init__(self, engine: str) -> None:
        self.engine = engine

    def native(self, records: list[dict[str, Any]]) -> Any:
        return native(records, self.engine)

    def frame(self, records: list[dict[str, Any]], **kw: Any) -> Any:
        """The result frame of the engine under test (checked to be that engine's lazy frame)."""
        result = internet_exposure(self.native(records), **kw)
        expected = duckdb.DuckDBPyRelation if self.engine == "duckdb" else pl.LazyFrame
        assert isinstance(result, expected)
        return result

    def __call__(self, records: list[dict[str, Any]], **kw: Any) -> list[dict[str, Any]]:
        """Findings as JSON-ready dicts; both engines must give identical ones."""
        key = _key(records, kw)
        if (self.engine, key) not in _RESULTS:  # the other engine's case may have computed it
            _RESULTS[(self.engine, key)] = findings_records(self.frame(records, **kw))
        rows = _RESULTS[(self.engine, key)]
        other = "polars" if self.engine == "duckdb" else "duckdb"
        if (other, key) not in _RESULTS:
            _RESULTS[(other, key)] = findings_records(internet_exposure(native(records, other), **kw))
        assert _RESULTS[(other, key)] == rows, f"{self.engine} and {other} disagree"
        return rows


@pytest.fixture(params=["duckdb", "polars"])
def exposure(request) -> ExposureRunner:
    return ExposureRunner(request.param)


@pytest.fixture
def fl() -> SimpleNamespace:
    """The record builders."""
    return SimpleNamespace(flow=flow, tcp=tcp, udp=udp, icmp=icmp, frame=frame, native=native, T0=T0,
                           ACCOUNT=ACCOUNT, REGION=REGION)


@pytest.fixture
def inventory_of(tmp_path):
    """``inventory_of(interfaces=[eni(...)], vpcs=[...])`` -> a loaded Inventory."""
    counter = iter(range(1000))

    def make(*, interfaces=(), vpcs=(), instances=(), **files) -> Inventory:
        docs: dict[str, Any] = dict(files)
        if interfaces:
            docs["network-interfaces"] = {"NetworkInterfaces": list(interfaces)}
        if vpcs:
            docs["vpcs"] = {"Vpcs": list(vpcs)}
        if instances:
            docs["instances"] = {"Reservations": [{"Instances": list(instances), "OwnerId": ACCOUNT}]}
        return Inventory.load(write_inventory(tmp_path / f"inventory-{next(counter)}", docs))

    make.eni = eni  # type: ignore[attr-defined]
    return make
