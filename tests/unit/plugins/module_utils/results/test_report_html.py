"""The report page and the play's text table, from summaries written by hand after docs/summary.md.

The page checks run offline in headless Chromium (tests/browser.py), one browser for every
page. Screenshots are left in tests/output/report-unit*.png for people to look at.
"""

from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from plotly.offline import get_plotlyjs
from selenium.webdriver.common.by import By

from results import report_html
from browser import Browser
from browser import PageReport
from results.report_html import render
from results.report_html import summary_table

OUTPUT = Path(__file__).resolve().parents[4] / "output"
MODULE_UTILS = Path(__file__).resolve().parents[5] / "plugins" / "module_utils"
HOSTILE = "</script><img src=x onerror=alert(1)>"
START_MS = 1764320000000
INTERVAL_MS = 5000
PLAN = {"us-east-2": {"vus": 300, "tasks": 2}, "eu-west-1": {"vus": 200, "tasks": 1}, "ap-southeast-1": {"vus": 100, "tasks": 1}}
# Per region: requests per second at full load, share of failed requests, median latency (ms).
LOAD = {"us-east-2": (60.0, 0.004, 12.0), "eu-west-1": (40.0, 0.02, 85.0), "ap-southeast-1": (20.0, 0.05, 190.0)}
CHART_IDS = [
    "chart-throughput",
    "chart-latency",
    "chart-latency-regions",
    "chart-errors",
    "chart-status",
    "chart-vus",
]


def latency(median: float) -> dict[str, float]:
    return {
        "min": round(median * 0.3, 1),
        "avg": round(median * 1.3, 1),
        "med": median,
        "p90": round(median * 2.4, 1),
        "p95": round(median * 3.1, 1),
        "p99": round(median * 6.2, 1),
        "max": round(median * 14.0, 1),
    }


def totals(requests: int, failures: int, seconds: float, median: float, per_task: bool = True) -> dict:
    result = {
        "requests": requests,
        "failures": failures,
        "error_rate": round(failures / requests, 4) if requests else None,
        "rps": round(requests / seconds, 2) if seconds else None,
        "latency": latency(median) if requests else dict.fromkeys(("min", "avg", "med", "p90", "p95", "p99", "max")),
    }
    if per_task:
        result.update(iterations=requests // 2, data_received=requests * 2150, data_sent=requests * 310)
    return result


def timeseries(intervals: int) -> dict[str, list[dict]]:
    """Ramp up over two intervals, then steady load; overall is the sum of the regions."""
    series: dict[str, list[dict]] = {}
    for region, (rps, error_rate, median) in LOAD.items():
        points = []
        for index in range(intervals):
            ramp = min(1.0, (index + 1) / 2)
            requests = int(rps * ramp * INTERVAL_MS / 1000)
            points.append({
                "t_ms": START_MS + index * INTERVAL_MS,
                "requests": requests,
                "rps": requests / (INTERVAL_MS / 1000),
                "error_rate": round(error_rate * (1 + 0.3 * (index % 3)), 4),
                **{key: value for key, value in latency(median + index).items() if key in ("p90", "p95", "p99")},
                "p50": median + index,
                "vus": int(PLAN[region]["vus"] * ramp),
            })
        series[region] = points
    series["overall"] = [
        {
            "t_ms": START_MS + index * INTERVAL_MS,
            "requests": sum(series[region][index]["requests"] for region in LOAD),
            "rps": sum(series[region][index]["rps"] for region in LOAD),
            "error_rate": 0.012 + 0.002 * index,
            "p50": 30.0 + index,
            "p90": 160.0 + index,
            "p95": 250.0 + 2 * index,
            "p99": 900.0 + 5 * index,
            "vus": sum(series[region][index]["vus"] for region in LOAD),
        }
        for index in range(intervals)
    ]
    return series


def full_summary() -> dict:
    seconds = 30.0
    regions = {
        region: totals(int(rps * seconds), int(rps * seconds * error_rate), seconds, median)
        for region, (rps, error_rate, median) in LOAD.items()
    }
    overall = totals(sum(r["requests"] for r in regions.values()), sum(r["failures"] for r in regions.values()),
                     seconds, 30.0)
    status_classes = {
        region: {"2xx": r["requests"] - r["failures"], "4xx": r["failures"] // 2, "5xx": r["failures"] - r["failures"] // 2}
        for region, r in regions.items()
    }
    status_classes["eu-west-1"]["error"] = 3
    status_classes["overall"] = {
        name: sum(classes.get(name, 0) for classes in status_classes.values()) for name in ("2xx", "4xx", "5xx", "error")
    }
    return {
        "schema": 1,
        "run_id": "nightly-42",
        "deployment": "constellation",
        "results_store": "s3",
        "complete": True,
        "progress": {"planned_tasks": 4, "registered_tasks": 4, "completed_tasks": 4},
        "start_at_ms": START_MS,
        "start_at": "2025-11-28T08:53:20Z",
        "start_skew_ms": 4.0,
        "data_from_ms": START_MS,
        "data_to_ms": START_MS + 30000,
        "measured_seconds": seconds,
        "interval_ms": INTERVAL_MS,
        "plan": PLAN,
        "overall": overall,
        "regions": regions,
        "requests": [
            {"request": "GET /api/items", "method": "GET", **totals(2100, 21, seconds, 25.0, per_task=False)},
            {"request": HOSTILE, "method": "POST", **totals(600, 24, seconds, 60.0, per_task=False)},
        ],
        "status_classes": status_classes,
        "timeseries": timeseries(6),
        "thresholds": [
            {
                "metric": "http_req_duration", "tags": {"region": "us-east-2"},
                "name": "http_req_duration{region:us-east-2}", "expression": "p(95)<500", "source": "script",
                "aggregation": "p(95)", "operator": "<", "limit": 500.0, "value": 37.2, "ok": True,
                "evaluated_on": "merged", "abort_on_fail": False,
            },
            {
                "metric": "http_req_failed", "tags": {"name": HOSTILE}, "name": f"http_req_failed{{name:{HOSTILE}}}",
                "expression": "rate<0.01", "source": "constellation_thresholds", "aggregation": "rate",
                "operator": "<", "limit": 0.01, "value": 0.04, "ok": False, "evaluated_on": "merged",
                "abort_on_fail": True,
            },
            {
                "metric": "checks", "tags": {}, "name": "checks", "expression": "rate>0.99", "source": "script",
                "aggregation": "rate", "operator": ">", "limit": 0.99, "value": None, "ok": True,
                "evaluated_on": "tasks", "abort_on_fail": False,
            },
        ],
        "task_thresholds": {
            "us-east-2": {"0": {"checks": {"rate>0.99": True}}, "1": {"checks": {"rate>0.99": True}}},
            "eu-west-1": {"0": {"checks": {"rate>0.99": True}}},
            "ap-southeast-1": {"0": {"checks": {"rate>0.99": True}}},
        },
        "exit_codes": {"us-east-2": {"0": 0, "1": 0}, "eu-west-1": {"0": 99}, "ap-southeast-1": {"0": 0}},
        "baseline": {
            "run_id": "nightly-41",
            "deltas": {
                "overall": {
                    "rps": {"baseline": 118.0, "current": 120.0, "delta": 2.0, "relative": 0.0169},
                    "p95": {"baseline": 240.0, "current": 252.0, "delta": 12.0, "relative": 0.05},
                    "error_rate": {"baseline": 0.011, "current": 0.0131, "delta": 0.0021, "relative": 0.19},
                },
                "us-east-2": {
                    "rps": {"baseline": 61.0, "current": 60.0, "delta": -1.0, "relative": -0.0164},
                    "p95": {"baseline": 40.0, "current": 37.2, "delta": -2.8, "relative": -0.07},
                    "error_rate": {"baseline": 0.004, "current": 0.004, "delta": 0.0, "relative": 0.0},
                },
            },
        },
        "verdict": "fail",
    }


def partial_summary() -> dict:
    """Two tasks still running: fewer intervals, no exit code for the running tasks."""
    summary = full_summary()
    summary.update(
        complete=False,
        progress={"planned_tasks": 4, "registered_tasks": 3, "completed_tasks": 1},
        timeseries=timeseries(3),
        measured_seconds=15.0,
        data_to_ms=START_MS + 15000,
        baseline=None,
        verdict="partial",
    )
    summary["exit_codes"] = {"us-east-2": {"0": 0}}
    summary["task_thresholds"] = {"us-east-2": {"0": {"checks": {"rate>0.99": True}}}}
    return summary


def empty_summary() -> dict:
    """Tasks registered, no record written yet."""
    return {
        "schema": 1,
        "run_id": "nightly-43",
        "deployment": "constellation",
        "results_store": "timestream",
        "complete": False,
        "progress": {"planned_tasks": 4, "registered_tasks": 2, "completed_tasks": 0},
        "start_at_ms": START_MS,
        "start_at": "2025-11-28T08:53:20Z",
        "start_skew_ms": None,
        "data_from_ms": None,
        "data_to_ms": None,
        "measured_seconds": None,
        "interval_ms": INTERVAL_MS,
        "plan": PLAN,
        "overall": totals(0, 0, 0, 0),
        "regions": {region: totals(0, 0, 0, 0) for region in PLAN},
        "requests": [],
        "status_classes": {"overall": {}},
        "timeseries": {"overall": []},
        "thresholds": [
            {
                "metric": "http_req_duration", "tags": {}, "name": "http_req_duration", "expression": "p(95)<500",
                "source": "script", "aggregation": "p(95)", "operator": "<", "limit": 500.0, "value": None,
                "ok": None, "evaluated_on": "merged", "abort_on_fail": False,
            }
        ],
        "task_thresholds": {},
        "exit_codes": {},
        "baseline": None,
        "verdict": "partial",
    }


@pytest.fixture(scope="module")
def full_page() -> str:
    """The full summary's page, rendered once (the plotly.js bundle makes it about 5 MB)."""
    return render(full_summary())


def without_plotly_js(page: str) -> str:
    return page.replace(get_plotlyjs(), "")


def open_page(browser: Browser, directory: Path, name: str, page: str, screenshot: Path) -> PageReport:
    path = directory / f"{name}.html"
    path.write_text(page, encoding="utf-8")
    return browser.inspect(path, screenshot)


# ---- (a) The page as a file.


def test_page_loads_nothing_from_the_network(full_page):
    page = full_page
    assert page.count(get_plotlyjs()) == 1
    rest = without_plotly_js(page)
    assert not re.search(r"""\b(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", rest, re.IGNORECASE)
    assert not re.search(r"@import|url\(\s*['\"]?(?:https?:)?//", rest, re.IGNORECASE)
    assert not re.search(r"<script[^>]*\bsrc=", rest, re.IGNORECASE)
    assert "<link" not in rest.replace('<link rel="icon" href="data:,">', "")


def test_same_summary_gives_the_same_bytes_and_fixed_chart_ids(full_page):
    first = full_page
    assert render(full_summary()) == first
    assert re.findall(r'<div id="(chart-[a-z-]+)" class="plotly-graph-div"', first) == CHART_IDS
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", without_plotly_js(first))


def test_same_bytes_whatever_the_hash_seed(full_page):
    """A second run of visualize is another process: set and dict order must not depend on str hashes."""
    code = (
        "import hashlib, sys; sys.path[:0] = sys.argv[1:]; import test_report_html as t; "
        "print(hashlib.sha256(t.render(t.full_summary()).encode()).hexdigest())"
    )
    paths = [str(Path(__file__).parent), str(Path(__file__).resolve().parents[4]), str(MODULE_UTILS)]
    other = subprocess.run(
        [sys.executable, "-c", code, *paths],
        env={**os.environ, "PYTHONHASHSEED": "1" if os.environ.get("PYTHONHASHSEED") != "1" else "2"},
        capture_output=True, text=True, check=True, timeout=120,
    )
    assert other.stdout.strip() == hashlib.sha256(full_page.encode()).hexdigest()


def test_figures_carry_no_plotly_template(full_page):
    rest = without_plotly_js(full_page)
    assert "colorscale" not in rest
    assert len(rest) < 150_000


def test_strings_from_the_data_are_escaped(full_page):
    page = without_plotly_js(full_page)
    assert HOSTILE not in page
    assert "<img" not in page
    assert html.escape(HOSTILE) in page
    # Every <script> closes exactly where the page means it to: no data string ends one early.
    assert page.count("<script") == page.count("</script>")
    for script in re.findall(r"<script[^>]*>(.*?)</script>", page, re.DOTALL):
        assert "<" not in script, script[:200]


def test_region_names_in_charts_are_escaped():
    summary = full_summary()
    summary["timeseries"]["<b>odd</b>"] = summary["timeseries"].pop("ap-southeast-1")
    page = without_plotly_js(render(summary))
    assert "<b>odd" not in page
    # plotly.js reads a few tags in trace names: the name reaches it as text, its < as an entity.
    assert '"name":"&lt;b&gt;odd&lt;\\u002fb&gt;"' in page


def test_render_says_what_is_missing_without_plotly(monkeypatch):
    monkeypatch.setattr(report_html, "HAS_PLOTLY", False)
    monkeypatch.setattr(report_html, "PLOTLY_IMPORT_ERROR", "ModuleNotFoundError: No module named 'plotly'")
    with pytest.raises(ImportError, match="plotly"):
        render(full_summary())


def test_page_contents(full_page):
    page = full_page
    for text in (
        "nightly-42",
        '<span class="badge fail">FAIL</span>',
        "Thresholds",
        "p(95)&lt;500",
        "abortOnFail",
        "4.00 %",  # the failing threshold's measured rate
        "Regions side by side",
        "ap-southeast-1",
        "Compared with run <code>nightly-41</code>",
        '<span class="better">+2.0</span>',
        '<span class="worse">+12.0 ms</span>',
        '<span class="worse">+0.21 pp</span>',
        "99 threshold crossed",
        "GET /api/items",
        "Start skew",
    ):
        assert text in page, text
    assert "PARTIAL DATA" not in page


# ---- (b), (c) The pages in Chromium.


def test_pages_in_chromium(tmp_path, full_page):
    """One browser for every page (it is the slow part): no console message, every chart drawn."""
    full, partial, empty = full_page, render(partial_summary()), render(empty_summary())
    with Browser() as browser:
        report = open_page(browser, tmp_path, "full", full, OUTPUT / "report-unit.png")
        assert report.console == []
        assert [chart["id"] for chart in report.charts] == CHART_IDS
        assert report.drawn_chart_count == len(CHART_IDS), report.charts
        assert browser.driver.find_elements(By.TAG_NAME, "img") == []
        assert report.screenshot.read_bytes().startswith(b"\x89PNG")
        assert report.screenshot.stat().st_size > 50_000

        report = open_page(browser, tmp_path, "partial", partial, OUTPUT / "report-unit-partial.png")
        assert report.console == []
        assert report.drawn_chart_count == len(CHART_IDS), report.charts
        banner = browser.driver.find_element(By.CSS_SELECTOR, ".banner.partial")
        assert banner.is_displayed()
        assert "3 of 4 planned tasks registered, 1 completed" in banner.text
        tasks = browser.driver.find_element(By.ID, "tasks").text
        assert "eu-west-1 0 no result yet" in tasks, tasks

        report = open_page(browser, tmp_path, "empty", empty, OUTPUT / "report-unit-empty.png")
        assert report.console == []
        assert report.chart_count == 0
        assert browser.driver.find_element(By.CSS_SELECTOR, ".banner.partial").is_displayed()


def test_partial_and_empty_pages_say_what_is_missing():
    partial = render(partial_summary())
    assert '<span class="badge partial">PARTIAL</span>' in partial
    assert "PARTIAL DATA" in partial
    empty = render(empty_summary())
    assert "PARTIAL DATA" in empty
    assert "2 of 4 planned tasks registered, 0 completed" in empty
    assert "No records yet" in empty
    assert "No request records yet" in empty
    assert empty.count("no result yet") == 4  # every planned task
    assert get_plotlyjs() not in empty


# ---- (d) The text table.


def test_summary_table_lists_overall_regions_and_thresholds():
    table = summary_table(full_summary())
    lines = table.splitlines()
    assert all(len(line) <= 78 for line in lines), table
    assert lines[0].startswith("Run nightly-42: FAIL - 30.0 s measured")
    assert re.match(r"all regions\s+3,600\s+120\.0\s+1\.69%\s+30\.0\s+93\.0\s+186\.0$", lines[2]), lines[2]
    for region in PLAN:
        assert any(line.startswith(region) for line in lines), region
    assert "  pass  http_req_duration{region:us-east-2} p(95)<500 = 37.2 ms [merged]" in lines
    assert any(line.startswith("  FAIL  http_req_failed{name:") and line.endswith("= 4.00 % [merged]") for line in lines)
    assert "  pass  checks rate>0.99 [k6 verdicts per task]" in lines
    assert "PARTIAL" not in table


def test_summary_table_of_a_run_without_records():
    table = summary_table(empty_summary())
    assert table.startswith("Run nightly-43: PARTIAL - nothing measured, results store timestream\n")
    assert "PARTIAL: not finished (2 of 4 planned tasks registered, 0 completed)" in table
    assert re.search(r"^all regions\s+0\s+-\s+-\s+-\s+-\s+-$", table, re.MULTILINE), table
    assert "  n/a   http_req_duration p(95)<500 = - [merged]" in table


def test_a_stopped_or_aborted_run_says_so_on_the_page_and_in_the_table():
    stop = {"reason": "aborted", "detail": "http_req_failed rate<0.01 breached", "at": 1, "at_iso8601": "2026-12-05T12:01:40.000Z"}
    summary = dict(full_summary(), stop=stop)

    page, table = render(summary), summary_table(summary)

    assert "ABORTED at 2026-12-05T12:01:40.000Z: http_req_failed rate&lt;0.01 breached" in page
    assert "ABORTED at 2026-12-05T12:01:40.000Z: http_req_failed rate<0.01 breached" in table.splitlines()[1]
    assert "STOPPED at" in summary_table(dict(full_summary(), stop=dict(stop, reason="stopped", detail="")))
    assert "STOPPED" not in render(full_summary()) and "ABORTED" not in render(full_summary())


def test_requests_summed_into_other_come_with_the_hint_to_name_them():
    summary = full_summary()
    other = dict(summary["requests"][0], request="(other)")
    page = render(dict(summary, requests=[*summary["requests"], other]))
    assert "(other): the requests of every name past a task&#x27;s first 1,000" in page
    assert "tags: { name: &#x27;user&#x27; }" in page
    assert "(other): the requests" not in render(summary)


def test_missing_results_are_named_on_the_page_in_the_tasks_table_and_in_the_text_table():
    line = "us-east-2 task 1: 326 of the 386 requests k6 counted are not in the results store"
    accounting = {
        "k6_requests": 2_097, "stored_requests": 1_771, "store_retries": 0, "incomplete": [line],
        "tasks": {"us-east-2": {"1": {"k6_requests": 386, "stored_requests": 60, "missing": [line.split(": ", 1)[1]]}}},
    }
    summary = dict(full_summary(), verdict="incomplete", accounting=accounting)

    page, table = render(summary), summary_table(summary)

    assert "INCOMPLETE RESULTS" in page and html.escape(line) in page
    assert "k6 counted 2,097 requests, the store holds 1,771: 326 missing" in page
    assert '<td class="num">386</td><td class="num">60</td><td><span class="badge fail">MISSING</span> 326 of' in page
    assert "INCOMPLETE: k6 counted 2,097 requests, the store holds 1,771: 326 missing" in table
    assert "  us-east-2 task 1: 326 of the 386" in table
    complete = dict(full_summary(), accounting=dict(accounting, incomplete=[], stored_requests=2_097, tasks={}))
    assert "INCOMPLETE RESULTS" not in render(complete)
    assert "accounting: k6 counted 2,097 requests, the store holds 2,097: all" in summary_table(complete)


def test_pushes_prometheus_missed_are_a_notice_on_the_page_and_a_line_in_the_table():
    live = {"sent": 92, "lost": 12, "gaps": ["us-east-2 task 1: 12 of 52 pushes not taken"]}
    accounting = {"k6_requests": 2_097, "stored_requests": 2_097, "store_retries": 0, "incomplete": [], "tasks": {}}
    summary = dict(full_summary(), accounting=dict(accounting, live_metrics=live))
    page, table = render(summary), summary_table(summary)
    assert "LIVE METRICS GAPS" in page and "Prometheus took 92 of the 104 pushes forwarded to it live" in page
    assert "us-east-2 task 1: 12 of 52 pushes not taken" in page
    assert "live metrics: Prometheus took 92 of the 104 pushes" in table
    assert "LIVE METRICS GAPS" not in render(dict(summary, accounting=dict(accounting, live_metrics=dict(live, lost=0, gaps=[]))))


def test_the_header_links_to_the_runs_grafana_dashboard_when_grafana_is_known():
    summary = full_summary()
    summary["dashboard_url"] = "https://grafana.example.com/d/constellation-loadtest/x?var-run_id=r&from=1"
    page = render(summary)
    assert '<a href="https://grafana.example.com/d/constellation-loadtest/x?var-run_id=r&amp;from=1" rel="noopener">live metrics in Grafana</a>' in page
    assert "live metrics in Grafana" not in render(full_summary())


def test_the_vus_chart_draws_each_regions_planned_shape_dashed():
    summary = full_summary()
    region = next(iter(summary["plan"]))
    summary["plan"][region] = dict(summary["plan"][region], planned_vus=[[0, 0], [10_000, 8], [30_000, 8], [40_000, 0]])
    page = render(summary)
    assert f'"name":"{region} planned"' in page and '"dash":"dash"' in page
    assert "planned\"" not in render(full_summary()).split("chart-vus")[1].split("</script>")[0]
