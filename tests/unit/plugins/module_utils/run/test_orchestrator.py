"""The orchestrator: its DynamoDB state (module_utils) and its Lambda handler, against moto.

The Lambda ships ``files/lambda/orchestrator.py`` and, beside it, ``plugins/module_utils/run`` as the
package ``run`` (its ``orchestrator_state``); the same files are imported the same way here, so the
tests exercise exactly what is deployed.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest
from botocore.exceptions import ClientError

REPO = Path(__file__).resolve().parents[5]
sys.path.append(str(REPO / "files" / "lambda"))

import orchestrator  # noqa: E402
from run import orchestrator_state  # noqa: E402
from aws import orchestrator_table  # noqa: E402

TABLE = "orchestrator-test"
REGION = "eu-central-1"
LEAD_SECONDS = 30
FIVE_REGIONS = ["us-east-2", "ap-northeast-1", "ca-central-1", "eu-west-1", "sa-east-1"]


@pytest.fixture
def dynamodb(moto):
    """A client of an emptied moto with the state table created and ACTIVE."""
    client = moto.client("dynamodb", REGION)
    orchestrator_table.create_table(client, TABLE, {"constellation:deployment": "test"})
    orchestrator_table.wait_for_table(client, TABLE, exists=True, timeout_seconds=10)
    return client


@pytest.fixture
def lambda_env(dynamodb, monkeypatch):
    """The Lambda's environment and client, as ``handler`` would find them in AWS."""
    monkeypatch.setenv("STATE_TABLE", TABLE)
    monkeypatch.setattr(orchestrator, "dynamodb_client", lambda: dynamodb)
    KEYS.clear()
    return dynamodb


# The token key of each run planned by a test, as ecs_load_tasks would read it.
KEYS: dict[str, bytes] = {}


def invoke(event) -> dict:
    """Call the Lambda entry point and check its answer survives JSON, as Lambda requires."""
    response = orchestrator.handler(event, None)
    assert json.loads(json.dumps(response)) == response
    return response


def plan(client, run_id: str, regions: dict[str, int], lead_seconds: int = LEAD_SECONDS) -> None:
    """Plan the run as run_test does (in DynamoDB: tasks cannot) and keep its token key."""
    KEYS[run_id] = orchestrator_state.reset_run(client, TABLE, run_id, regions, lead_seconds)


def task_event(event_type: str, run_id: str, region: str, task_id, **extra) -> dict:
    """An event of one task, with the token ecs_load_tasks gave it."""
    token = orchestrator_state.task_token(KEYS[run_id], run_id, region, task_id)
    return {"type": event_type, "run_id": run_id, "region": region, "task_id": task_id, "token": token, **extra}


def register(run_id: str, region: str, task_id) -> dict:
    return invoke(task_event("agg-record", run_id, region, task_id))


def poll(run_id: str, region: str, task_id) -> dict:
    return invoke(task_event("test-init", run_id, region, task_id))


def end(run_id: str, region: str, task_id, exit_code: int = 0, **extra) -> dict:
    return invoke(task_event("test-end", run_id, region, task_id, exit_code=exit_code, **extra))


def raw_item(client, run_id: str) -> dict:
    return client.get_item(TableName=TABLE, Key={"run_id": {"S": run_id}}, ConsistentRead=True)["Item"]


# ---------------------------------------------------------------------------------------------
# Start synchronization
# ---------------------------------------------------------------------------------------------


def test_concurrent_registrations_are_all_kept_and_decide_the_start_once(moto, lambda_env, monkeypatch):
    plan(lambda_env, "big", {region: 100 for region in FIVE_REGIONS})
    events = [
        task_event("agg-record", "big", region, str(task))
        for region in FIVE_REGIONS
        for task in range(100)
    ]
    # Retried registrations race the decision: each sees every task registered, and only the
    # conditional write keeps them from deciding a second start.
    shuffler = random.Random(7)
    events += shuffler.sample(events, 100)
    shuffler.shuffle(events)

    per_thread = threading.local()

    def thread_client():
        # boto3's default session is not thread-safe; each thread builds its own client.
        if not hasattr(per_thread, "client"):
            per_thread.client = boto3.session.Session().client("dynamodb", region_name=REGION, endpoint_url=moto.url)
        return per_thread.client

    monkeypatch.setattr(orchestrator, "dynamodb_client", thread_client)

    def call(event):
        before = orchestrator_state.now_ms()
        response = orchestrator.handler(event, None)
        return before, orchestrator_state.now_ms(), response

    with ThreadPoolExecutor(max_workers=32) as pool:
        calls = list(pool.map(call, events))

    responses = [call_result[2] for call_result in calls]
    assert all(response["ok"] for response in responses), [r for r in responses if not r["ok"]][:3]

    deciders = [(before, after, response) for before, after, response in calls if response["decided_start"]]
    assert len(deciders) == 1
    before, after, decision = deciders[0]
    start_at = decision["start_at"]
    assert before + LEAD_SECONDS * 1000 <= start_at <= after + LEAD_SECONDS * 1000
    assert decision["registered"] == decision["planned"] == 500
    assert len(responses) == 600
    assert {response["start_at"] for response in responses if response["state"]} == {start_at}

    run = orchestrator_state.read_run(lambda_env, TABLE, "big")
    assert run["registered_tasks"] == {region: [str(task) for task in range(100)] for region in FIVE_REGIONS}
    assert run["start_at"] == start_at
    assert poll("big", "sa-east-1", "99")["start_at"] == start_at


def test_test_init_reports_no_start_until_every_task_registered(lambda_env):
    plan(lambda_env, "small", {"us-east-2": 2, "eu-west-1": 1}, lead_seconds=5)
    register("small", "us-east-2", "0")
    register("small", "us-east-2", "1")
    register("small", "us-east-2", "1")  # a retried registration does not count twice

    waiting = poll("small", "us-east-2", "0")
    assert waiting["ok"] and waiting["state"] is False and waiting["start_at"] is None
    assert abs(waiting["server_time"] - time.time() * 1000) < 5000

    last = register("small", "eu-west-1", 0)
    assert last["decided_start"] and last["state"] and last["registered"] == 3

    started = poll("small", "us-east-2", "1")
    assert started["state"] is True
    assert started["start_at"] == last["start_at"]
    assert 0 < started["start_at"] - started["server_time"] <= 5000

    late_duplicate = register("small", "eu-west-1", "0")
    assert late_duplicate["decided_start"] is False and late_duplicate["start_at"] == last["start_at"]


def test_the_start_lead_is_the_plans(lambda_env):
    plan(lambda_env, "lead", {"us-east-2": 1}, lead_seconds=7)
    decided = register("lead", "us-east-2", "0")
    assert orchestrator_state.read_run(lambda_env, TABLE, "lead")["start_lead_seconds"] == 7
    assert 6000 < decided["start_at"] - orchestrator_state.now_ms() <= 7000


def test_two_callers_that_both_saw_the_run_complete_decide_one_start(dynamodb):
    key = orchestrator_state.reset_run(dynamodb, TABLE, "r", {"us-east-2": 1}, 30)
    orchestrator_state.register_task(dynamodb, TABLE, "r", "us-east-2", "0", orchestrator_state.task_token(key, "r", "us-east-2", 0))
    dynamodb.update_item(TableName=TABLE, Key={"run_id": {"S": "r"}}, UpdateExpression="REMOVE start_at")
    seen_by_both = orchestrator_state._get_run(dynamodb, TABLE, "r")

    first = orchestrator_state._decide_start(dynamodb, TABLE, seen_by_both)
    time.sleep(0.01)
    second = orchestrator_state._decide_start(dynamodb, TABLE, seen_by_both)

    assert first[1] is True and second == (first[0], False)
    assert int(raw_item(dynamodb, "r")["start_at"]["N"]) == first[0]


def test_start_is_not_written_into_a_run_reset_after_the_registration(dynamodb):
    orchestrator_state.reset_run(dynamodb, TABLE, "r", {"us-east-2": 1}, 30)
    stale = orchestrator_state._get_run(dynamodb, TABLE, "r")  # the incarnation a registration saw
    time.sleep(0.01)
    orchestrator_state.reset_run(dynamodb, TABLE, "r", {"us-east-2": 1}, 30)

    assert orchestrator_state._decide_start(dynamodb, TABLE, stale) == (None, False)
    assert "start_at" not in raw_item(dynamodb, "r")


# ---------------------------------------------------------------------------------------------
# Test end and region completion
# ---------------------------------------------------------------------------------------------


def test_duplicate_test_end_is_harmless_and_the_region_completes_once(lambda_env, monkeypatch):
    completed_regions = []
    monkeypatch.setattr(
        orchestrator, "on_region_complete", lambda run_id, region: completed_regions.append((run_id, region))
    )
    plan(lambda_env, "ends", {"us-east-2": 2, "eu-west-1": 1})

    first = end("ends", "us-east-2", "0", exit_code=0)
    assert first["ok"] and first["region_complete"] is False
    before = raw_item(lambda_env, "ends")

    duplicate = end("ends", "us-east-2", "0", exit_code=3)
    assert duplicate["ok"] and duplicate["region_complete"] is False and duplicate["completed"] == 1
    assert raw_item(lambda_env, "ends") == before  # same set, first exit code kept

    last = end("ends", "us-east-2", "1", exit_code=99)
    assert last["region_complete"] is True and last["region_completed_now"] is True
    again = end("ends", "us-east-2", "1", exit_code=99)
    assert again["region_complete"] is True and again["region_completed_now"] is False
    assert completed_regions == [("ends", "us-east-2")]

    run = orchestrator_state.read_run(lambda_env, TABLE, "ends")
    assert run["completed_tasks"] == {"us-east-2": ["0", "1"], "eu-west-1": []}
    assert run["completed_regions"] == ["us-east-2"]
    assert run["exit_codes"] == {"us-east-2": {"0": 0, "1": 99}, "eu-west-1": {}}


def test_started_at_and_thresholds_are_kept_as_first_reported(lambda_env):
    plan(lambda_env, "k6", {"us-east-2": 2, "eu-west-1": 1})
    assert orchestrator_state.read_run(lambda_env, TABLE, "k6")["start_skew_ms"] is None
    now = orchestrator_state.now_ms()
    verdicts = {
        "http_req_duration{region:us-east-2}": {"p(95)<500": True, "p(99)<900": False},
        "checks": {"rate>0.9": True},
    }

    assert end("k6", "us-east-2", "0", exit_code=99, started_at=now + 40, thresholds=verdicts)["ok"]
    assert orchestrator_state.read_run(lambda_env, TABLE, "k6")["start_skew_ms"] == 0
    duplicate = end("k6", "us-east-2", "0", exit_code=0, started_at=now + 5, thresholds={"checks": {"rate>0.9": False}})
    assert duplicate["ok"]
    assert end("k6", "us-east-2", "1", started_at=now)["ok"]
    assert end("k6", "eu-west-1", "0")["ok"]  # k6 never resumed: no start, no verdicts

    run = orchestrator_state.read_run(lambda_env, TABLE, "k6")
    assert run["started_at"] == {"us-east-2": {"0": now + 40, "1": now}, "eu-west-1": {}}
    assert run["start_skew_ms"] == 40
    assert run["task_thresholds"] == {"us-east-2": {"0": verdicts}, "eu-west-1": {}}
    assert run["thresholds_truncated"] == {"us-east-2": [], "eu-west-1": []}
    assert run["exit_codes"]["us-east-2"] == {"0": 99, "1": 0}

    plan(lambda_env, "k6", {"us-east-2": 2, "eu-west-1": 1})
    fresh = orchestrator_state.read_run(lambda_env, TABLE, "k6")
    assert fresh["started_at"] == fresh["task_thresholds"] == {"us-east-2": {}, "eu-west-1": {}}
    assert end("k6", "us-east-2", "1", started_at=now + 7, thresholds={"checks": {"rate>0.9": True}})["ok"]
    assert orchestrator_state.read_run(lambda_env, TABLE, "k6")["started_at"]["us-east-2"] == {"1": now + 7}


def test_each_tasks_accounting_is_kept_as_first_reported(lambda_env):
    plan(lambda_env, "counts", {"us-east-2": 2, "eu-west-1": 1})
    now = orchestrator_state.now_ms()
    counts = {
        "k6_requests": 1561, "requests_received": 1561, "requests_written": 1272, "records_lost": 3,
        "store_retries": 2, "ended_at": now + 20_000,
    }
    assert end("counts", "us-east-2", "0", started_at=now, accounting=counts)["ok"]
    assert end("counts", "us-east-2", "0", accounting={"k6_requests": 1})["ok"]  # a repeated end changes nothing
    assert end("counts", "us-east-2", "1", exit_code=87, accounting={"k6_requests": 386})["ok"]  # the aggregator never answered
    assert end("counts", "eu-west-1", "0")["ok"]  # a task of an earlier image reports none

    run = orchestrator_state.read_run(lambda_env, TABLE, "counts")
    assert run["accounting"] == {"us-east-2": {"0": counts, "1": {"k6_requests": 386}}, "eu-west-1": {}}
    item = raw_item(lambda_env, "counts")
    assert set(item["accounting"]["M"]["us-east-2#0"]["M"]) == set("kawlre"), "stored under one-letter names"


def test_test_end_fills_in_maps_missing_from_a_run_reset_by_an_earlier_version(dynamodb):
    key = orchestrator_state.reset_run(dynamodb, TABLE, "old", {"us-east-2": 1}, 30)
    dynamodb.update_item(
        TableName=TABLE, Key={"run_id": {"S": "old"}}, UpdateExpression="REMOVE started_at, task_thresholds, accounting"
    )
    token, now = orchestrator_state.task_token(key, "old", "us-east-2", 0), orchestrator_state.now_ms()

    orchestrator_state.record_test_end(
        dynamodb, TABLE, "old", "us-east-2", "0", token, 0, now, {"checks": {"rate>0.9": True}}, {"k6_requests": 9}
    )

    run = orchestrator_state.read_run(dynamodb, TABLE, "old")
    assert run["accounting"] == {"us-east-2": {"0": {"k6_requests": 9}}}
    assert run["started_at"] == {"us-east-2": {"0": now}} and run["completed_regions"] == ["us-east-2"]
    assert run["task_thresholds"] == {"us-east-2": {"0": {"checks": {"rate>0.9": True}}}}


def test_verdicts_of_a_run_reset_meanwhile_are_not_written(dynamodb):
    orchestrator_state.reset_run(dynamodb, TABLE, "r", {"us-east-2": 1}, 30)
    stale = orchestrator_state._get_run(dynamodb, TABLE, "r")
    time.sleep(0.01)
    orchestrator_state.reset_run(dynamodb, TABLE, "r", {"us-east-2": 1}, 30)

    orchestrator_state._store_task_thresholds(
        dynamodb, TABLE, stale, "us-east-2#0", {"checks": {"rate>0.9": True}}, True
    )

    item = raw_item(dynamodb, "r")
    assert item["task_thresholds"] == {"M": {}} and "thresholds_truncated" not in item


# Far more than one task may store: 60 verdicts, most named near the length cap, 3 short failures.
MANY_VERDICTS = {
    **{
        f"http_req_duration{{name:{'n' * 150}-{metric}}}": {f"p({p})<{'9' * 150}": p != 90 for p in (90, 95, 99)}
        for metric in range(19)
    },
    "checks": {"rate>0.9": False, "rate>0.5": True, "rate>0.99": False},
}


def test_a_task_of_a_large_run_keeps_its_failed_verdicts_and_is_flagged(dynamodb):
    key = orchestrator_state.reset_run(dynamodb, TABLE, "wide", {"us-east-2": 200, "eu-west-1": 200}, 30)

    for task in ("0", "7"):
        token = orchestrator_state.task_token(key, "wide", "eu-west-1", task)
        orchestrator_state.record_test_end(
            dynamodb, TABLE, "wide", "eu-west-1", task, token, 99, orchestrator_state.now_ms(), MANY_VERDICTS
        )

    run = orchestrator_state.read_run(dynamodb, TABLE, "wide")
    assert run["thresholds_truncated"] == {"us-east-2": [], "eu-west-1": ["0", "7"]}
    expected = orchestrator_state.fit_thresholds(MANY_VERDICTS, orchestrator_state.thresholds_budget_bytes(400))[0]
    assert expected == {"checks": {"rate>0.9": False, "rate>0.99": False, "rate>0.5": True}}  # long names do not fit
    assert run["task_thresholds"]["eu-west-1"] == {"0": expected, "7": expected}


def dynamodb_size(value: dict) -> int:
    """The size DynamoDB bills for an attribute value of names, BOOLs and maps (its documented rules)."""
    if "BOOL" in value:
        return 1
    return 3 + sum(len(name.encode()) + dynamodb_size(inner) + 1 for name, inner in value["M"].items())


@pytest.mark.parametrize("planned_tasks", [1, 32, 400, 1000])
def test_the_verdicts_of_every_task_together_stay_within_the_item_budget(planned_tasks):
    budget = orchestrator_state.thresholds_budget_bytes(planned_tasks)
    kept, truncated = orchestrator_state.fit_thresholds(MANY_VERDICTS, budget)

    assert truncated and kept
    assert dynamodb_size(orchestrator_state._thresholds_value(kept)) - 3 <= budget
    assert budget * planned_tasks <= orchestrator_state.THRESHOLDS_ITEM_BUDGET_BYTES < 200_000


def test_fit_thresholds_keeps_failures_first_and_drops_what_does_not_fit():
    verdicts = {"b": {"p(95)<1": True, "x" * 201: False}, "a": {"count>0": True, "rate<1": False}}

    assert orchestrator_state.fit_thresholds(verdicts, 1000) == (
        {"a": {"count>0": True, "rate<1": False}, "b": {"p(95)<1": True}},
        True,
    )
    assert orchestrator_state.fit_thresholds(verdicts, len("a") + 4 + len("rate<1") + 2) == (
        {"a": {"rate<1": False}},
        True,
    )
    many = {"m": {f"count>{n}": True for n in range(orchestrator_state.MAX_THRESHOLDS_PER_TASK + 1)}}
    kept, truncated = orchestrator_state.fit_thresholds(many, 10_000)
    assert len(kept["m"]) == orchestrator_state.MAX_THRESHOLDS_PER_TASK and truncated
    assert orchestrator_state.fit_thresholds({"a": {"count>0": True}}, 100) == ({"a": {"count>0": True}}, False)
    assert orchestrator_state.fit_thresholds({}, 0) == ({}, False)


def test_region_complete_hook_is_logged_as_json(lambda_env, capsys):
    plan(lambda_env, "hook", {"eu-west-1": 1})
    capsys.readouterr()

    assert end("hook", "eu-west-1", "0")["region_completed_now"]

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {"level": "info", "message": "region_complete", "run_id": "hook", "region": "eu-west-1"} in lines


# ---------------------------------------------------------------------------------------------
# Reset and isolation of runs
# ---------------------------------------------------------------------------------------------


def test_reset_of_one_run_leaves_other_runs_untouched(lambda_env):
    plan(lambda_env, "run-a", {"us-east-2": 2})
    register("run-a", "us-east-2", "0")
    end("run-a", "us-east-2", "0", exit_code=0)
    run_a = raw_item(lambda_env, "run-a")

    plan(lambda_env, "run-b", {"eu-west-1": 1})
    register("run-b", "eu-west-1", "0")
    plan(lambda_env, "run-b", {"eu-west-1": 3})

    assert raw_item(lambda_env, "run-a") == run_a
    run_b = orchestrator_state.read_run(lambda_env, TABLE, "run-b")
    assert run_b["regions"] == {"eu-west-1": 3}
    assert run_b["registered_tasks"] == {"eu-west-1": []} and run_b["start_at"] is None


def test_list_and_delete_runs(dynamodb):
    orchestrator_state.reset_run(dynamodb, TABLE, "b", {"us-east-2": 1}, 30)
    orchestrator_state.reset_run(dynamodb, TABLE, "a", {"eu-west-1": 2}, 30)

    assert [run["run_id"] for run in orchestrator_state.list_runs(dynamodb, TABLE)] == ["a", "b"]
    assert orchestrator_state.delete_run(dynamodb, TABLE, "a") is True
    assert orchestrator_state.delete_run(dynamodb, TABLE, "a") is False
    assert [run["run_id"] for run in orchestrator_state.list_runs(dynamodb, TABLE)] == ["b"]


# ---------------------------------------------------------------------------------------------
# Malformed events: an error naming the field and the value, never an exception
# ---------------------------------------------------------------------------------------------

VALID = "(the token of task 0 of us-east-2 in run 'plan')"  # replaced by the real one in the test
TASK = {"run_id": "plan", "region": "us-east-2", "task_id": "0", "token": VALID}
REGISTER = {"type": "agg-record", **TASK}
TEST_END = {"type": "test-end", **TASK, "exit_code": 0}
MALFORMED_EVENTS = [
    pytest.param(["agg-record"], ["event must be a JSON object", "list"], id="not-a-dict"),
    pytest.param(None, ["event must be a JSON object", "None"], id="none"),
    pytest.param({"run_id": "plan"}, ["'type' is missing", "agg-record"], id="missing-type"),
    pytest.param({"type": "start-now", "run_id": "plan"}, ["'type'", "'start-now'"], id="unknown-type"),
    pytest.param({"type": ["test-init"]}, ["'type'", "['test-init']"], id="type-not-a-string"),
    pytest.param({"type": "test-init"}, ["'run_id' is missing"], id="missing-run-id"),
    pytest.param({**REGISTER, "run_id": 42}, ["run_id", "42"], id="run-id-not-a-string"),
    pytest.param({**REGISTER, "run_id": "r" * 65}, ["run_id", "1 to 64"], id="run-id-too-long"),
    pytest.param({"type": "test-init", **TASK, "run_id": "nope"}, ["run 'nope' does not exist"], id="unknown-run-init"),
    pytest.param({**REGISTER, "run_id": "nope"}, ["run 'nope' does not exist"], id="unknown-run-record"),
    pytest.param({key: value for key, value in REGISTER.items() if key != "region"}, ["'region' is missing"], id="missing-region"),
    pytest.param({**REGISTER, "region": ""}, ["region", "''"], id="empty-region"),
    pytest.param({**REGISTER, "region": "eu-west-3"}, ["region 'eu-west-3' is not in the plan", "us-east-2"], id="region-not-in-plan"),
    pytest.param({**REGISTER, "task_id": "2"}, ["task_id '2' is out of range", "0..1"], id="task-id-out-of-range"),
    pytest.param({**REGISTER, "task_id": "01"}, ["task_id", "'01'"], id="task-id-not-canonical"),
    pytest.param({**REGISTER, "task_id": -1}, ["task_id", "-1"], id="task-id-negative"),
    pytest.param({**REGISTER, "task_id": True}, ["task_id", "True"], id="task-id-bool"),
    pytest.param({**REGISTER, "task_id": "1" * 6}, ["task_id", "'111111'"], id="task-id-too-long"),
    pytest.param({key: value for key, value in REGISTER.items() if key != "task_id"}, ["'task_id' is missing"], id="missing-task-id"),
    pytest.param({key: value for key, value in REGISTER.items() if key != "token"}, ["'token' is missing"], id="missing-token"),
    pytest.param({**REGISTER, "token": 7}, ["token must be", "7"], id="token-not-a-string"),
    pytest.param({key: value for key, value in TEST_END.items() if key != "exit_code"}, ["'exit_code' is missing"], id="missing-exit-code"),
    pytest.param({**TEST_END, "exit_code": "0"}, ["'exit_code' must be an integer", "'0'"], id="exit-code-not-an-integer"),
    pytest.param({**TEST_END, "exit_code": 256}, ["exit_code must be an integer from 0 to 255", "256"], id="exit-code-out-of-range"),
    pytest.param({**TEST_END, "task_id": "5"}, ["task_id '5' is out of range"], id="test-end-task-out-of-range"),
    pytest.param({**TEST_END, "started_at": "1"}, ["started_at must be epoch milliseconds", "'1'"], id="started-at-not-an-integer"),
    pytest.param({**TEST_END, "started_at": True}, ["started_at", "True"], id="started-at-bool"),
    pytest.param({**TEST_END, "started_at": 5}, ["started_at", "within a day of now", "5"], id="started-at-long-ago"),
    pytest.param({**TEST_END, "thresholds": []}, ["thresholds must be a mapping", "[]"], id="thresholds-not-a-mapping"),
    pytest.param(
        {**TEST_END, "thresholds": {"checks": ["rate>0.9"]}},
        ["thresholds['checks'] must be a mapping", "['rate>0.9']"],
        id="threshold-expressions-not-a-mapping",
    ),
    pytest.param(
        {**TEST_END, "thresholds": {"checks": {"rate>0.9": "yes"}}},
        ["thresholds['checks']['rate>0.9'] must be true (passed) or false", "'yes'"],
        id="threshold-verdict-not-a-bool",
    ),
    pytest.param(
        {**TEST_END, "thresholds": {"checks": {"": True}}},
        ["thresholds['checks']: an expression must be a non-empty string", "''"],
        id="threshold-expression-empty",
    ),
    pytest.param({**TEST_END, "accounting": [1]}, ["accounting must be a mapping", "[1]"], id="accounting-not-a-mapping"),
    pytest.param({**TEST_END, "accounting": {"served": 3}}, ["accounting has an unknown field", "'served'", "k6_requests"], id="accounting-unknown-field"),
    pytest.param({**TEST_END, "accounting": {"k6_requests": -1}}, ["accounting.k6_requests must be an integer", "-1"], id="accounting-negative"),
    pytest.param({**TEST_END, "accounting": {"records_lost": 1.5}}, ["accounting.records_lost", "1.5"], id="accounting-not-an-integer"),
    pytest.param({**TEST_END, "accounting": {"store_retries": True}}, ["accounting.store_retries", "True"], id="accounting-bool"),
    pytest.param({**TEST_END, "accounting": {"ended_at": 5}}, ["accounting.ended_at must be epoch milliseconds", "5"], id="accounting-ended-long-ago"),
    # Hostile: what a task (or a script that got hold of the task's credentials) might try.
    pytest.param({"type": "test-reset", "run_id": "plan", "regions": {"us-east-2": 1}}, ["'type'", "'test-reset'"], id="reset"),
    pytest.param({**REGISTER, "token": "forged"}, ["token does not prove task 0 of region us-east-2"], id="forged-token"),
    pytest.param({**TEST_END, "exit_code": 0, "token": "x" * 43}, ["token does not prove"], id="forged-end"),
    pytest.param({**REGISTER, "region": "x" * 10_000}, ["region", "..."], id="huge-field"),
    pytest.param({**TEST_END, "padding": "x" * 1_000_000}, ["event is", "over the limit of 65536"], id="one-megabyte"),
]


@pytest.mark.parametrize("event, expected", MALFORMED_EVENTS)
def test_malformed_or_hostile_event_is_refused_shortly_naming_field_and_value(lambda_env, event, expected, capsys):
    key = orchestrator_state.reset_run(lambda_env, TABLE, "plan", {"us-east-2": 2}, LEAD_SECONDS)
    if isinstance(event, dict) and event.get("token") == VALID:
        event = {**event, "token": orchestrator_state.task_token(key, "plan", "us-east-2", "0")}
    before = raw_item(lambda_env, "plan")

    response = invoke(event)

    assert response["ok"] is False
    for fragment in expected:
        assert fragment in response["error"]
    assert len(response["error"]) < 300, "an answer never echoes unbounded input"
    assert raw_item(lambda_env, "plan") == before
    assert orchestrator_state.task_token(key, "plan", "us-east-2", "0") not in capsys.readouterr().out


def test_a_task_speaks_only_for_itself_in_its_own_run(lambda_env):
    plan(lambda_env, "mine", {"us-east-2": 2})
    plan(lambda_env, "other", {"us-east-2": 2})
    own = task_event("test-end", "mine", "us-east-2", "0", exit_code=0)
    before = {run_id: raw_item(lambda_env, run_id) for run_id in ("mine", "other")}

    as_task_1 = invoke({**own, "task_id": "1"})  # its token, another task's name
    in_other_run = invoke({**own, "run_id": "other"})  # its token, another run
    assert not as_task_1["ok"] and "does not prove task 1 of region us-east-2 in run mine" in as_task_1["error"]
    assert not in_other_run["ok"] and "does not prove task 0 of region us-east-2 in run other" in in_other_run["error"]
    assert {run_id: raw_item(lambda_env, run_id) for run_id in ("mine", "other")} == before

    # The real task 1 reports exit 99: a forged exit 0 before it would have won ("first report wins").
    assert end("mine", "us-east-2", "1", exit_code=99)["ok"]
    assert orchestrator_state.read_run(lambda_env, TABLE, "mine")["exit_codes"]["us-east-2"] == {"1": 99}


def test_a_plan_voids_the_tokens_of_the_run_planned_before_under_that_id(lambda_env):
    plan(lambda_env, "again", {"us-east-2": 1})
    stale = task_event("agg-record", "again", "us-east-2", "0")
    plan(lambda_env, "again", {"us-east-2": 1})

    refused = invoke(stale)

    assert not refused["ok"] and "does not prove" in refused["error"]
    assert register("again", "us-east-2", "0")["ok"]


def test_a_run_planned_without_tokens_is_refused_with_what_to_do(lambda_env):
    plan(lambda_env, "old", {"us-east-2": 1})
    lambda_env.update_item(TableName=TABLE, Key={"run_id": {"S": "old"}}, UpdateExpression="REMOVE token_key")

    refused = register("old", "us-east-2", "0")

    assert not refused["ok"] and "planned without task tokens" in refused["error"] and "plan it again" in refused["error"]


def test_the_lead_time_and_the_start_are_bounded(lambda_env):
    with pytest.raises(orchestrator_state.OrchestratorStateError, match="0 to 3600, got 1000000"):
        orchestrator_state.reset_run(lambda_env, TABLE, "far", {"us-east-2": 1}, 10**6)
    plan(lambda_env, "near", {"us-east-2": 1}, lead_seconds=orchestrator_state.MAX_START_LEAD_SECONDS)
    decided = register("near", "us-east-2", "0")
    assert decided["start_at"] - orchestrator_state.now_ms() <= orchestrator_state.MAX_START_LEAD_SECONDS * 1000


def test_a_lost_answer_to_the_completing_registration_cannot_stall_the_run(lambda_env, monkeypatch):
    plan(lambda_env, "lost", {"us-east-2": 2, "eu-west-1": 1})
    assert register("lost", "us-east-2", "0")["ok"] and register("lost", "us-east-2", "1")["ok"]
    decide = orchestrator_state._decide_start

    def throttled_once(client, table, run):
        monkeypatch.setattr(orchestrator_state, "_decide_start", decide)
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateItem")

    monkeypatch.setattr(orchestrator_state, "_decide_start", throttled_once)
    completing = register("lost", "eu-west-1", "0")
    assert not completing["ok"] and completing["retryable"] is True  # the caller may try again
    assert orchestrator_state.read_run(lambda_env, TABLE, "lost")["start_at"] is None

    polled = poll("lost", "us-east-2", "0")  # any task's next poll decides it

    assert polled["ok"] and polled["state"] is True and polled["decided_start"] is True
    retried = register("lost", "eu-west-1", "0")  # the retried registration learns the same start
    assert retried["ok"] and retried["decided_start"] is False and retried["start_at"] == polled["start_at"]


def test_missing_table_is_an_error_response(lambda_env, monkeypatch):
    monkeypatch.setenv("STATE_TABLE", "no-such-table")
    response = invoke({"type": "test-init", **TASK})
    assert response == {
        "ok": False,
        "error": "orchestrator state table 'no-such-table' does not exist;"
        " create it with constellation.loadtest.orchestrator_state",
    }


def test_unset_state_table_is_an_error_response(lambda_env, monkeypatch):
    monkeypatch.delenv("STATE_TABLE")
    response = invoke({"type": "test-init", **TASK})
    assert response["ok"] is False and "STATE_TABLE" in response["error"]


def test_client_that_cannot_be_built_is_an_error_response(lambda_env, monkeypatch):
    from botocore.exceptions import NoRegionError

    def no_region():
        raise NoRegionError()

    monkeypatch.setattr(orchestrator, "dynamodb_client", no_region)
    response = invoke({"type": "test-init", **TASK})
    assert response["ok"] is False and "region" in response["error"]


def test_aws_error_is_an_error_response(lambda_env, monkeypatch, capsys):
    from botocore.exceptions import ClientError

    def throttled(*args, **kwargs):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "GetItem")

    monkeypatch.setattr(orchestrator_state, "start_state", throttled)
    response = invoke({"type": "test-init", **TASK})
    assert response["ok"] is False and "ThrottlingException" in response["error"] and response["retryable"] is True
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["message"] == "aws_error"


def test_unexpected_exception_is_an_error_response(lambda_env, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(orchestrator_state, "register_task", broken)
    response = invoke(REGISTER)
    assert response == {"ok": False, "error": "internal error: RuntimeError('boom')"}


# ---------------------------------------------------------------------------------------------
# Plan and task checks (no AWS)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "regions, fragment",
    [
        ({}, "non-empty mapping"),
        ("us-east-2", "non-empty mapping"),
        ({"us-east-2": -1}, "regions['us-east-2'] must be a positive integer task count, got -1"),
        ({"us-east-2": 1.5}, "got 1.5"),
        ({"us-east-2": True}, "got True"),
        ({"": 1}, "region must be a string of 1 to 32 characters"),
        ({"us#east": 1}, "without '#'"),
    ],
)
def test_validate_plan_rejects(regions, fragment):
    with pytest.raises(orchestrator_state.OrchestratorStateError) as error:
        orchestrator_state.validate_plan(regions)
    assert fragment in str(error.value)


def test_validate_plan_accepts_positive_counts():
    assert orchestrator_state.validate_plan({"us-east-2": 1, "eu-west-1": 500}) == {"us-east-2": 1, "eu-west-1": 500}


@pytest.mark.parametrize("task_id, canonical", [(0, "0"), ("0", "0"), (17, "17"), ("17", "17")])
def test_normalize_task_id_accepts(task_id, canonical):
    assert orchestrator_state.normalize_task_id(task_id) == canonical


@pytest.mark.parametrize("task_id", ["", "-1", "01", "1.0", " 1", -1, 1.0, None, False])
def test_normalize_task_id_rejects(task_id):
    with pytest.raises(orchestrator_state.OrchestratorStateError, match="task_id must be the decimal index"):
        orchestrator_state.normalize_task_id(task_id)


def test_check_task_in_plan():
    plan = {"us-east-2": 3}
    orchestrator_state.check_task_in_plan(plan, "r", "us-east-2", "2")
    with pytest.raises(orchestrator_state.OrchestratorStateError, match=r"task_id '3' is out of range .* 0\.\.2"):
        orchestrator_state.check_task_in_plan(plan, "r", "us-east-2", "3")
    with pytest.raises(orchestrator_state.OrchestratorStateError, match="region 'eu-west-1' is not in the plan"):
        orchestrator_state.check_task_in_plan(plan, "r", "eu-west-1", "0")


@pytest.mark.parametrize("name", ["ab", "has space", "x" * 256, "slash/name"])
def test_validate_table_name_rejects(name):
    with pytest.raises(orchestrator_state.OrchestratorStateError, match="table name must be 3 to 255"):
        orchestrator_state.validate_table_name(name)


def test_task_keys_round_trip():
    assert orchestrator_state.split_task_key(orchestrator_state.task_key("us-east-2", "12")) == ("us-east-2", "12")


def test_iso8601_utc():
    assert orchestrator_state.iso8601_utc(1748779260000) == "2025-06-01T12:01:00.000Z"
    assert orchestrator_state.iso8601_utc(None) is None


# ---------------------------------------------------------------------------------------------
# The orchestrator_state module's run decision (force_reset needs registrations, which only the
# Lambda makes, so it is tested here rather than in the integration target)
# ---------------------------------------------------------------------------------------------


def test_a_run_is_active_from_its_plan_until_ended_or_expired(dynamodb):
    """What the task roles are granted (run_grants): the runs active now, with their regions."""
    orchestrator_state.reset_run(dynamodb, TABLE, "a", {"us-east-2": 1, "eu-west-1": 2}, 5, active_seconds=600)
    orchestrator_state.reset_run(dynamodb, TABLE, "b", {"us-east-2": 1}, 5, active_seconds=600)
    orchestrator_state.reset_run(dynamodb, TABLE, "expired", {"us-east-2": 1}, 5, active_seconds=1)
    dynamodb.update_item(  # planned an hour ago, active for a second
        TableName=TABLE, Key={"run_id": {"S": "expired"}}, UpdateExpression="SET active_until = :t",
        ExpressionAttributeValues={":t": {"N": str(orchestrator_state.now_ms() - 3_600_000)}},
    )
    assert orchestrator_state.active_runs(dynamodb, TABLE) == {"a": ["eu-west-1", "us-east-2"], "b": ["us-east-2"]}
    assert orchestrator_state.read_run(dynamodb, TABLE, "a")["active"] is True
    assert orchestrator_state.read_run(dynamodb, TABLE, "expired")["active"] is False

    assert orchestrator_state.end_run(dynamodb, TABLE, "a") is True
    assert orchestrator_state.end_run(dynamodb, TABLE, "a") is False  # once
    assert orchestrator_state.end_run(dynamodb, TABLE, "expired") is False
    assert orchestrator_state.active_runs(dynamodb, TABLE) == {"b": ["us-east-2"]}
    assert orchestrator_state.read_run(dynamodb, TABLE, "a")["active"] is False
    with pytest.raises(orchestrator_state.RunNotFoundError):
        orchestrator_state.end_run(dynamodb, TABLE, "missing")


@pytest.mark.parametrize("seconds", [0, -1, 7 * 24 * 3600 + 1, "600", True, None])
def test_the_active_time_is_bounded(dynamodb, seconds):
    with pytest.raises(orchestrator_state.OrchestratorStateError, match="active_seconds must be an integer from 1 to 604800"):
        orchestrator_state.reset_run(dynamodb, TABLE, "a", {"us-east-2": 1}, 5, active_seconds=seconds)
    assert orchestrator_state.active_runs(dynamodb, TABLE) == {}


def _module(check_mode=False, **params):
    defaults = {"name": TABLE, "run_id": "m", "force_reset": False, "active_seconds": 7200}
    return SimpleNamespace(check_mode=check_mode, params={**defaults, **params})


@pytest.mark.parametrize("check_mode", [False, True])
def test_module_force_reset_discards_progress_only_when_there_is_some(dynamodb, check_mode):
    from ansible_collections.constellation.loadtest.plugins.modules import orchestrator_state as module_code

    state = module_code.orchestrator_state
    desired = {"regions": {"us-east-2": 2}, "start_lead_seconds": 30}
    key = state.reset_run(dynamodb, TABLE, "m", desired["regions"], 30)

    changed = module_code.ensure_run(_module(check_mode, force_reset=True), dynamodb, desired, table_exists=True)[0]
    assert changed is False

    state.register_task(dynamodb, TABLE, "m", "us-east-2", "1", state.task_token(key, "m", "us-east-2", 1))
    changed = module_code.ensure_run(_module(check_mode), dynamodb, desired, table_exists=True)[0]
    assert changed is False

    changed, run, diff = module_code.ensure_run(
        _module(check_mode, force_reset=True), dynamodb, desired, table_exists=True
    )
    assert changed is True
    assert diff["before"]["registered_tasks"] == 1 and diff["after"]["registered_tasks"] == 0
    registered = state.read_run(dynamodb, TABLE, "m")["registered_tasks"]["us-east-2"]
    assert registered == (["1"] if check_mode else [])
    assert run["registered_tasks"]["us-east-2"] == registered


def test_a_stop_is_set_once_and_every_task_poll_sees_it(lambda_env):
    plan(lambda_env, "halt", {"us-east-2": 1})
    assert poll("halt", "us-east-2", "0")["stop"] is None

    first, changed = orchestrator_state.stop_run(lambda_env, TABLE, "halt", "aborted", "http_req_failed rate<0.01")
    later, changed_again = orchestrator_state.stop_run(lambda_env, TABLE, "halt", "stopped", "by a user")

    assert changed is True and changed_again is False and later == first  # the first stop is kept
    assert poll("halt", "us-east-2", "0")["stop"] == {"at": first["at"], "reason": "aborted", "detail": "http_req_failed rate<0.01"}
    assert orchestrator_state.read_run(lambda_env, TABLE, "halt")["stop"]["at_iso8601"].endswith("Z")
    with pytest.raises(orchestrator_state.RunNotFoundError):
        orchestrator_state.stop_run(lambda_env, TABLE, "never", "stopped")
    with pytest.raises(orchestrator_state.OrchestratorStateError, match="reason must be one of stopped, aborted"):
        orchestrator_state.stop_run(lambda_env, TABLE, "halt", "paused")
