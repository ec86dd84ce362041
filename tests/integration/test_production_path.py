"""The path users run, end to end on the emulated AWS: the fargate executor, tasks as containers.

init -> run_test -> visualize -> teardown_all with the images `make images` built, the tasks run
by the emulated ECS as podman pods, the orchestrator function init deployed invoked by them, the
records in the emulated S3. Both load models: the VUs of three regions (one with two tasks), and
an arrival-rate scenario split over 2 regions x 3 tasks whose iterations add up exactly and whose
throughput is the scenario's rate. An abort stops the containers the other regions already run.
Nothing of ours is left afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
import urllib.request
from pathlib import Path

from run import orchestrator_state
import pytest
from lxml import etree
from conftest import PRODUCTION, REPO, VENV_BIN, built_images, our_containers, our_pods, run_playbook
import podman
from ecs_runner import TASK_LABEL
from results.records import RequestRecord, TaskRecord, from_json
from targets import api_like_target

pytestmark = PRODUCTION

PLAYBOOKS = REPO / "playbooks"
HOME = "eu-central-1"
# The JUnit schema CI systems read (see the unit tests of report.xml).
JUNIT_SCHEMA = etree.XMLSchema(etree.parse(str(REPO / "tests" / "unit" / "plugins" / "module_utils" / "results" / "data" / "junit.xsd")))


@pytest.fixture
def target():
    with api_like_target(median_ms=1.0) as url:
        yield url


def settings(production, tmp_path: Path, deployment: str, run_id: str, remote: dict, duration: int, **extra) -> dict:
    return {
        "constellation_home_region": HOME,
        "constellation_remote_regions": remote,
        "constellation_duration_seconds": duration,
        "constellation_aws_endpoint_url": production.url,
        "constellation_deployment": deployment,
        "constellation_results_store": "s3",
        "constellation_bucket_tls_only": False,  # moto refuses every object request under a policy with conditions
        "constellation_build_dir": str(tmp_path / "build"),
        "constellation_run_id": run_id,
        "constellation_start_lead_seconds": 5,
        "constellation_wait_poll_seconds": 3,
        **built_images(),
        **extra,
    }


def playbook(name: str, variables: dict, *args: str):
    return run_playbook(PLAYBOOKS / f"{name}.yml", variables, *args)


def script(tmp_path: Path, text: str) -> str:
    path = tmp_path / "script.js"
    path.write_text(text)
    return str(path)


def task_index(task: dict) -> int:
    return int(next(tag["value"] for tag in task["tags"] if tag["key"] == "constellation:task-index"))


def overrides(task: dict) -> dict[str, dict[str, str]]:
    return {o["name"]: {e["name"]: e["value"] for e in o.get("environment", [])} for o in task["overrides"]["containerOverrides"]}


def stored(production, bucket: str, run_id: str) -> tuple[list, dict]:
    """The run's interval records in the bucket, and each task's progress object."""
    s3 = production.client("s3", HOME)
    records, progress = [], {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"runs/{run_id}/records/"):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode()
            if item["Key"].endswith("/progress.json"):
                progress[tuple(item["Key"].split("/")[3:5])] = json.loads(body)
            else:
                records += [from_json(line) for line in body.splitlines() if line.strip()]
    return records, progress


VUS_SCRIPT = """
import http from 'k6/http';
import { check, sleep } from 'k6';
export const options = { thresholds: { http_req_failed: ['rate<0.9'] } };
export default function () {
  check(http.get(`${__ENV.TARGET}/api/users`, { tags: { name: 'list-users' } }), { ok: (r) => r.status === 200 });
  http.get(`${__ENV.TARGET}/api/fail`, { tags: { name: 'checkout' } });
  sleep(0.1);
}
"""


def test_vus_model_three_regions_as_containers_from_our_images_then_nothing_left(production, tmp_path, target):
    deployment, run_id = "prodvus", "prod-vus-1"
    remote = {"us-east-2": 4, "ap-northeast-1": 1, "ca-central-1": 1}
    variables = settings(
        production, tmp_path, deployment, run_id, remote, 8,
        script=script(tmp_path, VUS_SCRIPT),
        constellation_max_vus_per_task=2,
        constellation_script_env={"TARGET": target},
    )
    assert playbook("init", variables).rc == 0

    result = playbook("run_test", variables)

    assert result.rc == 0, result.output[-6000:]
    progress = " ".join(result.stdout.split())
    assert "us-east-2: 2 of 2 tasks registered, 0 pending, 0 running, 2 stopped, 2 completed" in progress
    for region in ("ap-northeast-1", "ca-central-1"):
        assert f"{region}: 1 of 1 tasks registered, 0 pending, 0 running, 1 stopped, 1 completed" in progress

    # Every planned task ran as a pod of our two images, with the contract's overrides, and ended as ECS ends it.
    images = built_images()
    segments = {"us-east-2": ["0:1/2", "1/2:1"], "ap-northeast-1": ["0:1"], "ca-central-1": ["0:1"]}
    for region, planned in segments.items():
        tasks = sorted(production.run_tasks(region, deployment, run_id), key=task_index)
        assert [task_index(task) for task in tasks] == list(range(len(planned)))
        for task, segment in zip(tasks, planned):
            assert (task["lastStatus"], task["desiredStatus"], task["stopCode"]) == ("STOPPED", "STOPPED", "EssentialContainerExited")
            assert {c["name"]: (c["image"], c["exitCode"]) for c in task["containers"]} == {
                "load-generator": (images["constellation_load_generator_image"], 0),
                "aggregator": (images["constellation_aggregator_image"], 0),
            }
            generator = overrides(task)["load-generator"]
            assert (generator["CONSTELLATION_EXECUTION_SEGMENT"], generator["CONSTELLATION_VUS"]) == (segment, str(remote[region]))
            events = [json.loads(line)["event"] for line in production.task_logs(region, task["taskArn"], "load-generator")
                      if line.startswith("{")]
            assert {"registered", "start-decided", "k6-started", "aggregator-finished", "test-end"} <= set(events)

    # The deployed orchestrator function decided one start, and every task resumed k6 at it.
    state = playbook_state(production, deployment, run_id)
    assert state["registered_tasks"] == {"us-east-2": ["0", "1"], "ap-northeast-1": ["0"], "ca-central-1": ["0"]}
    assert {code for codes in state["exit_codes"].values() for code in codes.values()} == {0}
    assert all(abs(at - state["start_at"]) < 1000 for tasks in state["started_at"].values() for at in tasks.values()), state

    # Every task's records and progress reached the home bucket; the tasks' logs reached CloudWatch Logs.
    bucket = f"{deployment}-123456789012-{HOME}"
    records, saved_progress = stored(production, bucket, run_id)
    requests = [r for r in records if isinstance(r, RequestRecord)]
    assert {(r.region, r.task) for r in requests} == {("us-east-2", "0"), ("us-east-2", "1"), ("ap-northeast-1", "0"), ("ca-central-1", "0")}
    assert sum(r.failures for r in requests if r.request == "checkout") == sum(r.requests for r in requests if r.request == "checkout") > 0
    assert set(saved_progress) == {(r.region, r.task) for r in requests}
    peak_vus = {}
    for record in records:
        if isinstance(record, TaskRecord):
            peak_vus[(record.region, record.task)] = max(peak_vus.get((record.region, record.task), 0), record.vus)
    assert peak_vus == {("us-east-2", "0"): 2, ("us-east-2", "1"): 2, ("ap-northeast-1", "0"): 1, ("ca-central-1", "0"): 1}
    logs = production.client("logs", "us-east-2")
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName=f"/ecs/{deployment}")["logStreams"]]
    assert len([s for s in streams if s.startswith("load-generator/load-generator/")]) == 2, streams

    report = playbook("visualize", variables | {"constellation_report_dir": str(tmp_path / "report")})
    assert report.rc == 0, report.output[-4000:]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["complete"] is True and summary["verdict"] == "pass"
    assert summary["overall"]["requests"] == sum(r.requests for r in requests)
    junit = etree.parse(str(tmp_path / "report" / "report.xml"))
    JUNIT_SCHEMA.assertValid(junit)
    assert [case.get("name") for case in junit.iter("testcase") if case.get("classname").startswith("tasks.")] == [
        "ap-northeast-1 task 0", "ca-central-1 task 0", "us-east-2 task 0", "us-east-2 task 1"]
    assert junit.find("testsuite").get("failures") == "0"

    assert playbook("teardown_all", variables).rc == 0
    production.assert_empty([HOME, *remote])
    assert our_containers() == [] and our_pods() == []


def test_a_test_in_several_files_runs_as_one_archive_in_two_regions_and_a_tampered_one_is_not_run(production, tmp_path):
    """examples/suite: modules, a CSV through SharedArray, an environment value, a secret from the emulated SSM; then
    the archive is tampered with."""
    deployment, run_id, remote = "prodsuite", "prod-suite-1", {"us-east-2": 2, "eu-west-1": 2}
    token = "tok-" + secrets.token_hex(12)  # only the emulated SSM and the target should ever see it
    production.client("ssm", HOME).put_parameter(Name="/shop/api-token", Value=token, Type="SecureString")
    seen: list = []
    with api_like_target(median_ms=1.0, seen=seen) as target:
        variables = settings(
            production, tmp_path, deployment, run_id, remote, 4,
            script=str(REPO / "examples" / "suite" / "test.js"),
            constellation_script_env={"TARGET": target},
            constellation_script_secrets={"API_TOKEN": f"arn:aws:ssm:{HOME}:123456789012:parameter/shop/api-token"},
        )
        assert playbook("init", variables).rc == 0
        result = playbook("run_test", variables, "-vvv")
        assert result.rc == 0, result.output[-6000:]

    users = [line.split(",")[0] for line in (REPO / "examples" / "suite" / "data" / "users.csv").read_text().split()[1:]]
    assert {path for path, headers in seen} == {f"/api/users/{user}" for user in users}
    assert {headers.get("Authorization") for path, headers in seen} == {f"Bearer {token}"}
    report = playbook("visualize", variables | {"constellation_report_dir": str(tmp_path / "report")}, "-vvv")
    assert report.rc == 0, report.output[-4000:]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["verdict"] == "pass" and summary["overall"]["requests"] == len(seen)
    assert {threshold["expression"] for threshold in summary["thresholds"]} >= {"rate<0.01", "p(95)<500"}, summary["thresholds"]

    # The secret's value is nowhere but where it was sent: not in any play's output (-vvv), the run's
    # objects in the bucket, the report, the containers' and the orchestrator's logs.
    s3 = production.client("s3", HOME)
    bucket = f"{deployment}-123456789012-{HOME}"
    objects = [s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
               for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
    files = [path.read_bytes() for root in (tmp_path / "report", production.log_dir) for path in root.rglob("*") if path.is_file()]
    assert len(objects) > 5 and len(files) > 5
    outputs = [("run_test", result.output.encode()), ("visualize", report.output.encode())]
    for where, text in [*outputs, *[("object", o) for o in objects], *[("file", f) for f in files]]:
        assert token.encode() not in text, f"the secret is in a {where}"

    # Someone replaces the run's archive in the bucket, keeping its metadata: a task given the run's
    # overrides fetches it, finds another hash, and ends with 89 before k6 runs.
    key = f"runs/{run_id}/test.tar"
    kept = s3.get_object(Bucket=bucket, Key=key)
    s3.put_object(Bucket=bucket, Key=key, Body=kept["Body"].read() + b"\0" * 512, Metadata=kept["Metadata"])
    ecs = production.client("ecs", "us-east-2")
    ran = ecs.describe_tasks(cluster=deployment, tasks=ecs.list_tasks(cluster=deployment, desiredStatus="STOPPED")["taskArns"][:1])["tasks"][0]
    ec2 = production.client("ec2", "us-east-2")
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "tag:constellation:deployment", "Values": [deployment]}])["Subnets"]]
    groups = [g["GroupId"] for g in ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [f"{deployment}-tasks"]}])["SecurityGroups"]]
    again = ecs.run_task(
        cluster=deployment, taskDefinition=ran["taskDefinitionArn"], launchType="FARGATE",
        overrides={"containerOverrides": [{"name": o["name"], "environment": o["environment"]} for o in ran["overrides"]["containerOverrides"]]},
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets, "securityGroups": groups, "assignPublicIp": "ENABLED"}},
    )["tasks"][0]["taskArn"]
    deadline = time.monotonic() + 120
    while (task := ecs.describe_tasks(cluster=deployment, tasks=[again])["tasks"][0])["lastStatus"] != "STOPPED":
        assert time.monotonic() < deadline, task
        time.sleep(1)
    generator = next(c for c in task["containers"] if c["name"] == "load-generator")
    assert generator["exitCode"] == 89, task
    log = "\n".join(production.task_logs("us-east-2", again, "load-generator"))
    assert "is not the one run_test checked" in log and "nothing was run" in log and "k6-started" not in log

    assert playbook("teardown_all", variables).rc == 0
    production.assert_empty([HOME, *remote])


def playbook_state(production, deployment: str, run_id: str) -> dict:
    return orchestrator_state.read_run(production.client("dynamodb", HOME), f"{deployment}-orchestrator", run_id)


# 12 iterations a second, one every 1/12 s from 0 s, for half a period less than 10 s: 120
# iterations, the last 42 ms before the end and the next 42 ms after it. (For exactly 10 s, the
# iteration k6 schedules at 10 s races with the scenario's end, in one k6 as in six: 120 or 121;
# at 90 a second the half period is 5.6 ms, which a loaded machine overruns: 902 were counted once.)
# preAllocatedVUs is a multiple of the plan's exact_vus_multiple (6 for six equal segments), so k6
# divides the iterations exactly. Each iteration is one request.
SCENARIO_RATE = 12
SCENARIO_ITERATIONS = 120
ARRIVAL_RATE_SCRIPT = """
import http from 'k6/http';
export const options = {
  scenarios: { rate: { executor: 'constant-arrival-rate', rate: 12, timeUnit: '1s', duration: '9958ms', preAllocatedVUs: 12 } },
};
export default function () { http.get(`${__ENV.TARGET}/rate`); }
"""


def single_instance_iterations(script_path: str, tmp_path: Path, target: str) -> int:
    """How many iterations one k6 runs of the script, here (the total the split must add up to)."""
    summary = tmp_path / "single.json"
    command = [str(VENV_BIN / "k6"), "run", "--quiet", "--no-usage-report", "--summary-export", str(summary), script_path]
    subprocess.run(command, capture_output=True, timeout=120, check=True, env={**os.environ, "TARGET": target})
    return json.loads(summary.read_text())["metrics"]["iterations"]["count"]


def test_script_model_arrival_rate_over_two_regions_of_three_tasks_adds_up_exactly(production, tmp_path, target):
    deployment, run_id = "prodrate", "prod-rate-1"
    remote = {"us-east-2": 3, "ca-central-1": 3}
    variables = settings(
        production, tmp_path, deployment, run_id, remote, 10,
        script=script(tmp_path, ARRIVAL_RATE_SCRIPT),
        constellation_max_vus_per_task=1,
        constellation_load_model="script",
        constellation_script_env={"TARGET": target},
    )
    assert playbook("init", variables).rc == 0

    result = playbook("run_test", variables)

    assert result.rc == 0, result.output[-6000:]
    sequence = "0,1/6,1/3,1/2,2/3,5/6,1"
    segments = {}
    for region in remote:
        for task in production.run_tasks(region, deployment, run_id):
            generator = overrides(task)["load-generator"]
            assert generator["CONSTELLATION_EXECUTION_SEGMENT_SEQUENCE"] == sequence  # one sequence across regions
            segments[(region, task_index(task))] = generator["CONSTELLATION_EXECUTION_SEGMENT"]
    assert sorted(segments.values()) == sorted(f"{a}:{b}" for a, b in zip(sequence.split(",")[:-1], sequence.split(",")[1:]))

    records = stored(production, f"{deployment}-123456789012-{HOME}", run_id)[0]
    iterations: dict[tuple[str, str], int] = {}
    for record in records:
        if isinstance(record, TaskRecord):
            iterations[(record.region, record.task)] = iterations.get((record.region, record.task), 0) + record.iterations
    print(f"iterations per task: {iterations}")
    assert single_instance_iterations(variables["script"], tmp_path, target) == SCENARIO_ITERATIONS  # as one k6 runs it
    assert sum(iterations.values()) == SCENARIO_ITERATIONS
    assert iterations == {(region, str(index)): SCENARIO_ITERATIONS // 6 for region in remote for index in range(3)}

    # Throughput divides by the span the load ran (k6's own start and end per task), not by the
    # intervals the records cover: the scenario's rate, within 2 %.
    report = playbook("visualize", variables | {"constellation_report_dir": str(tmp_path / "report")})
    assert report.rc == 0, report.output[-4000:]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    overall = summary["overall"]
    print(f"arrival rate {SCENARIO_RATE}/s: {overall['requests']} requests, {overall['rps']} req/s over {summary['measured_seconds']} s")
    assert overall["requests"] == SCENARIO_ITERATIONS
    assert abs(overall["rps"] - SCENARIO_RATE) <= 0.02 * SCENARIO_RATE

    assert playbook("teardown_all", variables).rc == 0
    assert our_containers() == [] and our_pods() == []


def test_a_failing_region_aborts_and_stops_the_containers_the_others_run(production, tmp_path, target):
    deployment, run_id = "prodabort", "prod-abort-1"
    remote = {"us-east-2": 2, "ca-central-1": 1}
    long_script = VUS_SCRIPT.replace("sleep(0.1)", "sleep(0.5)")
    variables = settings(
        production, tmp_path, deployment, run_id, remote, 120,
        script=script(tmp_path, long_script),
        constellation_max_vus_per_task=1,
        constellation_script_env={"TARGET": target},
        # ca-central-1 deploys into a subnet that does not exist: its RunTask fails.
        constellation_vpc_subnets={"ca-central-1": ["subnet-00000000000000000"]},
        constellation_vpc_security_groups={"ca-central-1": ["sg-00000000000000000"]},
    )
    assert playbook("init", variables).rc == 0

    result = playbook("run_test", variables)

    assert result.rc != 0
    assert f"Run {run_id} aborted: ca-central-1:" in " ".join(result.output.split())
    tasks = production.run_tasks("us-east-2", deployment, run_id)
    assert len(tasks) == 2
    stopped_by_the_abort = ("STOPPED", "UserInitiated", "Run aborted: ca-central-1 failed")
    assert [(t["desiredStatus"], t.get("stopCode"), t.get("stoppedReason")) for t in tasks] == [stopped_by_the_abort] * 2
    # SIGTERM: the programs end their work and exit, well before SIGKILL would come (after 30 s).
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(t["lastStatus"] != "STOPPED" for t in tasks):
        time.sleep(1)
        tasks = production.run_tasks("us-east-2", deployment, run_id)
    assert {t["lastStatus"] for t in tasks} == {"STOPPED"}, tasks
    assert 137 not in {c.get("exitCode") for t in tasks for c in t["containers"]}, tasks
    assert our_containers() == [] and our_pods() == []

    assert playbook("teardown_all", variables).rc == 0
    production.assert_empty([HOME, *remote])


STEADY_SCRIPT = """
import http from 'k6/http';
import { sleep } from 'k6';
export const options = { thresholds: { http_req_failed: ['rate<0.01'] } };
export default function () {
  http.get(`${__ENV.TARGET}/api/users`, { tags: { name: 'list-users' } });
  sleep(0.05);
}
"""


def wait_for_load(production, deployment: str, run_id: str, seconds: float) -> None:
    """Return once the run's start was decided and its load has run for ``seconds``."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        start_at = playbook_state(production, deployment, run_id)["start_at"]
        if start_at is not None and orchestrator_state.now_ms() > start_at + seconds * 1000:
            return
        time.sleep(1)
    pytest.fail("the run did not start within 240 s")


def granted_runs(production, deployment: str, region: str) -> list[str]:
    """The runs whose script the region's task role may read now (its policy "runs", run_grants)."""
    iam, role = production.client("iam", HOME), f"{deployment}-task-{region}"
    if "runs" not in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        return []
    statements = iam.get_role_policy(RoleName=role, PolicyName="runs")["PolicyDocument"]["Statement"]
    scripts = next(statement["Resource"] for statement in statements if statement["Action"] == "s3:GetObject")
    return sorted(arn.split("/runs/")[1].split("/")[0] for arn in scripts)


def test_two_overlapping_runs_then_stop_test_half_way_through_the_first(production, tmp_path):
    """Run A (2 regions, 120 s) is running when run B (1 region, 15 s) of the same deployment
    starts and ends: both are whole, each task role granted the runs active in its region only.
    Then stop_test stops A half-way: every region ends gracefully, the report is whole and STOPPED."""
    deployment, run_a, run_b = "prodstop", "prod-stop-1", "prod-overlap-2"
    remote = {"us-east-2": 2, "ca-central-1": 1}
    seen_a: list = []
    seen_b: list = []
    with api_like_target(median_ms=1.0, seen=seen_a) as url_a, api_like_target(median_ms=1.0, seen=seen_b) as url_b:
        variables = settings(
            production, tmp_path, deployment, run_a, remote, 120,
            script=script(tmp_path, STEADY_SCRIPT),
            constellation_max_vus_per_task=1,
            constellation_script_env={"TARGET": url_a},
            constellation_wait=False,
        )
        assert playbook("init", variables).rc == 0
        launched = playbook("run_test", variables)
        assert launched.rc == 0, launched.output[-6000:]
        assert granted_runs(production, deployment, "us-east-2") == granted_runs(production, deployment, "ca-central-1") == [run_a]

        wait_for_load(production, deployment, run_a, seconds=5)

        # Run B in one of A's regions, from its own directory, waited for: A keeps its grants meanwhile.
        overlapping = dict(
            variables, constellation_run_id=run_b, constellation_remote_regions={"us-east-2": 2},
            constellation_duration_seconds=15, constellation_script_env={"TARGET": url_b}, constellation_wait=True,
        )
        second = playbook("run_test", overlapping)
        assert second.rc == 0, second.output[-6000:]
        served_b = len(seen_b)
        state_a = playbook_state(production, deployment, run_a)
        assert state_a["active"] and not state_a["completed_tasks"]["us-east-2"], "A still runs after B ended"
        assert not playbook_state(production, deployment, run_b)["active"]
        assert granted_runs(production, deployment, "us-east-2") == [run_a]  # B's grants went with B

        stopping = time.monotonic()
        stopped = playbook("stop_test", variables | {"constellation_wait_poll_seconds": 2})
        stop_seconds = time.monotonic() - stopping
        assert stopped.rc == 0, stopped.output[-6000:]
        served_a = len(seen_a)

    # Well before the planned 120 s: within an interval (5 s), k6's graceful stop and the flush.
    print(f"stop_test: every task ended {stop_seconds:.1f} s after the stop was asked; target served {served_a}")
    assert stop_seconds < 60
    state = playbook_state(production, deployment, run_a)
    assert state["stop"]["reason"] == "stopped" and not state["active"]
    assert {code for codes in state["exit_codes"].values() for code in codes.values()} == {105}  # k6 stopped gracefully
    assert granted_runs(production, deployment, "us-east-2") == granted_runs(production, deployment, "ca-central-1") == []
    again = playbook("stop_test", variables)
    assert again.rc == 0 and again.recaps()["localhost"]["changed"] == 0, again.output[-3000:]

    report = playbook("visualize", variables | {"constellation_report_dir": str(tmp_path / "report")})
    assert report.rc == 0, report.output[-4000:]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["complete"] is True and summary["verdict"] == "pass" and summary["stop"]["reason"] == "stopped"
    assert "STOPPED at" in (tmp_path / "report" / "index.html").read_text() and "STOPPED at" in report.stdout
    # Whole up to the stop: what the target served is in the report, but for at most one request
    # per VU cut short by the stop (3 VUs).
    assert served_a - 3 <= summary["overall"]["requests"] <= served_a, (served_a, summary["overall"]["requests"])
    # The span the throughput divides by ends with the stop (k6's graceful stop, within seconds), not at the planned 120 s.
    assert summary["measured_seconds"] <= (summary["stop"]["at"] - summary["start_at_ms"]) / 1000 + 10, summary["measured_seconds"]

    # B, which ran to its end beside A: every request its target served is in its records.
    report_b = playbook("visualize", overlapping | {"constellation_report_dir": str(tmp_path / "report-b")})
    assert report_b.rc == 0, report_b.output[-4000:]
    summary_b = json.loads((tmp_path / "report-b" / "summary.json").read_text())
    assert summary_b["complete"] is True and summary_b["verdict"] == "pass" and summary_b["stop"] is None
    assert summary_b["overall"]["requests"] == served_b > 0
    print(f"overlapping run B: {served_b} requests served, {summary_b['overall']['requests']} in its report")

    assert playbook("teardown_all", variables).rc == 0
    production.assert_empty([HOME, *remote])


def kill_container(task_arn: str, container: str) -> None:
    """SIGKILL one container of an emulated ECS task, as an out-of-memory kill or a crash would end it."""
    env = podman.environment()
    names = podman.run(["ps", "--format", "{{.Names}}", "--filter", f"label={TASK_LABEL}={task_arn}"], env).stdout.split()
    (name,) = [name for name in names if name.endswith(f"-{container}")]
    podman.run(["kill", "--signal", "KILL", name], env)


PER_TASK_SCRIPT = """
import http from 'k6/http';
import { sleep } from 'k6';
export default function () {
  http.get(`${__ENV.TARGET}/api/task-${__ENV.CONSTELLATION_TASK_INDEX}`, { tags: { name: 'by-task' } });
  sleep(0.05);
}
"""


def test_a_stopped_task_keeps_its_records_and_a_killed_aggregator_fails_the_run_naming_each_task(production, tmp_path):
    """Two faults in one run of 3 tasks on Fargate Spot, 6 s into 20 s. Task 1 is stopped with
    StopTask, as a Spot interruption does: ECS signals both containers at once, k6 ends gracefully
    and pushes its last metrics, which the aggregator still takes, then flushes. Task 2's aggregator
    is killed (it is not essential to ECS): k6 runs on, what the aggregator held is lost, and
    /finish is refused. The target counts each task's requests: task 0's and task 1's are all in
    the store, task 2's are not, and the run fails naming task 1 as interrupted, with the share of
    its planned load that did not run, and task 2's missing results."""
    deployment, run_id = "prodfaults", "prod-faults-1"
    remote = {"us-east-2": 3}
    seen: list = []
    with api_like_target(median_ms=1.0, seen=seen) as url:
        variables = settings(
            production, tmp_path, deployment, run_id, remote, 20,
            script=script(tmp_path, PER_TASK_SCRIPT),
            constellation_max_vus_per_task=1,
            constellation_script_env={"TARGET": url},
            constellation_wait=False,
            constellation_capacity="fargate_spot",
        )
        assert playbook("init", variables).rc == 0
        assert playbook("run_test", variables).rc == 0
        wait_for_load(production, deployment, run_id, seconds=6)
        tasks = {task_index(task): task for task in production.run_tasks("us-east-2", deployment, run_id)}
        assert {task.get("capacityProviderName") for task in tasks.values()} == {"FARGATE_SPOT"}
        production.client("ecs", "us-east-2").stop_task(cluster=deployment, task=tasks[1]["taskArn"], reason="Spot interruption, as a test")
        kill_container(tasks[2]["taskArn"], "aggregator")

        waited = playbook("run_test", variables | {"constellation_wait": True, "constellation_wait_poll_seconds": 2})
        served = {index: sum(1 for path, _headers in seen if path == f"/api/task-{index}") for index in range(3)}

    message = " ".join(waited.stdout.split())
    assert waited.rc != 0 and "us-east-2 task 1: it was interrupted (SIGTERM: a Spot interruption or a StopTask)" in message, waited.output[-4000:]
    assert "task 1: exit 105" not in message, "an interruption is missing load, not a failed task"
    assert "results are missing: us-east-2 task 1: it was interrupted" in message
    assert "us-east-2 task 2: its aggregator did not confirm the final flush" in message
    records, _progress = stored(production, f"{deployment}-123456789012-{HOME}", run_id)
    in_store = {index: sum(r.requests for r in records if isinstance(r, RequestRecord) and r.task == str(index)) for index in range(3)}
    print(f"faults: target served {served} by task, the store holds {in_store}")
    assert in_store[0] == served[0] > 0
    # The stopped task's VU may have one request cut short by the stop, which the target served.
    assert served[1] - 1 <= in_store[1] <= served[1] and in_store[1] < served[0]
    assert in_store[2] < served[2]
    stopped = [json.loads(line) for line in production.task_logs("us-east-2", tasks[1]["taskArn"], "aggregator") if line.startswith("{")]
    # Whichever container got its SIGTERM first, the aggregator flushed on the generator's /finish,
    # after k6's last push, and wrote everything.
    assert "finish_not_asked" not in [e["event"] for e in stopped]
    summary = next(e for e in stopped if e["event"] == "summary")
    assert summary["written"] == summary["produced"] > 0 and summary["unflushed"] == 0, summary
    report = playbook("visualize", variables | {"constellation_report_dir": str(tmp_path / "report")})
    assert report.rc != 0, report.output[-4000:]
    accounting = json.loads((tmp_path / "report" / "summary.json").read_text())["accounting"]
    counted = {int(task): counts for task, counts in accounting["tasks"]["us-east-2"].items()}
    print(f"faults: k6 counted {({i: c.get('k6_requests') for i, c in counted.items()})}, retries {accounting['store_retries']}")
    # Task 0 ran undisturbed and task 1 was stopped mid-run: k6's count, the target's and the store's agree.
    assert counted[0]["k6_requests"] == counted[0]["stored_requests"] == served[0]
    assert counted[1]["k6_requests"] == counted[1]["stored_requests"] == in_store[1]
    (interruption,) = counted[1]["missing"]
    share = int(interruption.split(": ")[-1].split(" %")[0])
    print(f"faults: {interruption}")
    # Stopped about 6 s into 20 s (the stop and k6's graceful end take a few seconds more).
    assert interruption.startswith("it was interrupted") and 40 <= share <= 75, interruption
    # Task 2's aggregator died: k6 counted what the target served; the store lacks the difference, named.
    lost = served[2] - in_store[2]
    assert counted[2]["k6_requests"] == served[2] and counted[2]["stored_requests"] == in_store[2]
    message = " ".join(report.stdout.split())
    assert f"INCOMPLETE: us-east-2 task 1: {interruption}" in message, message[-3000:]
    assert "us-east-2 task 2: its aggregator did not confirm the final flush" in message
    assert f"{lost:,} of the {served[2]:,} requests k6 counted are not in the results store" in message

    assert playbook("teardown_all", variables).rc == 0
    production.assert_empty([HOME, *remote])


def inject_faults(production, rules: list[dict]) -> dict[str, int]:
    """Set the emulator's fault rules (tools/aws_emulator.py, Faults); what the rules replaced injected."""
    request = urllib.request.Request(f"{production.url}/_emulator/faults", data=json.dumps(rules).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["injected"]


def test_a_throttled_store_loses_nothing_a_denied_one_is_named_and_a_flaky_orchestrator_is_retried(production, tmp_path, target):
    """Three faults in one run of 2 tasks, 1 s intervals (a write a second), on the emulated AWS the
    tasks call: 30 % of task 0's writes to the results store answered 503 SlowDown, every record
    write of task 1 denied (AccessDenied), 30 % of the tasks' calls to the orchestrator function
    throttled (429). Task 0 loses nothing and counts a retry per injected error; task 1's loss is
    named; the run starts and completes through the throttled orchestrator."""
    deployment, run_id = "prodstore", "prod-store-1"
    prefix = f"/runs/{run_id}/records/us-east-2/"
    rules = [
        {"name": "slowdown", "method": "PUT", "path_contains": prefix + "0/", "share": 0.3, "status": 503, "code": "SlowDown"},
        {"name": "denied", "method": "PUT", "path_contains": prefix + "1/", "path_suffix": ".jsonl", "share": 1.0,
         "status": 403, "code": "AccessDenied"},
        {"name": "orchestrator", "method": "POST", "path_contains": "/invocations", "share": 0.3, "status": 429,
         "code": "TooManyRequestsException", "protocol": "json"},
    ]
    variables = settings(
        production, tmp_path, deployment, run_id, {"us-east-2": 2}, 15,
        script=script(tmp_path, VUS_SCRIPT),
        constellation_max_vus_per_task=1,
        constellation_results_interval_seconds=1,
        constellation_script_env={"TARGET": target},
    )
    assert playbook("init", variables).rc == 0
    inject_faults(production, rules)
    try:
        waited = playbook("run_test", variables)
        # run_test ends when the load generators have: the aggregators may still be writing, until
        # their containers exit, and a denied store stays denied until then.
        wait_for_containers_to_exit(production, deployment, run_id)
    finally:
        injected = inject_faults(production, [])
    print(f"store faults: injected {injected}")

    message = " ".join(waited.stdout.split())
    assert waited.rc != 0 and "results are missing: us-east-2 task 1" in message, waited.output[-4000:]
    assert "task 0" not in message.split("results are missing:")[1].split("See the log group")[0]
    state = playbook_state(production, deployment, run_id)
    assert state["completed_tasks"] == {"us-east-2": ["0", "1"]}, "the run started and ended through a throttled orchestrator"
    assert state["exit_codes"] == {"us-east-2": {"0": 0, "1": 87}}
    assert injected["orchestrator"] > 0 and injected["slowdown"] > 0 and injected["denied"] > 0

    report = playbook("visualize", variables | {"constellation_report_dir": str(tmp_path / "report")})
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    counted = summary["accounting"]["tasks"]["us-east-2"]
    print(f"store faults: task 0 {counted['0']}, task 1 {counted['1']}")
    # Task 0: every request k6 counted is in the store, and each injected 503 was one retry.
    assert counted["0"]["k6_requests"] == counted["0"]["stored_requests"] > 0 and counted["0"]["missing"] == []
    assert counted["0"]["store_retries"] == injected["slowdown"]
    # Task 1: its aggregator could not write, and says so; the report names the loss.
    assert counted["1"]["records_lost"] > 0 and counted["1"]["stored_requests"] < counted["1"]["k6_requests"]
    assert summary["verdict"] == "incomplete" and report.rc != 0
    assert "INCOMPLETE: us-east-2 task 1: its aggregator did not confirm the final flush" in " ".join(report.stdout.split())
    denied = [json.loads(line) for line in production.task_logs("us-east-2", task_arn(production, deployment, run_id, 1), "aggregator")
              if line.startswith("{")]
    assert any(e["event"] == "record_not_written" and "AccessDenied" in e["error"] for e in denied)
    # With the loss accepted, the same report judges what is there.
    accepted = playbook("visualize", variables | {"constellation_report_dir": str(tmp_path / "report"), "constellation_allow_incomplete": "true"})
    assert accepted.rc == 0, accepted.output[-3000:]

    assert playbook("teardown_all", variables).rc == 0
    production.assert_empty([HOME, "us-east-2"])


def test_a_task_that_never_registers_keeps_the_run_from_starting_and_run_test_names_it(production, tmp_path):
    """Task 1's registrations all fail (as a generator killed before registering never makes one):
    the orchestrator never decides a start, no request is made, every task exits with its own code
    at the start timeout, and run_test names the task that never registered."""
    deployment, run_id = "prodnever", "prod-never-1"
    registration = f'"type": "agg-record", "run_id": "{run_id}", "region": "us-east-2", "task_id": "1"'
    rule = {"name": "register", "method": "POST", "path_contains": "/invocations", "body_contains": registration,
            "share": 1.0, "status": 500, "code": "ServiceException", "protocol": "json"}
    seen: list = []
    with api_like_target(median_ms=1.0, seen=seen) as url:
        variables = settings(
            production, tmp_path, deployment, run_id, {"us-east-2": 2}, 10,
            script=script(tmp_path, VUS_SCRIPT),
            constellation_max_vus_per_task=1,
            constellation_start_timeout_seconds=20,
            constellation_script_env={"TARGET": url},
        )
        assert playbook("init", variables).rc == 0
        inject_faults(production, [rule])
        try:
            waited = playbook("run_test", variables)
        finally:
            injected = inject_faults(production, [])

    message = " ".join(waited.stdout.split())
    assert waited.rc != 0 and "the run never started: task 1 never registered with the orchestrator" in message, waited.output[-4000:]
    assert "task 0: exit 85 (load generator START_TIMEOUT)" in message and "task 1: exit 84 (load generator ORCHESTRATOR)" in message
    state = playbook_state(production, deployment, run_id)
    assert state["start_at"] is None and state["registered_tasks"] == {"us-east-2": ["0"]}
    assert state["exit_codes"] == {"us-east-2": {"0": 85, "1": 84}} and injected["register"] > 0
    assert seen == [], "no task ran any load"

    assert playbook("teardown_all", variables).rc == 0
    production.assert_empty([HOME, "us-east-2"])


def wait_for_containers_to_exit(production, deployment: str, run_id: str, timeout: float = 150) -> None:
    deadline = time.monotonic() + timeout
    while any(task["lastStatus"] != "STOPPED" for task in production.run_tasks("us-east-2", deployment, run_id)):
        assert time.monotonic() < deadline, "the tasks' containers did not exit"
        time.sleep(2)


def task_arn(production, deployment: str, run_id: str, index: int) -> str:
    return next(t["taskArn"] for t in production.run_tasks("us-east-2", deployment, run_id) if task_index(t) == index)


ABORT_SCRIPT = """
import http from 'k6/http';
import { sleep } from 'k6';
export const options = {
  thresholds: { http_req_failed: [{ threshold: 'rate<0.01', abortOnFail: true, delayAbortEval: '3s' }] },
};
export default function () {
  http.get(`${__ENV.TARGET}/api/${__ENV.CONSTELLATION_REGION}`);
  sleep(0.05);
}
"""


def test_a_threshold_breached_on_the_merged_data_aborts_every_region_and_the_report_says_which(production, tmp_path):
    deployment, run_id = "prodabort", "prod-abort-1"
    remote = {"us-east-2": 1, "ca-central-1": 1}
    # Only ca-central-1's requests fail: the abortOnFail threshold holds on us-east-2's slice, so
    # k6 itself would abort one region at most. The merged data breaches it; every region stops.
    with api_like_target(median_ms=1.0, routes={"/api/ca-central-1": (1.0, 1.0)}) as url:
        variables = settings(
            production, tmp_path, deployment, run_id, remote, 120,
            script=script(tmp_path, ABORT_SCRIPT),
            constellation_script_env={"TARGET": url},
            constellation_wait_poll_seconds=30,
        )
        assert playbook("init", variables).rc == 0
        started = time.monotonic()
        result = playbook("run_test", variables)
        elapsed = time.monotonic() - started

    output = " ".join(result.stdout.split())
    assert result.rc != 0
    assert f"Run {run_id} ABORTED at " in output, result.output[-6000:]
    assert "breached on the merged data of every region: http_req_failed rate<0.01" in output
    state = playbook_state(production, deployment, run_id)
    assert state["stop"]["reason"] == "aborted"
    assert state["exit_codes"]["us-east-2"] == {"0": 105}, state["exit_codes"]
    exits = []
    for region in remote:
        [task] = production.run_tasks(region, deployment, run_id)
        lines = [json.loads(line) for line in production.task_logs(region, task["taskArn"], "load-generator") if line.startswith("{")]
        # us-east-2's slice passes, so only the global abort stops it; ca-central-1's k6 may abort itself first.
        assert region == "ca-central-1" or any(line.get("event") == "run-stopped" for line in lines), region
        exits.append(next(line["time_ms"] for line in lines if line.get("event") == "exit"))
    # Decided within two progress intervals (5 s) of the breach being due (start + 3 s), every task ended soon after.
    decided_after_ms = state["stop"]["at"] - state["start_at"]
    last_stopped_ms = max(exits) - state["stop"]["at"]
    print(f"global abort: decided {decided_after_ms / 1000:.1f} s after the start, last task ended"
          f" {last_stopped_ms / 1000:.1f} s after the abort; run_test took {elapsed:.0f} s of a 120 s test")
    assert decided_after_ms <= 3000 + 2 * 5000 + 5000  # the delay, two intervals, and one poll of the wait
    assert elapsed < 120

    report = playbook("visualize", variables | {"constellation_report_dir": str(tmp_path / "report")})
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["stop"]["reason"] == "aborted" and summary["verdict"] == "fail", summary["stop"]
    assert report.rc != 0 and "ABORTED at" in report.stdout
    assert "ABORTED at" in (tmp_path / "report" / "index.html").read_text()

    assert playbook("teardown_all", variables).rc == 0
    production.assert_empty([HOME, *remote])
