"""Live metrics on the path users run: the tasks' aggregators forward k6's pushes to a real Prometheus.

The emulated production path (tasks as containers from our images, the deployed orchestrator)
with ``constellation_prometheus_remote_write_url`` set to Debian's Prometheus 2.42 on loopback,
started here with the remote-write receiver and native histograms. During the run PromQL shows
each region's request rate; after it, the totals in Prometheus equal the results store's, every
query of the shipped Grafana dashboard returns data, and the report links to that dashboard. An
endpoint that is down loses nothing in the store, and the pushes it missed are reported.
"""

from __future__ import annotations

import json
import re
import time
import urllib.parse

import pytest
from conftest import PRODUCTION, REPO
from prometheus import prometheus_server, query, values
from targets import api_like_target
from test_production_path import HOME, playbook, playbook_state, script, settings, task_index, wait_for_load

pytestmark = PRODUCTION

DASHBOARD = REPO / "files" / "grafana" / "constellation-loadtest.json"
LIVE_SCRIPT = """
import http from 'k6/http';
import { sleep } from 'k6';
export const options = { thresholds: { http_req_duration: ['p(95)<800'], http_req_failed: ['rate<0.5'] } };
export default function () {
  http.get(`${__ENV.TARGET}/api/users`, { tags: { name: 'list-users' } });
  if (__ITER % 4 === 0) { http.get(`${__ENV.TARGET}/api/fail`, { tags: { name: 'checkout' } }); }
  sleep(0.05);
}
"""


def wait_until_ended(production, deployment: str, run_id: str, timeout: float = 180) -> dict:
    """The run's state once every planned task reported its end."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = playbook_state(production, deployment, run_id)
        if set(state["completed_regions"]) == set(state["regions"]):
            return state
        time.sleep(2)
    pytest.fail(f"run {run_id} did not end within {timeout} s")


def dashboard_expressions(substitutions: dict[str, str]) -> list[tuple[str, str]]:
    """Every PromQL expression of the dashboard (panel targets, and its query variables as the PromQL they stand for),
    with Grafana's variables replaced; (where, expression)."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            found.append((f"{panel['title']} {target['refId']}", target["expr"]))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            metric, label = re.fullmatch(r"label_values\((.+), (\w+)\)", variable["definition"]).groups()
            found.append((f"variable {variable['name']}", f"count by ({label}) ({metric})"))
    names = sorted(substitutions, key=len, reverse=True)  # $run_id before a shorter name it starts with
    return [(where, _substitute(expression, substitutions, names)) for where, expression in found]


def _substitute(expression: str, substitutions: dict[str, str], names: list[str]) -> str:
    for name in names:
        expression = expression.replace(f"${name}", substitutions[name])
    assert "$" not in expression, f"a variable is left in {expression}"
    return expression


def test_each_region_s_rate_is_live_in_prometheus_and_its_totals_equal_the_store_s(production, tmp_path):
    deployment, run_id = "prodlive", "prod-live-1"
    remote = {"us-east-2": 2, "ca-central-1": 1}
    with prometheus_server() as prometheus, api_like_target(median_ms=1.0) as target:
        variables = settings(
            production, tmp_path, deployment, run_id, remote, 20,
            script=script(tmp_path, LIVE_SCRIPT),
            constellation_max_vus_per_task=1,
            constellation_script_env={"TARGET": target},
            constellation_wait=False,
            constellation_prometheus_remote_write_url=f"{prometheus}/api/v1/write",
        )
        assert playbook("init", variables).rc == 0
        launched = playbook("run_test", variables)
        assert launched.rc == 0, launched.output[-6000:]

        # During the run: each region's request rate, from the pushes forwarded a second ago.
        wait_for_load(production, deployment, run_id, seconds=10)
        during = values(prometheus, f'sum by (region) (rate(k6_http_reqs_total{{run_id="{run_id}"}}[5s]))', "region")
        tasks_live = values(prometheus, f'count by (task) (k6_vus{{run_id="{run_id}", region="us-east-2"}})', "task")
        state = wait_until_ended(production, deployment, run_id)

        report_dir = tmp_path / "report"
        report = playbook("visualize", variables | {
            "constellation_report_dir": str(report_dir), "constellation_grafana_url": "https://grafana.example.com/",
        })
        assert report.rc == 0, report.output[-4000:]
        summary = json.loads((report_dir / "summary.json").read_text())

        # After it: k6's own totals in Prometheus, per region, against the results store's.
        ended_s = max(counts["ended_at"] for tasks in state["accounting"].values() for counts in tasks.values()) / 1000
        totals = values(prometheus, f'sum by (region) (max_over_time(k6_http_reqs_total{{run_id="{run_id}"}}[10m]))', "region", ended_s + 5)

        # Every query of the dashboard, at the middle of the load, over the run.
        mid_s = state["start_at"] / 1000 + 12
        substitutions = {
            "run_id": run_id, "region": ".*", "__rate_interval": "10s", "__range": "30s",
            "p95_threshold_ms": "800", "error_rate_threshold": "0.5", "datasource": "prometheus",
        }
        answers = {where: query(prometheus, expression, mid_s) for where, expression in dashboard_expressions(substitutions)}

    print(f"live: request rate per region 10 s into the load {during}; prometheus totals {totals};"
          f" store {({r: summary['regions'][r]['requests'] for r in remote})}; live metrics {summary['accounting']['live_metrics']}")
    assert set(during) == set(remote) and all(rate > 0 for rate in during.values()), during
    assert set(tasks_live) == {"0", "1"}, "each task of a region is its own series"
    assert summary["verdict"] == "pass" and summary["accounting"]["incomplete"] == []
    stored = {region: summary["regions"][region]["requests"] for region in remote}
    assert totals == {region: float(count) for region, count in stored.items()}, (totals, stored)
    assert summary["accounting"]["live_metrics"]["lost"] == 0 and summary["accounting"]["live_metrics"]["sent"] >= 3 * 15
    for where, answer in answers.items():
        assert answer, f"the dashboard's {where} returned no data"
    p95 = next(answer for where, answer in answers.items() if where.startswith("p95 latency per region A"))
    assert {sample["metric"]["region"] for sample in p95} == set(remote) and all(0 < float(s["value"][1]) < 0.8 for s in p95)

    # The report links to the dashboard for this run, its time and its thresholds.
    page = (report_dir / "index.html").read_text()
    link = re.search(r'href="(https://grafana\.example\.com/d/constellation-loadtest/[^"]+)"', page)
    assert link, "no Grafana link in the report"
    parameters = urllib.parse.parse_qs(urllib.parse.urlsplit(link.group(1).replace("&amp;", "&")).query)
    assert parameters["var-run_id"] == [run_id]
    assert (parameters["var-p95_threshold_ms"], parameters["var-error_rate_threshold"]) == (["800"], ["0.5"])
    assert int(parameters["from"][0]) < state["start_at"] < ended_s * 1000 < int(parameters["to"][0])

    assert playbook("teardown_all", variables).rc == 0
    production.assert_empty([HOME, *remote])


def test_a_prometheus_that_is_down_loses_nothing_in_the_store_and_the_pushes_it_missed_are_reported(production, tmp_path):
    deployment, run_id = "proddown", "prod-down-1"
    with prometheus_server() as prometheus:
        down = f"{prometheus}/api/v1/write"  # stopped at the end of this block: nothing listens there during the run
    with api_like_target(median_ms=1.0) as target:
        variables = settings(
            production, tmp_path, deployment, run_id, {"us-east-2": 1}, 10,
            script=script(tmp_path, LIVE_SCRIPT),
            constellation_script_env={"TARGET": target},
            constellation_prometheus_remote_write_url=down,
        )
        assert playbook("init", variables).rc == 0
        result = playbook("run_test", variables)
        assert result.rc == 0, result.output[-6000:]
        report_dir = tmp_path / "report"
        report = playbook("visualize", variables | {"constellation_report_dir": str(report_dir)})
    assert report.rc == 0, report.output[-4000:]
    summary = json.loads((report_dir / "summary.json").read_text())
    accounting = summary["accounting"]
    task = accounting["tasks"]["us-east-2"]["0"]
    print(f"prometheus down: k6 {task['k6_requests']}, store {task['stored_requests']}, live metrics {accounting['live_metrics']}")
    assert summary["verdict"] == "pass" and accounting["incomplete"] == []
    assert task["k6_requests"] == task["stored_requests"] == summary["overall"]["requests"] > 0
    assert accounting["live_metrics"]["sent"] == 0 and accounting["live_metrics"]["lost"] >= 10
    assert accounting["live_metrics"]["gaps"] == [f"us-east-2 task 0: {task['live_metrics_lost']} of {task['live_metrics_lost']} pushes not taken"]
    assert "LIVE METRICS GAPS" in (report_dir / "index.html").read_text()
    assert "live metrics: Prometheus took 0 of the" in report.stdout
    (task_arn,) = [t["taskArn"] for t in sorted(production.run_tasks("us-east-2", deployment, run_id), key=task_index)]
    events = [json.loads(line) for line in production.task_logs("us-east-2", task_arn, "aggregator") if line.startswith("{")]
    assert any(event["event"] == "prometheus_unavailable" for event in events)
    assert playbook("teardown_all", variables).rc == 0
