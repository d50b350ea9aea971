"""Plotly figures from frames: the pictures of the notebooks and reports.

Every figure function takes frames (findings from :func:`flowtools.internet_exposure`,
flows, the output of :func:`flowtools.enrich` or of :mod:`flowtools.analyses.traffic`),
on either engine: a DuckDB relation, a Polars frame or a ``Flows``. The engine does the
aggregating; what reaches Python is the small result that is drawn. Each returns a
``plotly.graph_objects.Figure``.

Text from logs or the inventory (names are user-controlled tags) is HTML-escaped before it
reaches plotly, whose labels and hover texts interpret a subset of HTML: a Name tag
``<b>x</b>`` shows as that text, never as markup. :func:`html_table` and
:func:`findings_table` render frames as escaped HTML tables (the findings one with a
filter box, an inline script: no external resource).
"""

from __future__ import annotations

import html
from typing import Any

import narwhals as nw
import plotly.graph_objects as go
import polars as pl
from plotly.subplots import make_subplots

from flowtools import frames, protocols

__all__ = [
    "ACTION_COLUMNS", "FINDINGS_COLUMNS", "RISK_COLORS", "STATUS_COLORS", "action_table", "aws_services_chart",
    "collect", "egress_chart", "esc", "exposed_ports", "findings_table", "html_table", "method_comparison",
    "naive_vs_full", "needs_action", "peer_origins", "peers_over_time", "rejects_chart", "resource_timeline",
    "risk_chart", "risk_summary", "scanners_chart", "show", "top_talkers_chart", "traffic_over_time",
    "traffic_paths_chart",
]

STATUS_COLORS = {"exposed": "#d62728", "reachable": "#ff7f0e", "blocked": "#7f7f7f", "configured": "#1f77b4"}
RISK_COLORS = {"critical": "#8b0000", "high": "#d62728", "medium": "#ff7f0e", "low": "#bdbdbd"}
_RISKS = ("critical", "high", "medium", "low")
_STATUSES = ("exposed", "reachable", "blocked", "configured")
ACTION_COLORS = {"ACCEPT": "#2ca02c", "REJECT": "#d62728"}
_FINDING_KEY = ["interface_id", "port", "protocol"]


def collect(frame: Any) -> pl.DataFrame:
    """Run a frame (DuckDB relation, Polars lazy or eager frame, Narwhals frame, ``Flows``;
    a dict of columns or a list of rows is made a frame) and return a Polars DataFrame,
    timestamps in UTC. Use it on small results."""
    df = pl.DataFrame(frame) if isinstance(frame, dict | list) else frames.to_polars(frame)
    return df.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))


def esc(value: Any, *, quote: bool = False) -> str:
    """Text for plotly labels and HTML text: ``&``, ``<`` and ``>`` escaped (``quote=True``:
    quotes too, for attribute values), control characters shown as ``\\xNN``. plotly
    decodes only a few named entities in labels (not ``&quot;``): quotes stay as they are
    there, which is safe outside attributes."""
    text = "" if value is None else str(value)
    text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return html.escape(text, quote=quote)


def _layout(fig: go.Figure, title: str, **kw: Any) -> go.Figure:
    fig.update_layout(title=title, template="plotly_white", margin={"l": 60, "r": 20, "t": 60, "b": 60},
                      height=kw.pop("height", 420), **kw)
    return fig


def _label(row: dict) -> str:
    name = row.get("resource_name") or row.get("interface_id")
    port = "" if row.get("port") is None else f":{row['port']}"
    return f"{esc(name)} {esc(row.get('protocol'))}{port}"


def _labels(df: pl.DataFrame) -> pl.Series:
    return pl.Series("label", [_label(r) for r in df.select("resource_name", "interface_id", "protocol", "port")
                               .to_dicts()], dtype=pl.String)


# -- exposure ---------------------------------------------------------------------------------

def exposed_ports(findings: Any, *, n: int = 25) -> go.Figure:
    """Internet peers per finding (resource, protocol and port), coloured by status: the
    first ``n`` findings in the findings' order (exposed first, most peers first)."""
    df = collect(findings).filter(pl.col("status") != "configured").head(n)
    df = df.with_columns(_labels(df))
    fig = go.Figure()
    for status, color in STATUS_COLORS.items():
        part = df.filter(pl.col("status") == status)
        if part.height:
            fig.add_bar(y=part["label"].to_list(), x=part["peers"].to_list(), orientation="h", name=status,
                        marker_color=color,
                        customdata=[[esc(r["interface_id"]), r["connections"], esc(r["confidence"]), esc(r["evidence"])]
                                    for r in part.select("interface_id", "connections", "confidence", "evidence")
                                    .to_dicts()],
                        hovertemplate="%{y}<br>%{x} peers, %{customdata[1]} connections<br>%{customdata[0]}"
                                      "<br>confidence %{customdata[2]}<br>%{customdata[3]}<extra></extra>")
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=df["label"].to_list())
    return _layout(fig, "Internet peers per resource and port", xaxis_title="distinct internet peers",
                   height=max(300, 22 * df.height + 120))


def risk_summary(findings: Any) -> pl.DataFrame:
    """Findings by risk and status: one row per risk level (critical first, every level
    shown), one column per status (exposed, reachable, blocked, configured) and ``total``.
    Findings without a ``risk`` (from elsewhere; see :func:`flowtools.analyses.risk.assess`)
    count as ``low``."""
    df = collect(findings)
    risk = pl.col("risk").fill_null("low") if "risk" in df.columns else pl.lit("low")
    counts = df.select(risk=risk, status=pl.col("status")).group_by("risk", "status").agg(n=pl.len().cast(pl.Int64))
    grid = pl.DataFrame({"risk": list(_RISKS)})
    for status in _STATUSES:
        part = counts.filter(pl.col("status") == status).select("risk", pl.col("n").alias(status))
        grid = grid.join(part, on="risk", how="left").with_columns(pl.col(status).fill_null(0))
    return grid.with_columns(total=pl.sum_horizontal(list(_STATUSES)))


def risk_chart(findings: Any) -> go.Figure:
    """Findings by risk level (critical first), stacked by status (:func:`risk_summary`)."""
    df = risk_summary(findings)
    fig = go.Figure()
    for status in _STATUSES:
        fig.add_bar(y=df["risk"].to_list(), x=df[status].to_list(), orientation="h", name=status,
                    marker_color=STATUS_COLORS[status], hovertemplate="%{y}, " + status + ": %{x}<extra></extra>")
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=list(_RISKS))
    return _layout(fig, "Findings by risk and status", barmode="stack", xaxis_title="findings", height=300)


#: The columns of the "needs action" table, in order.
ACTION_COLUMNS = ("risk", "status", "resource_name", "interface_id", "protocol", "port", "port_to", "peers",
                  "sample_peers", "risk_category", "evidence", "last_seen")


def needs_action(findings: Any, *, levels: tuple[str, ...] = ("critical", "high"), n: int = 10) -> pl.DataFrame:
    """The findings to act on: risk in ``levels`` (default critical and high), most severe
    first, then exposed before reachable before configured before blocked, most peers
    first; the first ``n`` rows (all with ``n=None``)."""
    df = collect(findings)
    if "risk" not in df.columns:
        df = df.with_columns(risk=pl.lit(None, pl.String))
    df = (df.filter(pl.col("risk").is_in(list(levels)))
          .sort(pl.col("risk").replace_strict({r: i for i, r in enumerate(_RISKS)}, default=9),
                pl.col("status").replace_strict({"exposed": 0, "reachable": 1, "configured": 2, "blocked": 3},
                                                default=9),
                pl.col("peers").fill_null(0), "interface_id", pl.col("port").fill_null(-1),
                descending=[False, False, True, False, False]))
    return df if n is None else df.head(n)


def action_table(findings: Any, *, n: int = 10) -> _Html:
    """:func:`needs_action` as an escaped HTML table (``id="needs-action"``), or a sentence
    when nothing is critical or high."""
    df = needs_action(findings, n=n)
    if not df.height:
        return _Html("<p>No critical or high-risk finding in the window.</p>")
    return _Html(html_table(df, columns=ACTION_COLUMNS, table_id="needs-action"))


def _inbound(flows: Any, findings: pl.DataFrame, statuses: tuple[str, ...]) -> nw.LazyFrame:
    """The accepted inbound records of the findings' services (interface, local address,
    port and protocol of the finding), on the flows' engine, with ``label`` and ``peer``."""
    native = frames.native(flows)
    keys = findings.filter(pl.col("status").is_in(list(statuses)))
    keys = keys.select(
        "interface_id", "local_ip", _labels(keys),
        _port=pl.col("port").fill_null(0).cast(pl.Int32),
        _proto=pl.col("protocol").replace_strict(protocols.NUMBERS, default=None).cast(pl.Int32),
    ).filter(pl.col("_proto").is_not_null())
    lf = nw.from_native(native)
    local = nw.coalesce(nw.col("pkt_dstaddr"), nw.col("dstaddr"))
    port = nw.when(nw.col("protocol").is_in(list(protocols.ICMP_PROTOCOLS))).then(nw.lit(0)).otherwise(nw.col("dstport")).cast(nw.Int32)
    return (lf.filter(nw.col("action") == "ACCEPT")
            .with_columns(_local=local, _port=port, _proto=nw.col("protocol"),
                          peer=nw.coalesce(nw.col("pkt_srcaddr"), nw.col("srcaddr")))
            .join(nw.from_native(frames.side_table(native, keys)).rename({"local_ip": "_local"}),
                  on=["interface_id", "_local", "_port", "_proto"], how="inner"))


def peers_over_time(flows: Any, findings: Any, *, every: str = "1h", n: int = 8) -> go.Figure:
    """Distinct internet peers per ``every`` (``"15m"``, ``"1h"``, ``"1d"``...: buckets as
    :func:`flowtools.analyses.traffic.time_bucket`) reaching the ``n`` exposed services with
    the most peers (their accepted inbound records)."""
    from flowtools.analyses.traffic import time_bucket

    top = collect(findings).filter(pl.col("status") == "exposed").head(n)
    records = _inbound(flows, top, ("exposed",))
    df = collect(records.group_by(time_bucket(every).alias("time"), "label")
                 .agg(peers=nw.col("peer").n_unique().cast(nw.Int64)).sort("time", "label"))
    fig = go.Figure()
    for label in dict.fromkeys(_labels(top).to_list()):
        part = df.filter(pl.col("label") == label)
        fig.add_scatter(x=part["time"].to_list(), y=part["peers"].to_list(), mode="lines+markers", name=label)
    return _layout(fig, f"Internet peers per {every} of the exposed services", yaxis_title="distinct peers")


def peer_origins(enriched_flows: Any, findings: Any) -> go.Figure:
    """Where the internet peers of exposed and reachable services come from: AWS services
    and regions (AWS's ip-ranges, or the log's ``pkt-src-aws-service``) versus the rest
    of the internet. Needs :func:`flowtools.enrich` output."""
    records = _inbound(enriched_flows, collect(findings), ("exposed", "reachable"))
    origin = nw.coalesce(
        nw.concat_str([nw.col("src_aws_service"), nw.lit(" "), nw.coalesce(nw.col("src_aws_region"), nw.lit("?"))]),
        nw.lit("internet (not AWS)"))
    df = collect(records.with_columns(origin=origin).group_by("origin")
                 .agg(peers=nw.col("peer").n_unique().cast(nw.Int64)).sort("peers", "origin", descending=[True, False]))
    fig = go.Figure(go.Bar(x=[esc(o) for o in df["origin"].to_list()], y=df["peers"].to_list(),
                           text=df["peers"].to_list(), marker_color="#1f77b4",
                           hovertemplate="%{x}: %{y} peers<extra></extra>"))
    return _layout(fig, "Where the internet peers of exposed services come from", yaxis_title="distinct peers (log)",
                   yaxis_type="log")


def method_comparison(full: Any, naive: Any) -> pl.DataFrame:
    """The naive v2 reading against the full method, per finding key (interface, port,
    protocol): one row per ``method`` and ``category`` with the number of ``findings``.

    Naive findings are ``exposed`` or ``reachable`` when the full method says so of the
    same key, else ``false positive`` (replies to the resources' own connections, mostly).
    Full findings (exposed and reachable) are ``exposed``/``reachable`` when the naive
    reading reports them too, else ``missed by naive`` (e.g. clients behind a load
    balancer, seen through ``pkt-srcaddr``)."""
    f = collect(full).filter(pl.col("status").is_in(["exposed", "reachable"])).select(*_FINDING_KEY, "status")
    v = collect(naive).select(_FINDING_KEY).unique()
    naive_rows = (v.join(f, on=_FINDING_KEY, how="left", nulls_equal=True)
                  .select(method=pl.lit("naive v2 reading"), category=pl.col("status").fill_null("false positive")))
    full_rows = (f.join(v.with_columns(_naive=pl.lit(True)), on=_FINDING_KEY, how="left", nulls_equal=True)
                 .select(method=pl.lit("full method"),
                         category=pl.when(pl.col("_naive")).then(pl.col("status")).otherwise(pl.lit("missed by naive"))))
    order = {"exposed": 0, "reachable": 1, "false positive": 2, "missed by naive": 3}
    return (pl.concat([naive_rows, full_rows]).group_by("method", "category")
            .agg(findings=pl.len().cast(pl.Int64))
            .sort(pl.col("method") != "naive v2 reading", pl.col("category").replace_strict(order, default=9)))


def naive_vs_full(full: Any, naive: Any) -> go.Figure:
    """What the naive v2 reading ("accepted from a public address to port X") reports
    against the full method: the findings both report, the false positives the full
    method removes and the exposures the naive reading misses (:func:`method_comparison`)."""
    df = method_comparison(full, naive)
    colors = {"exposed": STATUS_COLORS["exposed"], "reachable": STATUS_COLORS["reachable"],
              "false positive": "#c7c7c7", "missed by naive": "#9467bd"}
    fig = go.Figure()
    for category, color in colors.items():
        part = df.filter(pl.col("category") == category)
        if part.height:
            fig.add_bar(y=part["method"].to_list(), x=part["findings"].to_list(), orientation="h", name=category,
                        marker_color=color, text=part["findings"].to_list(), textposition="outside",
                        hovertemplate="%{y}: %{x} " + category + "<extra></extra>")
    count = {(r["method"], r["category"]): r["findings"] for r in df.to_dicts()}
    total = sum(v for (m, _), v in count.items() if m == "naive v2 reading")
    fp = count.get(("naive v2 reading", "false positive"), 0)
    missed = count.get(("full method", "missed by naive"), 0)
    fig.update_yaxes(categoryorder="array", categoryarray=["full method", "naive v2 reading"])
    return _layout(fig, f"Naive v2 reading: {total} findings; the full method removes {fp} false positives "
                        f"and finds {missed} it missed", barmode="group", xaxis_title="findings (log scale)",
                   xaxis_type="log", height=360)


# -- traffic ----------------------------------------------------------------------------------

def traffic_over_time(series: Any) -> go.Figure:
    """Bytes and packets over time from :func:`flowtools.analyses.traffic.timeseries`,
    stacked by ``action`` when the series is split by it."""
    df = collect(series)
    split = "action" if "action" in df.columns else None
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.06, subplot_titles=("bytes", "packets"))
    values = df[split].unique().sort().to_list() if split else [None]
    for value in values:
        part = df.filter(pl.col(split) == value) if split else df
        name = esc(value) if value else "all"
        color = ACTION_COLORS.get(value or "", None)
        for row, column in ((1, "bytes"), (2, "packets")):
            fig.add_scatter(x=part["time"].to_list(), y=part[column].to_list(), mode="lines", stackgroup=column,
                            name=name, legendgroup=name, showlegend=row == 1, line_color=color, row=row, col=1)
    return _layout(fig, "Traffic over time", height=520)


def top_talkers_chart(talkers: Any, *, title: str = "Top talkers") -> go.Figure:
    """Bytes per endpoint from :func:`flowtools.analyses.traffic.top_talkers`."""
    df = collect(talkers)
    labels = [" ".join(x for x in (esc(r["resource_name"] or r["aws_service"] or ""), esc(r["address"])) if x)
              for r in df.select("resource_name", "aws_service", "address").to_dicts()]
    fig = go.Figure(go.Bar(y=labels, x=df["bytes"].to_list(), orientation="h",
                           customdata=[[esc(s), p, r] for s, p, r in df.select("scope", "peers", "records").iter_rows()],
                           hovertemplate="%{y}<br>%{x} bytes, %{customdata[1]} peers, %{customdata[2]} records"
                                         " (%{customdata[0]})<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, xaxis_title="bytes sent and received", height=max(300, 26 * df.height + 120))


def rejects_chart(rejected: Any) -> go.Figure:
    """Rejected traffic: distinct sources per interface and destination port
    (:func:`flowtools.analyses.traffic.rejects`)."""
    df = collect(rejected)
    labels = [f"{esc(r['interface_id'])} {esc(r['protocol'])}/{esc(r['dstport'])}"
              for r in df.select("interface_id", "protocol", "dstport").to_dicts()]
    fig = go.Figure(go.Bar(y=labels, x=df["sources"].to_list(), orientation="h", marker_color="#7f7f7f",
                           customdata=df["records"].to_list(),
                           hovertemplate="%{y}<br>%{x} sources, %{customdata} records<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Rejected traffic: distinct sources per interface and port", xaxis_title="distinct sources",
                   height=max(300, 22 * df.height + 120))


def scanners_chart(scanning: Any) -> go.Figure:
    """Who is scanning: distinct ports each source of rejected traffic tried
    (:func:`flowtools.analyses.traffic.scanners`)."""
    df = collect(scanning)
    fig = go.Figure(go.Bar(y=[esc(s) for s in df["source"].to_list()], x=df["ports"].to_list(), orientation="h",
                           marker_color="#8c564b",
                           customdata=df.select("interfaces", "records").rows(),
                           hovertemplate="%{y}<br>%{x} ports on %{customdata[0]} interface(s), %{customdata[1]} "
                                         "rejected records<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Sources of rejected traffic: distinct destination ports tried",
                   xaxis_title="distinct destination ports", height=max(300, 22 * df.height + 120))


def traffic_paths_chart(paths: Any) -> go.Figure:
    """Bytes per traffic path (:func:`flowtools.analyses.traffic.traffic_paths`)."""
    df = collect(paths)
    fig = go.Figure(go.Pie(labels=[esc(p) for p in df["path"].to_list()], values=df["bytes"].to_list(), hole=0.4,
                           sort=False))
    return _layout(fig, "Bytes per traffic path")


def aws_services_chart(services: Any) -> go.Figure:
    """Bytes to and from AWS services by region (:func:`flowtools.analyses.traffic.aws_services`)."""
    df = collect(services).with_columns(pl.col("region").fill_null("?"))
    fig = go.Figure()
    for region in df["region"].unique().sort().to_list():
        part = df.filter(pl.col("region") == region)
        fig.add_bar(x=[esc(s) for s in part["service"].to_list()], y=part["bytes"].to_list(), name=esc(region),
                    hovertemplate="%{x} " + esc(region) + ": %{y} bytes<extra></extra>")
    return _layout(fig, "Traffic to and from AWS services", barmode="stack", yaxis_title="bytes")


def egress_chart(egress: Any, *, inventory: Any = None, n: int = 15) -> go.Figure:
    """Bytes leaving for the internet per sender (its ``resource_name`` from ``inventory``
    when given, else the interface) and destination (``internet`` or an AWS service and
    region), from :func:`flowtools.analyses.egress.egress`: the ``n`` senders with most
    bytes, stacked by destination."""
    df = collect(egress)
    interfaces = getattr(inventory, "interfaces", None)
    if interfaces is not None and interfaces.height and "resource_name" not in df.columns:
        df = df.join(interfaces.select("interface_id", "resource_name").unique("interface_id"), on="interface_id",
                     how="left")
    name = pl.coalesce(pl.col("resource_name"), pl.col("interface_id")) if "resource_name" in df.columns \
        else pl.col("interface_id")
    region = pl.col("aws_region").fill_null("")
    df = df.with_columns(sender=name, dest=pl.when(region == "").then(pl.col("destination"))
                         .otherwise(pl.concat_str([pl.col("destination"), region], separator=" ")))
    senders = (df.group_by("sender").agg(pl.col("bytes_out").sum()).sort("bytes_out", "sender",
                                                                          descending=[True, False]).head(n))
    df = df.filter(pl.col("sender").is_in(senders["sender"].implode()))
    order = [esc(s) for s in senders["sender"].to_list()]
    fig = go.Figure()
    for dest in df.group_by("dest").agg(pl.col("bytes_out").sum()).sort("bytes_out", "dest", descending=[True, False])["dest"]:
        part = df.filter(pl.col("dest") == dest).group_by("sender").agg(pl.col("bytes_out").sum()).sort("sender")
        fig.add_bar(y=[esc(s) for s in part["sender"].to_list()], x=part["bytes_out"].to_list(), orientation="h",
                    name=esc(dest), hovertemplate="%{y} -> " + esc(dest) + ": %{x} bytes<extra></extra>")
    fig.update_yaxes(autorange="reversed", categoryorder="array", categoryarray=order)
    return _layout(fig, "Egress: bytes sent to the internet, by sender and destination", barmode="stack",
                   xaxis_title="bytes sent", height=max(300, 26 * len(order) + 140))


def resource_timeline(flows: Any, interface_id: str, *, every: str = "5m") -> go.Figure:
    """One interface over time: bytes per ``every`` (``30s``, ``5m``, ``1h``...: buckets as
    :func:`flowtools.analyses.traffic.time_bucket`), by action."""
    from flowtools.analyses.traffic import time_bucket

    bucket = time_bucket(every).alias("time")  # checks ``every`` before any work
    lf = frames.lazy(flows).filter(nw.col("interface_id").str.to_lowercase()
                                                     == interface_id.lower())
    df = collect(lf.filter(~nw.col("bytes").is_null())
                 .group_by(bucket, "action")
                 .agg(bytes=nw.col("bytes").sum().cast(nw.Int64)).sort("time", "action"))
    fig = go.Figure()
    for action in df["action"].unique().sort().to_list():
        part = df.filter(pl.col("action") == action)
        fig.add_bar(x=part["time"].to_list(), y=part["bytes"].to_list(), name=esc(action),
                    marker_color=ACTION_COLORS.get(action))
    return _layout(fig, f"{esc(interface_id)}: bytes per {every}", yaxis_title="bytes", barmode="stack")


# -- tables -----------------------------------------------------------------------------------

_TABLE_SCRIPT = """
<script>
function flowtoolsFilter(input) {
  var needle = input.value.toLowerCase();
  var rows = input.closest('.flowtools-table').querySelectorAll('tbody tr');
  rows.forEach(function (row) {
    row.style.display = row.textContent.toLowerCase().indexOf(needle) >= 0 ? '' : 'none';
  });
}
</script>
"""
_TABLE_STYLE = """
<style>
.flowtools-table { max-width: 100%; overflow-x: auto; }
.flowtools-table table { border-collapse: collapse; font: 12px sans-serif; }
.flowtools-table th, .flowtools-table td { border-bottom: 1px solid #ddd; padding: 3px 6px; text-align: left;
  vertical-align: top; min-width: 4em; max-width: 36em; overflow-wrap: break-word; }
.flowtools-table th { white-space: nowrap; position: sticky; top: 0; background: #fff; }
.flowtools-table td.col-evidence, .flowtools-table td.col-what { min-width: 22em; }
.flowtools-table td.col-sample_peers, .flowtools-table td.col-resource_name { min-width: 9em; }
.flowtools-table td.col-interface_id, .flowtools-table td.col-first_seen, .flowtools-table td.col-last_seen,
.flowtools-table td.col-local_ip, .flowtools-table td.col-source { white-space: nowrap; }
.flowtools-table td.status-exposed { color: #d62728; font-weight: bold; }
.flowtools-table td.status-reachable { color: #ff7f0e; font-weight: bold; }
.flowtools-table td.status-critical { color: #fff; background: #8b0000; font-weight: bold; }
.flowtools-table td.status-high { color: #d62728; font-weight: bold; }
.flowtools-table input { margin: 6px 0; padding: 4px; width: 24em; }
</style>
"""


def _cell(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join("" if x is None else str(x) for x in value)
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
    return "" if value is None else str(value)


def html_table(frame: Any, *, columns: tuple[str, ...] | list[str] | None = None, max_rows: int = 500,
               filter_box: bool = False, table_id: str | None = None) -> str:
    """A frame as one self-contained HTML table, every header and cell escaped (tags are
    user-controlled); ``filter_box`` adds a search box that hides rows not containing
    its text (an inline script). Only the first ``max_rows`` rows are collected."""
    frame = getattr(frame, "frame", frame)
    if isinstance(frame, pl.LazyFrame):
        frame = frame.head(max_rows + 1)
    elif hasattr(frame, "limit") and not isinstance(frame, pl.DataFrame):  # a DuckDB relation
        frame = frame.limit(max_rows + 1)
    df = collect(frame)
    cols = [c for c in (columns or df.columns) if c in df.columns]
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = []
    for row in df.head(max_rows).select(cols).to_dicts():
        cells = []
        for c in cols:
            classes = [f"col-{c}"] + ([f"status-{row[c]}"] if c in ("status", "risk") and row[c] else [])
            klass = f' class="{esc(" ".join(classes), quote=True)}"'
            cells.append(f"<td{klass}>{esc(_cell(row[c]))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p>only the first {max_rows} rows are shown</p>" if df.height > max_rows else ""
    box = ('<input type="search" placeholder="filter rows..." oninput="flowtoolsFilter(this)">'
           if filter_box else "")
    ident = f' id="{esc(table_id, quote=True)}"' if table_id else ""
    return (f'{_TABLE_STYLE}{_TABLE_SCRIPT if filter_box else ""}<div class="flowtools-table">{box}'
            f'<table{ident}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}</div>')


#: The columns of the findings table, in order.
FINDINGS_COLUMNS = ("status", "resource_name", "interface_id", "protocol", "port", "port_to", "peers", "connections",
                    "confidence", "evidence", "sg_open", "local_ip", "account_id", "region", "first_seen",
                    "last_seen", "sample_peers")


class _Html:
    """An HTML fragment that notebooks display (``_repr_html_``) without IPython."""

    def __init__(self, text: str) -> None:
        self.text = text

    def _repr_html_(self) -> str:
        return self.text

    def __str__(self) -> str:
        return self.text


def findings_table(findings: Any, *, max_rows: int = 500) -> _Html:
    """Findings as an escaped HTML table (``id="findings"``) with a filter box, for a
    notebook (``str()`` gives the HTML)."""
    return _Html(html_table(findings, columns=FINDINGS_COLUMNS, max_rows=max_rows, filter_box=True,
                            table_id="findings"))


def show(frame: Any, **kw: Any) -> _Html:
    """A frame as an escaped HTML table for a notebook: the last expression of a cell, or
    ``display(show(...))`` (options of :func:`html_table`)."""
    return _Html(html_table(frame, **kw))
