"""The orchestrator client with a stubbed Lambda (the deployed function on the emulator: test_emulator.py)."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

from run import orchestrator_client
from run.orchestrator_client import OrchestratorClient
from run.orchestrator_client import OrchestratorRejected
from run.orchestrator_client import OrchestratorUnavailable
from run.orchestrator_client import Task

FUNCTION = "loadtest-orchestrator"
HOME = "eu-central-1"
TASK = Task("r", "us-east-2", "3", "secret-token")
IDENTITY = {"run_id": "r", "region": "us-east-2", "task_id": "3", "token": "secret-token"}


def payload(value) -> StreamingBody:
    raw = json.dumps(value).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


@pytest.fixture
def lambda_stub(monkeypatch):
    """A Lambda client whose invoke answers are queued by the test; the client uses it."""
    client = boto3.client("lambda", region_name=HOME, aws_access_key_id="x", aws_secret_access_key="x")
    monkeypatch.setattr(orchestrator_client.boto3, "client", lambda *args, **kwargs: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def expect_invoke(stubber: Stubber, event: dict, response: dict) -> None:
    stubber.add_response(
        "invoke",
        response,
        {"FunctionName": FUNCTION, "InvocationType": "RequestResponse", "Payload": json.dumps(event).encode()},
    )


def test_lambda_transport_sends_the_event_and_returns_the_answer(lambda_stub):
    event = {"type": "agg-record", **IDENTITY}
    answer = {"ok": True, "registered": 4, "planned": 6, "start_at": None, "state": False}
    expect_invoke(lambda_stub, event, {"StatusCode": 200, "Payload": payload(answer)})

    client = OrchestratorClient.from_spec(f"lambda:{FUNCTION}", HOME, TASK)
    assert client.register() == answer
    assert "secret-token" not in repr(client.task)


def test_lambda_function_error_is_a_clear_error(lambda_stub):
    crash = {"errorMessage": "Task timed out after 3.00 seconds", "errorType": "Sandbox.Timedout"}
    expect_invoke(
        lambda_stub,
        {"type": "test-init", **IDENTITY},
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": payload(crash)},
    )

    client = OrchestratorClient.from_spec(f"lambda:{FUNCTION}", HOME, TASK)
    with pytest.raises(OrchestratorUnavailable, match=r"'loadtest-orchestrator' failed \(Unhandled\): Task timed out"):
        client.start_state()


def test_lambda_rejection_carries_the_orchestrators_reason(lambda_stub):
    event = {"type": "test-end", **IDENTITY, "exit_code": 0, "started_at": 5}
    answer = {"ok": False, "error": "region 'us-east-2' is not in the plan of run 'r'"}
    expect_invoke(lambda_stub, event, {"StatusCode": 200, "Payload": payload(answer)})

    client = OrchestratorClient.from_spec(f"lambda:{FUNCTION}", HOME, TASK)
    with pytest.raises(OrchestratorRejected, match="rejected 'test-end': region 'us-east-2' is not in the plan"):
        client.report_end(0, started_at=5)


def test_a_refusal_the_orchestrator_calls_retryable_is_unavailable_not_rejected(lambda_stub):
    answer = {"ok": False, "error": "DynamoDB request failed: ThrottlingException", "retryable": True}
    expect_invoke(lambda_stub, {"type": "agg-record", **IDENTITY}, {"StatusCode": 200, "Payload": payload(answer)})

    client = OrchestratorClient.from_spec(f"lambda:{FUNCTION}", HOME, TASK)
    with pytest.raises(OrchestratorUnavailable, match="ThrottlingException"):
        client.register()


def test_lambda_invoke_failure_is_unavailable(lambda_stub):
    lambda_stub.add_client_error("invoke", service_error_code="ResourceNotFoundException", service_message="Function not found")

    client = OrchestratorClient.from_spec(f"lambda:{FUNCTION}", HOME, TASK)
    with pytest.raises(OrchestratorUnavailable, match="Function not found"):
        client.start_state()


@pytest.mark.parametrize("spec", ["", "lambda:", "local", "local:state-table", "sqs:queue", "lambda"])
def test_bad_spec_is_refused(spec):
    with pytest.raises(ValueError, match="'lambda:<function name>'"):
        OrchestratorClient.from_spec(spec, HOME, TASK)
