# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""How load generators (and anything else) talk to the orchestrator of a test run.

The orchestrator answers the events of ``files/lambda/orchestrator.py`` (``agg-record``,
``test-init``, ``test-end``), each sent by one task for itself with its token. It is the Lambda
function deployed in the home region, named by a spec string ``lambda:<function name>`` and
invoked synchronously (on the emulated AWS too, which runs the deployed function).

Plain boto3 and no Ansible, so the load generator container imports this file top-level
(``import orchestrator_client``) and the modules import it as module_utils.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Callable

try:
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Modules report a missing boto3 through AnsibleAWSModule; the containers install it.

TRANSPORTS = ("lambda",)

# botocore's standard retry mode retries throttling, 5xx and connection errors with jittered
# backoff; a Lambda invocation can take seconds on a cold start, hence the read timeout.
_BOTO_CONFIG = {"retries": {"mode": "standard", "max_attempts": 5}, "read_timeout": 30, "connect_timeout": 5}

Transport = Callable[[dict], dict]


class OrchestratorError(Exception):
    """The orchestrator could not be reached, or failed, or rejected an event."""


class OrchestratorUnavailable(OrchestratorError):
    """The orchestrator did not answer (network, AWS or function error); trying again may help."""


class OrchestratorRejected(OrchestratorError):
    """The orchestrator answered ``ok: false``; the message is its explanation."""


@dataclass(frozen=True)
class Task:
    """Who sends: one task of one region in one run, and the token that proves it."""

    run_id: str
    region: str
    task_id: str
    token: str = field(repr=False)

    def event(self, event_type: str, **fields: Any) -> dict:
        """One event of this task, with its identity and its token."""
        identity = {"run_id": self.run_id, "region": self.region, "task_id": self.task_id, "token": self.token}
        return {"type": event_type, **identity, **fields}


class OrchestratorClient:
    """Sends one task's orchestrator events and returns the answers of those it accepted."""

    def __init__(self, transport: Transport, description: str, task: Task) -> None:
        self._transport = transport
        self.description = description
        self.task = task

    @classmethod
    def from_spec(cls, spec: str, home_region: str, task: Task, endpoint_url: str | None = None) -> "OrchestratorClient":
        """The client of ``task`` for ``lambda:<function>`` in ``home_region``."""
        kind, separator, name = spec.partition(":")
        if kind not in TRANSPORTS or not separator or not name:
            raise ValueError(f"orchestrator must be 'lambda:<function name>', got {spec!r}")
        return cls(lambda_transport(name, home_region, endpoint_url), f"Lambda function {name!r} in {home_region}", task)

    def register(self) -> dict:
        """``agg-record``: this task is ready; the answer says whether the start is decided."""
        return self.send(self.task.event("agg-record"))

    def start_state(self) -> dict:
        """``test-init``: ``state`` (bool), ``start_at`` and ``server_time`` in epoch ms."""
        return self.send(self.task.event("test-init"))

    def report_end(self, exit_code: int, **fields: Any) -> dict:
        """``test-end``: this task finished with ``exit_code`` (and optional ``started_at``, ``thresholds``)."""
        return self.send(self.task.event("test-end", exit_code=exit_code, **fields))

    def send(self, event: dict) -> dict:
        """Send one event; return the answer if ``ok``.

        Raise OrchestratorUnavailable if there was no answer or the orchestrator says the same
        event may succeed later (``retryable``), OrchestratorRejected if it refused the event.
        """
        answer = self._transport(event)
        if not isinstance(answer, dict) or "ok" not in answer:
            raise OrchestratorUnavailable(f"{self.description} gave an answer without 'ok': {str(answer)[:200]}")
        if not answer["ok"]:
            failure = OrchestratorUnavailable if answer.get("retryable") else OrchestratorRejected
            raise failure(f"{self.description} rejected {event.get('type')!r}: {answer.get('error', 'no reason given')}")
        return answer


def lambda_transport(function_name: str, region: str, endpoint_url: str | None = None) -> Transport:
    """Invoke the orchestrator Lambda synchronously and return its decoded answer."""
    client = boto3.client("lambda", region_name=region, endpoint_url=endpoint_url, config=Config(**_BOTO_CONFIG))

    def invoke(event: dict) -> dict:
        try:
            response = client.invoke(
                FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
            )
            payload = response["Payload"].read()
        except (BotoCoreError, ClientError) as error:
            raise OrchestratorUnavailable(f"invoking Lambda function {function_name!r} in {region} failed: {error}") from None
        answer = _decode_payload(function_name, payload)
        if "FunctionError" in response:
            # The handler never raises, so this is a crash, a timeout or an out-of-memory kill.
            details = answer.get("errorMessage", answer) if isinstance(answer, dict) else answer
            raise OrchestratorUnavailable(
                f"Lambda function {function_name!r} failed ({response['FunctionError']}): {details}"
            )
        return answer

    return invoke


def _decode_payload(function_name: str, payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        raise OrchestratorUnavailable(
            f"Lambda function {function_name!r} returned a payload that is not JSON: {payload[:200]!r}"
        ) from None
