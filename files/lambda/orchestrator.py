# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The orchestrator Lambda: synchronizes the start and records the end of a test run.

Load generators and aggregators invoke it with one of four events:

``{"type": "agg-record", "run_id": ..., "region": ..., "task_id": ...}``
    a task is up and ready; the start is decided once every planned task has registered.
``{"type": "test-init", "run_id": ...}``
    polled by waiting tasks: ``{"state": bool, "start_at": epoch ms | None, "server_time": epoch ms}``.
``{"type": "test-end", "run_id": ..., "region": ..., "task_id": ..., "exit_code": int}``
    a task finished; when its region has completed, :func:`on_region_complete` runs. Optional:
    ``"started_at": int``, when the task's k6 resumed, in epoch ms on this function's clock
    (the task's own clock corrected by the offset it estimated from ``server_time``); and
    ``"thresholds": {"<metric selector>": {"<expression>": bool}}``, k6's verdict on each
    threshold of the task's script, true if it passed (e.g.
    ``{"http_req_duration{region:us-east-2}": {"p(95)<500": true}}``). Each is kept as first
    reported; verdicts beyond the run item's size budget are dropped, and the task flagged.
``{"type": "test-reset", "run_id": ..., "regions": {region: task count}, "lead_seconds": int}``
    start the run over with this plan (``lead_seconds`` defaults to ``START_LEAD_SECONDS``).

Every answer is a dict with ``ok``: true with the event's result, or false with an ``error``
that names the offending field and value. The handler never raises, so a caller always gets
an answer it can log. State lives in DynamoDB (``orchestrator_state``, shipped beside this file).

Environment: ``STATE_TABLE`` (required) names the state table; ``START_LEAD_SECONDS``
(default 30) is how far ahead of the last registration the start is set, long enough for
every task in every region to see the decision before it arrives.
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

DEFAULT_START_LEAD_SECONDS = 30

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
        default_lead_seconds = _lead_seconds_from_env()
        client = dynamodb_client()
    except (Misconfigured, BotoCoreError) as error:
        log("error", "misconfigured", error=str(error))
        return {"ok": False, "error": str(error)}
    return handle(event, client, table, default_lead_seconds)


def handle(event: Any, client, table: str, default_lead_seconds: int = DEFAULT_START_LEAD_SECONDS) -> dict:
    """Answer one event against the state in ``table``; never raise."""
    event_type = event.get("type") if isinstance(event, dict) else None
    try:
        if not isinstance(event, dict):
            raise InvalidEvent(f"event must be a JSON object, got {type(event).__name__}: {event!r}")
        action = _action_for(event)
        result = action(event, client, table, default_lead_seconds)
    except (InvalidEvent, orchestrator_state.OrchestratorStateError) as error:
        log("warning", "rejected", event_type=event_type, error=str(error), event=_loggable(event))
        return {"ok": False, "error": str(error)}
    except (ClientError, BotoCoreError) as error:
        log("error", "aws_error", event_type=event_type, error=str(error), event=_loggable(event))
        return {"ok": False, "error": f"DynamoDB request failed: {error}"}
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


def _agg_record(event: dict, client, table: str, default_lead_seconds: int) -> dict:
    run_id, region, task_id = _run_id(event), _string(event, "region"), _task_id(event)
    registration = orchestrator_state.register_task(client, table, run_id, region, task_id)
    if registration["decided_start"]:
        log("info", "start_decided", run_id=run_id, start_at=registration["start_at"])
    return {
        "run_id": run_id,
        "region": region,
        "task_id": task_id,
        "state": registration["start_at"] is not None,
        **registration,
    }


def _test_init(event: dict, client, table: str, default_lead_seconds: int) -> dict:
    run_id = _run_id(event)
    return {"run_id": run_id, **orchestrator_state.start_state(client, table, run_id)}


def _test_end(event: dict, client, table: str, default_lead_seconds: int) -> dict:
    run_id, region, task_id = _run_id(event), _string(event, "region"), _task_id(event)
    exit_code = _integer(event, "exit_code")
    completion = orchestrator_state.record_test_end(
        client,
        table,
        run_id,
        region,
        task_id,
        exit_code,
        started_at=event.get("started_at"),
        thresholds=event.get("thresholds"),
    )
    if completion["region_completed_now"]:
        on_region_complete(run_id, region)
    return {"run_id": run_id, "region": region, "task_id": task_id, **completion}


def _test_reset(event: dict, client, table: str, default_lead_seconds: int) -> dict:
    run_id = _run_id(event)
    if "regions" not in event:
        raise InvalidEvent("field 'regions' is missing (a mapping of region name to planned task count)")
    regions = orchestrator_state.validate_plan(event["regions"])
    lead_seconds = event.get("lead_seconds", default_lead_seconds)
    orchestrator_state.validate_lead_seconds(lead_seconds)
    orchestrator_state.reset_run(client, table, run_id, regions, lead_seconds)
    return {"run_id": run_id, "regions": regions, "lead_seconds": lead_seconds}


_ACTIONS: dict[str, Callable[[dict, Any, str, int], dict]] = {
    "agg-record": _agg_record,
    "test-init": _test_init,
    "test-end": _test_end,
    "test-reset": _test_reset,
}


def _action_for(event: dict) -> Callable[[dict, Any, str, int], dict]:
    if "type" not in event:
        raise InvalidEvent(f"field 'type' is missing; expected one of {', '.join(sorted(_ACTIONS))}")
    event_type = event["type"]
    if not isinstance(event_type, str) or event_type not in _ACTIONS:
        raise InvalidEvent(
            f"field 'type' has unknown value {event_type!r}; expected one of {', '.join(sorted(_ACTIONS))}"
        )
    return _ACTIONS[event_type]


# ---------------------------------------------------------------------------------------------
# Field validation: every message names the field and the value it got
# ---------------------------------------------------------------------------------------------


def _string(event: dict, field: str) -> str:
    if field not in event:
        raise InvalidEvent(f"field {field!r} is missing")
    value = event[field]
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"field {field!r} must be a non-empty string, got {value!r}")
    return value


def _run_id(event: dict) -> str:
    return _string(event, "run_id")


def _task_id(event: dict) -> str:
    if "task_id" not in event:
        raise InvalidEvent("field 'task_id' is missing")
    try:
        return orchestrator_state.normalize_task_id(event["task_id"])
    except orchestrator_state.OrchestratorStateError as error:
        raise InvalidEvent(f"field {error}") from None


def _integer(event: dict, field: str) -> int:
    if field not in event:
        raise InvalidEvent(f"field {field!r} is missing")
    value = event[field]
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidEvent(f"field {field!r} must be an integer, got {value!r}")
    return value


def _state_table_from_env() -> str:
    table = os.environ.get("STATE_TABLE", "")
    if not table:
        raise Misconfigured("environment variable STATE_TABLE is not set; it must name the orchestrator state table")
    return table


def _lead_seconds_from_env() -> int:
    raw = os.environ.get("START_LEAD_SECONDS", str(DEFAULT_START_LEAD_SECONDS))
    try:
        return orchestrator_state.validate_lead_seconds(int(raw))
    except (ValueError, orchestrator_state.OrchestratorStateError):
        raise Misconfigured(
            f"environment variable START_LEAD_SECONDS must be a non-negative integer, got {raw!r}"
        ) from None


def _loggable(event: Any) -> Any:
    """The event as it can go into a log line (events are small; anything else is shortened)."""
    text = json.dumps(event, default=repr)
    return event if len(text) <= 2000 else text[:2000] + "..."
