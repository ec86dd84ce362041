# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Orchestrator state in DynamoDB: one table, one item per test run.

This file is the single home of the run state machine. The Ansible modules
``orchestrator_state`` and ``orchestrator_state_info`` import it as module_utils, and the
orchestrator Lambda ships it as the top-level module ``orchestrator_state``; so it imports
nothing from Ansible and takes a plain boto3 DynamoDB client everywhere. The table itself (create,
tag, delete) is ``orchestrator_table``, which the function does not need.

Every change to a run is one atomic DynamoDB write (PutItem, or UpdateItem with set additions
and condition expressions), never a read-modify-write: many load generators register at the
same instant, and the seed's "read the JSON list, append, write it back" lost registrations.

Run item attributes:

``run_id`` (S, hash key)
``planned_tasks`` (M: region -> N) the task count each required region runs
``start_lead_seconds`` (N) how far ahead of the last registration the start is set
``registered_tasks`` (SS of ``"<region>#<task_id>"``) absent until the first registration,
    because DynamoDB has no empty sets
``completed_tasks`` (SS of ``"<region>#<task_id>"``) absent until the first test end
``exit_codes`` (M: ``"<region>#<task_id>"`` -> N) the first exit code each task reported
``started_at`` (M: ``"<region>#<task_id>"`` -> N) when each task's k6 resumed, in epoch ms on
    the orchestrator's clock, as first reported
``accounting`` (M: ``"<region>#<task_id>"`` -> M: short name -> N) what each task first reported
    of its requests and records (:data:`ACCOUNTING_FIELDS`): what k6 counted, what its
    aggregator took in and wrote, the records it lost and the store's retries, and when k6 ended
``task_thresholds`` (M: ``"<region>#<task_id>"`` -> M: metric selector -> M: expression -> BOOL)
    k6's threshold verdicts (true: passed) each task first reported, cut to fit the item
``thresholds_truncated`` (SS of ``"<region>#<task_id>"``) the tasks whose verdicts were cut;
    absent until the first cut
``start_at`` (N, epoch milliseconds) absent until every planned task has registered
``created_at`` (N, epoch milliseconds) when the run was (re)set; it identifies one incarnation
    of a run, so a start decided for a run that was reset in between is not written
``stop`` (M: ``at`` N, ``reason`` S, ``detail`` S) absent until someone stops the run
    (:func:`stop_run`): ``stopped`` by stop_test, ``aborted`` by a global abort; set once. Every
    task polls it while k6 runs and ends k6 gracefully when it appears.
``active_until`` (N, epoch milliseconds) until when the run's tasks may read its script and write
    its records: the task roles grant that to the runs active now (:func:`active_runs`, the
    ``run_grants`` module). Set with the plan, long enough for the deploy, the start timeout, the
    test and the final flush; brought to the present by :func:`end_run` once every task stopped.
``token_key`` (B) the run's secret: task ``i`` of region ``r`` proves who it is with
    :func:`task_token` of it, which ``ecs_load_tasks`` gives that task alone. Never returned by
    :func:`describe_run`; tasks have no access to the table, so only the orchestrator, the
    playbooks and the task itself know a task's token.

Who may do what: the playbooks (the user's credentials) plan, read and delete runs here, in
DynamoDB; tasks only invoke the orchestrator function, and only :func:`register_task`,
:func:`start_state` and :func:`record_test_end` answer them, each for the one task whose token it
is. Every field a task sends is bounded, and errors show at most ``_SHOWN_VALUE_MAX_CHARS`` of
a value.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from datetime import datetime
from datetime import timezone
from typing import Any
from typing import Callable

try:
    from botocore.exceptions import ClientError
except ImportError:
    pass  # The Ansible modules report a missing botocore; the Lambda runtime always has it.

_TASK_ID = re.compile(r"0|[1-9][0-9]*")
_TABLE_NAME = re.compile(r"[A-Za-z0-9_.-]{3,255}")
_KEY_SEPARATOR = "#"

# A run is one item, and DynamoDB items are at most 400 KB. The threshold verdicts of all tasks
# together get THRESHOLDS_ITEM_BUDGET_BYTES, shared by the planned tasks and at most
# MAX_THRESHOLD_BYTES_PER_TASK each (about 40 verdicts of a short selector and expression);
# the rest of the item takes under 160 bytes a task (the accounting about 60 of them). A selector or expression longer than
# MAX_THRESHOLD_NAME_CHARS, and verdicts past MAX_THRESHOLDS_PER_TASK, are dropped, never cut:
# a cut name would name another threshold.
THRESHOLDS_ITEM_BUDGET_BYTES = 64 * 1024
MAX_THRESHOLD_BYTES_PER_TASK = 4 * 1024
MAX_THRESHOLDS_PER_TASK = 50
MAX_THRESHOLD_NAME_CHARS = 200
_SHOWN_VALUE_MAX_CHARS = 80

# Bounds of what a task may send: a region name is at most 25 characters in AWS, a task index is
# below the largest plan (run/config.py), a run id at most 64 (results/progress.validate_run_id).
MAX_REGION_CHARS = 32
MAX_TASK_ID_DIGITS = 5
MAX_RUN_ID_CHARS = 64
# The start lead time run_test may plan (run/config.py's START_LEAD_SECONDS_RANGE is the same).
MAX_START_LEAD_SECONDS = 3_600
# A task's k6 resumed within this long of the orchestrator's clock, or the report is wrong.
MAX_CLOCK_DISTANCE_MS = 24 * 3_600 * 1_000
TOKEN_KEY_BYTES = 32
STOP_REASONS = ("stopped", "aborted")
# How long a run may stay active (its grants held) at most: a run never ended expires.
MAX_ACTIVE_SECONDS = 7 * 24 * 3_600
MAX_STOP_DETAIL_CHARS = 500

# A task's accounting (test-end's ``accounting``): each field a count, or for ``ended_at`` epoch ms
# on the orchestrator's clock, stored under a one-letter name to keep 2,000 tasks in the item.
ACCOUNTING_FIELDS = {
    "k6_requests": "k",  # the requests k6 counted (its summary's http_reqs)
    "requests_received": "a",  # the requests the aggregator took in from k6's pushes
    "requests_written": "w",  # the requests in the records the aggregator wrote to the store
    "records_lost": "l",  # records the aggregator produced and did not write (rejected, failed, dropped, unflushed)
    "store_retries": "r",  # calls to the results store tried again (throttled, 5xx)
    "live_metrics_sent": "m",  # k6 pushes forwarded to the user's Prometheus (constellation_prometheus_remote_write_url)
    "live_metrics_lost": "d",  # k6 pushes that Prometheus did not take (refused, or dropped from a full buffer)
    "ended_at": "e",  # when k6's load ended, epoch ms on the orchestrator's clock
}
MAX_ACCOUNTING_COUNT = 10**15


class OrchestratorStateError(Exception):
    """A request the orchestrator state cannot satisfy; the message says what to fix."""


class RunNotFoundError(OrchestratorStateError):
    """The run does not exist: it was never reset with a plan, or it was deleted."""


class TableNotFoundError(OrchestratorStateError):
    """The state table does not exist (or not in the region/endpoint the client points at)."""


class TaskNotAuthenticated(OrchestratorStateError):
    """A task event whose token is not the one of that task in that run."""


# ---------------------------------------------------------------------------------------------
# Validation of plans and task identities (shared by the Lambda and the modules)
# ---------------------------------------------------------------------------------------------


def validate_table_name(table: Any) -> str:
    """Return ``table`` if DynamoDB accepts it as a table name, so a typo fails before any call."""
    if not isinstance(table, str) or not _TABLE_NAME.fullmatch(table):
        raise OrchestratorStateError(
            f"table name must be 3 to 255 characters of letters, digits, '_', '-' and '.', got {table!r}"
        )
    return table


def validate_plan(regions: Any) -> dict[str, int]:
    """Return the plan ``{region: planned task count}`` or raise naming the bad entry.

    A plan with no regions would be "complete" before anyone registered, and a region with no
    tasks could never register anything, so both are rejected.
    """
    if not isinstance(regions, dict) or not regions:
        raise OrchestratorStateError(
            f"regions must be a non-empty mapping of region name to planned task count, got {regions!r}"
        )
    plan = {}
    for region, count in regions.items():
        validate_region_name(region)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise OrchestratorStateError(f"regions[{region!r}] must be a positive integer task count, got {count!r}")
        plan[region] = count
    return plan


def validate_region_name(region: Any) -> str:
    """Return ``region`` if it can name a region in the plan; the ``#`` separates task keys."""
    if not isinstance(region, str) or not region or _KEY_SEPARATOR in region or len(region) > MAX_REGION_CHARS:
        raise OrchestratorStateError(
            f"region must be a string of 1 to {MAX_REGION_CHARS} characters without '#', got {shown(region)}"
        )
    return region


def validate_run_id(run_id: Any) -> str:
    """Return ``run_id`` if it can be a run id (the full rule is results/progress.validate_run_id)."""
    if not isinstance(run_id, str) or not run_id or len(run_id) > MAX_RUN_ID_CHARS:
        raise OrchestratorStateError(
            f"run_id must be a string of 1 to {MAX_RUN_ID_CHARS} characters, got {shown(run_id)}"
        )
    return run_id


def validate_lead_seconds(lead_seconds: Any) -> int:
    """Return the start lead time in whole seconds (0 starts as soon as everyone registered)."""
    if (
        isinstance(lead_seconds, bool)
        or not isinstance(lead_seconds, int)
        or not 0 <= lead_seconds <= MAX_START_LEAD_SECONDS
    ):
        raise OrchestratorStateError(
            f"lead_seconds must be a whole number of seconds from 0 to {MAX_START_LEAD_SECONDS}, got {shown(lead_seconds)}"
        )
    return lead_seconds


def normalize_task_id(task_id: Any) -> str:
    """Return the canonical task id: the decimal string of the task index (``"0"``, ``"17"``).

    Integers are accepted for convenience; ``"007"`` is not, because it would register a
    second key for task 7.
    """
    if isinstance(task_id, int) and not isinstance(task_id, bool) and 0 <= task_id < 10**MAX_TASK_ID_DIGITS:
        return str(task_id)
    if isinstance(task_id, str) and len(task_id) <= MAX_TASK_ID_DIGITS and _TASK_ID.fullmatch(task_id):
        return task_id
    raise OrchestratorStateError(
        f"task_id must be the decimal index of the task (e.g. '0', '17'), got {shown(task_id)}"
    )


def check_task_in_plan(plan: dict[str, int], run_id: str, region: str, task_id: str) -> None:
    """Raise unless ``region`` is planned and ``task_id`` is within ``0..planned-1``."""
    if region not in plan:
        planned = ", ".join(sorted(plan)) or "none"
        raise OrchestratorStateError(
            f"region {region!r} is not in the plan of run {run_id!r} (planned regions: {planned})"
        )
    if int(task_id) >= plan[region]:
        raise OrchestratorStateError(
            f"task_id {task_id!r} is out of range for region {region!r} of run {run_id!r}"
            f" (planned task ids: 0..{plan[region] - 1})"
        )


def validate_started_at(started_at: Any, field: str = "started_at") -> int | None:
    """Return the instant a task's k6 resumed (epoch ms, within a day of now), or None if not reported."""
    if started_at is None:
        return None
    if (
        isinstance(started_at, bool)
        or not isinstance(started_at, int)
        or abs(started_at - now_ms()) > MAX_CLOCK_DISTANCE_MS
    ):
        raise OrchestratorStateError(
            f"{field} must be epoch milliseconds within a day of now, got {shown(started_at)}"
        )
    return started_at


def validate_accounting(accounting: Any) -> dict[str, int] | None:
    """Return a task's accounting (:data:`ACCOUNTING_FIELDS`, each optional), or None if not reported."""
    if accounting is None:
        return None
    if not isinstance(accounting, dict):
        raise OrchestratorStateError(f"accounting must be a mapping of field to count, got {shown(accounting)}")
    for name, value in accounting.items():
        if name not in ACCOUNTING_FIELDS:
            raise OrchestratorStateError(
                f"accounting has an unknown field {shown(name)} (known: {', '.join(ACCOUNTING_FIELDS)})"
            )
        if name == "ended_at":
            validate_started_at(value, "accounting.ended_at")
        elif isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_ACCOUNTING_COUNT:
            raise OrchestratorStateError(
                f"accounting.{name} must be an integer from 0 to {MAX_ACCOUNTING_COUNT - 1}, got {shown(value)}"
            )
    return accounting


def validate_exit_code(exit_code: Any) -> int:
    """Return a process exit status, 0 to 255."""
    if isinstance(exit_code, bool) or not isinstance(exit_code, int) or not 0 <= exit_code <= 255:
        raise OrchestratorStateError(f"exit_code must be an integer from 0 to 255, got {shown(exit_code)}")
    return exit_code


def validate_thresholds(thresholds: Any) -> dict[str, dict[str, bool]] | None:
    """Return k6's verdicts ``{metric selector: {expression: passed}}``, or None if not reported."""
    if thresholds is None:
        return None
    if not isinstance(thresholds, dict):
        raise OrchestratorStateError(
            f"thresholds must be a mapping of metric selector to {{expression: passed}}, got {shown(thresholds)}"
        )
    for selector, expressions in thresholds.items():
        if not isinstance(selector, str) or not selector:
            raise OrchestratorStateError(
                f"thresholds: a metric selector must be a non-empty string, got {shown(selector)}"
            )
        if not isinstance(expressions, dict):
            raise OrchestratorStateError(
                f"thresholds[{shown(selector)}] must be a mapping of expression to passed, got {shown(expressions)}"
            )
        for expression, passed in expressions.items():
            if not isinstance(expression, str) or not expression:
                raise OrchestratorStateError(
                    f"thresholds[{shown(selector)}]: an expression must be a non-empty string, got {shown(expression)}"
                )
            if not isinstance(passed, bool):
                raise OrchestratorStateError(
                    f"thresholds[{shown(selector)}][{shown(expression)}] must be true (passed) or false, got {shown(passed)}"
                )
    return thresholds


def fit_thresholds(
    thresholds: dict[str, dict[str, bool]], budget_bytes: int
) -> tuple[dict[str, dict[str, bool]], bool]:
    """The verdicts that fit in ``budget_bytes`` of the item, failures first; and whether any was dropped.

    Sizes are counted as DynamoDB counts them: the UTF-8 bytes of every name, 1 byte for a
    BOOL, 3 bytes for a map and 1 byte for each of its entries.
    """
    verdicts = sorted(
        (passed, selector, expression)
        for selector, expressions in thresholds.items()
        for expression, passed in expressions.items()
    )
    kept: dict[str, dict[str, bool]] = {}
    used = kept_count = 0
    for passed, selector, expression in verdicts:
        if max(len(selector), len(expression)) > MAX_THRESHOLD_NAME_CHARS or kept_count == MAX_THRESHOLDS_PER_TASK:
            continue
        cost = len(expression.encode()) + 2 + (0 if selector in kept else len(selector.encode()) + 4)
        if used + cost > budget_bytes:
            continue
        kept.setdefault(selector, {})[expression] = passed
        used += cost
        kept_count += 1
    return kept, kept_count < len(verdicts)


def thresholds_budget_bytes(planned_tasks: int) -> int:
    """The bytes of the run item one task's threshold verdicts may take."""
    return min(MAX_THRESHOLD_BYTES_PER_TASK, THRESHOLDS_ITEM_BUDGET_BYTES // max(planned_tasks, 1))


def new_token_key() -> bytes:
    """A fresh secret for a run's task tokens."""
    return secrets.token_bytes(TOKEN_KEY_BYTES)


def task_token(token_key: bytes, run_id: str, region: str, task_id: Any) -> str:
    """The token task ``task_id`` of ``region`` proves itself with in run ``run_id``: an HMAC of its identity.

    43 characters of URL-safe base64, so it fits in an environment variable and the RunTask overrides.
    """
    identity = f"{run_id}{_KEY_SEPARATOR}{task_key(region, normalize_task_id(task_id))}".encode()
    digest = hmac.new(token_key, identity, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def task_key(region: str, task_id: str) -> str:
    """The member of the registered/completed sets that names one task of one region."""
    return f"{region}{_KEY_SEPARATOR}{task_id}"


def split_task_key(key: str) -> tuple[str, str]:
    """Inverse of :func:`task_key`."""
    region, task_id = key.rsplit(_KEY_SEPARATOR, 1)
    return region, task_id


def now_ms() -> int:
    """The current time in epoch milliseconds, the unit of every timestamp in the state."""
    return int(time.time() * 1000)


def iso8601_utc(epoch_ms: int | None) -> str | None:
    """``epoch_ms`` as ISO 8601 UTC with milliseconds, for people reading the state."""
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class RetryingClient:
    """A boto3 client whose every operation goes through ``retry``, a decorator.

    The Ansible modules wrap their client with amazon.aws's ``AWSRetry.jittered_backoff()``
    this way: the functions here cannot pass amazon.aws's per-call ``aws_retry=True`` flag,
    because the Lambda calls them with a plain boto3 client.
    """

    def __init__(self, client, retry: Callable[[Callable], Callable]) -> None:
        self._client = client
        self._retry = retry

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        return self._retry(attribute) if callable(attribute) else attribute


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------


def validate_active_seconds(active_seconds: Any) -> int:
    if isinstance(active_seconds, bool) or not isinstance(active_seconds, int) or not 1 <= active_seconds <= MAX_ACTIVE_SECONDS:
        raise OrchestratorStateError(
            f"active_seconds must be an integer from 1 to {MAX_ACTIVE_SECONDS} (a week), got {shown(active_seconds)}"
        )
    return active_seconds


def reset_run(
    client,
    table: str,
    run_id: str,
    regions: dict[str, int],
    lead_seconds: int,
    token_key: bytes | None = None,
    active_seconds: int = MAX_ACTIVE_SECONDS,
) -> bytes:
    """Replace the run's item with a fresh plan: nothing registered, no start, nothing ended,
    active for ``active_seconds`` from now unless ended before.

    Only this run's item is written; other runs in the table are untouched. Returns the run's
    token key (a new one unless ``token_key`` is given): the tasks' old tokens are void.
    """
    plan = validate_plan(regions)
    lead_seconds = validate_lead_seconds(lead_seconds)
    active_seconds = validate_active_seconds(active_seconds)
    token_key = token_key or new_token_key()
    created_at = now_ms()
    _call(
        client.put_item,
        table,
        TableName=table,
        Item={
            "run_id": {"S": run_id},
            "planned_tasks": {"M": {region: {"N": str(count)} for region, count in plan.items()}},
            "start_lead_seconds": {"N": str(lead_seconds)},
            # Tasks' values are set as map entries (exit_codes.#task), which needs the map to exist.
            "exit_codes": {"M": {}},
            "started_at": {"M": {}},
            "accounting": {"M": {}},
            "task_thresholds": {"M": {}},
            "created_at": {"N": str(created_at)},
            "active_until": {"N": str(created_at + active_seconds * 1000)},
            "token_key": {"B": token_key},
        },
    )
    return token_key


def read_token_key(client, table: str, run_id: str) -> bytes:
    """The run's token key, which ``ecs_load_tasks`` derives each task's token from."""
    item = _get_item(client, table, run_id, projection="token_key")
    if item is None:
        raise RunNotFoundError(f"run {run_id!r} does not exist in orchestrator state table {table!r}")
    if "token_key" not in item:
        raise OrchestratorStateError(_NO_TOKEN_KEY.format(run_id=run_id))
    return bytes(item["token_key"]["B"])


def register_task(client, table: str, run_id: str, region: str, task_id: Any, token: str) -> dict:
    """Record that a task is up and ready; decide the start once every planned task is.

    The task proves who it is with ``token`` (:func:`task_token`). The registration is one
    ``ADD`` to a string set, conditional on the run being the one whose key checked the token
    (a reset in between voids it), so concurrent registrations never overwrite each other.
    Registering twice is harmless, and a registration retried after a lost answer decides the
    start if nobody has yet.

    Returns ``registered`` and ``planned`` (task counts over all regions), ``start_at``
    (epoch ms or None) and ``decided_start`` (true only for the one call that set it).
    """
    task_id, head = _authenticate(client, table, run_id, region, task_id, token)
    key = task_key(region, task_id)
    item = _update_authenticated(
        client,
        table,
        head,
        UpdateExpression="ADD registered_tasks :task",
        ExpressionAttributeValues={":task": {"SS": [key]}},
        ReturnValues="ALL_NEW",
    )
    return _start_once_complete(client, table, _decode_run(item))


def start_state(client, table: str, run_id: str, region: str, task_id: Any, token: str) -> dict:
    """What a waiting task polls: has the start been decided, and when is it.

    Whichever call first sees every planned task registered decides the start, this one
    included: a registration whose answer was lost (a timeout, throttling) cannot stall the run.
    ``server_time`` lets the caller estimate its clock offset to the orchestrator, whose
    clock set ``start_at``. The read is strongly consistent so a decided start is seen at once.
    """
    _authenticate(client, table, run_id, region, task_id, token)
    run = _get_run(client, table, run_id)
    answer = _start_once_complete(client, table, run)
    return {
        "state": answer["start_at"] is not None,
        "start_at": answer["start_at"],
        "decided_start": answer["decided_start"],
        "stop": run["stop"],
        "server_time": now_ms(),
    }


def stop_run(client, table: str, run_id: str, reason: str, detail: str = "") -> tuple[dict, bool]:
    """Mark the run stopped (``reason``: ``stopped`` or ``aborted``) unless it already is; return its stop and whether this call set it.

    The first stop wins: a run aborted by a threshold stays aborted when a user stops it afterwards.
    Its tasks see the stop at their next poll and end k6 as at a normal end.
    """
    if reason not in STOP_REASONS:
        raise OrchestratorStateError(f"reason must be one of {', '.join(STOP_REASONS)}, got {shown(reason)}")
    stop = {"at": now_ms(), "reason": reason, "detail": str(detail)[:MAX_STOP_DETAIL_CHARS]}
    stopped = _update_run_if(
        client,
        table,
        run_id,
        UpdateExpression="SET #stop = :stop",
        ConditionExpression="attribute_exists(run_id) AND attribute_not_exists(#stop)",
        ExpressionAttributeNames={"#stop": "stop"},
        ExpressionAttributeValues={
            ":stop": {"M": {"at": {"N": str(stop["at"])}, "reason": {"S": reason}, "detail": {"S": stop["detail"]}}}
        },
    )
    return (stop, True) if stopped else (_get_run(client, table, run_id)["stop"], False)


def end_run(client, table: str, run_id: str) -> bool:
    """The run's tasks have all stopped: it is no longer active (:func:`active_runs`). Return
    whether this call ended it (False: it had ended, or expired, before)."""
    ended = _update_run_if(
        client,
        table,
        run_id,
        UpdateExpression="SET active_until = :now",
        ConditionExpression="attribute_exists(run_id) AND active_until > :now",
        ExpressionAttributeValues={":now": {"N": str(now_ms())}},
    )
    if not ended:
        _get_run(client, table, run_id)  # raises RunNotFoundError for a missing run
    return ended


def active_runs(client, table: str) -> dict[str, list[str]]:
    """The runs active now (their tasks may still run), each with its planned regions, by run id.

    One strongly consistent scan that returns only the active runs' ids and plans: the runs that
    ended stay in the table for their reports and cost no more than their reading.
    """
    runs = {}
    paginator = client.get_paginator("scan")
    try:
        for page in paginator.paginate(
            TableName=table,
            ConsistentRead=True,
            ProjectionExpression="run_id, planned_tasks",
            FilterExpression="active_until > :now",
            ExpressionAttributeValues={":now": {"N": str(now_ms())}},
        ):
            for item in page.get("Items", []):
                runs[item["run_id"]["S"]] = sorted(item["planned_tasks"]["M"])
    except ClientError as error:
        _raise_if_table_missing(error, table)
        raise
    return dict(sorted(runs.items()))


def record_test_end(
    client,
    table: str,
    run_id: str,
    region: str,
    task_id: Any,
    token: str,
    exit_code: int,
    started_at: int | None = None,
    thresholds: dict[str, dict[str, bool]] | None = None,
    accounting: dict[str, int] | None = None,
) -> dict:
    """Record that a task finished with ``exit_code``; report whether its region is done.

    Only the task itself can (``token``). ``started_at`` (when its k6 resumed, epoch ms on the
    orchestrator's clock), ``thresholds`` (k6's verdicts, ``{metric selector: {expression:
    passed}}``) and ``accounting`` (:data:`ACCOUNTING_FIELDS`) are optional; every field is
    validated before anything is written.

    Adding to the completed set is idempotent, and the exit code and the start are set only if
    absent (the first report wins), so a retried or duplicated ``test-end`` changes nothing. The
    update returns the item as it was before, so exactly one call sees its region go from
    incomplete to complete: ``region_completed_now`` is true for that call only. The verdicts
    are written after, in a second update sized by the plan.
    """
    exit_code = validate_exit_code(exit_code)
    started_at = validate_started_at(started_at)
    thresholds = validate_thresholds(thresholds)
    accounting = validate_accounting(accounting)
    task_id, head = _authenticate(client, table, run_id, region, task_id, token)
    key = task_key(region, task_id)
    update = "ADD completed_tasks :task SET exit_codes.#task = if_not_exists(exit_codes.#task, :code)"
    values = {":task": {"SS": [key]}, ":code": {"N": str(exit_code)}}
    if started_at is not None:
        update += ", started_at.#task = if_not_exists(started_at.#task, :started_at)"
        values[":started_at"] = {"N": str(started_at)}
    if accounting:
        update += ", accounting.#task = if_not_exists(accounting.#task, :accounting)"
        values[":accounting"] = {
            "M": {ACCOUNTING_FIELDS[name]: {"N": str(value)} for name, value in sorted(accounting.items())}
        }
    try:
        item = _update_run_maps(
            client,
            table,
            run_id,
            lambda: _update_authenticated(
                client,
                table,
                head,
                condition="NOT contains(completed_tasks, :key)",
                UpdateExpression=update,
                ExpressionAttributeNames={"#task": key},
                ExpressionAttributeValues={**values, ":key": {"S": key}},
                # Only what the update changed, as it was: the completed set, not the whole item (it
                # grows with the run, and 2,000 tasks end within seconds of each other).
                ReturnValues="UPDATED_OLD",
            ),
        )
        completed_old = item.get("completed_tasks", {}).get("SS", [])
    except _Unchanged as repeated:  # a test-end already recorded: nothing written, the first report kept
        completed_old = repeated.item.get("completed_tasks", {}).get("SS", [])
    if thresholds is not None:
        budget = thresholds_budget_bytes(sum(head["planned_tasks"].values()))
        _store_task_thresholds(client, table, head, key, *fit_thresholds(thresholds, budget))
    completed_before = _tasks_of_region(set(completed_old), region)
    completed_after = completed_before | {task_id}
    region_complete = len(completed_after) == head["planned_tasks"][region]
    return {
        "region_complete": region_complete,
        "region_completed_now": region_complete and task_id not in completed_before,
        "completed": len(completed_after),
        "planned": head["planned_tasks"][region],
    }


def read_run(client, table: str, run_id: str) -> dict:
    """The run grouped by region (see :func:`describe_run`); raise RunNotFoundError if missing."""
    return describe_run(_get_run(client, table, run_id))


def describe_run(run: dict) -> dict:
    """A decoded run item grouped by region, for people and playbooks (the info module's ``run``)."""
    plan = run["planned_tasks"]
    completed = {region: _sorted_ids(_tasks_of_region(run["completed_tasks"], region)) for region in plan}
    started_at = run["started_at"].values()
    return {
        "run_id": run["run_id"],
        "exists": True,
        "regions": dict(plan),
        "start_lead_seconds": run["start_lead_seconds"],
        "registered_tasks": {region: _sorted_ids(_tasks_of_region(run["registered_tasks"], region)) for region in plan},
        "start_at": run["start_at"],
        "start_at_iso8601": iso8601_utc(run["start_at"]),
        "completed_tasks": completed,
        "completed_regions": sorted(region for region in plan if len(completed[region]) == plan[region]),
        "exit_codes": _by_region(run["exit_codes"], plan),
        "started_at": _by_region(run["started_at"], plan),
        "accounting": _by_region(run["accounting"], plan),
        "start_skew_ms": max(started_at) - min(started_at) if started_at else None,
        "task_thresholds": _by_region(run["task_thresholds"], plan),
        "thresholds_truncated": {
            region: _sorted_ids(_tasks_of_region(run["thresholds_truncated"], region)) for region in plan
        },
        "created_at": run["created_at"],
        "created_at_iso8601": iso8601_utc(run["created_at"]),
        "active_until": run["active_until"],
        "active_until_iso8601": iso8601_utc(run["active_until"]),
        "active": run["active_until"] is not None and run["active_until"] > now_ms(),
        "stop": dict(run["stop"], at_iso8601=iso8601_utc(run["stop"]["at"])) if run["stop"] else None,
    }


def list_runs(client, table: str) -> list[dict]:
    """Every run in the table, described as by :func:`describe_run`, ordered by run id."""
    runs = []
    paginator = client.get_paginator("scan")
    try:
        for page in paginator.paginate(TableName=table, ConsistentRead=True):
            runs.extend(_decode_run(item) for item in page.get("Items", []))
    except ClientError as error:
        _raise_if_table_missing(error, table)
        raise
    return [describe_run(run) for run in sorted(runs, key=lambda run: run["run_id"])]


def delete_run(client, table: str, run_id: str) -> bool:
    """Delete only this run's item; return whether it existed."""
    response = _call(client.delete_item, table, TableName=table, Key={"run_id": {"S": run_id}}, ReturnValues="ALL_OLD")
    return "Attributes" in response


# ---------------------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------------------


_NO_TOKEN_KEY = (
    "run {run_id!r} was planned without task tokens (by an earlier version of this collection):"
    " plan it again with run_test, or start a new run"
)
# What a task whose token is wrong is told: nothing about the run it tried.
_NOT_AUTHENTICATED = "the token does not prove task {task_id} of region {region} in run {run_id}"


def _authenticate(client, table: str, run_id: Any, region: Any, task_id: Any, token: Any) -> tuple[str, dict]:
    """The canonical task id and the run's head, once ``token`` proves the caller is that task of that run."""
    run_id = validate_run_id(run_id)
    validate_region_name(region)
    task_id = normalize_task_id(task_id)
    if not isinstance(token, str) or not token or len(token) > 64:
        raise TaskNotAuthenticated(f"token must be the task's token (a string of 1 to 64 characters), got {shown(token)}")
    item = _get_item(client, table, run_id, projection="run_id, planned_tasks, token_key, created_at")
    if item is None:
        raise RunNotFoundError(f"run {run_id!r} does not exist in orchestrator state table {table!r}")
    if "token_key" not in item:
        raise TaskNotAuthenticated(_NO_TOKEN_KEY.format(run_id=run_id))
    head = {
        "run_id": run_id,
        "planned_tasks": {name: int(value["N"]) for name, value in item["planned_tasks"]["M"].items()},
        "token_key": bytes(item["token_key"]["B"]),
        "created_at": int(item["created_at"]["N"]),
    }
    check_task_in_plan(head["planned_tasks"], run_id, region, task_id)
    if not hmac.compare_digest(task_token(head["token_key"], run_id, region, task_id), token):
        raise TaskNotAuthenticated(_NOT_AUTHENTICATED.format(task_id=task_id, region=region, run_id=run_id))
    return task_id, head


class _Unchanged(Exception):
    """The update's own condition was false for the run the token was checked against: nothing was written."""

    def __init__(self, item: dict) -> None:
        super().__init__("unchanged")
        self.item = item


def _update_authenticated(client, table: str, head: dict, condition: str | None = None, **update: Any) -> dict:
    """Apply ``update`` to the run whose key checked the token, not to a run reset since.

    With ``condition``, an update it refuses raises _Unchanged with the item as it is.
    """
    values = {":created_at": {"N": str(head["created_at"])}, **update.pop("ExpressionAttributeValues")}
    expression = "created_at = :created_at" + (f" AND ({condition})" if condition else "")
    try:
        response = _call(
            client.update_item,
            table,
            TableName=table,
            Key={"run_id": {"S": head["run_id"]}},
            ConditionExpression=expression,
            ExpressionAttributeValues=values,
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
            **update,
        )
    except ClientError as error:
        if _error_code(error) != "ConditionalCheckFailedException":
            raise
        item = error.response.get("Item") or _get_item(client, table, head["run_id"]) or {}
        if condition and item.get("created_at", {}).get("N") == str(head["created_at"]):
            raise _Unchanged(item) from None
        raise TaskNotAuthenticated(
            f"run {head['run_id']!r} was planned again (or deleted) while this task's event was handled;"
            " its tokens are void"
        ) from None
    return response.get("Attributes", {})


def _start_once_complete(client, table: str, run: dict) -> dict:
    """The registration counts and the start, deciding the start if every task registered and nobody has."""
    registered = len(run["registered_tasks"])
    planned = sum(run["planned_tasks"].values())
    result = {"registered": registered, "planned": planned, "start_at": run["start_at"], "decided_start": False}
    if run["start_at"] is None and registered == planned:
        result["start_at"], result["decided_start"] = _decide_start(client, table, run)
    return result


def _decide_start(client, table: str, run: dict) -> tuple[int | None, bool]:
    """Set the start once for this incarnation of the run; return it and whether we set it.

    ``attribute_not_exists(start_at)`` lets exactly one of the callers that saw the run
    complete write the start; the others read the winner's. ``created_at`` guards against a
    reset of the run between the registration and this write; the start returned then is the
    reset run's, None.
    """
    start_at = now_ms() + run["start_lead_seconds"] * 1000
    try:
        _call(
            client.update_item,
            table,
            TableName=table,
            Key={"run_id": {"S": run["run_id"]}},
            UpdateExpression="SET start_at = :start_at",
            ConditionExpression="attribute_not_exists(start_at) AND created_at = :created_at",
            ExpressionAttributeValues={":start_at": {"N": str(start_at)}, ":created_at": {"N": str(run["created_at"])}},
        )
    except ClientError as error:
        if _error_code(error) != "ConditionalCheckFailedException":
            raise
        return _get_run(client, table, run["run_id"])["start_at"], False
    return start_at, True


def _store_task_thresholds(
    client, table: str, run: dict, key: str, verdicts: dict[str, dict[str, bool]], truncated: bool
) -> None:
    """Set a task's verdicts unless it has some (the first report wins), flagging a cut.

    ``created_at`` keeps the verdicts of a run that was reset since its end was recorded out of
    the new run. Either condition failing means there is nothing to write.
    """
    update = "SET task_thresholds.#task = :verdicts"
    values = {":verdicts": _thresholds_value(verdicts), ":created_at": {"N": str(run["created_at"])}}
    if truncated:
        update += " ADD thresholds_truncated :task"
        values[":task"] = {"SS": [key]}
    try:
        _update_run_maps(
            client,
            table,
            run["run_id"],
            lambda: _call(
                client.update_item,
                table,
                TableName=table,
                Key={"run_id": {"S": run["run_id"]}},
                UpdateExpression=update,
                ConditionExpression="created_at = :created_at AND attribute_not_exists(task_thresholds.#task)",
                ExpressionAttributeNames={"#task": key},
                ExpressionAttributeValues=values,
            ),
        )
    except ClientError as error:
        if _error_code(error) != "ConditionalCheckFailedException":
            raise


def _thresholds_value(verdicts: dict[str, dict[str, bool]]) -> dict:
    """One task's verdicts as a DynamoDB attribute value."""
    return {
        "M": {
            selector: {"M": {expression: {"BOOL": passed} for expression, passed in expressions.items()}}
            for selector, expressions in verdicts.items()
        }
    }


def _update_run_maps(client, table: str, run_id: str, update: Callable[[], dict]) -> dict:
    """Run ``update``, which sets entries of the run's maps; create missing maps and retry once.

    Runs reset by an earlier version of this file have no ``started_at``, ``task_thresholds`` or
    ``accounting`` map, and setting an entry of a missing map is a ValidationException.
    """
    try:
        return update()
    except ClientError as error:
        if _error_code(error) != "ValidationException":
            raise
    _call(
        client.update_item,
        table,
        TableName=table,
        Key={"run_id": {"S": run_id}},
        UpdateExpression="SET started_at = if_not_exists(started_at, :empty),"
        " task_thresholds = if_not_exists(task_thresholds, :empty), accounting = if_not_exists(accounting, :empty)",
        ConditionExpression="attribute_exists(run_id)",
        ExpressionAttributeValues={":empty": {"M": {}}},
    )
    return update()


def _update_run_if(client, table: str, run_id: str, **update: Any) -> bool:
    """One conditional UpdateItem of the run's item; False when its condition did not hold (the
    caller reads the run to tell a missing run from one already changed)."""
    try:
        _call(client.update_item, table, TableName=table, Key={"run_id": {"S": run_id}}, **update)
    except ClientError as error:
        if _error_code(error) != "ConditionalCheckFailedException":
            raise
        return False
    return True


def _get_run(client, table: str, run_id: str) -> dict:
    """The decoded run item; raise RunNotFoundError if missing."""
    item = _get_item(client, table, run_id)
    if item is None:
        raise RunNotFoundError(f"run {run_id!r} does not exist in orchestrator state table {table!r}")
    return _decode_run(item)


def _get_item(client, table: str, run_id: str, projection: str | None = None) -> dict | None:
    """The run item as stored (only the ``projection`` attributes if given), read strongly consistent
    so a write just made is seen; None if there is no such run."""
    request = {"ProjectionExpression": projection} if projection else {}
    response = _call(
        client.get_item, table, TableName=table, Key={"run_id": {"S": run_id}}, ConsistentRead=True, **request
    )
    return response.get("Item")


def _decode_run(item: dict) -> dict:
    """A run item in DynamoDB's attribute-value form as plain Python values."""
    return {
        "run_id": item["run_id"]["S"],
        "planned_tasks": {region: int(value["N"]) for region, value in item["planned_tasks"]["M"].items()},
        "start_lead_seconds": int(item["start_lead_seconds"]["N"]),
        "registered_tasks": set(item.get("registered_tasks", {}).get("SS", [])),
        "completed_tasks": set(item.get("completed_tasks", {}).get("SS", [])),
        "exit_codes": {key: int(value["N"]) for key, value in item.get("exit_codes", {}).get("M", {}).items()},
        "started_at": {key: int(value["N"]) for key, value in item.get("started_at", {}).get("M", {}).items()},
        "accounting": {
            key: {_ACCOUNTING_NAMES[short]: int(number["N"]) for short, number in value["M"].items() if short in _ACCOUNTING_NAMES}
            for key, value in item.get("accounting", {}).get("M", {}).items()
        },
        "task_thresholds": {
            key: {
                selector: {expression: verdict["BOOL"] for expression, verdict in expressions["M"].items()}
                for selector, expressions in value["M"].items()
            }
            for key, value in item.get("task_thresholds", {}).get("M", {}).items()
        },
        "thresholds_truncated": set(item.get("thresholds_truncated", {}).get("SS", [])),
        "start_at": int(item["start_at"]["N"]) if "start_at" in item else None,
        "created_at": int(item["created_at"]["N"]),
        # Runs planned before runs had grants of their own never were active.
        "active_until": int(item["active_until"]["N"]) if "active_until" in item else None,
        "stop": _decode_stop(item["stop"]["M"]) if "stop" in item else None,
    }


_ACCOUNTING_NAMES = {short: name for name, short in ACCOUNTING_FIELDS.items()}


def _decode_stop(stop: dict) -> dict:
    return {"at": int(stop["at"]["N"]), "reason": stop["reason"]["S"], "detail": stop["detail"]["S"]}


def _tasks_of_region(keys: set[str], region: str) -> set[str]:
    """The task ids among ``keys`` that belong to ``region``."""
    return {task_id for key_region, task_id in map(split_task_key, keys) if key_region == region}


def _sorted_ids(task_ids: set[str]) -> list[str]:
    return sorted(task_ids, key=int)


def _by_region(values: dict[str, Any], plan: dict[str, int]) -> dict[str, dict[str, Any]]:
    """``{"<region>#<task_id>": value}`` as ``{region: {task_id: value}}``, every planned region included."""
    grouped: dict[str, dict[str, Any]] = {region: {} for region in plan}
    for key, value in values.items():
        region, task_id = split_task_key(key)
        grouped.setdefault(region, {})[task_id] = value
    return {
        region: {task_id: tasks[task_id] for task_id in _sorted_ids(set(tasks))} for region, tasks in grouped.items()
    }


def shown(value: Any) -> str:
    """``repr(value)`` short enough for an error message or a log line (the Lambda's answers use it too)."""
    text = repr(value)
    return text if len(text) <= _SHOWN_VALUE_MAX_CHARS else text[: _SHOWN_VALUE_MAX_CHARS - 3] + "..."


def _call(operation: Callable[..., dict], table: str, **request: Any) -> dict:
    """Call a DynamoDB item operation, turning a missing table into TableNotFoundError."""
    try:
        return operation(**request)
    except ClientError as error:
        _raise_if_table_missing(error, table)
        raise


def _raise_if_table_missing(error: ClientError, table: str) -> None:
    if _error_code(error) == "ResourceNotFoundException":
        raise TableNotFoundError(
            f"orchestrator state table {table!r} does not exist;"
            " create it with constellation.loadtest.orchestrator_state"
        ) from error


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")
