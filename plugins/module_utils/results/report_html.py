# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The report for people: one offline HTML page, and a plain-text table for the play's output.

Both read the summary dict described in ``docs/summary.md`` (what ``summary.json`` holds) and
show the same numbers.

:func:`render` returns a self-contained page: plotly.js is embedded once, every figure is drawn
from JSON in the page and has a fixed div id, and nothing is loaded from the network (no CDN,
no web fonts). The same summary gives the same bytes, so writing the page again is "unchanged".
Every string from the data (request names come from user scripts) is escaped, in the HTML and
in the JSON inside ``<script>``.

:func:`summary_table` returns a fixed-width table under 100 columns: overall and one line per
region, then the threshold verdicts.
"""

from __future__ import annotations

import html
import traceback
from datetime import datetime
from datetime import timezone
from typing import Any
from typing import NamedTuple
from typing import Optional

try:
    import plotly.graph_objects as go
    import plotly.io as pio
    from plotly.offline import get_plotlyjs
except ImportError:
    HAS_PLOTLY = False
    PLOTLY_IMPORT_ERROR: Optional[str] = traceback.format_exc()
else:
    HAS_PLOTLY = True
    PLOTLY_IMPORT_ERROR = None

from .records import OTHER_REQUESTS

NO_DATA = "\u2014"
OVERALL = "overall"
PERCENTILES = ("p50", "p90", "p95", "p99")
STATUS_CLASS_ORDER = ("1xx", "2xx", "3xx", "4xx", "5xx", "error")
STATUS_COLOURS = {
    "1xx": "#9e9e9e",
    "2xx": "#2e7d32",
    "3xx": "#1565c0",
    "4xx": "#ef6c00",
    "5xx": "#c62828",
    "error": "#6a1b9a",
}
# Okabe-Ito: told apart with the common colour vision deficiencies; a region keeps its colour in every chart.
REGION_COLOURS = ("#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#f0e442")
OVERALL_COLOUR = "#222222"
PERCENTILE_COLOURS = {"p50": "#6baed6", "p90": "#4292c6", "p95": "#08519c", "p99": "#d55e00"}
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
CHART_HEIGHT = "360px"
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
# k6's exit codes worth a word (go.k6.io/k6/errext/exitcodes); any other non-zero code is a failure.
K6_EXIT_CODES = {
    0: "passed",
    99: "threshold crossed",
    104: "invalid config",
    105: "aborted externally",
    107: "script exception",
    108: "aborted by script",
}
# Baseline metrics where a larger current value is better or worse; others are only shown.
HIGHER_IS_BETTER = frozenset({"rps", "iterations"})
LATENCY_LABELS = {"min": "min", "avg": "avg", "med": "p50", "p90": "p90", "p95": "p95", "p99": "p99", "max": "max"}
LATENCY_METRICS = frozenset({"min", "avg", "med", "p50", "p90", "p95", "p99", "max"})
LOWER_IS_BETTER = frozenset({"error_rate", "failures"}) | LATENCY_METRICS
TEXT_WIDTH = 78  # Ansible's YAML output folds longer strings
MAX_LISTED_LOSSES = 20  # tasks with missing results named in the banner and the text table; all are in summary.json


class _Html(str):
    """Markup built here, already escaped: table cells take it as is, any other str is escaped."""


# ---- Numbers as people read them.


def _count(value: Optional[float]) -> str:
    return NO_DATA if value is None else f"{value:,.0f}"


def _decimal(value: Optional[float], digits: int = 1) -> str:
    return NO_DATA if value is None else f"{value:,.{digits}f}"


def _percent(value: Optional[float]) -> str:
    return NO_DATA if value is None else f"{value * 100:.2f} %"


def _ms(value: Optional[float]) -> str:
    return NO_DATA if value is None else f"{value:,.1f} ms"


def _number(value: Optional[float]) -> str:
    """A value of unknown scale: whole numbers as such, others with 4 significant digits."""
    if value is None:
        return NO_DATA
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4g}"


def _bytes(value: Optional[float]) -> str:
    if value is None:
        return NO_DATA
    if abs(value) < 1000:
        return f"{value:,.0f} B"
    size = value / 1000
    for unit in ("KB", "MB"):
        if abs(size) < 1000:
            return f"{size:,.1f} {unit}"
        size /= 1000
    return f"{size:,.1f} GB"


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return NO_DATA
    if seconds < 120:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _utc(epoch_ms: Optional[float]) -> str:
    if epoch_ms is None:
        return NO_DATA
    return datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _chart_time(epoch_ms: float) -> str:
    """A time plotly.js reads as a date on its own (no time zone: the axis says UTC)."""
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    return text if epoch_ms % 1000 == 0 else f"{text}.{moment.microsecond // 1000:03d}"


def _threshold_value(threshold: dict[str, Any], value: Optional[float]) -> str:
    """A threshold's measured value or limit in the unit of its metric and aggregation."""
    if threshold.get("aggregation") == "rate":
        return _percent(value)
    metric = threshold.get("metric") or ""
    if metric.endswith("_duration") or (metric.startswith("http_req_") and metric != "http_req_failed"):
        return _ms(value)
    return _number(value)


# ---- Reading the summary.


def _regions(summary: dict[str, Any]) -> list[str]:
    """The regions in the order the plan lists them, then any other region the data names."""
    names = [*(summary.get("plan") or {}), *(summary.get("regions") or {}), *(summary.get("timeseries") or {})]
    return [name for name in dict.fromkeys(names) if name != OVERALL]


def _latency(totals: dict[str, Any], key: str) -> Optional[float]:
    return (totals.get("latency") or {}).get(key)


def _task_order(task: str) -> tuple[int, str]:
    return (int(task), "") if task.isdigit() else (1 << 30, task)


def _status_class_order(found: set[str]) -> list[str]:
    """1xx to 5xx, then ``error``, then anything else by name (sorted: set order changes between runs)."""
    return [name for name in STATUS_CLASS_ORDER if name in found] + sorted(found - set(STATUS_CLASS_ORDER))


def _has_points(series: list[dict[str, Any]], key: str) -> bool:
    return any(point.get(key) is not None for point in series)


# ---- HTML pieces.


def _cell(value: Any) -> str:
    return value if isinstance(value, _Html) else html.escape(str(value))


def _table(headers: list[str], rows: list[list[Any]], align: str) -> _Html:
    """A table; ``align`` has one letter per column, ``l`` or ``r`` (numbers)."""
    classes = ["num" if letter == "r" else "" for letter in align]

    def row(cells: list[Any], tag: str) -> str:
        return "<tr>" + "".join(
            f'<{tag} class="{kind}">{_cell(cell)}</{tag}>' if kind else f"<{tag}>{_cell(cell)}</{tag}>"
            for cell, kind in zip(cells, classes)
        ) + "</tr>"

    head = row(headers, "th")
    body = "\n".join(row(cells, "td") for cells in rows)
    return _Html(f'<div class="scroll"><table>\n<thead>{head}</thead>\n<tbody>\n{body}\n</tbody>\n</table></div>')


def _badge(text: str, kind: str) -> _Html:
    return _Html(f'<span class="badge {html.escape(kind)}">{html.escape(text)}</span>')


def _ok_badge(ok: Optional[bool]) -> _Html:
    if ok is None:
        return _badge("no data", "unknown")
    return _badge("pass", "pass") if ok else _badge("fail", "fail")


def _section(anchor: str, title: str, *parts: str) -> str:
    return f'<section id="{anchor}">\n<h2>{html.escape(title)}</h2>\n' + "\n".join(parts) + "\n</section>"


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def _header(summary: dict[str, Any]) -> str:
    verdict = str(summary.get("verdict") or "partial")
    details = [
        f"deployment {summary.get('deployment') or NO_DATA}",
        f"started {summary.get('start_at') or _utc(summary.get('start_at_ms'))}",
        f"results store {summary.get('results_store') or NO_DATA}",
    ]
    return (
        "<header>\n"
        f'<h1>Load test <span class="run-id">{html.escape(str(summary.get("run_id", NO_DATA)))}</span> '
        f'{_badge(verdict.upper(), verdict if verdict in ("pass", "fail") else "partial")}</h1>\n'
        f'<p class="meta">{" &middot; ".join(html.escape(detail) for detail in details)}{_dashboard(summary)}</p>\n'
        "</header>"
    )


def _dashboard(summary: dict[str, Any]) -> str:
    """The link to the run's live metrics in Grafana (report_data.dashboard_link), when the user's Grafana is known."""
    url = summary.get("dashboard_url")
    if not url:
        return ""
    return f' &middot; <a href="{html.escape(url)}" rel="noopener">live metrics in Grafana</a>'


def _progress_text(summary: dict[str, Any]) -> str:
    progress = summary.get("progress") or {}
    return (
        f"{_count(progress.get('registered_tasks'))} of {_count(progress.get('planned_tasks'))} planned tasks "
        f"registered, {_count(progress.get('completed_tasks'))} completed"
    )


def _accounting_text(accounting: dict[str, Any]) -> str:
    """k6's count against the store's, in a phrase."""
    counted, stored = accounting.get("k6_requests"), accounting.get("stored_requests")
    if counted is None:
        return f"the results store holds {_count(stored)} requests; the tasks did not report k6's count"
    missing = counted - (stored or 0)
    tail = "all" if missing <= 0 else f"{_count(missing)} missing"
    return f"k6 counted {_count(counted)} requests, the store holds {_count(stored)}: {tail}"


def _live_metrics_text(live_metrics: dict[str, Any]) -> str:
    sent, lost = live_metrics.get("sent", 0), live_metrics.get("lost", 0)
    return f"Prometheus took {_count(sent)} of the {_count(sent + lost)} pushes forwarded to it live"


def _stop_text(stop: dict[str, Any]) -> str:
    label = "ABORTED" if stop.get("reason") == "aborted" else "STOPPED"
    detail = f": {stop['detail']}" if stop.get("detail") else ""
    return f"{label} at {stop.get('at_iso8601') or stop.get('at')}{detail}"


def _banners(summary: dict[str, Any]) -> str:
    banners = []
    stop = summary.get("stop")
    if stop:
        banners.append(
            f'<div class="banner partial" role="alert"><strong>{html.escape(_stop_text(stop))}</strong> &mdash; the run '
            "ended before its planned duration. These numbers and the verdict cover what ran until then.</div>"
        )
    accounting = summary.get("accounting") or {}
    if accounting.get("incomplete"):
        lines = "".join(f"<li>{html.escape(line)}</li>" for line in accounting["incomplete"][:MAX_LISTED_LOSSES])
        more = len(accounting["incomplete"]) - MAX_LISTED_LOSSES
        banners.append(
            '<div class="banner partial" role="alert"><strong>INCOMPLETE RESULTS</strong> &mdash; '
            f"{html.escape(_accounting_text(accounting))}. The numbers and thresholds below judge part of "
            f'the load:<ul class="plain">{lines}</ul>'
            + (f"and {more:,} more tasks (summary.json, <code>accounting</code>)" if more > 0 else "")
            + "</div>"
        )
    live_metrics = accounting.get("live_metrics") or {}
    if live_metrics.get("lost"):
        gaps = "".join(f"<li>{html.escape(line)}</li>" for line in live_metrics.get("gaps", [])[:MAX_LISTED_LOSSES])
        banners.append(
            '<div class="banner partial" role="status"><strong>LIVE METRICS GAPS</strong> &mdash; '
            f"{html.escape(_live_metrics_text(live_metrics))}. The live charts in Prometheus have gaps; this report, "
            f'read from the results store, does not:<ul class="plain">{gaps}</ul></div>'
        )
    if not summary.get("complete", False):
        banners.append(
            '<div class="banner partial" role="alert"><strong>PARTIAL DATA</strong> &mdash; the test has not '
            f"finished: {html.escape(_progress_text(summary))}. These numbers cover what the tasks have "
            "written so far; run the report again once every task has completed.</div>"
        )
    if not (summary.get("overall") or {}).get("requests"):
        banners.append(
            '<div class="banner empty" role="status">No request records yet for this run: there is nothing '
            "to chart. Load generators write their first records one interval after they start.</div>"
        )
    return "\n".join(banners)


def _interval(summary: dict[str, Any]) -> str:
    interval = summary.get("interval_ms")
    return NO_DATA if interval is None else _duration(interval / 1000)


def _planned_duration(summary: dict[str, Any]) -> str:
    duration_ms = summary.get("duration_ms")
    script = f"script {summary['script']}" if summary.get("script") else ""
    planned = "" if duration_ms is None else f"{_duration(duration_ms / 1000)} of load planned"
    return ", ".join(part for part in (planned, script) if part) or "as the script says"


def _overview(summary: dict[str, Any]) -> str:
    overall = summary.get("overall") or {}
    plan = summary.get("plan") or {}
    regions = _regions(summary)
    vus = sum((entry.get("vus") or 0) for entry in plan.values()) if plan else None
    tasks = sum((entry.get("tasks") or 0) for entry in plan.values()) if plan else None
    span = (
        f"{_utc(summary.get('data_from_ms'))} to {_utc(summary.get('data_to_ms'))}"
        if summary.get("data_from_ms") is not None
        else "no interval read yet"
    )
    rps = overall.get("rps")
    skew = summary.get("start_skew_ms")
    facts = [
        ("Regions", f"{len(regions)}", ", ".join(regions)),
        ("Virtual users", _count(vus), "planned, all regions"),
        ("Tasks", _count(tasks), "planned" if summary.get("complete") else _progress_text(summary)),
        ("Measured", _duration(summary.get("measured_seconds")), span),
        ("Executor", str(summary.get("executor") or NO_DATA), _planned_duration(summary)),
        ("Results store", str(summary.get("results_store") or NO_DATA), f"intervals of {_interval(summary)}"),
        ("Start skew", "unknown" if skew is None else _ms(skew), "latest minus earliest k6 start"),
        ("Requests", _count(overall.get("requests")), f"{_count(overall.get('failures'))} failed"),
        ("Error rate", _percent(overall.get("error_rate")), "failed / all requests"),
        ("Throughput", NO_DATA if rps is None else f"{rps:,.1f} req/s", "requests / measured seconds"),
        ("p95 latency", _ms(_latency(overall, "p95")), f"p99 {_ms(_latency(overall, 'p99'))}"),
    ]
    cards = "\n".join(
        f'<div class="card"><dt>{html.escape(label)}</dt><dd>{html.escape(value)}</dd>'
        f'<dd class="detail">{html.escape(detail)}</dd></div>'
        for label, value, detail in facts
    )
    return _section("overview", "Overview", f'<dl class="cards">\n{cards}\n</dl>')


def _thresholds(summary: dict[str, Any]) -> str:
    thresholds = summary.get("thresholds") or []
    if not thresholds:
        return _section("thresholds", "Thresholds", _note("The test defines no thresholds."))
    rows = []
    for threshold in thresholds:
        expression = threshold.get("expression", "")
        if threshold.get("abort_on_fail"):
            expression += " (abortOnFail)"
        limit = threshold.get("limit")
        rows.append([
            threshold.get("name") or threshold.get("metric", ""),
            expression,
            _threshold_value(threshold, threshold.get("value")),
            f"{threshold.get('operator', '')} {_threshold_value(threshold, limit)}" if limit is not None else NO_DATA,
            _ok_badge(threshold.get("ok")),
            threshold.get("evaluated_on", NO_DATA),
            threshold.get("source", NO_DATA),
        ])
    table = _table(
        ["Threshold", "Expression", "Measured", "Limit", "Result", "Evaluated on", "Source"], rows, "llrrlll"
    )
    legend = _note(
        "merged: measured here on the histograms of every task and region together; "
        "tasks: a metric the results store does not hold, so k6's own verdict in every task (all must pass)."
    )
    return _section("thresholds", "Thresholds", table, legend)


# ---- Charts.


def _layout(y_title: str, **axis: Any) -> dict[str, Any]:
    """A small explicit layout: no plotly template in the page, the same look in every chart."""
    grid = {"gridcolor": "#e6e6e6", "linecolor": "#9e9e9e", "zeroline": False}
    return {
        "template": {},
        "font": {"family": FONT, "size": 12, "color": "#222222"},
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 64, "r": 16, "t": 28, "b": 40},
        "xaxis": {"type": "date", **grid},
        "yaxis": {"title": {"text": y_title}, "rangemode": "tozero", **grid, **axis},
        # Below the plot: above it, the legend would run under plotly's mode bar.
        "legend": {"orientation": "h", "x": 0, "y": -0.14, "yanchor": "top"},
        "hovermode": "x unified",
    }


def _line(series: list[dict[str, Any]], key: str, name: str, colour: str, overall: bool = False) -> Any:
    return go.Scatter(
        x=[_chart_time(point["t_ms"]) for point in series],
        y=[point.get(key) for point in series],
        name=html.escape(name, quote=False),  # plotly.js reads a few tags in text
        mode="lines+markers",
        line={"color": colour, "width": 3 if overall else 2},
        marker={"size": 5},
    )


def _per_region(summary: dict[str, Any], key: str, with_overall: bool = True) -> list[Any]:
    timeseries = summary.get("timeseries") or {}
    traces = [
        _line(timeseries[region], key, region, REGION_COLOURS[index % len(REGION_COLOURS)])
        for index, region in enumerate(_regions(summary))
        if _has_points(timeseries.get(region) or [], key)
    ]
    if with_overall and _has_points(timeseries.get(OVERALL) or [], key):
        traces.append(_line(timeseries[OVERALL], key, "all regions", OVERALL_COLOUR, overall=True))
    return traces


def _planned_vus(summary: dict[str, Any]) -> list[Any]:
    """Each region's planned VUs over time (its shape: stages, start_after), dashed, in the region's colour."""
    start, plan = summary.get("start_at_ms"), summary.get("plan") or {}
    if start is None:
        return []
    return [
        go.Scatter(
            x=[_chart_time(start + at) for at, _vus in plan[region]["planned_vus"]],
            y=[vus for _at, vus in plan[region]["planned_vus"]],
            name=html.escape(f"{region} planned", quote=False),
            mode="lines",
            line={"color": REGION_COLOURS[index % len(REGION_COLOURS)], "width": 1.5, "dash": "dash"},
        )
        for index, region in enumerate(_regions(summary))
        if (plan.get(region) or {}).get("planned_vus")
    ]


def _status_bars(summary: dict[str, Any]) -> list[Any]:
    status_classes = summary.get("status_classes") or {}
    regions = [region for region in _regions(summary) if any((status_classes.get(region) or {}).values())]
    return [
        go.Bar(
            x=[html.escape(region, quote=False) for region in regions],
            y=[status_classes[region].get(name, 0) for region in regions],
            name=html.escape(name, quote=False),
            marker={"color": STATUS_COLOURS.get(name, "#757575")},
        )
        for name in _status_class_order({name for region in regions for name in status_classes[region]})
    ]


class _Chart(NamedTuple):
    div_id: str
    caption: str
    traces: list[Any]  # empty: no data for this chart yet
    layout: dict[str, Any]


def _charts(summary: dict[str, Any]) -> list[_Chart]:
    """Every chart of the page, in page order."""
    overall = (summary.get("timeseries") or {}).get(OVERALL) or []
    percentiles = [
        _line(overall, name, name, PERCENTILE_COLOURS[name]) for name in PERCENTILES if _has_points(overall, name)
    ]
    status_layout = _layout("requests")
    status_layout.update(barmode="stack", hovermode="x", xaxis={"type": "category"})
    status_layout["legend"]["traceorder"] = "normal"
    return [
        _Chart("chart-throughput", "Throughput per region and overall", _per_region(summary, "rps"),
               _layout("requests/s")),
        _Chart("chart-latency", "Latency percentiles, all regions merged", percentiles, _layout("ms")),
        _Chart("chart-latency-regions", "p95 latency per region", _per_region(summary, "p95", False), _layout("ms")),
        _Chart("chart-errors", "Error rate per region and overall", _per_region(summary, "error_rate"),
               _layout("failed requests", tickformat=".1%", hoverformat=".2%")),
        _Chart("chart-status", "Responses by status class per region", _status_bars(summary), status_layout),
        _Chart("chart-vus", "Active virtual users, measured and planned (dashed)", _per_region(summary, "vus") + _planned_vus(summary), _layout("VUs")),
    ]


def _chart_html(chart: _Chart) -> str:
    figure = go.Figure(data=chart.traces, layout=chart.layout)
    # plotly writes the figure's JSON with <, > and / escaped, so no string closes the <script>.
    return pio.to_html(
        figure,
        config=PLOTLY_CONFIG,
        include_plotlyjs=False,
        full_html=False,
        div_id=chart.div_id,
        default_height=CHART_HEIGHT,
    )


def _charts_section(summary: dict[str, Any]) -> tuple[str, bool]:
    """The charts section, and whether it draws any chart (and so needs plotly.js)."""
    charts = _charts(summary)
    if not any(chart.traces for chart in charts):
        return _section("charts", "Charts", _note("No records yet: the charts appear with the first interval.")), False
    figures = []
    for chart in charts:
        body = _chart_html(chart) if chart.traces else _note("No data for this chart yet.")
        figures.append(
            f'<figure class="chart">\n<figcaption>{html.escape(chart.caption)}</figcaption>\n{body}\n</figure>'
        )
    times = _note("Times are UTC; each point is one interval of the results store.")
    return _section("charts", "Charts", times, '<div class="charts">\n' + "\n".join(figures) + "\n</div>"), True


# ---- Tables of numbers.


def _requests(summary: dict[str, Any]) -> str:
    requests = summary.get("requests") or []
    if not requests:
        return _section("requests", "Requests", _note("No request records yet."))
    rows = [
        [
            entry.get("request", ""),
            entry.get("method", ""),
            _count(entry.get("requests")),
            _count(entry.get("failures")),
            _percent(entry.get("error_rate")),
            _decimal(entry.get("rps")),
            *(_decimal(_latency(entry, key)) for key in ("avg", "med", "p90", "p95", "p99", "max")),
        ]
        for entry in requests
    ]
    headers = ["Request", "Method", "Requests", "Failed", "Error rate", "req/s", "avg ms", "p50 ms", "p90 ms",
               "p95 ms", "p99 ms", "max ms"]
    table = _table(headers, rows, "llrrrrrrrrrr")
    if any(entry.get("request") == OTHER_REQUESTS for entry in requests):
        table += _note(
            f"{OTHER_REQUESTS}: the requests of every name past a task's first 1,000 (by default), summed. k6 names a"
            " request by its URL unless the script tags it: give requests to URLs that vary a name, e.g."
            " http.get(url, { tags: { name: 'user' } })."
        )
    return _section("requests", "Requests", table)


def _regions_side_by_side(summary: dict[str, Any]) -> str:
    regions = _regions(summary)
    if not regions:
        return _section("regions", "Regions", _note("No regions in this summary."))
    plan = summary.get("plan") or {}
    measured_regions = summary.get("regions") or {}
    totals = {OVERALL: summary.get("overall") or {}}
    totals.update((name, measured_regions.get(name) or {}) for name in regions)
    status_classes = summary.get("status_classes") or {}
    columns = [OVERALL, *regions]

    def planned(key: str) -> list[str]:
        values = {name: (plan.get(name) or {}).get(key) for name in regions}
        known = [value for value in values.values() if value is not None]
        return [_count(sum(known) if known else None), *(_count(values[name]) for name in regions)]

    def measured(key: str, formatter) -> list[str]:
        return [formatter(totals[name].get(key)) for name in columns]

    def latency(key: str) -> list[str]:
        return [_decimal(_latency(totals[name], key)) for name in columns]

    rows = [
        ["Planned VUs", *planned("vus")],
        ["Planned tasks", *planned("tasks")],
        ["Requests", *measured("requests", _count)],
        ["Failed requests", *measured("failures", _count)],
        ["Error rate", *measured("error_rate", _percent)],
        ["Throughput (req/s)", *measured("rps", _decimal)],
        ["Iterations", *measured("iterations", _count)],
        ["Data received", *measured("data_received", _bytes)],
        ["Data sent", *measured("data_sent", _bytes)],
        *([f"Latency {label} (ms)", *latency(key)] for key, label in LATENCY_LABELS.items()),
    ]
    for name in _status_class_order({name for column in columns for name in (status_classes.get(column) or {})}):
        rows.append([f"Status {name}", *(_count((status_classes.get(column) or {}).get(name, 0)) for column in columns)])
    return _section(
        "regions", "Regions side by side", _table(["", "all regions", *regions], rows, "l" + "r" * len(columns))
    )


def _signed(metric: str, value: Optional[float]) -> str:
    if value is None:
        return NO_DATA
    if metric == "error_rate":
        return f"{value * 100:+.2f} pp"
    if metric in LATENCY_METRICS:
        return f"{value:+,.1f} ms"
    return f"{value:+,.1f}" if metric == "rps" else f"{value:+,.0f}"


def _baseline_value(metric: str, value: Optional[float]) -> str:
    if metric == "error_rate":
        return _percent(value)
    if metric in LATENCY_METRICS:
        return _ms(value)
    return _decimal(value) if metric == "rps" else _number(value)


def _direction(metric: str, delta: Optional[float]) -> str:
    """``better`` or ``worse`` for a change in a metric with a direction, else empty."""
    if not delta:
        return ""
    if metric in HIGHER_IS_BETTER:
        return "better" if delta > 0 else "worse"
    if metric in LOWER_IS_BETTER:
        return "better" if delta < 0 else "worse"
    return ""


def _baseline(summary: dict[str, Any]) -> str:
    baseline = summary.get("baseline")
    if not baseline:
        return ""
    intro = _Html(f'<p>Compared with run <code>{html.escape(str(baseline.get("run_id", NO_DATA)))}</code>; '
                  "green is better, red is worse.</p>")
    deltas = baseline.get("deltas") or {}
    rows = []
    for scope, metrics in deltas.items():
        for metric, change in (metrics or {}).items():
            direction = _direction(metric, change.get("delta"))
            relative = change.get("relative")
            delta = _signed(metric, change.get("delta"))
            rows.append([
                "all regions" if scope == OVERALL else scope,
                metric,
                _baseline_value(metric, change.get("baseline")),
                _baseline_value(metric, change.get("current")),
                _Html(f'<span class="{direction}">{html.escape(delta)}</span>') if direction else delta,
                NO_DATA if relative is None else f"{relative * 100:+.1f} %",
            ])
    if not rows:
        return _section("baseline", "Compared with the baseline", intro, _note("No numbers to compare."))
    table = _table(["Scope", "Metric", "Baseline", "This run", "Change", "Relative"], rows, "llrrrr")
    return _section("baseline", "Compared with the baseline", intro, table)


def _exit_code(code: Optional[int]) -> _Html:
    if code is None:
        return _badge("no result yet", "unknown")
    meaning = K6_EXIT_CODES.get(code, "failed")
    return _badge(f"{code} {meaning}", "pass" if code == 0 else "fail")


def _task_threshold_list(verdicts: dict[str, dict[str, bool]]) -> _Html:
    items = [
        f'<li>{_ok_badge(ok)} <code>{html.escape(metric)}</code> {html.escape(expression)}</li>'
        for metric, expressions in verdicts.items()
        for expression, ok in expressions.items()
    ]
    return _Html(f'<ul class="plain">{"".join(items)}</ul>' if items else NO_DATA)


def _tasks(summary: dict[str, Any]) -> str:
    exit_codes = summary.get("exit_codes") or {}
    task_thresholds = summary.get("task_thresholds") or {}
    accounting = (summary.get("accounting") or {}).get("tasks") or {}
    plan = summary.get("plan") or {}
    rows = []
    for region in dict.fromkeys([*_regions(summary), *exit_codes, *task_thresholds]):
        codes = exit_codes.get(region) or {}
        verdicts = task_thresholds.get(region) or {}
        counts = accounting.get(region) or {}
        # Tasks are numbered from 0 in each region: the planned ones that have not reported show too.
        planned = {str(index) for index in range((plan.get(region) or {}).get("tasks") or 0)}
        for task in sorted({*codes, *verdicts, *planned}, key=_task_order):
            task_counts = counts.get(task) or {}
            missing = task_counts.get("missing") or []
            rows.append([
                region,
                task,
                _exit_code(codes.get(task)),
                _count(task_counts.get("k6_requests")),
                _count(task_counts.get("stored_requests")),
                _Html(_badge("MISSING", "fail") + " " + html.escape("; ".join(missing))) if missing else _count(task_counts.get("store_retries")),
                _task_threshold_list(verdicts.get(task) or {}),
            ])
    if not rows:
        return _section("tasks", "k6 results per task", _note("No task is planned or has reported a result."))
    headers = [
        "Region", "Task", "k6 exit code", "requests k6 counted", "in the results store",
        "store retries, or what is missing", "k6 thresholds in the task",
    ]
    return _section("tasks", "k6 results per task", _table(headers, rows, "lrrrrll"))


# ---- The page.

_CSS = """
:root { color-scheme: light; --border: #d9d9d9; --muted: #5f6368; }
* { box-sizing: border-box; }
body { margin: 0; font-size: 14px; line-height: 1.45; color: #202124; background: #f6f7f9; }
main { max-width: 1280px; margin: 0 auto; padding: 0 24px 32px; }
header { padding: 20px 24px 8px; max-width: 1280px; margin: 0 auto; }
h1 { font-size: 22px; margin: 0; display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
h2 { font-size: 17px; margin: 28px 0 10px; }
.meta, .note, .detail { color: var(--muted); }
.meta { margin: 4px 0 0; }
nav { max-width: 1280px; margin: 0 auto; padding: 4px 24px; }
nav a { margin-right: 14px; color: #1a5fb4; text-decoration: none; }
code, .run-id { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: 600;
  color: #fff; background: #757575; white-space: nowrap; }
h1 .badge { font-size: 14px; padding: 3px 12px; letter-spacing: .03em; }
.badge.pass { background: #2e7d32; } .badge.fail { background: #c62828; } .badge.partial { background: #b26a00; }
.badge.unknown { background: #9e9e9e; }
.banner { max-width: 1232px; margin: 12px auto 0; padding: 12px 16px; border-radius: 6px; }
.banner.partial { background: #fff4e0; border: 2px solid #b26a00; }
.banner.empty { background: #eef3fb; border: 1px solid #90a4c8; }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: 10px; margin: 0; }
.card { background: #fff; border: 1px solid var(--border); border-radius: 6px; padding: 10px 12px; }
.card dt { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .03em; }
.card dd { margin: 2px 0 0; font-size: 18px; font-weight: 600; }
.card dd.detail { font-size: 12px; font-weight: 400; overflow-wrap: anywhere; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; background: #fff; border: 1px solid var(--border); font-size: 13px; }
th, td { padding: 5px 10px; border-bottom: 1px solid #ececec; text-align: left; vertical-align: top; }
th { background: #f1f3f4; font-weight: 600; white-space: nowrap; }
td { overflow-wrap: anywhere; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.better { color: #2e7d32; font-weight: 600; } .worse { color: #c62828; font-weight: 600; }
ul.plain { list-style: none; margin: 0; padding: 0; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; }
figure.chart { margin: 0; background: #fff; border: 1px solid var(--border); border-radius: 6px; padding: 8px; }
figcaption { font-weight: 600; padding: 2px 4px 0; }
footer { color: var(--muted); font-size: 12px; max-width: 1280px; margin: 0 auto; padding: 0 24px 24px; }
"""
_CSS += f"body {{ font-family: {FONT}; }}\n"

_SECTIONS = (
    ("overview", "Overview"),
    ("thresholds", "Thresholds"),
    ("charts", "Charts"),
    ("requests", "Requests"),
    ("regions", "Regions"),
    ("baseline", "Baseline"),
    ("tasks", "Tasks"),
)


def _footer(summary: dict[str, Any]) -> str:
    return (
        f"<footer>constellation.loadtest report from summary.json schema {html.escape(str(summary.get('schema')))}."
        " Every percentile comes from merged histograms, never from averaged percentiles.</footer>"
    )


def render(summary: dict[str, Any]) -> str:
    """The report page for a summary (``docs/summary.md``): one HTML file that works offline."""
    if not HAS_PLOTLY:
        raise ImportError(
            "The HTML report needs the Python package plotly on the controller "
            f"(pip install -r requirements.txt).\n{PLOTLY_IMPORT_ERROR}"
        )
    charts, has_charts = _charts_section(summary)
    baseline = _baseline(summary)
    links = " ".join(
        f'<a href="#{anchor}">{title}</a>' for anchor, title in _SECTIONS if anchor != "baseline" or baseline
    )
    # plotly.js before the figures, which call Plotly.newPlot as the page is parsed.
    plotly_js = (
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
        f'<script charset="utf-8">{get_plotlyjs()}</script>'
        if has_charts
        else ""
    )
    title = f"Load test {summary.get('run_id', '')}: {str(summary.get('verdict') or 'partial').upper()}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        '<link rel="icon" href="data:,">',
        f"<style>{_CSS}</style>",
        plotly_js,
        "</head>",
        "<body>",
        _header(summary),
        _banners(summary),
        f"<nav>{links}</nav>",
        "<main>",
        _overview(summary),
        _thresholds(summary),
        charts,
        _requests(summary),
        _regions_side_by_side(summary),
        baseline,
        _tasks(summary),
        "</main>",
        _footer(summary),
        "</body>",
        "</html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


# ---- Plain text for the play's output.


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _text_number(value: Optional[float], digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _text_row(scope: str, totals: dict[str, Any]) -> str:
    error_rate = totals.get("error_rate")
    errors = "-" if error_rate is None else f"{error_rate * 100:.2f}%"
    latencies = "".join(f" {_text_number(_latency(totals, key)):>9}" for key in ("med", "p95", "p99"))
    return (
        f"{_clip(scope, 16):<16} {_text_number(totals.get('requests'), 0):>9}"
        f" {_text_number(totals.get('rps')):>9} {errors:>7}{latencies}"
    )


def _text_threshold(threshold: dict[str, Any]) -> str:
    ok = threshold.get("ok")
    head = f"  {'n/a' if ok is None else ('pass' if ok else 'FAIL'):<4}  "
    evaluated_on = threshold.get("evaluated_on", "-")
    if threshold.get("value") is None and evaluated_on == "tasks":
        tail = " [k6 verdicts per task]"
    else:
        tail = f" = {_threshold_value(threshold, threshold.get('value')).replace(NO_DATA, '-')} [{evaluated_on}]"
    selector = f"{threshold.get('name') or threshold.get('metric', '')} {threshold.get('expression', '')}"
    return head + _clip(selector, TEXT_WIDTH - len(head) - len(tail)) + tail


def summary_table(summary: dict[str, Any]) -> str:
    """The summary as fixed-width text (at most TEXT_WIDTH columns) for the play's output."""
    verdict = str(summary.get("verdict") or "partial").upper()
    measured = summary.get("measured_seconds")
    lines = [
        _clip(
            f"Run {summary.get('run_id', '-')}: {verdict} - "
            f"{'nothing' if measured is None else _duration(measured)} measured, "
            f"results store {summary.get('results_store') or '-'}",
            TEXT_WIDTH,
        )
    ]
    if summary.get("stop"):
        lines.append(_clip(_stop_text(summary["stop"]), TEXT_WIDTH))
    if not summary.get("complete", False):
        progress = _progress_text(summary).replace(NO_DATA, "-")
        lines.append(_clip(f"PARTIAL: not finished ({progress})", TEXT_WIDTH))
    accounting = summary.get("accounting") or {}
    if accounting:
        label = "INCOMPLETE: " if accounting.get("incomplete") else "accounting: "
        lines.append(_clip(label + _accounting_text(accounting), TEXT_WIDTH))
        lines.extend(_clip("  " + line, TEXT_WIDTH) for line in accounting.get("incomplete", [])[:MAX_LISTED_LOSSES])
    if accounting.get("live_metrics"):
        lines.append(_clip("live metrics: " + _live_metrics_text(accounting["live_metrics"]), TEXT_WIDTH))
    lines.append(
        f"{'scope':<16} {'requests':>9} {'req/s':>9} {'errors':>7} {'p50 ms':>9} {'p95 ms':>9} {'p99 ms':>9}"
    )
    lines.append(_text_row("all regions", summary.get("overall") or {}))
    regions = summary.get("regions") or {}
    lines.extend(_text_row(region, regions.get(region) or {}) for region in _regions(summary))
    thresholds = summary.get("thresholds") or []
    lines.append("thresholds:" if thresholds else "thresholds: none defined")
    lines.extend(_text_threshold(threshold) for threshold in thresholds)
    return "\n".join(lines)
