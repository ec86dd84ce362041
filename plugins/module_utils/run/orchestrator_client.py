# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""How load generators (and anything else) talk to the orchestrator of a test run.

The orchestrator answers the events of ``files/lambda/orchestrator.py`` (``agg-record``,
``test-init``, ``test-end``, ``test-reset``). It is the Lambda function deployed in the home
region, named by a spec string ``lambda:<function name>`` and invoked synchronously (on the
emulated AWS too, which runs the deployed function).

Plain boto3 and no Ansible, so the load generator container imports this file top-level
(``import orchestrator_client``) and the modules import it as module_utils.
"""

from __future__ import annotations

import json
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


class OrchestratorClient:
    """Sends orchestrator events and returns the answers of those it accepted."""

    def __init__(self, transport: Transport, description: str) -> None:
        self._transport = transport
        self.description = description

    @classmethod
    def from_spec(cls, spec: str, home_region: str, endpoint_url: str | None = None) -> "OrchestratorClient":
        """The client for ``lambda:<function>`` in ``home_region``."""
        kind, separator, name = spec.partition(":")
        if kind not in TRANSPORTS or not separator or not name:
            raise ValueError(f"orchestrator must be 'lambda:<function name>', got {spec!r}")
        return cls(lambda_transport(name, home_region, endpoint_url), f"Lambda function {name!r} in {home_region}")

    def register(self, run_id: str, region: str, task_id: str) -> dict:
        """``agg-record``: this task is ready; the answer says whether the start is decided."""
        return self.send({"type": "agg-record", "run_id": run_id, "region": region, "task_id": task_id})

    def start_state(self, run_id: str) -> dict:
        """``test-init``: ``state`` (bool), ``start_at`` and ``server_time`` in epoch ms."""
        return self.send({"type": "test-init", "run_id": run_id})

    def report_end(self, run_id: str, region: str, task_id: str, exit_code: int) -> dict:
        """``test-end``: this task finished with ``exit_code``."""
        return self.send(
            {"type": "test-end", "run_id": run_id, "region": region, "task_id": task_id, "exit_code": exit_code}
        )

    def reset(self, run_id: str, regions: dict[str, int], lead_seconds: int | None = None) -> dict:
        """``test-reset``: start the run over with ``{region: planned task count}``."""
        event: dict[str, Any] = {"type": "test-reset", "run_id": run_id, "regions": regions}
        if lead_seconds is not None:
            event["lead_seconds"] = lead_seconds
        return self.send(event)

    def send(self, event: dict) -> dict:
        """Send one event; return the answer if ``ok``, raise OrchestratorRejected if not."""
        answer = self._transport(event)
        if not isinstance(answer, dict) or "ok" not in answer:
            raise OrchestratorUnavailable(f"{self.description} gave an answer without 'ok': {answer!r}")
        if not answer["ok"]:
            raise OrchestratorRejected(
                f"{self.description} rejected {event.get('type')!r}: {answer.get('error', 'no reason given')}"
            )
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
