"""History across runs: which runs, their rows from real summaries, history.json, the page and the text table."""

from __future__ import annotations

import json
import random
import re

import pytest
from plotly.offline import get_plotlyjs

from ansible_collections.constellation.loadtest.plugins.module_utils.results import report_history
from ansible_collections.constellation.loadtest.plugins.module_utils.results.histogram import Histogram
from ansible_collections.constellation.loadtest.plugins.module_utils.results.records import RequestRecord
from ansible_collections.constellation.loadtest.plugins.module_utils.results.records import TaskRecord
from ansible_collections.constellation.loadtest.plugins.module_utils.results.report_data import build_summary
from ansible_collections.constellation.loadtest.plugins.module_utils.results.report_history import HistoryError
from ansible_collections.constellation.loadtest.plugins.module_utils.results.report_history import build_history
from ansible_collections.constellation.loadtest.plugins.module_utils.results.report_history import history_row
from ansible_collections.constellation.loadtest.plugins.module_utils.results.report_history import history_table
from ansible_collections.constellation.loadtest.plugins.module_utils.results.report_history import last_runs
from ansible_collections.constellation.loadtest.plugins.module_utils.results.report_history import render
from ansible_collections.constellation.loadtest.plugins.module_utils.run.orchestrator_state import iso8601_utc
from ansible_collections.constellation.loadtest.plugins.module_utils.results.thresholds import parse_all

T0 = 1764320000000
INTERVAL = 5000
PLAN = {"us-east-2": {"vus": 4, "tasks": 1}, "eu-west-1": {"vus": 2, "tasks": 1}}
CHART_IDS = ["chart-latency", "chart-p95-regions", "chart-p99-regions", "chart-throughput", "chart-errors"]


def state(run_id: str, start_at: int | None, ended: bool = True, active: bool = False, created_at: int | None = None) -> dict:
    """A run as orchestrator_state.describe_run returns it (the fields history and summary read)."""
    regions = {region: entry["tasks"] for region, entry in PLAN.items()}
    created_at = (start_at or T0) - 30_000 if created_at is None else created_at
    return {
        "run_id": run_id,
        "regions": regions,
        "start_at": start_at,
        "start_at_iso8601": iso8601_utc(start_at),
        "completed_tasks": {region: ["0"] if ended else [] for region in regions},
        "exit_codes": {region: {"0": 0} if ended else {} for region in regions},
        "created_at": created_at,
        "created_at_iso8601": iso8601_utc(created_at),
        "active": active,
        "stop": None,
    }


def records(run_id: str, start_at: int, scale: float, failures: int = 0, seed: int = 1) -> tuple[list, dict]:
    """Two intervals of records in each region (eu-west-1 three times slower), and each region's raw latencies."""
    rng = random.Random(seed)
    made, samples = [], {}
    for region, slower in (("us-east-2", 1.0), ("eu-west-1", 3.0)):
        for step in range(2):
            start = start_at + step * INTERVAL
            values = [rng.uniform(0.5, 1.5) * scale * slower for _sample in range(50)]
            histogram = Histogram()
            for value in values:
                histogram.record(value)
            samples.setdefault(region, []).extend(values)
            made.append(RequestRecord(run_id, region, "0", "GET /", "GET", "2xx", start, INTERVAL, 50, 0, histogram))
            if failures:
                errors = Histogram()
                errors.record(scale)
                made.append(RequestRecord(run_id, region, "0", "GET /", "GET", "5xx", start, INTERVAL, failures, failures, errors))
            made.append(TaskRecord(run_id, region, "0", start, INTERVAL, 50, 1000, 100, 2))
    return made, samples


def summary(run: dict, made: list, thresholds=()) -> dict:
    return build_summary(
        made, run=run, plan=PLAN, run_id=run["run_id"], deployment="nightly", results_store="s3", thresholds=thresholds
    )


def finished(run_id: str, start_at: int, scale: float, **kwargs) -> tuple[dict, dict]:
    """A finished run's row and its summary."""
    run = state(run_id, start_at)
    made, _samples = records(run_id, start_at, scale)
    built = summary(run, made, **kwargs)
    return history_row(run, built), built


def five_runs() -> list[dict]:
    """Rows of five finished runs, each slower than the one before; run ids not in start order."""
    ids = ["e", "c", "a", "d", "b"]
    return [finished(f"night-{run_id}", T0 + index * 86_400_000, 0.010 * (index + 1))[0] for index, run_id in enumerate(ids)]


# ---- Which runs.


def test_last_runs_are_the_latest_by_start_oldest_first_not_by_run_id():
    runs = [state("zz-oldest", T0), state("aa-newest", T0 + 3000), state("mm-middle", T0 + 2000)]
    # Not started yet: placed by its creation, which is after every start above.
    runs.append(state("waiting", None, ended=False, active=True, created_at=T0 + 2500))

    assert [run["run_id"] for run in last_runs(runs, 10)] == ["zz-oldest", "mm-middle", "waiting", "aa-newest"]
    assert [run["run_id"] for run in last_runs(runs, 2)] == ["waiting", "aa-newest"]
    assert [run["run_id"] for run in last_runs(runs, 1)] == ["aa-newest"]


@pytest.mark.parametrize("count", [0, -3, "5", 2.0, True, None])
def test_last_runs_refuses_a_count_that_is_not_a_whole_number_of_one_or_more(count):
    with pytest.raises(HistoryError, match=re.escape(repr(count))):
        last_runs([state("a", T0)], count)


# ---- Rows.


def test_a_row_has_the_figures_of_its_summary_overall_and_per_region():
    run = state("night-1", T0)
    made, samples = records("night-1", T0, 0.020, failures=5)
    built = summary(run, made)
    row = history_row(run, built)

    assert row["run_id"] == "night-1" and row["verdict"] == "pass" and row["complete"] is True
    assert row["start_at"] == iso8601_utc(T0) and row["start_at_ms"] == T0
    assert row["overall"]["requests"] == 2 * 2 * 55 == built["overall"]["requests"]
    assert row["overall"]["failures"] == 20
    assert row["overall"]["error_rate"] == built["overall"]["error_rate"] == pytest.approx(20 / 220, abs=1e-4)
    assert row["overall"]["rps"] == built["overall"]["rps"]
    assert set(row["regions"]) == {"us-east-2", "eu-west-1"}
    for region, raw in samples.items():
        figures = row["regions"][region]
        totals = built["regions"][region]
        assert figures["requests"] == 110
        assert (figures["p50"], figures["p95"], figures["p99"]) == (
            totals["latency"]["med"], totals["latency"]["p95"], totals["latency"]["p99"],
        )
        # Within a bucket of the exact percentile of the raw latencies (the error 5xx records are 20 ms).
        exact = sorted([*raw, *[0.020] * 10])[int(0.95 * 110)] * 1000
        assert figures["p95"] == pytest.approx(exact, rel=0.1)
    assert row["regions"]["eu-west-1"]["p95"] > 2 * row["regions"]["us-east-2"]["p95"]


def test_the_verdict_is_the_summarys_thresholds_included():
    row, built = finished("night-2", T0, 0.050, thresholds=parse_all({"http_req_duration": ["p(95)<10"]}, "constellation_thresholds"))
    assert built["verdict"] == "fail" and row["verdict"] == "fail"
    assert row["overall"]["p95"] > 10


def test_a_run_still_going_is_running_and_one_no_longer_active_is_partial_both_without_figures():
    going = history_row(state("now", None, ended=False, active=True))
    abandoned = history_row(state("then", T0, ended=False, active=False))

    assert going["verdict"] == "running" and going["overall"] is None and going["regions"] == {}
    assert going["start_at"] is None and going["complete"] is False
    assert abandoned["verdict"] == "partial" and abandoned["overall"] is None
    assert not report_history.has_ended(state("then", T0, ended=False))
    assert report_history.has_ended(state("done", T0))


def test_a_run_without_records_has_no_figures_not_zeros():
    run = state("empty", T0)
    row = history_row(run, summary(run, []))

    assert row["verdict"] == "pass" and row["complete"] is True
    assert row["overall"] is None and row["regions"] == {}


# ---- history.json.


def test_history_orders_rows_by_start_and_keeps_the_baseline():
    rows = five_runs()
    baseline, _summary = finished("night-0", T0 - 86_400_000, 0.005)
    history = build_history(list(reversed(rows)), runs_asked=5, deployment="nightly", results_store="s3", baseline=baseline)

    assert [row["run_id"] for row in history["runs"]] == ["night-e", "night-c", "night-a", "night-d", "night-b"]
    assert history["baseline"]["run_id"] == "night-0"
    assert history["runs_asked"] == 5 and history["schema"] == report_history.SCHEMA
    p95s = [row["overall"]["p95"] for row in history["runs"]]
    assert p95s == sorted(p95s) and history["baseline"]["overall"]["p95"] < p95s[0]
    json.dumps(history, allow_nan=False)  # history.json is plain JSON
    assert report_history.regions_of(history) == ["eu-west-1", "us-east-2"]


def test_a_baseline_without_figures_is_refused_naming_it():
    with pytest.raises(HistoryError, match="'now'.*running"):
        build_history(five_runs(), runs_asked=5, deployment=None, results_store="s3",
                      baseline=history_row(state("now", None, ended=False, active=True)))


# ---- The page and the table.


def test_page_is_offline_deterministic_and_draws_every_chart_with_the_baseline():
    rows = five_runs()
    rows.append(history_row(state("night-f", None, ended=False, active=True, created_at=T0 + 6 * 86_400_000)))
    baseline, _summary = finished("night-0", T0 - 86_400_000, 0.005)
    history = build_history(rows, runs_asked=10, deployment="nightly", results_store="s3", baseline=baseline)
    page = render(history)

    assert page == render(json.loads(json.dumps(history)))  # the same history, the same bytes
    assert page.count(get_plotlyjs()) == 1
    rest = page.replace(get_plotlyjs(), "")
    assert not re.search(r"<script[^>]*\bsrc=", rest) and "https://" not in rest.replace("https://plotly.com", "")
    assert re.findall(r'<div id="(chart-[a-z0-9-]+)" class="plotly-graph-div"', page) == CHART_IDS
    assert rest.count("baseline night-0") >= len(CHART_IDS)  # a dashed line on every chart
    assert '<span class="badge unknown">RUNNING</span>' in rest  # listed, without figures
    assert "Load test history of nightly: the last 6 runs" in rest


def test_page_without_any_figures_needs_no_plotly():
    history = build_history([history_row(state("now", None, ended=False, active=True))], runs_asked=10,
                            deployment=None, results_store="s3")
    page = render(history)
    assert get_plotlyjs() not in page and "No run with records yet" in page


def test_run_ids_in_the_page_are_escaped_in_html_and_in_chart_json():
    rows = five_runs()
    rows[0]["run_id"] = "<b>x</b>"
    page = render(build_history(rows, runs_asked=5, deployment="<i>d</i>", results_store="s3")).replace(get_plotlyjs(), "")
    assert "<b>x" not in page and "<i>d" not in page
    for script in re.findall(r"<script[^>]*>(.*?)</script>", page, re.DOTALL):
        assert "<" not in script


def test_text_table_fits_the_play_output_and_names_each_run():
    rows = five_runs()
    rows.append(history_row(state("night-f", None, ended=False, active=True, created_at=T0 + 6 * 86_400_000)))
    baseline, _summary = finished("night-0", T0 - 86_400_000, 0.005)
    lines = history_table(build_history(rows, runs_asked=10, deployment="n", results_store="s3", baseline=baseline)).splitlines()

    assert all(len(line) <= report_history.TEXT_WIDTH for line in lines), lines
    assert [line.split()[0] for line in lines[1:7]] == ["night-e", "night-c", "night-a", "night-d", "night-b", "night-f"]
    assert "RUNNING" in lines[6] and "not started" in lines[6]
    assert lines[-1].startswith("night-0") and "PASS" in lines[-1]
