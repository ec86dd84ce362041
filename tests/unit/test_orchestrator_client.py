"""The orchestrator client: the Lambda transport (stubbed boto3) and the local one (real handler, moto)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))
sys.path.insert(0, str(REPO / "files" / "lambda"))

import orchestrator_client  # noqa: E402
import orchestrator_state  # noqa: E402
from orchestrator_client import OrchestratorClient  # noqa: E402
from orchestrator_client import OrchestratorRejected  # noqa: E402
from orchestrator_client import OrchestratorUnavailable  # noqa: E402

FUNCTION = "loadtest-orchestrator"
HOME = "eu-central-1"


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
    event = {"type": "agg-record", "run_id": "r", "region": "us-east-2", "task_id": "3"}
    answer = {"ok": True, "registered": 4, "planned": 6, "start_at": None, "state": False}
    expect_invoke(lambda_stub, event, {"StatusCode": 200, "Payload": payload(answer)})

    client = OrchestratorClient.from_spec(f"lambda:{FUNCTION}", HOME)
    assert client.register("r", "us-east-2", "3") == answer


def test_lambda_function_error_is_a_clear_error(lambda_stub):
    crash = {"errorMessage": "Task timed out after 3.00 seconds", "errorType": "Sandbox.Timedout"}
    expect_invoke(
        lambda_stub,
        {"type": "test-init", "run_id": "r"},
        {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": payload(crash)},
    )

    client = OrchestratorClient.from_spec(f"lambda:{FUNCTION}", HOME)
    with pytest.raises(OrchestratorUnavailable, match=r"'loadtest-orchestrator' failed \(Unhandled\): Task timed out"):
        client.start_state("r")


def test_lambda_rejection_carries_the_orchestrators_reason(lambda_stub):
    event = {"type": "test-end", "run_id": "r", "region": "mars-1", "task_id": "0", "exit_code": 0}
    answer = {"ok": False, "error": "region 'mars-1' is not in the plan of run 'r'"}
    expect_invoke(lambda_stub, event, {"StatusCode": 200, "Payload": payload(answer)})

    client = OrchestratorClient.from_spec(f"lambda:{FUNCTION}", HOME)
    with pytest.raises(OrchestratorRejected, match="rejected 'test-end': region 'mars-1' is not in the plan"):
        client.report_end("r", "mars-1", "0", 0)


def test_lambda_invoke_failure_is_unavailable(lambda_stub):
    lambda_stub.add_client_error("invoke", service_error_code="ResourceNotFoundException", service_message="Function not found")

    client = OrchestratorClient.from_spec(f"lambda:{FUNCTION}", HOME)
    with pytest.raises(OrchestratorUnavailable, match="Function not found"):
        client.start_state("r")


@pytest.mark.parametrize("spec", ["", "lambda:", "local", "sqs:queue", "lambda"])
def test_bad_spec_is_refused(spec):
    with pytest.raises(ValueError, match="'lambda:<function name>' or 'local:<state table>'"):
        OrchestratorClient.from_spec(spec, HOME)


def test_local_transport_runs_the_real_handler(moto):
    table = "state-table"
    dynamodb = moto.client("dynamodb", HOME)
    orchestrator_state.create_table(dynamodb, table, {})
    orchestrator_state.wait_for_table(dynamodb, table, exists=True, timeout_seconds=10)
    client = OrchestratorClient.from_spec(f"local:{table}", HOME, moto.url)

    client.reset("r", {"us-east-2": 2}, lead_seconds=7)
    assert client.register("r", "us-east-2", "0")["state"] is False
    assert client.start_state("r")["state"] is False
    decided = client.register("r", "us-east-2", "1")
    assert decided["decided_start"] is True
    started = client.start_state("r")
    assert started["start_at"] == decided["start_at"]
    assert 6000 <= started["start_at"] - started["server_time"] <= 7000
    client.report_end("r", "us-east-2", "1", 99)
    assert orchestrator_state.read_run(dynamodb, table, "r")["exit_codes"] == {"us-east-2": {"1": 99}}
    with pytest.raises(OrchestratorRejected, match="task_id '2' is out of range"):
        client.register("r", "us-east-2", "2")
