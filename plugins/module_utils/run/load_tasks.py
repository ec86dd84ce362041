# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The load generator tasks of one test run on ECS Fargate: find, launch, stop, summarize (their
cluster is ``ecs_cluster``).

A run's tasks are found by ``startedBy`` (the run id) and told apart by the tag
``constellation:task-index``. Every planned index is started at most once per run: a task that
ran, running or stopped, is never started again, so a task that died is not replaced by one that
would run its share of the load a second time.

The client passed in is an amazon.aws client wrapped with ``AWSRetry.jittered_backoff`` (calls
carry ``aws_retry=True``), which retries throttling and server errors. Capacity shortages are not
errors for RunTask but entries in its ``failures``; :data:`placement_retry` retries those, and
RunTask's refusal of a task role that IAM has not propagated yet (the roles of a new region are
created moments before its tasks start).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any
from typing import Callable

try:
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.cloud import CloudRetry

from ..results import progress
from . import orchestrator_state
from .task_contract import LOAD_GENERATOR
from .task_contract import TASK_TOKEN_VARIABLE
from .task_contract import run_task_overrides

RUN_ID_TAG = "constellation:run-id"
TASK_INDEX_TAG = "constellation:task-index"

# The run id is the tasks' startedBy (at most 128 letters, digits, hyphens, underscores and
# slashes) and part of S3 keys: keep it to characters that are safe in both.

PENDING_STATUSES = frozenset({"PROVISIONING", "PENDING", "ACTIVATING"})
RUNNING_STATUSES = frozenset({"RUNNING"})
# DEACTIVATING, STOPPING, DEPROVISIONING, STOPPED: the containers have exited or are exiting.

# ECS accepts at most 100 tasks per DescribeTasks call.
_DESCRIBE_BATCH = 100
# Reasons RunTask gives in `failures` for a shortage that passes: worth trying again later.
_RETRYABLE_PLACEMENT_REASONS = ("capacity is unavailable", "resource:eni", "unable to assume the role")
# RunTask refuses a task role IAM has not propagated yet, seconds after CreateRole:
# "ECS was unable to assume the role '...' that was provided for this task."
_ROLE_NOT_YET_ASSUMABLE = "unable to assume the role"


class EcsLoadTaskError(Exception):
    """A failure the user can act on; the message says what and where."""


class TaskNotPlaced(Exception):
    """RunTask answered without a task, with the reason in its ``failures``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PlacementRetry(CloudRetry):
    """amazon.aws's backoff, applied to RunTask's capacity failures instead of error codes."""

    base_class = TaskNotPlaced

    @staticmethod
    def status_code_from_exception(error: TaskNotPlaced) -> str:
        return error.reason

    @staticmethod
    def found(response_code: str, catch_extra_error_codes=None) -> bool:
        reason = response_code.lower()
        return any(retryable in reason for retryable in _RETRYABLE_PLACEMENT_REASONS)


# About three minutes at most per task before a capacity shortage fails the launch.
placement_retry = PlacementRetry.jittered_backoff(retries=8, delay=2, backoff=2.0, max_delay=40)


def validate_run_id(run_id: str) -> str:
    try:
        return progress.validate_run_id(run_id)
    except ValueError as error:
        raise EcsLoadTaskError(str(error)) from None


def find_tasks(client, cluster: str, run_id: str | None) -> list[dict[str, Any]]:
    """Every task of the run (of the whole cluster without a run id), running or stopped, with tags."""
    arns: list[str] = []
    for desired_status in ("RUNNING", "STOPPED"):
        query = {"cluster": cluster, "desiredStatus": desired_status}
        if run_id is not None:
            query["startedBy"] = run_id
        arns.extend(client.get_paginator("list_tasks").paginate(**query).build_full_result()["taskArns"])
    tasks: list[dict[str, Any]] = []
    for start in range(0, len(arns), _DESCRIBE_BATCH):
        batch = sorted(set(arns[start:start + _DESCRIBE_BATCH]))
        tasks.extend(client.describe_tasks(cluster=cluster, tasks=batch, include=["TAGS"], aws_retry=True)["tasks"])
    return by_index(tasks)


def by_index(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks in task index order; tasks without an index last."""
    return sorted(tasks, key=lambda task: (task_index(task) is None, task_index(task) or 0, task["taskArn"]))


def task_index(task: dict[str, Any]) -> int | None:
    """The planned index of a task, from its tag; None for a task this collection did not start."""
    for tag in task.get("tags", []):
        if tag["key"] == TASK_INDEX_TAG and tag["value"].isdigit():
            return int(tag["value"])
    return None


def missing_indexes(tasks: list[dict[str, Any]], count: int, registered: list[int] = ()) -> list[int]:
    """The planned indexes 0..count-1 that no task of the run has had yet.

    `registered` are indexes known to have run from elsewhere (the orchestrator): ECS lists a
    stopped task for about an hour only, so they count as started even when ECS forgot them.
    """
    started = {task_index(task) for task in tasks} | set(registered)
    return [index for index in range(count) if index not in started]


def with_task_token(
    environment: dict[str, dict[str, str]], token_key: bytes, run_id: str, region: str, index: int
) -> dict[str, dict[str, str]]:
    """A task's container environments plus, for its load generator only, its orchestrator token.

    The token (``orchestrator_state.task_token``) lets the task register, learn the start and
    report its own end, and nothing else; it is derived here, at launch, so no playbook
    variable or module result ever holds it.
    """
    token = orchestrator_state.task_token(token_key, run_id, region, index)
    return {**environment, LOAD_GENERATOR: {**environment.get(LOAD_GENERATOR, {}), TASK_TOKEN_VARIABLE: token}}


def run_task_request(
    *,
    cluster: str,
    task_definition: str,
    run_id: str,
    index: int,
    environment: dict[str, dict[str, str]],
    subnets: list[str],
    security_groups: list[str],
    assign_public_ip: bool,
    tags: dict[str, str],
    spot: bool = False,
) -> dict[str, Any]:
    """The RunTask parameters of task ``index``: its own environment, tagged with run and index.

    The subnets are rotated by the index, so that consecutive tasks start in different
    availability zones while ECS may still fall back on the others. A ``spot`` task runs on the
    cluster's Fargate Spot capacity provider (a capacity provider strategy instead of the launch type).
    """
    shift = index % len(subnets)
    all_tags = dict(tags, **{RUN_ID_TAG: run_id, TASK_INDEX_TAG: str(index)})
    return {
        "cluster": cluster,
        "taskDefinition": task_definition,
        **({"capacityProviderStrategy": [{"capacityProvider": "FARGATE_SPOT", "weight": 1}]} if spot else {"launchType": "FARGATE"}),
        "count": 1,
        "startedBy": run_id,
        "networkConfiguration": {
            "awsvpcConfiguration": {
                "subnets": subnets[shift:] + subnets[:shift],
                "securityGroups": security_groups,
                "assignPublicIp": "ENABLED" if assign_public_ip else "DISABLED",
            }
        },
        "overrides": run_task_overrides(environment),
        "tags": [{"key": key, "value": value} for key, value in sorted(all_tags.items())],
    }


def launch_task(client, request: dict[str, Any]) -> dict[str, Any]:
    """Start one task; capacity shortages and a role not yet usable are retried with jittered backoff."""

    @placement_retry
    def attempt() -> dict[str, Any]:
        try:
            response = client.run_task(aws_retry=True, **request)
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if _ROLE_NOT_YET_ASSUMABLE in message.lower():
                raise TaskNotPlaced(message) from error
            raise
        if response["tasks"]:
            return response["tasks"][0]
        failure = (response.get("failures") or [{}])[0]
        raise TaskNotPlaced(failure.get("reason", "RunTask started no task and gave no reason"))

    return attempt()


def launch_tasks(
    launch: Callable[[dict[str, Any]], dict[str, Any]], requests: list[dict[str, Any]], concurrency: int
) -> tuple[list[dict[str, Any]], list[tuple[dict[str, Any], Exception]]]:
    """Run ``launch`` on every request, ``concurrency`` at a time; return (tasks, failed requests)."""
    launched: list[dict[str, Any]] = []
    failed: list[tuple[dict[str, Any], Exception]] = []
    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = [(request, pool.submit(launch, request)) for request in requests]
        for request, future in futures:
            try:
                launched.append(future.result())
            except Exception as error:  # reported per task by the caller, after the others finished
                failed.append((request, error))
    return launched, failed


def request_index(request: dict[str, Any]) -> int:
    return next(int(tag["value"]) for tag in request["tags"] if tag["key"] == TASK_INDEX_TAG)


def not_yet_stopping(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tasks nobody has asked to stop yet."""
    return [task for task in tasks if task.get("desiredStatus") != "STOPPED"]


def stop_tasks(client, cluster: str, tasks: list[dict[str, Any]], reason: str) -> list[dict[str, Any]]:
    return [client.stop_task(cluster=cluster, task=task["taskArn"], reason=reason, aws_retry=True)["task"] for task in tasks]


def wait_until_stopped(client, cluster: str, arns: list[str], timeout_seconds: int) -> None:
    delay = 6
    waiter = client.get_waiter("tasks_stopped")
    for start in range(0, len(arns), _DESCRIBE_BATCH):
        waiter.wait(
            cluster=cluster,
            tasks=arns[start:start + _DESCRIBE_BATCH],
            WaiterConfig={"Delay": delay, "MaxAttempts": max(1, timeout_seconds // delay)},
        )


def summarize(tasks: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by phase and the exit code of every container that exited, by task index."""
    counts = {"pending": 0, "running": 0, "stopped": 0, "total": len(tasks)}
    exit_codes: dict[str, dict[str, int]] = {}
    for task in tasks:
        status = task.get("lastStatus", "")
        phase = "pending" if status in PENDING_STATUSES else "running" if status in RUNNING_STATUSES else "stopped"
        counts[phase] += 1
        codes = {c["name"]: c["exitCode"] for c in task.get("containers", []) if c.get("exitCode") is not None}
        if codes:
            exit_codes[str(task_index(task))] = codes
    return {"counts": counts, "exit_codes": exit_codes}


def task_summary(task: dict[str, Any]) -> dict[str, Any]:
    """What the modules return of a task: small enough for hundreds of tasks."""
    return {
        "task_arn": task["taskArn"],
        "task_index": task_index(task),
        "last_status": task.get("lastStatus"),
        "desired_status": task.get("desiredStatus"),
        "stopped_reason": task.get("stoppedReason"),
        "availability_zone": task.get("availabilityZone"),
        "capacity_provider": task.get("capacityProviderName") or "FARGATE",
        "containers": [
            {"name": c.get("name"), "last_status": c.get("lastStatus"), "exit_code": c.get("exitCode")}
            for c in task.get("containers", [])
        ],
    }
