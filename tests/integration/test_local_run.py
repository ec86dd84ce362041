"""End to end with the local executor: init -> run_test (3 simulated regions, real k6) on moto."""

from __future__ import annotations

import json
import sys

import pytest
from conftest import REPO, run_playbook
from targets import api_like_target

sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import orchestrator_state  # noqa: E402
from records import RequestRecord, from_json  # noqa: E402

HOME = "eu-central-1"
DEPLOYMENT = "e2e"
BUCKET = f"{DEPLOYMENT}-123456789012-{HOME}"
RUN_ID = "e2e-run-1"
REGIONS = {"us-east-2": 2, "ap-northeast-1": 1, "ca-central-1": 1}
SCRIPT = """
import http from 'k6/http';
import { sleep } from 'k6';
export default function () {
  http.get(`${__ENV.TARGET}/api/users`, { tags: { name: 'list-users' } });
  http.get(`${__ENV.TARGET}/api/fail`, { tags: { name: 'checkout' } });
  sleep(0.05);
}
"""


@pytest.fixture
def target():
    with api_like_target(median_ms=1.0) as url:
        yield url


def test_local_run_starts_once_and_stores_records_from_every_region(moto, tmp_path, target, monkeypatch):
    monkeypatch.setenv("TARGET", target)  # k6 passes the environment on to the script's __ENV
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"DURATION": 4000, "HOME_REGION": HOME, "REMOTE_REGIONS": REGIONS}))
    script = tmp_path / "script.js"
    script.write_text(SCRIPT)
    variables = {
        "config": str(config),
        "constellation_aws_endpoint_url": moto.url,
        "constellation_deployment": DEPLOYMENT,
        "constellation_results_store": "s3",
        "constellation_max_vus_per_task": 1,
        "constellation_bucket_tls_only": False,
        "constellation_build_dir": str(tmp_path / "build"),
        "constellation_executor": "local",
        "constellation_run_id": RUN_ID,
        "constellation_start_lead_seconds": 3,
        "constellation_local_log_dir": str(tmp_path / "logs"),
        "constellation_local_poll_seconds": 2,
        "script": str(script),
    }
    assert run_playbook(REPO / "playbooks" / "init.yml", variables).rc == 0

    result = run_playbook(REPO / "playbooks" / "run_test.yml", variables)

    assert result.rc == 0, result.output
    progress = " ".join(result.stdout.split())
    assert "us-east-2: 2 of 2 tasks registered, 2 completed" in progress
    run = orchestrator_state.read_run(moto.client("dynamodb", HOME), f"{DEPLOYMENT}-orchestrator", RUN_ID)
    assert run["start_at"] is not None
    assert run["registered_tasks"] == {"us-east-2": ["0", "1"], "ap-northeast-1": ["0"], "ca-central-1": ["0"]}
    assert run["completed_regions"] == sorted(REGIONS)
    assert {code for region in run["exit_codes"].values() for code in region.values()} == {0}
    assert {region: sorted(tasks) for region, tasks in run["started_at"].items()} == run["registered_tasks"]
    assert all(abs(at - run["start_at"]) < 500 for tasks in run["started_at"].values() for at in tasks.values()), run

    s3 = moto.client("s3", HOME)
    records, saved_progress = [], {}
    for item in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"runs/{RUN_ID}/records/").get("Contents", []):
        body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().decode()
        if item["Key"].endswith("/progress.json"):  # records are the *.jsonl objects
            saved_progress[tuple(item["Key"].split("/")[3:5])] = json.loads(body)
            continue
        records += [from_json(line) for line in body.splitlines() if line.strip()]
    requests = [r for r in records if isinstance(r, RequestRecord)]
    assert {r.region for r in requests} == set(REGIONS)
    assert {r.request for r in requests} == {"list-users", "checkout"}
    failed = sum(r.failures for r in requests if r.request == "checkout")
    assert failed == sum(r.requests for r in requests if r.request == "checkout") > 0

    # Each task's progress object holds its records' totals, and the last progress lines show them.
    by_task: dict[tuple[str, str], list[int]] = {}
    for r in requests:
        counts = by_task.setdefault((r.region, r.task), [0, 0])
        counts[0], counts[1] = counts[0] + r.requests, counts[1] + r.failures
    assert {task: [p["requests"], p["failures"]] for task, p in saved_progress.items()} == by_task
    for region, tasks in REGIONS.items():
        total = sum(r.requests for r in requests if r.region == region)
        assert f"{region}: {tasks} of {tasks} tasks registered, {tasks} completed; {total:,} requests" in progress
