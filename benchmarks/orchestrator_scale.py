"""2,000 tasks over 20 regions: does the orchestrator plan, register, start once and end within AWS's limits?

The real handler (files/lambda/orchestrator.py with run/orchestrator_state.py, as the Lambda ships
them) answers every task's events against the emulated DynamoDB (the emulator's moto, on loopback,
in its own process; it serializes DynamoDB writes as DynamoDB does per item), 64 at a time:
2,000 registrations with their tokens, a poll each, 2,000 test-ends with a start instant and five
threshold verdicts each. Measured in the same run:

* registration latency (p50, p99) against a plain GetItem of the same item on the same emulator
  (the baseline: what one DynamoDB round trip costs here), as a ratio;
* how many registrations decided a start (must be 1);
* the run item's size at the end (DynamoDB's limit: 400 KB), as moto stores it;
* the longest RunTask overrides of any task of that plan (ECS's limit: 8,192 characters), the
  task's orchestrator token included, for the vus load model.

Then the same 2,000 registrations and polls of another run through the orchestrator function as
``init`` deploys it, invoked on the emulated Lambda (its zip, handler and environment, in up to 8
warm execution environments, as Lambda scales a function): registration p99 through the
deployed function, and again one start decided and seen by every poll.

Last line: ``tasks_started_once: N`` (N = 2000 when every task registered and one start was
decided, both through the handler and through the deployed function).
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import tempfile
from pathlib import Path

import boto3
from harness import HOME, REPO, TWENTY_REGIONS, measured_on

from emulator import aws_emulator
from task_processes import deploy_orchestrator

sys.path.insert(0, str(REPO / "files" / "lambda"))

import orchestrator  # noqa: E402
from aws import orchestrator_table  # noqa: E402
from run import orchestrator_state  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run import load_tasks  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run import task_contract  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import MAX_TASKS_PER_REGION  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import load_config  # noqa: E402

REGIONS = TWENTY_REGIONS
TASKS_PER_REGION = 100
TABLE = "scale-orchestrator"
RUN_ID = "scale-2000"
DEPLOYED_RUN_ID = "scale-2000-deployed"
FUNCTION = "scale-orchestrator"
CONCURRENCY = 64
VERDICTS = {
    "http_req_duration": {"p(95)<500": True, "p(99)<1500": True},
    "http_req_failed": {"rate<0.01": True},
    "checks": {"rate>0.99": False},
    "http_req_duration{name:checkout}": {"p(95)<800": True},
}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def longest_overrides(tasks_by_region: dict[str, int]) -> int:
    """The longest RunTask overrides (with the token) of any task of a plan, vus model."""
    config = load_config(
        settings={
            "home_region": HOME,
            "remote_regions": {region: tasks * 100 for region, tasks in tasks_by_region.items()},
            "max_vus_per_task": 100,
            "duration_seconds": 600,
        }
    )
    home = task_contract.Home(region=HOME, results_store="s3", bucket="constellation-123456789012-eu-central-1", function="constellation-orchestrator")
    deployment = task_contract.Deployment(
        home=home, load_generator_image="x", aggregator_image="x", task_cpu=1024, task_memory=2048, log_group="/ecs/constellation"
    )
    run = task_contract.Run(RUN_ID, script_sha256="0" * 64)
    key = orchestrator_state.new_token_key()
    longest = 0
    for region, contract in task_contract.contract(config, deployment, run).items():
        assert len(contract["tasks"]) == tasks_by_region[region], (region, len(contract["tasks"]))
        for index, overrides in enumerate(contract["tasks"]):
            given = load_tasks.with_task_token(overrides, key, RUN_ID, region, index)
            longest = max(longest, len(json.dumps(load_tasks.run_task_overrides(given), separators=(",", ":"))))
    return longest


def item_size(item: dict) -> int:
    """DynamoDB's size of an item: names plus values (strings and numbers by their text, sets and maps summed)."""

    def size(value: dict) -> int:
        (kind, inner), = value.items()
        if kind in ("S", "N"):
            return len(str(inner).encode())
        if kind == "B":
            return len(inner)
        if kind == "BOOL":
            return 1
        if kind in ("SS", "NS"):
            return sum(len(member.encode()) for member in inner)
        if kind == "M":
            return 3 + sum(len(name.encode()) + size(member) + 1 for name, member in inner.items())
        raise ValueError(kind)

    return sum(len(name.encode()) + size(value) for name, value in item.items())


def through_the_deployed_function(endpoint: str, dynamodb, tasks: list[tuple[str, str]], logs: str) -> dict:
    """Every task registers, then polls once, by invoking the deployed function, CONCURRENCY at a time."""
    deploy_orchestrator(endpoint, HOME, FUNCTION, TABLE)
    key = orchestrator_state.reset_run(dynamodb, TABLE, DEPLOYED_RUN_ID, {region: TASKS_PER_REGION for region in REGIONS}, 30)
    per_thread = threading.local()

    def invoke(event_type: str, region: str, task_id: str) -> tuple[float, dict]:
        if not hasattr(per_thread, "client"):
            per_thread.client = boto3.session.Session().client("lambda", region_name=HOME, endpoint_url=endpoint)
        token = orchestrator_state.task_token(key, DEPLOYED_RUN_ID, region, task_id)
        event = {"type": event_type, "run_id": DEPLOYED_RUN_ID, "region": region, "task_id": task_id, "token": token}
        started = time.perf_counter()
        response = per_thread.client.invoke(FunctionName=FUNCTION, Payload=json.dumps(event).encode())
        answer = json.loads(response["Payload"].read())
        return time.perf_counter() - started, answer

    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        registrations = list(pool.map(lambda task: invoke("agg-record", *task), tasks))
        polls = [answer for unused_seconds, answer in pool.map(lambda task: invoke("test-init", *task), tasks)]
    answers = [answer for unused_seconds, answer in registrations] + polls
    run = orchestrator_state.read_run(dynamodb, TABLE, DEPLOYED_RUN_ID)
    return {
        "latencies": [seconds * 1000 for seconds, unused_answer in registrations],
        "refused": [answer for answer in answers if not answer.get("ok")][:2],
        "deciders": sum(1 for answer in answers if answer.get("decided_start")),
        "starts": len({answer.get("start_at") for answer in polls}),
        "registered": sum(len(ids) for ids in run["registered_tasks"].values()),
    }


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="orchestrator-scale-") as logs, aws_emulator(Path(logs), with_tasks=False) as endpoint:
        client = boto3.client("dynamodb", region_name=HOME, endpoint_url=endpoint)
        orchestrator_table.create_table(client, TABLE, {})
        orchestrator_table.wait_for_table(client, TABLE, exists=True, timeout_seconds=30)
        key = orchestrator_state.reset_run(client, TABLE, RUN_ID, {region: TASKS_PER_REGION for region in REGIONS}, 30)
        tasks = [(region, str(index)) for region in REGIONS for index in range(TASKS_PER_REGION)]
        per_thread = threading.local()

        def thread_client():
            if not hasattr(per_thread, "client"):  # boto3 clients are built once per thread
                per_thread.client = boto3.session.Session().client("dynamodb", region_name=HOME, endpoint_url=endpoint)
            return per_thread.client

        def event(event_type: str, region: str, task_id: str, **fields) -> dict:
            token = orchestrator_state.task_token(key, RUN_ID, region, task_id)
            return {"type": event_type, "run_id": RUN_ID, "region": region, "task_id": task_id, "token": token, **fields}

        def timed(call) -> tuple[float, dict]:
            started = time.perf_counter()
            answer = call()
            return time.perf_counter() - started, answer

        def register(task):
            return timed(lambda: orchestrator.handle(event("agg-record", *task), thread_client(), TABLE))

        def baseline(unused_index):
            return timed(lambda: thread_client().get_item(TableName=TABLE, Key={"run_id": {"S": RUN_ID}}, ConsistentRead=True))

        with open(Path(logs) / "handler.log", "w") as handler_log, contextlib.redirect_stdout(handler_log), \
                ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
            registrations = list(pool.map(register, tasks))
            reads = list(pool.map(baseline, range(len(tasks))))
            polls = [answer for unused_seconds, answer in pool.map(
                lambda task: timed(lambda: orchestrator.handle(event("test-init", *task), thread_client(), TABLE)), tasks
            )]
            now = orchestrator_state.now_ms()
            ends = [answer for unused_seconds, answer in pool.map(
                lambda task: timed(lambda: orchestrator.handle(
                    event("test-end", *task, exit_code=0, started_at=now, thresholds=VERDICTS), thread_client(), TABLE
                )),
                tasks,
            )]

        deployed = through_the_deployed_function(endpoint, client, tasks, logs)

        refused = [answer for unused_seconds, answer in registrations if not answer["ok"]] + [a for a in polls + ends if not a["ok"]]
        deciders = sum(1 for unused_seconds, answer in registrations if answer.get("decided_start")) + sum(
            1 for answer in polls if answer.get("decided_start")
        )
        starts = {answer["start_at"] for answer in polls if answer["ok"]}
        run = orchestrator_state.read_run(client, TABLE, RUN_ID)
        item = client.get_item(TableName=TABLE, Key={"run_id": {"S": RUN_ID}}, ConsistentRead=True)["Item"]
        registered = sum(len(ids) for ids in run["registered_tasks"].values())
        completed = sum(len(ids) for ids in run["completed_tasks"].values())

    latencies = [seconds * 1000 for seconds, unused_answer in registrations]
    read_latencies = [seconds * 1000 for seconds, unused_answer in reads]
    overrides = longest_overrides({region: TASKS_PER_REGION for region in REGIONS})
    overrides_one_region = longest_overrides({"us-east-2": MAX_TASKS_PER_REGION})
    size = item_size(item)
    print(f"tasks: {len(tasks)} in {len(REGIONS)} regions, {CONCURRENCY} at a time; refused: {len(refused)} {refused[:2]}")
    print(f"registration_p50_ms: {percentile(latencies, 0.50):.1f}")
    print(f"registration_p99_ms: {percentile(latencies, 0.99):.1f}")
    print(f"getitem_p99_ms: {percentile(read_latencies, 0.99):.1f} (baseline, same item, same emulator)")
    print(f"registration_p99_vs_getitem_p99: {percentile(latencies, 0.99) / percentile(read_latencies, 0.99):.2f}")
    print(f"registration_mean_ms: {statistics.mean(latencies):.1f}")
    print(f"start decisions: {deciders}; distinct starts seen by the polls: {len(starts)}")
    print(f"registered: {registered}, completed: {completed}")
    print(f"run_item_bytes_at_end: {size} (DynamoDB's limit: 409600)")
    print(f"longest_overrides_chars: {overrides} (ECS's limit: {task_contract.RUN_TASK_OVERRIDES_MAX_CHARS})")
    print(f"longest_overrides_chars_{MAX_TASKS_PER_REGION}_tasks_in_one_region: {overrides_one_region}")
    print(
        f"deployed function: registration_p50_ms {percentile(deployed['latencies'], 0.50):.1f},"
        f" registration_p99_ms {percentile(deployed['latencies'], 0.99):.1f}; refused: {deployed['refused']};"
        f" start decisions: {deployed['deciders']}; distinct starts seen by the polls: {deployed['starts']};"
        f" registered: {deployed['registered']}"
    )
    print(f"deployed_registration_p99_ms: {percentile(deployed['latencies'], 0.99):.1f}")
    handler_once = deciders == 1 and len(starts) == 1 and not refused and registered == len(tasks)
    deployed_once = deployed["deciders"] == 1 and deployed["starts"] == 1 and not deployed["refused"]
    started_once = min(registered, deployed["registered"]) if handler_once and deployed_once else 0
    print(measured_on())
    print(f"tasks_started_once: {started_once}")


if __name__ == "__main__":
    main()
