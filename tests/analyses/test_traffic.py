"""Traffic overview analyses (flowtools.analyses.traffic) on a window of the sample: both
engines give the same frames, and the aggregates add up to what SQL over the flows says."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import narwhals as nw
import polars as pl
import pytest
from flowlog_files import SAMPLES

import flowtools
from flowtools.analyses import traffic
from flowtools.report.figures import collect

pytestmark = pytest.mark.usefixtures("sample_dir")
WINDOW = {"start": "2026-11-20T06:00Z", "end": "2026-11-20T09:00Z"}
WEB_1 = "eni-0279c59a66d9fc655"  # exposed on tcp/443 and tcp/80 all day


@pytest.fixture(scope="module")
def loaded() -> dict[str, tuple]:
    inventory = flowtools.Inventory.load(SAMPLES / "inventory")
    ranges = flowtools.IpRanges.load(SAMPLES / "ip-ranges.json")
    out = {}
    for engine in ("duckdb", "polars"):
        flows = flowtools.load(SAMPLES, engine=engine, progress=False, **WINDOW)
        out[engine] = flows, flowtools.enrich(flows, inventory=inventory, ip_ranges=ranges)
    return out


CALLS = {
    "timeseries": lambda f, e: traffic.timeseries(f, every="1h"),
    "top_resources": lambda f, e: traffic.top_talkers(e, kind="resources"),
    "top_peers": lambda f, e: traffic.top_talkers(e, kind="peers", n=20),
    "rejects": lambda f, e: traffic.rejects(f),
    "scanners": lambda f, e: traffic.scanners(f),
    "traffic_paths": lambda f, e: traffic.traffic_paths(f),
    "aws_services": lambda f, e: traffic.aws_services(e),
    "conversations": lambda f, e: traffic.conversations(e, interfaces=[WEB_1]),
    "peers": lambda f, e: traffic.peers(e, interfaces=[WEB_1]),
    "ports": lambda f, e: traffic.ports(e, interfaces=[WEB_1.upper()]),
}


@pytest.mark.parametrize("name", CALLS)
def test_engines_agree_and_results_stay_lazy(loaded, name):
    results = {}
    for engine, (flows, enriched) in loaded.items():
        frame = CALLS[name](flows, enriched)
        assert type(frame).__name__ == ("DuckDBPyRelation" if engine == "duckdb" else "LazyFrame")
        results[engine] = collect(frame)
    duck, polars = results["duckdb"], results["polars"]
    assert duck.height > 0, name
    assert duck.columns == polars.columns
    assert duck.equals(polars.cast(duck.schema)), name  # same rows in the same order


def _sql(flows, query: str):
    return flows.sql(query).fetchall()


def test_timeseries_and_paths_add_up_to_the_flows(loaded):
    flows, _ = loaded["duckdb"]
    (total_bytes, total_packets), = _sql(flows, "SELECT sum(bytes), sum(packets) FROM flows "
                                                "WHERE srcaddr IS NOT NULL AND bytes IS NOT NULL")
    series = collect(traffic.timeseries(flows, every="1h"))
    assert series["bytes"].sum() == total_bytes and series["packets"].sum() == total_packets
    assert set(series["action"]) == {"ACCEPT", "REJECT"}
    assert series["time"].dt.minute().max() == 0  # truncated to the hour
    paths = collect(traffic.traffic_paths(flows))
    assert paths["bytes"].sum() == total_bytes
    assert set(paths["path"]) <= {*traffic.TRAFFIC_PATHS.values(), traffic.NO_TRAFFIC_PATH}
    assert "internet gateway or gateway endpoint" in set(paths["path"])


@pytest.mark.parametrize("every", ["90s", "5m", "15m", "2h", "1d"])
def test_timeseries_buckets_any_interval_the_same_on_both_engines(loaded, every):
    step = traffic.interval_seconds(every)
    series = {engine: collect(traffic.timeseries(flows, every=every)) for engine, (flows, _) in loaded.items()}
    duck, polars = series["duckdb"], series["polars"]
    assert duck.equals(polars.cast(duck.schema)), every
    # The buckets are those of Polars' own calendar truncation, with the same totals.
    raw = loaded["polars"][0].to_polars().filter(pl.col("srcaddr").is_not_null() & pl.col("bytes").is_not_null())
    expected = (raw.group_by(pl.col("start_time").dt.truncate(every).alias("time"), "action")
                .agg(bytes=pl.col("bytes").sum(), records=pl.len()).sort("time", "action"))
    assert duck.select("time", "action", "bytes", "records").equals(expected.cast(duck.select(
        "time", "action", "bytes", "records").schema))
    assert duck["bytes"].sum() == raw["bytes"].sum() and duck["records"].sum() == raw.height
    assert (duck["time"].dt.epoch("s") % step == 0).all()
    assert str(duck.schema["time"]) == "Datetime(time_unit='us', time_zone='UTC')"


def test_time_bucket_aligns_weeks_on_monday_and_rejects_bad_intervals():
    assert [traffic.interval_seconds(e) for e in ("90s", "5m", "2h", "1d", "1w")] == [90, 300, 7200, 86400, 604800]
    wednesday = datetime(2026, 11, 18, 13, 7, 9, tzinfo=UTC)
    df = pl.DataFrame({"start": [int(wednesday.timestamp())]}).with_columns(
        start_time=pl.from_epoch("start", "s").dt.replace_time_zone("UTC"))
    for native in (df.lazy(), duckdb.connect().from_arrow(df.to_arrow())):
        got = collect(nw.from_native(native).select(
            week=traffic.time_bucket("1w"), day=traffic.time_bucket("1d"), q=traffic.time_bucket("15m")))
        assert got.row(0) == (datetime(2026, 11, 16, tzinfo=UTC), datetime(2026, 11, 18, tzinfo=UTC),
                              datetime(2026, 11, 18, 13, 0, tzinfo=UTC))
    for bad in ("5", "1.5h", "0m", "1mo", "h", "-1h"):
        with pytest.raises(ValueError, match="every must be"):
            traffic.timeseries(df.lazy(), every=bad)


def test_top_talkers_split_the_estate_from_the_internet(loaded):
    _, enriched = loaded["duckdb"]
    resources = collect(traffic.top_talkers(enriched, kind="resources", n=50))
    peers = collect(traffic.top_talkers(enriched, kind="peers", n=50))
    assert "internet" not in set(resources["scope"]) and set(peers["scope"]) == {"internet"}
    assert resources["bytes"].is_sorted(descending=True) and peers.height == 50
    assert "web-1" in set(resources["resource_name"])
    with pytest.raises(ValueError, match="resources"):
        traffic.top_talkers(enriched, kind="everyone")


def test_scanners_are_the_sources_that_tried_the_most_ports(loaded):
    flows, _ = loaded["polars"]
    top = collect(traffic.scanners(flows, n=3))
    source = top["source"][0]
    (ports, records), = _sql(flows, "SELECT count(DISTINCT dstport), count(*) FROM flows WHERE action = 'REJECT' "
                                    f"AND coalesce(pkt_srcaddr, srcaddr) = '{source}'")
    assert (top["ports"][0], top["records"][0]) == (ports, records)
    assert top["ports"].is_sorted(descending=True)


def test_one_interface_conversations_peers_and_ports(loaded):
    flows, enriched = loaded["duckdb"]
    (records, total), = _sql(flows, f"SELECT count(*), sum(bytes) FROM flows WHERE interface_id = '{WEB_1}' "
                                    "AND srcaddr IS NOT NULL AND bytes IS NOT NULL")
    conversations = collect(traffic.conversations(enriched, interfaces=[WEB_1]))
    assert conversations["records"].sum() == records and conversations["bytes"].sum() == total
    assert {"initiator_name", "responder_name", "service"} <= set(conversations.columns)
    # oriented: web-1 answers on its service ports, it does not converse from them
    inbound = conversations.filter(pl.col("initiated") == "inbound")
    assert set(inbound["responder"]) == {"10.10.0.11"} and set(inbound["responder_name"]) == {"web-1"}
    assert {443, 80} <= set(inbound["service_port"])
    peers = collect(traffic.peers(enriched, interfaces=[WEB_1]))
    assert peers["records"].sum() == records
    assert "10.10.0.11" not in set(peers["peer"])  # web-1's own address is never its peer
    assert peers.filter(pl.col("scope") == "internet").height > 100
    ports = collect(traffic.ports(flows, interfaces=[WEB_1]))
    https = ports.filter((pl.col("service_port") == 443) & (pl.col("protocol") == 6)
                         & (pl.col("initiated") == "inbound"))
    assert https["initiators"][0] > 100


def test_aws_services_come_from_ip_ranges(loaded):
    _, enriched = loaded["polars"]
    services = collect(traffic.aws_services(enriched))
    assert {"S3", "CLOUDFRONT"} & set(services["service"])
    assert services["bytes"].is_sorted(descending=True)
