# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""History across runs: the last runs of a deployment side by side, as history.json and one offline page.

Pure functions, from what the orchestrator says of each run (``orchestrator_state.describe_run``)
and, for each run that ended, its summary (:func:`report_data.build_summary`, what ``summary.json``
holds):

* :func:`last_runs` picks the runs to show: the last ``count`` by start, oldest first (a run whose
  start is not decided yet counts from its creation).
* :func:`history_row` makes one run's row: its id, start, verdict and figures (requests, failures,
  throughput, error rate, p50/p95/p99 latency) overall and per region. A run that has not ended is
  ``running`` (or ``partial`` once it is no longer active: a task never reported its end), and a
  run without records has no figures: its figures are null, never zeros that would pull a trend down.
* :func:`build_history` is history.json; :func:`render` the page (plotly.js embedded once, fixed
  div ids, the same history gives the same bytes); :func:`history_table` the play's text table.

The figures are the summary's, so the history of a run says what its report says.
"""

from __future__ import annotations

import html
import traceback
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
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

from .report_data import is_complete
from .report_html import _CSS
from .report_html import CHART_HEIGHT
from .report_html import NO_DATA
from .report_html import OVERALL_COLOUR
from .report_html import PERCENTILE_COLOURS
from .report_html import PLOTLY_CONFIG
from .report_html import REGION_COLOURS
from .report_html import _badge
from .report_html import _clip
from .report_html import _count
from .report_html import _decimal
from .report_html import _layout
from .report_html import _note
from .report_html import _percent
from .report_html import _section
from .report_html import _table
from .report_html import _utc

SCHEMA = 1
DEFAULT_RUNS = 10
RUNNING = "running"  # not ended, still active
PARTIAL = "partial"  # not ended and no longer active: a task never reported its end
# A row's latency figures and the summary's <Totals> latency statistics they come from.
PERCENTILES = {"p50": "med", "p95": "p95", "p99": "p99"}
FIGURES = ("requests", "failures", "rps", "error_rate", *PERCENTILES)
VERDICT_MARKERS = {  # colour, symbol: told apart without colour too
    "pass": ("#2e7d32", "circle"),
    "fail": ("#c62828", "x"),
    "incomplete": ("#b26a00", "diamond"),
}
OTHER_VERDICT_MARKER = ("#9e9e9e", "circle-open")
OVERALL_NAME = "all regions"
TEXT_WIDTH = 78


class HistoryError(ValueError):
    """The history cannot be made as asked; the message says why."""


# ---- Which runs, and their rows.


def start_order(run: Mapping[str, Any]) -> tuple[int, str]:
    """A run's place in time: its decided start, or its creation while the start is not decided."""
    start = run.get("start_at")
    return (start if start is not None else run.get("created_at") or 0, run["run_id"])


def last_runs(runs: Sequence[Mapping[str, Any]], count: int) -> list[Mapping[str, Any]]:
    """The last ``count`` runs by start (:func:`start_order`), oldest first."""
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise HistoryError(f"the number of runs must be a whole number, 1 or more; got {count!r}")
    return sorted(runs, key=start_order)[-count:]


def has_ended(run: Mapping[str, Any]) -> bool:
    """Whether every planned task of the run has ended: only then are its figures and verdict read."""
    return is_complete(run)


def history_row(run: Mapping[str, Any], summary: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """One run's row, from its state (``describe_run``) and, once it has ended, its summary."""
    row: dict[str, Any] = {
        "run_id": run["run_id"],
        "start_at": run.get("start_at_iso8601"),
        "start_at_ms": run.get("start_at"),
        "created_at": run.get("created_at_iso8601"),
        "created_at_ms": run.get("created_at"),
        "stopped": bool(run.get("stop")),
    }
    if summary is None:
        row.update(verdict=RUNNING if run.get("active") else PARTIAL, complete=False, overall=None, regions={})
        return row
    overall = summary.get("overall") or {}
    with_records = bool(overall.get("requests"))
    regions = summary.get("regions") or {}
    row.update(
        verdict=summary.get("verdict"),
        complete=bool(summary.get("complete")),
        overall=_figures(overall) if with_records else None,
        regions={region: _figures(regions[region]) for region in sorted(regions)} if with_records else {},
    )
    return row


def _figures(totals: Mapping[str, Any]) -> dict[str, Any]:
    latency = totals.get("latency") or {}
    figures = {name: totals.get(name) for name in ("requests", "failures", "rps", "error_rate")}
    figures.update((name, latency.get(key)) for name, key in PERCENTILES.items())
    return figures


def build_history(
    rows: Sequence[Mapping[str, Any]],
    *,
    runs_asked: int,
    deployment: Optional[str],
    results_store: str,
    baseline: Optional[Mapping[str, Any]] = None,
) -> dict[str, Any]:
    """history.json: the rows oldest first, and the baseline's row when one is pinned.

    A pinned baseline must have figures: a line at no value would say nothing.
    """
    if baseline is not None and baseline.get("overall") is None:
        raise HistoryError(
            f"the baseline run {baseline['run_id']!r} has no figures to draw (its verdict: {baseline['verdict']}):"
            " pin a run that ended with records"
        )
    return {
        "schema": SCHEMA,
        "deployment": deployment,
        "results_store": results_store,
        "runs_asked": runs_asked,
        "baseline": dict(baseline) if baseline is not None else None,
        "runs": sorted((dict(row) for row in rows), key=_row_order),
    }


def _row_order(row: Mapping[str, Any]) -> tuple[int, str]:
    """:func:`start_order` of the run a row is of."""
    start = row.get("start_at_ms")
    return (start if start is not None else row.get("created_at_ms") or 0, row["run_id"])


def regions_of(history: Mapping[str, Any]) -> list[str]:
    """Every region with figures in a row or in the baseline, by name."""
    rows = [*history["runs"], *([history["baseline"]] if history.get("baseline") else [])]
    return sorted({region for row in rows for region in row.get("regions") or {}})


# ---- The page.


def _run_label(row: Mapping[str, Any]) -> str:
    return html.escape(row["run_id"], quote=False)  # plotly.js reads a few tags in text


def _value(row: Mapping[str, Any], region: Optional[str], figure: str) -> Optional[float]:
    figures = row.get("overall") if region is None else (row.get("regions") or {}).get(region)
    return (figures or {}).get(figure)


def _hover(row: Mapping[str, Any]) -> str:
    return html.escape(f"{row['run_id']} {row.get('start_at') or 'not started'} {str(row.get('verdict')).upper()}", quote=False)


def _trend(rows: Sequence[Mapping[str, Any]], region: Optional[str], figure: str, name: str, colour: str, verdicts: bool) -> Any:
    """One line over the runs; with ``verdicts``, its markers show each run's verdict."""
    marker: dict[str, Any] = {"size": 7, "color": colour}
    if verdicts:
        styles = [VERDICT_MARKERS.get(str(row.get("verdict")), OTHER_VERDICT_MARKER) for row in rows]
        marker = {"size": 11, "color": [style[0] for style in styles], "symbol": [style[1] for style in styles],
                  "line": {"width": 2, "color": [style[0] for style in styles]}}
    return go.Scatter(
        x=[_run_label(row) for row in rows],
        y=[_value(row, region, figure) for row in rows],
        name=html.escape(name, quote=False),
        mode="lines+markers",
        line={"color": colour, "width": 3 if verdicts else 2},
        marker=marker,
        text=[_hover(row) for row in rows],
        hovertemplate="%{text}<br>%{y}<extra>" + html.escape(name, quote=False) + "</extra>",
        connectgaps=False,
    )


def _baseline_line(history: Mapping[str, Any], region: Optional[str], figure: str, label: str, colour: str) -> list[Any]:
    """The pinned run's value as a dashed horizontal line across every run, if it has one."""
    baseline = history.get("baseline")
    value = _value(baseline, region, figure) if baseline else None
    if value is None:
        return []
    rows = history["runs"]
    return [
        go.Scatter(
            x=[_run_label(row) for row in rows],
            y=[value] * len(rows),
            name=html.escape(f"baseline {baseline['run_id']} {label}", quote=False),
            mode="lines",
            line={"color": colour, "width": 1.5, "dash": "dash"},
            hoverinfo="skip",
        )
    ]


def _region_colour(index: int) -> str:
    return REGION_COLOURS[index % len(REGION_COLOURS)]


def _per_region(history: Mapping[str, Any], figure: str) -> list[Any]:
    """The figure over the runs for each region, then all regions (verdict markers), each with its baseline."""
    rows = history["runs"]
    traces = []
    for index, region in enumerate(regions_of(history)):
        if any(_value(row, region, figure) is not None for row in rows):
            traces.append(_trend(rows, region, figure, region, _region_colour(index), verdicts=False))
        traces += _baseline_line(history, region, figure, region, _region_colour(index))
    if any(_value(row, None, figure) is not None for row in rows):
        traces.append(_trend(rows, None, figure, OVERALL_NAME, OVERALL_COLOUR, verdicts=True))
    return traces + _baseline_line(history, None, figure, OVERALL_NAME, OVERALL_COLOUR)


def _percentiles(history: Mapping[str, Any]) -> list[Any]:
    rows = history["runs"]
    traces = []
    for name in PERCENTILES:
        if any(_value(row, None, name) is not None for row in rows):
            traces.append(_trend(rows, None, name, name, PERCENTILE_COLOURS[name], verdicts=name == "p95"))
    for name in ("p95", "p99"):
        traces += _baseline_line(history, None, name, name, PERCENTILE_COLOURS[name])
    return traces


def _chart_layout(history: Mapping[str, Any], y_title: str, **axis: Any) -> dict[str, Any]:
    layout = _layout(y_title, **axis)
    labels = [_run_label(row) for row in history["runs"]]
    # Run ids may look like numbers or dates: the axis lists them as they are, in the runs' order.
    layout["xaxis"] = dict(layout["xaxis"], type="category", categoryorder="array", categoryarray=labels,
                           title={"text": "run, oldest first"})
    layout["hovermode"] = "closest"
    layout["margin"] = dict(layout["margin"], b=56)
    layout["legend"] = dict(layout["legend"], y=-0.22)
    return layout


CHARTS = (
    # div id, caption, traces, y axis title, axis options
    ("chart-latency", "Latency p50 / p95 / p99 over runs, all regions merged", _percentiles, "ms", {}),
    ("chart-p95-regions", "p95 latency over runs, per region and overall", lambda h: _per_region(h, "p95"), "ms", {}),
    ("chart-p99-regions", "p99 latency over runs, per region and overall", lambda h: _per_region(h, "p99"), "ms", {}),
    ("chart-throughput", "Throughput over runs, per region and overall", lambda h: _per_region(h, "rps"), "requests/s", {}),
    ("chart-errors", "Error rate over runs, per region and overall", lambda h: _per_region(h, "error_rate"),
     "failed requests", {"tickformat": ".1%", "hoverformat": ".2%"}),
)


def _chart_html(div_id: str, traces: list[Any], layout: dict[str, Any]) -> str:
    # plotly writes the figure's JSON with <, > and / escaped, so no string closes the <script>.
    return pio.to_html(
        go.Figure(data=traces, layout=layout),
        config=PLOTLY_CONFIG,
        include_plotlyjs=False,
        full_html=False,
        div_id=div_id,
        default_height=CHART_HEIGHT,
    )


def _charts_section(history: Mapping[str, Any]) -> tuple[str, bool]:
    """The charts, and whether any is drawn (and so the page needs plotly.js)."""
    if not any(row.get("overall") for row in history["runs"]):
        return _section("charts", "Trends", _note("No run with records yet: the charts appear with the first one.")), False
    figures = []
    for div_id, caption, traces_of, y_title, axis in CHARTS:
        traces = traces_of(history)
        body = _chart_html(div_id, traces, _chart_layout(history, y_title, **axis)) if traces else _note("No data.")
        figures.append(f'<figure class="chart">\n<figcaption>{html.escape(caption)}</figcaption>\n{body}\n</figure>')
    legend = _note(
        "Markers of the all-regions line show each run's verdict: pass (green circle), fail (red cross),"
        " incomplete (amber diamond), not ended (grey ring). A run without records leaves a gap."
        + (" The dashed lines are the baseline run's values." if history.get("baseline") else "")
    )
    return _section("charts", "Trends", legend, '<div class="charts">\n' + "\n".join(figures) + "\n</div>"), True


def _verdict_badge(verdict: Optional[str]) -> Any:
    text = str(verdict or NO_DATA)
    return _badge(text.upper(), text if text in ("pass", "fail") else "partial" if text in ("incomplete", PARTIAL) else "unknown")


def _figure_cells(figures: Optional[Mapping[str, Any]]) -> list[str]:
    figures = figures or {}
    return [
        _count(figures.get("requests")),
        _decimal(figures.get("rps")),
        _percent(figures.get("error_rate")),
        *(_decimal(figures.get(name)) for name in PERCENTILES),
    ]


_FIGURE_HEADERS = ["Requests", "req/s", "Error rate", "p50 ms", "p95 ms", "p99 ms"]


def _started(row: Mapping[str, Any]) -> str:
    return _utc(row.get("start_at_ms")) if row.get("start_at_ms") is not None else "not started"


def _runs_section(history: Mapping[str, Any]) -> str:
    baseline = history.get("baseline")
    rows = [
        [row["run_id"], _started(row), _verdict_badge(row.get("verdict")), *_figure_cells(row.get("overall"))]
        for row in reversed(history["runs"])
    ]
    parts = [_table(["Run", "Started", "Verdict", *_FIGURE_HEADERS], rows, "lll" + "r" * len(_FIGURE_HEADERS))]
    if baseline:
        pinned = [[baseline["run_id"], _started(baseline), _verdict_badge(baseline.get("verdict")),
                   *_figure_cells(baseline.get("overall"))]]
        parts.append(f"<h3>Baseline</h3>\n{_table(['Run', 'Started', 'Verdict', *_FIGURE_HEADERS], pinned, 'lll' + 'r' * 6)}")
    return _section("runs", "Runs, newest first", *parts)


def _regions_section(history: Mapping[str, Any]) -> str:
    rows = [
        [row["run_id"], region, *_figure_cells(figures)]
        for row in reversed(history["runs"])
        for region, figures in (row.get("regions") or {}).items()
    ]
    if not rows:
        return _section("regions", "Per region", _note("No run with records yet."))
    return _section("regions", "Per region", _table(["Run", "Region", *_FIGURE_HEADERS], rows, "ll" + "r" * 6))


def render(history: Mapping[str, Any]) -> str:
    """The history page (history.json's content): one HTML file that works offline."""
    if not HAS_PLOTLY:
        raise ImportError(
            "The HTML history needs the Python package plotly on the controller "
            f"(pip install -r requirements.txt).\n{PLOTLY_IMPORT_ERROR}"
        )
    charts, has_charts = _charts_section(history)
    runs = history["runs"]
    deployment = history.get("deployment") or NO_DATA
    title = f"Load test history of {deployment}: the last {len(runs)} runs"
    details = [
        f"{len(runs)} of the last {history.get('runs_asked')} runs asked",
        f"{_started(runs[0]) if runs else NO_DATA} to {_started(runs[-1]) if runs else NO_DATA}",
        f"results store {history.get('results_store') or NO_DATA}",
    ]
    if history.get("baseline"):
        details.append(f"baseline {history['baseline']['run_id']}")
    plotly_js = (
        "<script>window.PlotlyConfig = {MathJaxConfig: 'local'};</script>\n"
        f'<script charset="utf-8">{get_plotlyjs()}</script>'
        if has_charts
        else ""
    )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        '<link rel="icon" href="data:,">',
        f"<style>{_CSS}h3 {{ font-size: 15px; margin: 18px 0 8px; }}\n</style>",
        plotly_js,
        "</head>",
        "<body>",
        f"<header>\n<h1>{html.escape(title)}</h1>\n"
        f'<p class="meta">{" &middot; ".join(html.escape(detail) for detail in details)}</p>\n</header>',
        '<nav><a href="#charts">Trends</a> <a href="#runs">Runs</a> <a href="#regions">Per region</a></nav>',
        "<main>",
        charts,
        _runs_section(history),
        _regions_section(history),
        "</main>",
        f"<footer>constellation.loadtest history from history.json schema {html.escape(str(history.get('schema')))}."
        " Each run's figures are those of its report: percentiles from merged histograms.</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(part for part in parts if part) + "\n"


# ---- Plain text for the play's output.


def _text(value: Optional[float], digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _text_row(row: Mapping[str, Any]) -> str:
    figures = row.get("overall") or {}
    error_rate = figures.get("error_rate")
    started = _utc(row["start_at_ms"])[:16] if row.get("start_at_ms") is not None else "not started"
    return (
        f"{_clip(row['run_id'], 14):<14} {started:<16} {str(row.get('verdict')).upper():<10}"
        f" {_text(figures.get('requests'), 0):>9} {_text(figures.get('rps')):>7}"
        f" {'-' if error_rate is None else f'{error_rate * 100:.2f}%':>7} {_text(figures.get('p95')):>8}"
    )


def history_table(history: Mapping[str, Any]) -> str:
    """The runs as fixed-width text, oldest first, at most TEXT_WIDTH columns."""
    lines = [
        f"{'run':<14} {'started (UTC)':<16} {'verdict':<10} {'requests':>9} {'req/s':>7} {'errors':>7} {'p95 ms':>8}",
        *(_text_row(row) for row in history["runs"]),
    ]
    if history.get("baseline"):
        lines.append(_clip("baseline (dashed in the charts):", TEXT_WIDTH))
        lines.append(_text_row(history["baseline"]))
    return "\n".join(lines)
