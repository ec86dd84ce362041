# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The orchestrator Lambda: synchronizes the start and records the end of a test run.

Its callers are the load generator tasks, and each speaks only for itself: every event names
the task (``run_id``, ``region``, ``task_id``) and carries its ``token``, which ``ecs_load_tasks``
gave that task alone (``orchestrator_state.task_token``). Three events:

``{"type": "agg-record", "run_id": ..., "region": ..., "task_id": ..., "token": ...}``
    the task is up and ready; the start is decided once every planned task has registered.
``{"type": "test-init", "run_id": ..., "region": ..., "task_id": ..., "token": ...}``
    polled by waiting tasks: ``{"state": bool, "start_at": epoch ms | None, "server_time": epoch ms}``.
    A poll that finds every task registered and no start decides it, so a registration whose
    answer was lost cannot stall the run.
``{"type": "test-end", "run_id": ..., "region": ..., "task_id": ..., "token": ..., "exit_code": int}``
    the task finished; when its region has completed, :func:`on_region_complete` runs. Optional:
    ``"started_at": int``, when the task's k6 resumed, in epoch ms on this function's clock
    (the task's own clock corrected by the offset it estimated from ``server_time``); and
    ``"thresholds": {"<metric selector>": {"<expression>": bool}}``, k6's verdict on each
    threshold of the task's script, true if it passed (e.g.
    ``{"http_req_duration{region:us-east-2}": {"p(95)<500": true}}``); and ``"accounting":
    {"k6_requests": int, ...}``, what became of the task's requests (``ACCOUNTING_FIELDS`` of
    ``run/orchestrator_state.py``). Each is kept as first reported; verdicts beyond the run
    item's size budget are dropped, and the task flagged.

Nothing else: runs are planned, read and deleted by the playbooks in DynamoDB, which no task may
touch. An event is at most ``MAX_EVENT_BYTES`` of JSON and every field is bounded.

Every answer is a dict with ``ok``: true with the event's result, or false with an ``error``
that names the offending field and a value shortened to a few dozen characters, and
``retryable: true`` when the same event may succeed later (DynamoDB throttled or failed). The
handler never raises, so a caller always gets an answer it can log. Tokens are never logged.
State lives in DynamoDB (``run/orchestrator_state.py``, shipped beside this file).

Environment: ``STATE_TABLE`` (required) names the state table. How far ahead of the last
registration the start is set is part of each run's plan.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from typing import Any
from typing import Callable

import boto3
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError

from run import orchestrator_state

# The largest event a task sends is a test-end with its verdicts: at most 50 of ~400 characters.
MAX_EVENT_BYTES = 64 * 1024

_dynamodb = None


class InvalidEvent(Exception):
    """The event is malformed; the message names the field and the value."""


class Misconfigured(Exception):
    """The Lambda's environment is wrong; the message names the variable and the value."""


def dynamodb_client():
    """The DynamoDB client, built on first use and reused while the Lambda container lives.

    Built lazily so that importing this file needs no AWS configuration. The endpoint follows
    the standard AWS_ENDPOINT_URL(_DYNAMODB) variables, which is how a local emulator is used.
    """
    global _dynamodb
    if _dynamodb is None:
        _dynamodb = boto3.client("dynamodb")
    return _dynamodb


def handler(event: Any, context: Any) -> dict:
    """The Lambda entry point: configuration from the environment, work in :func:`handle`."""
    try:
        table = _state_table_from_env()
        client = dynamodb_client()
    except (Misconfigured, BotoCoreError) as error:
        log("error", "misconfigured", error=str(error))
        return {"ok": False, "error": str(error)}
    return handle(event, client, table)


def handle(event: Any, client, table: str) -> dict:
    """Answer one event against the state in ``table``; never raise."""
    event_type = event.get("type") if isinstance(event, dict) else None
    if not isinstance(event_type, str) or len(event_type) > 32:
        event_type = None
    try:
        if not isinstance(event, dict):
            raise InvalidEvent(f"event must be a JSON object, got {type(event).__name__}")
        size = len(json.dumps(event, default=repr))
        if size > MAX_EVENT_BYTES:
            raise InvalidEvent(f"event is {size} bytes of JSON, over the limit of {MAX_EVENT_BYTES}")
        action = _action_for(event)
        result = action(event, client, table)
    except (InvalidEvent, orchestrator_state.OrchestratorStateError) as error:
        log("warning", "rejected", event_type=event_type, error=str(error), event=_loggable(event))
        return {"ok": False, "error": str(error)}
    except (ClientError, BotoCoreError) as error:
        log("error", "aws_error", event_type=event_type, error=str(error), event=_loggable(event))
        return {"ok": False, "error": f"DynamoDB request failed: {error}", "retryable": True}
    except Exception as error:  # The caller must always get an answer; the log keeps the trace.
        log("error", "internal_error", event_type=event_type, error=repr(error), trace=traceback.format_exc())
        return {"ok": False, "error": f"internal error: {error!r}"}
    log("info", "handled", event_type=event_type, event=_loggable(event), result=result)
    return {"ok": True, **result}


def on_region_complete(run_id: str, region: str) -> None:
    """Called by the one ``test-end`` that completed ``region``: its last planned task ended.

    This is where the remote tasks of a finished region get stopped by the orchestrator
    instead of by the playbook; for now it only records the event. A duplicate ``test-end``
    does not call it again, so whatever it does must not rely on being retried.
    """
    log("info", "region_complete", run_id=run_id, region=region)


def log(level: str, message: str, **fields: Any) -> None:
    """Write one JSON line to stdout, which Lambda sends to CloudWatch Logs."""
    print(json.dumps({"level": level, "message": message, **fields}, default=str), file=sys.stdout, flush=True)


# ---------------------------------------------------------------------------------------------
# Event actions
# ---------------------------------------------------------------------------------------------


def _agg_record(event: dict, client, table: str) -> dict:
    run_id, region, task_id, token = _task(event)
    registration = orchestrator_state.register_task(client, table, run_id, region, task_id, token)
    if registration["decided_start"]:
        log("info", "start_decided", run_id=run_id, start_at=registration["start_at"])
    return {
        "run_id": run_id,
        "region": region,
        "task_id": task_id,
        "state": registration["start_at"] is not None,
        **registration,
    }


def _test_init(event: dict, client, table: str) -> dict:
    run_id, region, task_id, token = _task(event)
    state = orchestrator_state.start_state(client, table, run_id, region, task_id, token)
    if state["decided_start"]:
        log("info", "start_decided", run_id=run_id, start_at=state["start_at"], by="test-init")
    return {"run_id": run_id, **state}


def _test_end(event: dict, client, table: str) -> dict:
    run_id, region, task_id, token = _task(event)
    exit_code = _integer(event, "exit_code")
    completion = orchestrator_state.record_test_end(
        client,
        table,
        run_id,
        region,
        task_id,
        token,
        exit_code,
        started_at=event.get("started_at"),
        thresholds=event.get("thresholds"),
        accounting=event.get("accounting"),
    )
    if completion["region_completed_now"]:
        on_region_complete(run_id, region)
    return {"run_id": run_id, "region": region, "task_id": task_id, **completion}


_ACTIONS: dict[str, Callable[[dict, Any, str], dict]] = {
    "agg-record": _agg_record,
    "test-init": _test_init,
    "test-end": _test_end,
}


def _action_for(event: dict) -> Callable[[dict, Any, str], dict]:
    if "type" not in event:
        raise InvalidEvent(f"field 'type' is missing; expected one of {', '.join(sorted(_ACTIONS))}")
    event_type = event["type"]
    if not isinstance(event_type, str) or event_type not in _ACTIONS:
        raise InvalidEvent(
            f"field 'type' has unknown value {orchestrator_state.shown(event_type)}; expected one of {', '.join(sorted(_ACTIONS))}"
        )
    return _ACTIONS[event_type]


# ---------------------------------------------------------------------------------------------
# Field validation: every message names the field and the value it got
# ---------------------------------------------------------------------------------------------


def _task(event: dict) -> tuple[str, str, str, str]:
    """The task the event speaks for and its token, each field present; their values are checked with the token."""
    for field in _TASK_FIELDS:
        if field not in event:
            raise InvalidEvent(f"field {field!r} is missing")
    return tuple(event[field] for field in _TASK_FIELDS)


_TASK_FIELDS = ("run_id", "region", "task_id", "token")


def _integer(event: dict, field: str) -> int:
    if field not in event:
        raise InvalidEvent(f"field {field!r} is missing")
    value = event[field]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(f"field {field!r} must be an integer, got {orchestrator_state.shown(value)}")
    return value


def _state_table_from_env() -> str:
    table = os.environ.get("STATE_TABLE", "")
    if not table:
        raise Misconfigured("environment variable STATE_TABLE is not set; it must name the orchestrator state table")
    return table


def _loggable(event: Any) -> Any:
    """The event as it can go into a log line: without its token, and shortened if it is not small."""
    if isinstance(event, dict) and "token" in event:
        event = {**event, "token": "(not logged)"}
    text = json.dumps(event, default=repr)
    return event if len(text) <= 2000 else text[:2000] + "..."
