"""Plotly figures from frames: the pictures of the notebooks and reports.

Every function takes frames (findings from :func:`flowtools.internet_exposure`, flows or
enriched flows, on either engine), lets the engine aggregate, and returns a
``plotly.graph_objects.Figure``. Text that comes from logs or the inventory (names are
user-controlled tags) is HTML-escaped before it reaches plotly, whose labels accept a
subset of HTML. :func:`findings_table` renders findings as an escaped, filterable HTML
table (no external script).
"""

from __future__ import annotations

import html
import re
from typing import Any

import narwhals as nw
import plotly.graph_objects as go
import plotly.io as pio
import polars as pl

__all__ = [
    "STATUS_COLORS", "bytes_over_time", "exposed_ports", "findings_table", "html_table", "naive_vs_full",
    "peer_origins", "show",
    "peers_over_time", "rejects_chart", "resource_timeline", "top_talkers_chart", "traffic_paths_chart",
]

def _offline_notebook_renderer() -> None:
    """plotly's ``notebook`` renderer (plotly.js inlined once: what reports use) adds a
    MathJax ``<script src>`` from a CDN to every figure; we never typeset LaTeX, so the
    registered renderer is replaced by one that drops it: reports stay offline."""
    base = pio.renderers["notebook"]
    if getattr(base, "_flowtools_offline", False):
        return

    class OfflineNotebookRenderer(type(base)):  # type: ignore[misc]
        _flowtools_offline = True

        def to_mimebundle(self, fig_dict):
            bundle = super().to_mimebundle(fig_dict)
            if "text/html" in bundle:
                bundle["text/html"] = _REMOTE_SCRIPT.sub("", bundle["text/html"])
            return bundle

    renderer = OfflineNotebookRenderer()
    renderer.__dict__.update(base.__dict__)
    pio.renderers["notebook"] = renderer
    pio.renderers.default = pio.renderers.default  # the default holds renderer objects: rebuild it


_REMOTE_SCRIPT = re.compile(r"<script[^>]*\ssrc=[\"']https?://[^\"']*[\"'][^>]*>\s*</script>", re.IGNORECASE)
_offline_notebook_renderer()

STATUS_COLORS = {"exposed": "#d62728", "reachable": "#ff7f0e", "blocked": "#7f7f7f", "configured": "#1f77b4"}
_PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}


def collect(frame: Any) -> pl.DataFrame:
    """A frame (DuckDB relation, Polars lazy/eager frame, Narwhals frame) as a Polars DataFrame,
    time zones normalised to UTC."""
    if isinstance(frame, nw.LazyFrame | nw.DataFrame):
        frame = frame.to_native()
    if isinstance(frame, pl.LazyFrame):
        df = frame.collect()
    elif isinstance(frame, pl.DataFrame):
        df = frame
    elif hasattr(frame, "pl"):
        df = frame.pl()
    else:
        df = pl.DataFrame(frame)
    return df.with_columns(pl.col(pl.Datetime).dt.convert_time_zone("UTC"))


def esc(value: Any) -> str:
    """Text for plotly labels and HTML: escaped, control characters made visible."""
    text = "" if value is None else str(value)
    text = "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)
    return html.escape(text, quote=True)


def _layout(fig: go.Figure, title: str, **kw: Any) -> go.Figure:
    fig.update_layout(title=title, template="plotly_white", margin={"l": 60, "r": 20, "t": 60, "b": 60},
                      height=kw.pop("height", 420), **kw)
    return fig


def _label(row: dict) -> str:
    name = row.get("resource_name") or row.get("interface_id")
    port = "" if row.get("port") is None else f":{row['port']}"
    return f"{esc(name)} {esc(row.get('protocol'))}{port}"


def exposed_ports(findings: Any, *, n: int = 25) -> go.Figure:
    """Internet peers per finding (resource, protocol and port), coloured by status."""
    df = collect(findings).filter(pl.col("status") != "configured").head(n)
    fig = go.Figure()
    for status, color in STATUS_COLORS.items():
        part = df.filter(pl.col("status") == status)
        if part.height:
            rows = part.to_dicts()
            fig.add_bar(y=[_label(r) for r in rows], x=part["peers"].to_list(), orientation="h", name=status,
                        marker_color=color,
                        customdata=[[esc(r["interface_id"]), r["connections"], esc(r["confidence"])] for r in rows],
                        hovertemplate="%{y}<br>%{x} peers, %{customdata[1]} connections<br>%{customdata[0]}"
                                      "<br>confidence %{customdata[2]}<extra></extra>")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Internet peers per exposed resource and port", xaxis_title="distinct internet peers",
                   height=max(300, 22 * df.height + 120))


def _inbound(flows: Any, findings: Any, statuses: tuple[str, ...]) -> tuple[nw.LazyFrame, pl.DataFrame]:
    """Records of the findings' internet-initiated traffic: to the finding's interface,
    local address, port and protocol."""
    from flowtools.analyses.exposure import _native_frame
    from flowtools.enrich import side_table

    native = _native_frame(flows)
    keys = collect(findings).filter(pl.col("status").is_in(list(statuses)))
    keys = keys.select(
        "interface_id", "local_ip", label=pl.Series([_label(r) for r in keys.to_dicts()], dtype=pl.String),
        _port=pl.col("port").fill_null(0).cast(pl.Int32),
        _proto=pl.col("protocol").replace_strict(_PROTOCOL_NUMBERS, default=None).cast(pl.Int32),
    ).filter(pl.col("_proto").is_not_null())
    lf = nw.from_native(native)
    local = nw.coalesce(nw.col("pkt_dstaddr"), nw.col("dstaddr"))
    port = nw.when(nw.col("protocol").is_in([1, 58])).then(nw.lit(0)).otherwise(nw.col("dstport")).cast(nw.Int32)
    records = (lf.filter(nw.col("action") == "ACCEPT")
               .with_columns(_local=local, _port=port, _proto=nw.col("protocol"),
                             peer=nw.coalesce(nw.col("pkt_srcaddr"), nw.col("srcaddr")))
               .join(nw.from_native(side_table(native, keys)).rename({"local_ip": "_local"}),
                     on=["interface_id", "_local", "_port", "_proto"], how="inner"))
    return records, keys


def peers_over_time(flows: Any, findings: Any, *, every: str = "1h", n: int = 8) -> go.Figure:
    """Distinct internet peers per ``every`` for the ``n`` exposed services with most peers."""
    top = collect(findings).filter(pl.col("status") == "exposed").head(n)
    records, _ = _inbound(flows, top, ("exposed",))
    df = collect(records.group_by(nw.col("start_time").dt.truncate(every).alias("time"), "label")
                 .agg(peers=nw.col("peer").n_unique().cast(nw.Int64)).sort("time", "label"))
    fig = go.Figure()
    for label in dict.fromkeys(top.select(label=pl.Series([_label(r) for r in top.to_dicts()]))["label"]):
        part = df.filter(pl.col("label") == label)
        fig.add_scatter(x=part["time"].to_list(), y=part["peers"].to_list(), mode="lines+markers", name=label)
    return _layout(fig, f"Internet peers per {every} of the exposed services", yaxis_title="distinct peers")


def peer_origins(enriched_flows: Any, findings: Any) -> go.Figure:
    """Where the peers of exposed and reachable services come from: AWS services and
    regions (ip-ranges) versus the rest of the internet."""
    records, _ = _inbound(enriched_flows, findings, ("exposed", "reachable"))
    service = nw.coalesce(
        nw.concat_str([nw.col("src_aws_service"), nw.lit(" "), nw.col("src_aws_region")]),
        nw.lit("internet (not AWS)"))
    df = collect(records.with_columns(origin=service).group_by("origin")
                 .agg(peers=nw.col("peer").n_unique().cast(nw.Int64)).sort("peers", "origin", descending=[True, False]))
    fig = go.Figure(go.Bar(x=[esc(o) for o in df["origin"].to_list()], y=df["peers"].to_list(),
                           marker_color="#1f77b4"))
    return _layout(fig, "Where the internet peers come from", yaxis_title="distinct peers", yaxis_type="log")


def naive_vs_full(full: Any, naive: Any) -> go.Figure:
    """How many findings the naive v2 reading reports against the full method, and how many
    of the naive ones are false positives (not found by the full method)."""
    f, v = collect(full), collect(naive)
    f = f.filter(pl.col("status") != "configured")
    keys = ["interface_id", "port", "protocol"]
    false_positives = v.join(f.select(keys), on=keys, how="anti", nulls_equal=True).height
    true_naive = v.height - false_positives
    fig = go.Figure()
    fig.add_bar(x=["naive v2 reading", "full method"], y=[true_naive, f.height], name="real exposure",
                marker_color="#d62728")
    fig.add_bar(x=["naive v2 reading", "full method"], y=[false_positives, 0], name="false positives (replies)",
                marker_color="#c7c7c7")
    return _layout(fig, f"Naive v2 reading: {v.height} findings, {false_positives} false positives removed",
                   barmode="stack", yaxis_title="findings")


def bytes_over_time(series: Any) -> go.Figure:
    """Bytes over time from :func:`flowtools.analyses.traffic.timeseries` (split by ``action``)."""
    df = collect(series)
    fig = go.Figure()
    split = "action" if "action" in df.columns else None
    for value in (df[split].unique().sort().to_list() if split else [None]):
        part = df.filter(pl.col(split) == value) if split else df
        fig.add_scatter(x=part["time"].to_list(), y=part["bytes"].to_list(), mode="lines", stackgroup="one",
                        name=esc(value) if value else "bytes")
    return _layout(fig, "Bytes over time", yaxis_title="bytes")


def top_talkers_chart(talkers: Any, *, title: str = "Top talkers") -> go.Figure:
    """Bars from :func:`flowtools.analyses.traffic.top_talkers`."""
    df = collect(talkers)
    labels = [f"{esc(r['resource_name'] or r['aws_service'] or '')} {esc(r['address'])}".strip() for r in df.to_dicts()]
    fig = go.Figure(go.Bar(y=labels, x=df["bytes"].to_list(), orientation="h",
                           customdata=[[esc(s), p] for s, p in zip(df["scope"].to_list(), df["peers"].to_list(),
                                                                     strict=True)],
                           hovertemplate="%{y}<br>%{x} bytes, %{customdata[1]} peers (%{customdata[0]})"
                                         "<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title, xaxis_title="bytes", height=max(300, 26 * df.height + 120))


def rejects_chart(rejected: Any) -> go.Figure:
    """Who is scanning what: rejected traffic by interface and port
    (:func:`flowtools.analyses.traffic.rejects`)."""
    df = collect(rejected)
    labels = [f"{esc(r['interface_id'])} {esc(r['protocol'])}/{esc(r['dstport'])}" for r in df.to_dicts()]
    fig = go.Figure(go.Bar(y=labels, x=df["sources"].to_list(), orientation="h", marker_color="#7f7f7f",
                           customdata=df["records"].to_list(),
                           hovertemplate="%{y}<br>%{x} sources, %{customdata} records<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, "Rejected traffic: distinct sources per interface and port", xaxis_title="distinct sources",
                   height=max(300, 22 * df.height + 120))


def traffic_paths_chart(paths: Any) -> go.Figure:
    """Egress bytes per traffic path (:func:`flowtools.analyses.traffic.traffic_paths`)."""
    df = collect(paths)
    fig = go.Figure(go.Pie(labels=[esc(p) for p in df["path"].to_list()], values=df["bytes"].to_list(), hole=0.4))
    return _layout(fig, "Traffic paths (bytes)")


def _seconds(every: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return int(every[:-1]) * units[every[-1]]
    except (KeyError, ValueError):
        raise ValueError(f"every must look like 30s, 5m, 1h or 1d, not {every!r}") from None


def resource_timeline(flows: Any, interface_id: str, *, every: str = "5m") -> go.Figure:
    """One interface over time: bytes per ``every`` (``30s``, ``5m``, ``1h``...), by action."""
    from flowtools.analyses.exposure import _native_frame

    step = _seconds(every)
    lf = nw.from_native(_native_frame(flows)).filter(nw.col("interface_id") == interface_id)
    df = collect(lf.filter(~nw.col("bytes").is_null())
                 .group_by(((nw.col("start") // step) * step).alias("bucket"), "action")
                 .agg(bytes=nw.col("bytes").sum().cast(nw.Int64)).sort("bucket", "action"))
    df = df.with_columns(time=pl.from_epoch("bucket", "s").dt.replace_time_zone("UTC"))
    fig = go.Figure()
    for action in df["action"].unique().sort().to_list():
        part = df.filter(pl.col("action") == action)
        fig.add_scatter(x=part["time"].to_list(), y=part["bytes"].to_list(), mode="lines", name=esc(action))
    return _layout(fig, f"{esc(interface_id)}: bytes per {every}", yaxis_title="bytes")


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
.flowtools-table table { border-collapse: collapse; font: 13px sans-serif; }
.flowtools-table th, .flowtools-table td { border-bottom: 1px solid #ddd; padding: 3px 8px; text-align: left;
  vertical-align: top; }
.flowtools-table td.status-exposed { color: #d62728; font-weight: bold; }
.flowtools-table td.status-reachable { color: #ff7f0e; font-weight: bold; }
.flowtools-table input { margin: 6px 0; padding: 4px; width: 24em; }
</style>
"""


def html_table(frame: Any, *, columns: tuple[str, ...] | list[str] | None = None, max_rows: int = 500,
               filter_box: bool = False, table_id: str | None = None) -> str:
    """A frame as one self-contained HTML table, every cell escaped (tags are
    user-controlled); ``filter_box`` adds a search box that filters rows (inline script)."""
    df = collect(frame)
    cols = [c for c in (columns or df.columns) if c in df.columns]
    head = "".join(f"<th>{esc(c)}</th>" for c in cols)
    body = []
    for row in df.head(max_rows).to_dicts():
        cells = []
        for c in cols:
            v = row[c]
            if isinstance(v, list):
                v = ", ".join(str(x) for x in v)
            elif hasattr(v, "strftime"):
                v = v.strftime("%Y-%m-%dT%H:%M:%SZ")
            klass = f' class="status-{esc(v)}"' if c == "status" else ""
            cells.append(f"<td{klass}>{esc('' if v is None else v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f"<p>{df.height - max_rows} more rows not shown</p>" if df.height > max_rows else ""
    box = ('<input type="search" placeholder="filter rows..." oninput="flowtoolsFilter(this)">'
           if filter_box else "")
    ident = f' id="{esc(table_id)}"' if table_id else ""
    return (f'{_TABLE_STYLE}{_TABLE_SCRIPT if filter_box else ""}<div class="flowtools-table">{box}'
            f'<table{ident}><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}</div>')


FINDINGS_COLUMNS = ("status", "resource_name", "interface_id", "protocol", "port", "port_to", "peers", "connections",
                    "confidence", "sg_open", "local_ip", "first_seen", "last_seen", "evidence", "sample_peers")


def findings_table(findings: Any, *, max_rows: int = 500) -> str:
    """Findings as an escaped, filterable HTML table (``id="findings"``)."""
    return html_table(findings, columns=FINDINGS_COLUMNS, max_rows=max_rows, filter_box=True, table_id="findings")


def show(frame: Any, **kw: Any) -> Any:
    """Display a frame as an escaped HTML table in a notebook (``IPython.display.HTML``)."""
    from IPython.display import HTML

    return HTML(html_table(frame, **kw))
