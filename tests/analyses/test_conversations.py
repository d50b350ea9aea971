"""Oriented conversations (traffic.conversations / traffic.ports): the initiator and the
service port decided as the exposure analysis decides, on both engines."""

from __future__ import annotations

import json

import polars as pl
import pytest
from flowlog_files import SAMPLES

import flowtools
from flowtools.analyses import traffic
from flowtools.frames import to_polars

CLIENT, SERVER, DB = "198.51.100.7", "10.0.0.5", "10.0.9.9"


def _web_records(fl) -> list[dict]:
    """A web server's HTTPS conversation (flags), and its own call to a database from an
    ephemeral port, in a log without flags or flow_direction (port evidence decides)."""
    return (fl.tcp("eni-web", CLIENT, 51234, SERVER, 443, client_flags=(2, 16), server_flags=(18, 16))
            + fl.tcp("eni-web", SERVER, 40000, DB, 5432, local="client", client_flags=(None,),
                     server_flags=(None,), direction=False))


def _both(fl, call, records) -> pl.DataFrame:
    out = {e: to_polars(call(fl.native(records, e))) for e in ("duckdb", "polars")}
    duck, polars = out["duckdb"], out["polars"]
    assert duck.columns == polars.columns
    assert duck.equals(polars.cast(duck.schema)), "duckdb and polars disagree"
    return polars


def test_a_web_servers_conversation_is_the_clients_with_port_443(fl):
    rows = _both(fl, lambda f: traffic.conversations(f, interfaces=["ENI-WEB"]), _web_records(fl))
    web = rows.filter(pl.col("protocol") == 6).filter(pl.col("service_port") == 443).to_dicts()
    assert len(web) == 1 and rows.height == 2  # the replies are the same conversation, not one of their own
    assert {k: web[0][k] for k in ("initiator", "initiator_port", "responder", "service_port", "initiated",
                                   "decided_by", "service", "records")} == {
        "initiator": CLIENT, "initiator_port": 51234, "responder": SERVER, "service_port": 443,
        "initiated": "inbound", "decided_by": "flags", "service": "https", "records": 4}
    assert (web[0]["bytes_sent"], web[0]["bytes_received"]) == (800, 8000)  # the client's request, the replies
    db = rows.filter(pl.col("service_port") == 5432).to_dicts()[0]
    assert (db["initiator"], db["initiator_port"], db["responder"], db["initiated"], db["decided_by"]) == (
        SERVER, 40000, DB, "outbound", "ports")


def test_ports_lists_service_ports_not_ephemeral_ones(fl):
    records = []
    for i in range(5):  # five clients, each from its own ephemeral port, and no flags
        records += fl.tcp("eni-web", f"203.0.113.{i + 1}", 50000 + i, SERVER, 8443, client_flags=(None,),
                          server_flags=(None,), t=i)
    rows = _both(fl, lambda f: traffic.ports(f, interfaces=["eni-web"]), records)
    assert rows.select("service_port", "protocol", "initiated", "initiators", "conversations", "records").rows() == [
        (8443, 6, "inbound", 5, 5, 10)]


def test_interfaces_not_in_the_flows_give_no_rows(fl):
    rows = _both(fl, lambda f: traffic.ports(f, interfaces=["eni-other"]), _web_records(fl))
    assert rows.height == 0


@pytest.mark.usefixtures("sample_dir")
def test_the_sample_web_servers_top_port_is_its_service_port():
    truth = json.loads((SAMPLES / "truth.json").read_text())
    web = next(i for i in truth["interfaces"] if i["name"] == "web-1")
    served = {(e["port"], e["protocol"]) for e in truth["exposure"] if e["interface_id"] == web["interface_id"]}
    flows = flowtools.load(SAMPLES, engine="duckdb", progress=False, start="2026-11-20T06:00Z",
                           end="2026-11-20T07:00Z")
    rows = to_polars(traffic.ports(flows, interfaces=[web["interface_id"]]))
    top = rows.row(0, named=True)
    assert (top["service_port"], "tcp") in served and top["initiated"] == "inbound"
    assert top["service_port"] < 32768  # not a client's ephemeral port
