"""visualize.yml on a real run: merged numbers, k6's own summary, thresholds as a CI gate.

One run (init -> run_test on the emulated production path, one task as containers of our images,
real k6 against a loopback target), then several reports of it. With a single task the merged
numbers must agree with k6's own end-of-test summary of that task, which the script prints.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from functools import reduce

import boto3
import pytest
from conftest import PRODUCTION, REPO, built_images, run_playbook
from targets import api_like_target

# The repository root is the collection; .build/collections makes its FQCN importable (see ansible.cfg).
sys.path.insert(0, str(REPO / ".build" / "collections"))

from ansible_collections.constellation.loadtest.plugins.module_utils.run import orchestrator_state  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.results.records import RequestRecord  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.results.records import to_json  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.results.report_data import read_records_s3  # noqa: E402

HOME = "eu-central-1"
DEPLOYMENT = "viz"
BUCKET = f"{DEPLOYMENT}-123456789012-{HOME}"
STATE_TABLE = f"{DEPLOYMENT}-orchestrator"
RUN_ID = "viz-run-1"
REGION = "us-east-2"
# No sleep: a few thousand requests, so that k6's exact percentiles and ours can be compared
# closely. handleSummary prints k6's own end-of-test summary to the task's log.
SUMMARY_MARK = "K6-END-OF-TEST-SUMMARY "
SCRIPT = """
import http from 'k6/http';
export const options = { thresholds: { http_req_duration: ['p(95)<5000'] } };
export default function () {
  http.get(`${__ENV.TARGET}/api/users`, { tags: { name: 'list-users' } });
}
export function handleSummary(data) {
  return { stdout: '\\n%s' + JSON.stringify(data) + '\\n' };
}
""" % SUMMARY_MARK
PLAYBOOK = REPO / "playbooks" / "visualize.yml"
pytestmark = PRODUCTION


def k6_summary(emulator) -> dict:
    """k6's own end-of-test summary, from the load generator's log (the task's only one)."""
    tasks = emulator.run_tasks(REGION, DEPLOYMENT, RUN_ID)
    assert len(tasks) == 1, tasks
    lines = emulator.task_logs(REGION, tasks[0]["taskArn"], "load-generator")
    return json.loads(next(line for line in lines if line.startswith(SUMMARY_MARK))[len(SUMMARY_MARK):])


@pytest.fixture(scope="module")
def finished_run(production_emulator, tmp_path_factory):
    """A finished one-task run; the tests of this module use it one after the other (one xdist group)."""
    workdir = tmp_path_factory.mktemp("visualize")
    script = workdir / "script.js"
    script.write_text(SCRIPT)
    production_emulator.reset()
    endpoint = production_emulator.url
    with api_like_target(median_ms=1.0, sigma=0.4) as target:
        variables = {
            "constellation_home_region": HOME,
            "constellation_remote_regions": {REGION: 3},
            "constellation_duration_seconds": 6,
            "constellation_aws_endpoint_url": endpoint,
            "constellation_deployment": DEPLOYMENT,
            "constellation_results_store": "s3",
            "constellation_bucket_tls_only": False,
            "constellation_build_dir": str(workdir / "build"),
            "constellation_run_id": RUN_ID,
            "constellation_start_lead_seconds": 3,
            "constellation_wait_poll_seconds": 2,
            "constellation_script_env": {"TARGET": target},
            "script": str(script),
            **built_images(),
        }
        assert run_playbook(REPO / "playbooks" / "init.yml", variables).rc == 0
        result = run_playbook(REPO / "playbooks" / "run_test.yml", variables)
        assert result.rc == 0, result.output
        yield {"variables": variables, "endpoint": endpoint, "k6_summary": k6_summary(production_emulator)}


def visualize(run, report_dir, *args, **extra):
    variables = {key: value for key, value in run["variables"].items() if key != "script"}
    return run_playbook(PLAYBOOK, {**variables, "constellation_report_dir": str(report_dir), **extra}, *args)


def stored_records(run, run_id=RUN_ID):
    return read_records_s3(boto3.client("s3", region_name=HOME, endpoint_url=run["endpoint"]), BUCKET, run_id)


def test_report_numbers_equal_a_recomputation_and_k6s_own_summary(finished_run, tmp_path):
    result = visualize(finished_run, tmp_path)

    assert result.rc == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["complete"] is True and summary["verdict"] == "pass"
    assert summary["executor"] == "fargate" and summary["duration_ms"] == 6000
    assert (tmp_path / "index.html").stat().st_size > 1_000_000  # plotly.js is inside
    assert "Run viz-run-1: PASS" in result.stdout

    # Independent recomputation from the stored records: histograms merged in reverse order.
    requests = [record for record in stored_records(finished_run) if isinstance(record, RequestRecord)]
    merged = reduce(lambda left, right: left.merge(right), [record.latency for record in reversed(requests)])
    assert summary["overall"]["requests"] == sum(record.requests for record in requests) > 1000
    for key, q in (("med", 0.5), ("p90", 0.9), ("p95", 0.95), ("p99", 0.99)):
        assert summary["overall"]["latency"][key] == round(merged.quantile(q) * 1000, 3), key

    # One task: the merged numbers are that task's, and k6 measured the same requests.
    k6 = finished_run["k6_summary"]["metrics"]
    assert summary["overall"]["requests"] == k6["http_reqs"]["values"]["count"]
    k6_duration = k6["http_req_duration"]["values"]
    # The average is the exact sum over the count. A quantile is interpolated inside its bucket, so
    # it may be off k6's exact one by up to half a bucket's width (4.5 % at schema 3); measured,
    # usually under 1 % (benchmarks/percentile_accuracy.py measures it properly).
    half_bucket = (2 ** (2.0 ** -merged.schema) - 1) / 2
    for ours, theirs, bound in (("avg", "avg", 0.01), ("med", "med", half_bucket), ("p90", "p(90)", half_bucket), ("p95", "p(95)", half_bucket)):
        relative = abs(summary["overall"]["latency"][ours] - k6_duration[theirs]) / k6_duration[theirs]
        assert relative <= bound, (ours, summary["overall"]["latency"][ours], k6_duration[theirs], bound)


def test_a_breached_threshold_fails_the_play_with_expression_value_and_limit(finished_run, tmp_path):
    result = visualize(
        finished_run,
        tmp_path,
        constellation_thresholds={"http_req_duration{region:us-east-2}": ["p(95)<0.001"], "http_reqs": ["count>10"]},
    )

    assert result.rc != 0
    output = " ".join(result.output.split())
    assert "http_req_duration{region:us-east-2} p(95)<0.001 breached: measured" in output
    assert "limit 0.001" in output
    summary = json.loads((tmp_path / "summary.json").read_text())  # written before failing
    verdicts = {(t["name"], t["expression"]): t["ok"] for t in summary["thresholds"]}
    assert verdicts == {
        ("http_req_duration{region:us-east-2}", "p(95)<0.001"): False,
        ("http_reqs", "count>10"): True,
        ("http_req_duration", "p(95)<5000"): True,  # the script's own
    }
    assert summary["verdict"] == "fail"


def test_a_second_report_changes_nothing_and_check_mode_writes_nothing(finished_run, tmp_path):
    first = visualize(finished_run, tmp_path / "report")
    second = visualize(finished_run, tmp_path / "report")
    checked = visualize(finished_run, tmp_path / "checked", "--check")

    assert first.rc == 0 and first.recap()["changed"] == 1, first.output
    assert second.rc == 0 and second.recap()["changed"] == 0, second.output
    assert checked.rc == 0 and checked.recap()["changed"] == 1, checked.output
    assert not (tmp_path / "checked").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"constellation_thresholds": {"http_req_duration": ["p95<500"]}}, "http_req_duration 'p95<500'"),
        ({"constellation_thresholds": {"http_req_duration{status:200}": ["p(95)<500"]}}, "status:200"),
        ({"constellation_run_id": "no-such-run"}, "run 'no-such-run' is not in the orchestrator table"),
        ({"baseline": "bad id!"}, "baseline_run_id 'bad id!' is not a run id"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(finished_run, tmp_path, extra, message):
    result = visualize(finished_run, tmp_path, **extra)

    assert result.rc != 0
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not tmp_path.joinpath("summary.json").exists()


def test_partial_data_is_marked_and_does_not_fail_yet(finished_run, tmp_path):
    records = stored_records(finished_run)
    first_interval = min(record.start_ms for record in records if isinstance(record, RequestRecord))
    s3 = boto3.client("s3", region_name=HOME, endpoint_url=finished_run["endpoint"])
    partial = [replace(record, run_id="viz-partial") for record in records if record.start_ms == first_interval]
    body = "\n".join(to_json(record) for record in partial) + "\n"
    s3.put_object(Bucket=BUCKET, Key=f"runs/viz-partial/records/{REGION}/0/{first_interval:013d}-x.jsonl", Body=body)
    s3.put_object(Bucket=BUCKET, Key="runs/viz-partial/test.tar", Body=SCRIPT.encode())
    dynamodb = boto3.client("dynamodb", region_name=HOME, endpoint_url=finished_run["endpoint"])
    key = orchestrator_state.reset_run(dynamodb, STATE_TABLE, "viz-partial", {REGION: 1}, 3)
    token = orchestrator_state.task_token(key, "viz-partial", REGION, "0")
    orchestrator_state.register_task(dynamodb, STATE_TABLE, "viz-partial", REGION, "0", token)

    result = visualize(
        finished_run,
        tmp_path,
        constellation_run_id="viz-partial",
        baseline=RUN_ID,
        constellation_thresholds={"http_reqs": ["count>1000000"]},
    )

    assert result.rc == 0, result.output  # breached, but the run is not over
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["complete"] is False and summary["verdict"] == "partial"
    assert summary["overall"]["requests"] == sum(r.requests for r in partial if isinstance(r, RequestRecord)) > 0
    assert "PARTIAL DATA" in (tmp_path / "index.html").read_text()
    assert "PARTIAL" in result.stdout
    # Baseline deltas: this run's figure minus the baseline's, per region and overall.
    deltas = summary["baseline"]["deltas"]
    assert summary["baseline"]["run_id"] == RUN_ID and set(deltas) == {"overall", REGION}
    p95 = deltas[REGION]["p95"]
    assert p95["current"] == summary["regions"][REGION]["latency"]["p95"]
    assert p95["delta"] == pytest.approx(p95["current"] - p95["baseline"], abs=0.002)
