"""Figures from frames (flowtools.report.figures): either engine in, the same figure out;
text from logs and the inventory escaped for plotly and for HTML tables."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import duckdb
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl
import pytest
from flowlog_files import SAMPLES

import flowtools
from flowtools.analyses import traffic
from flowtools.analyses.egress import egress
from flowtools.report import figures

pytestmark = pytest.mark.usefixtures("sample_dir")
WINDOW = {"start": "2026-11-20T06:00Z", "end": "2026-11-20T09:00Z"}


@pytest.fixture(scope="module")
def inputs() -> dict[str, dict]:
    inventory = flowtools.Inventory.load(SAMPLES / "inventory")
    ranges = flowtools.IpRanges.load(SAMPLES / "ip-ranges.json")
    out = {}
    for engine in ("duckdb", "polars"):
        flows = flowtools.load(SAMPLES, engine=engine, progress=False, **WINDOW)
        out[engine] = {
            "flows": flows,
            "enriched": flowtools.enrich(flows, inventory=inventory, ip_ranges=ranges),
            "findings": flowtools.internet_exposure(flows, inventory=inventory, ip_ranges=ranges,
                                                    include_configured=True),
            "naive": flowtools.internet_exposure(flows, inventory=inventory, method="naive"),
        }
    return out


FIGURES = {
    "exposed_ports": lambda d: figures.exposed_ports(d["findings"]),
    "peers_over_time": lambda d: figures.peers_over_time(d["flows"], d["findings"]),
    "peer_origins": lambda d: figures.peer_origins(d["enriched"], d["findings"]),
    "naive_vs_full": lambda d: figures.naive_vs_full(d["findings"], d["naive"]),
    "traffic_over_time": lambda d: figures.traffic_over_time(traffic.timeseries(d["flows"], every="1h")),
    "top_talkers_chart": lambda d: figures.top_talkers_chart(traffic.top_talkers(d["enriched"], kind="peers")),
    "rejects_chart": lambda d: figures.rejects_chart(traffic.rejects(d["flows"])),
    "scanners_chart": lambda d: figures.scanners_chart(traffic.scanners(d["flows"])),
    "traffic_paths_chart": lambda d: figures.traffic_paths_chart(traffic.traffic_paths(d["flows"])),
    "aws_services_chart": lambda d: figures.aws_services_chart(traffic.aws_services(d["enriched"])),
    "resource_timeline": lambda d: figures.resource_timeline(d["flows"], "eni-0279c59a66d9fc655"),
    "risk_chart": lambda d: figures.risk_chart(d["findings"]),
    "egress_chart": lambda d: figures.egress_chart(egress(d["flows"])),
}


def _data(fig: go.Figure) -> str:
    return json.dumps(fig.to_plotly_json()["data"], sort_keys=True, default=str)


@pytest.mark.parametrize("name", FIGURES)
def test_each_figure_draws_data_and_the_engines_agree(inputs, name):
    duck, polars = (FIGURES[name](inputs[e]) for e in ("duckdb", "polars"))
    assert isinstance(duck, go.Figure) and duck.data
    assert any(len(getattr(t, "x", None) or getattr(t, "values", None) or []) for t in duck.data)
    assert _data(duck) == _data(polars)
    assert duck.layout.title.text


@pytest.mark.parametrize("every", ["15m", "90s", "2h"])
def test_time_figures_bucket_any_interval_on_both_engines(inputs, every):
    step = traffic.interval_seconds(every)
    for draw in (lambda d: figures.peers_over_time(d["flows"], d["findings"], every=every),
                 lambda d: figures.resource_timeline(d["flows"], "eni-0279c59a66d9fc655", every=every)):
        duck, polars = (draw(inputs[e]) for e in ("duckdb", "polars"))
        assert _data(duck) == _data(polars)
        times = [t for trace in duck.data for t in trace.x]
        assert times and all(int(t.timestamp()) % step == 0 for t in times)
    totals = figures.resource_timeline(inputs["duckdb"]["flows"], "eni-0279c59a66d9fc655", every=every)
    (expected,), = inputs["duckdb"]["flows"].sql(
        "SELECT sum(bytes) FROM flows WHERE interface_id = 'eni-0279c59a66d9fc655'").fetchall()
    assert sum(y for trace in totals.data for y in trace.y) == expected
    with pytest.raises(ValueError, match="every must be"):
        figures.resource_timeline(inputs["duckdb"]["flows"], "eni-0279c59a66d9fc655", every="5 minutes")


def test_figures_take_frames_of_either_engine_natively(inputs):
    findings = inputs["duckdb"]["findings"]
    assert isinstance(findings, duckdb.DuckDBPyRelation)
    as_polars = figures.collect(findings)
    assert _data(figures.exposed_ports(findings)) == _data(figures.exposed_ports(as_polars))
    assert _data(figures.exposed_ports(as_polars.lazy())) == _data(figures.exposed_ports(as_polars))


def test_method_comparison_counts(inputs):
    d = inputs["polars"]
    full, naive = figures.collect(d["findings"]), figures.collect(d["naive"])
    table = figures.method_comparison(full, naive)
    count = {(r["method"], r["category"]): r["findings"] for r in table.to_dicts()}
    naive_total = sum(v for (m, _), v in count.items() if m == "naive v2 reading")
    assert naive_total == naive.height and count[("naive v2 reading", "false positive")] > 0
    real = full.filter(pl.col("status").is_in(["exposed", "reachable"])).height
    assert sum(v for (m, _), v in count.items() if m == "full method") == real
    title = figures.naive_vs_full(full, naive).layout.title.text
    assert f"{naive.height} findings" in title and f"removes {count[('naive v2 reading', 'false positive')]}" in title


MARKUP = '<b>x</b> "q" & <img src=x onerror=alert(1)>\x1b[31m'


def _findings(name: str) -> pl.DataFrame:
    return pl.DataFrame({
        "status": ["exposed"], "resource_name": [name], "interface_id": ["eni-1"], "protocol": ["tcp"],
        "port": [443], "peers": [3], "connections": [4], "confidence": ["high"], "evidence": [name],
        "sample_peers": [["192.0.2.1", "<i>"]],
    })


def test_labels_and_hover_text_are_escaped_for_plotly():
    fig = figures.exposed_ports(_findings(MARKUP))
    label = fig.data[0].y[0]
    assert label == '&lt;b&gt;x&lt;/b&gt; "q" &amp; &lt;img src=x onerror=alert(1)&gt;\\x1b[31m tcp:443'
    assert "<" not in json.dumps(fig.to_plotly_json()["data"][0]["customdata"])
    assert figures.esc('a"b') == 'a"b' and figures.esc('a"b', quote=True) == "a&quot;b"


def test_html_tables_escape_every_cell_and_header():
    text = str(figures.findings_table(_findings(MARKUP)))
    assert "<img" not in text and "<b>x" not in text and "\x1b" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text and "192.0.2.1, &lt;i&gt;" in text
    odd = pl.DataFrame({'<th onclick="x">': ["v"], "status": ['exposed" onmouseover="alert(1)']})
    elements: list[tuple[str, list]] = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attrs: elements.append((tag, attrs))
    parser.feed(figures.html_table(odd))
    attributes = [a for _, attrs in elements for a in attrs]
    assert not [a for a in attributes if a[0].startswith("on")]  # the values stayed text
    assert ("class", 'col-status status-exposed" onmouseover="alert(1)') in attributes  # inside its attribute
    assert [t for t, _ in elements if t == "th"] == ["th", "th"]


def test_tables_fetch_only_what_they_show():
    relation = duckdb.sql("SELECT range AS n FROM range(100000)")
    text = figures.html_table(relation, max_rows=10)
    assert text.count("<tr>") == 11 and "only the first 10 rows are shown" in text
    assert figures.show(pl.LazyFrame({"a": [1, 2]}))._repr_html_().count("<tr>") == 3


def test_importing_figures_leaves_plotly_renderers_alone():
    assert type(pio.renderers["notebook"]).__module__.startswith("plotly.")


def test_risk_summary_and_needs_action_from_the_findings(inputs):
    findings = figures.collect(inputs["duckdb"]["findings"])
    summary = figures.risk_summary(inputs["polars"]["findings"])
    assert summary["risk"].to_list() == ["critical", "high", "medium", "low"]  # every level, most severe first
    for row in summary.to_dicts():  # the counts are the findings', per risk and status
        for status in ("exposed", "reachable", "blocked", "configured"):
            assert row[status] == findings.filter((pl.col("risk") == row["risk"])
                                                  & (pl.col("status") == status)).height
        assert row["total"] == findings.filter(pl.col("risk") == row["risk"]).height
    action = figures.needs_action(findings)
    urgent = findings.filter(pl.col("risk").is_in(["critical", "high"]))
    assert action.height == min(10, urgent.height) > 0
    ranks = [("critical", "high").index(r) for r in action["risk"]]
    assert ranks == sorted(ranks)  # most severe first
    assert figures.needs_action(findings, n=1).height == 1
    table = str(figures.action_table(findings))
    assert 'id="needs-action"' in table and table.count("<tr>") == action.height + 1
    assert "No critical or high-risk finding" in str(figures.action_table(findings.filter(pl.col("risk") == "low")))
