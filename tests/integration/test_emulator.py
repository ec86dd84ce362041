"""The emulated AWS does what moto cannot: ECS tasks run as containers, Lambda runs the deployed code.

ECS (the production emulator, tasks in podman): a task's state follows its containers, with their
exit codes and ECS's stop codes; StopTask sends SIGTERM and, after the container's stopTimeout,
SIGKILL; a task gets its overrides, its role's credentials, and reaches the host's loopback; an
image that cannot be pulled fails the task as ECS fails it; Ctrl-C of the emulator leaves nothing.
Lambda (the module tests' emulator): the deployed function answers, a new deployment is what the
next invocation runs, an exception and a timeout are answered as Lambda answers them.
"""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import time
import zipfile
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from threading import Thread

import pytest
from botocore.exceptions import ClientError
from conftest import PRODUCTION, REPO, built_images, our_containers
from run.orchestrator_client import OrchestratorClient
from run.orchestrator_client import OrchestratorRejected
from run.orchestrator_client import Task
from task_processes import deploy_orchestrator

from run import orchestrator_state
from aws import orchestrator_table

REGION = "us-east-2"
HOME = "eu-central-1"


# ---------------------------------------------------------------------------------------------
# Lambda: the deployed function runs
# ---------------------------------------------------------------------------------------------


def function_zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", source)
    return buffer.getvalue()


def deploy(moto, name: str, source: str, timeout: int = 3, environment: dict | None = None):
    iam = moto.client("iam", HOME)
    role = iam.create_role(RoleName=f"{name}-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    client = moto.client("lambda", HOME)
    client.create_function(FunctionName=name, Runtime="python3.12", Handler="app.handler", Role=role,
                           Code={"ZipFile": function_zip(source)}, Timeout=timeout,
                           Environment={"Variables": environment or {}})
    return client


def invoke(client, name: str, event: dict) -> tuple[dict, str | None]:
    response = client.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    return json.loads(response["Payload"].read()), response.get("FunctionError")


def test_the_deployed_orchestrator_answers_each_task_for_itself_and_refuses_hostile_events(moto):
    table, function = "state-table", "lt-orchestrator"
    dynamodb = moto.client("dynamodb", HOME)
    orchestrator_table.create_table(dynamodb, table, {})
    orchestrator_table.wait_for_table(dynamodb, table, exists=True, timeout_seconds=10)
    deploy_orchestrator(moto.url, HOME, function, table)
    key = orchestrator_state.reset_run(dynamodb, table, "r", {"us-east-2": 2}, 7)  # as run_test plans it
    orchestrator_state.reset_run(dynamodb, table, "other", {"us-east-2": 2}, 7)

    def task(index: int) -> OrchestratorClient:
        token = orchestrator_state.task_token(key, "r", "us-east-2", index)
        return OrchestratorClient.from_spec(f"lambda:{function}", HOME, Task("r", "us-east-2", str(index), token), moto.url)

    assert task(0).register()["state"] is False
    assert task(0).start_state()["state"] is False
    decided = task(1).register()
    assert decided["decided_start"] is True
    started = task(0).start_state()
    assert started["start_at"] == decided["start_at"]
    assert 6000 <= started["start_at"] - started["server_time"] <= 7000

    # What a task, or a script holding its credentials, might try: each refused, nothing changed.
    lambda_client = moto.client("lambda", HOME)
    own = task(0).task.event("test-end", exit_code=0)
    hostile = {
        "reset": {"type": "test-reset", "run_id": "r", "regions": {"us-east-2": 1}, "lead_seconds": 10**6},
        "forged end": {**own, "task_id": "1"},
        "other run": {**own, "run_id": "other"},
        "1 MB field": {**own, "padding": "x" * 1_000_000},
    }
    before = {run_id: orchestrator_state.read_run(dynamodb, table, run_id) for run_id in ("r", "other")}
    for name, event in hostile.items():
        answer, function_error = invoke(lambda_client, function, event)
        assert function_error is None and answer["ok"] is False, name
        assert len(answer["error"]) < 300, (name, answer["error"][:400])
    assert {run_id: orchestrator_state.read_run(dynamodb, table, run_id) for run_id in ("r", "other")} == before

    task(1).report_end(99)
    assert orchestrator_state.read_run(dynamodb, table, "r")["exit_codes"] == {"us-east-2": {"1": 99}}
    out_of_plan = OrchestratorClient.from_spec(f"lambda:{function}", HOME, Task("r", "us-east-2", "2", "t"), moto.url)
    with pytest.raises(OrchestratorRejected, match="task_id '2' is out of range"):
        out_of_plan.register()


def test_a_new_deployment_is_what_the_next_invocation_runs(moto):
    source = "import os\ndef handler(event, context):\n    return {'version': VERSION, 'greeting': os.environ.get('GREETING'), 'event': event}\n"
    client = deploy(moto, "versions", "VERSION = 1\n" + source, environment={"GREETING": "hello"})
    assert invoke(client, "versions", {"n": 1}) == ({"version": 1, "greeting": "hello", "event": {"n": 1}}, None)

    client.update_function_code(FunctionName="versions", ZipFile=function_zip("VERSION = 2\n" + source))
    assert invoke(client, "versions", {"n": 2})[0]["version"] == 2
    client.update_function_configuration(FunctionName="versions", Environment={"Variables": {"GREETING": "bonjour"}})
    assert invoke(client, "versions", {"n": 3})[0] == {"version": 2, "greeting": "bonjour", "event": {"n": 3}}


def test_an_exception_and_a_timeout_are_answered_as_lambda_answers_them(moto):
    source = (
        "import time\n"
        "def handler(event, context):\n"
        "    if event.get('fail'):\n        raise KeyError('no such order')\n"
        "    time.sleep(event.get('sleep', 0))\n    return 'done'\n"
    )
    client = deploy(moto, "flaky", source, timeout=1)

    answer, error = invoke(client, "flaky", {"fail": True})
    assert error == "Unhandled"
    assert (answer["errorType"], answer["errorMessage"]) == ("KeyError", "'no such order'")
    answer, error = invoke(client, "flaky", {"sleep": 3})
    assert error == "Unhandled" and answer["errorMessage"] == "Task timed out after 1.00 seconds"
    assert invoke(client, "flaky", {}) == ("done", None)  # a new environment after the timeout


# ---------------------------------------------------------------------------------------------
# ECS: tasks run as containers
# ---------------------------------------------------------------------------------------------


class Cluster:
    """A cluster, a subnet and task definitions in one region of the emulator, and tasks run there."""

    def __init__(self, emulator, name: str = "runner") -> None:
        self.ecs = emulator.client("ecs", REGION)
        self.name = name
        ec2 = emulator.client("ec2", REGION)
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})  # moto's task ENIs need a DNS name
        self.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.0.0/24")["Subnet"]["SubnetId"]
        self.ecs.create_cluster(clusterName=name)

    def run(self, containers: list[dict], overrides: dict | None = None) -> str:
        """Register a task definition of ``containers`` and run a task of it; its ARN."""
        family = f"family-{time.monotonic_ns()}"
        self.ecs.register_task_definition(
            family=family, networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
            containerDefinitions=containers, taskRoleArn="arn:aws:iam::123456789012:role/the-task-role",
        )
        task = self.ecs.run_task(
            cluster=self.name, taskDefinition=family, launchType="FARGATE",
            networkConfiguration={"awsvpcConfiguration": {"subnets": [self.subnet], "securityGroups": []}},
            overrides={"containerOverrides": [{"name": n, "environment": [{"name": k, "value": v} for k, v in env.items()]}
                                              for n, env in (overrides or {}).items()]},
        )["tasks"][0]
        return task["taskArn"]

    def describe(self, arn: str) -> dict:
        return self.ecs.describe_tasks(cluster=self.name, tasks=[arn])["tasks"][0]

    def wait_for(self, arn: str, status: str, timeout: float = 60) -> dict:
        """The task once it is in ``status`` or a later one (a short RUNNING may pass between two looks)."""
        wanted = LIFECYCLE.index(status)
        deadline = time.monotonic() + timeout
        while LIFECYCLE.index((task := self.describe(arn))["lastStatus"]) < wanted:
            assert time.monotonic() < deadline, f"task still {task['lastStatus']} after {timeout} s: {task}"
            time.sleep(0.5)
        return task


LIFECYCLE = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING", "DEPROVISIONING", "STOPPED"]


def python_container(name: str, code: str, essential: bool = True, **settings) -> dict:
    """A container of our aggregator image (it has Python and boto3) running ``code``."""
    image = built_images()["constellation_aggregator_image"]
    return {"name": name, "image": image, "essential": essential, "memoryReservation": 128, "entryPoint": ["python3", "-c", code], **settings}


TERMINATES_ON_SIGTERM = "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\ntime.sleep(600)"
IGNORES_SIGTERM = "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)"


def test_run_task_refuses_overrides_over_ecs_limit_as_ecs_does(moto):
    cluster = Cluster(moto)
    long_value = "x" * 8200

    with pytest.raises(ClientError) as refused:
        cluster.run([{"name": "main", "image": "example/image:1", "memoryReservation": 128}], {"main": {"LONG": long_value}})

    assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    assert "at most 8192" in refused.value.response["Error"]["Message"]
    assert cluster.ecs.list_tasks(cluster=cluster.name)["taskArns"] == []


@PRODUCTION
def test_the_task_follows_its_containers_and_ends_when_the_essential_one_exits(production):
    cluster = Cluster(production)
    arn = cluster.run([
        python_container("main", "import time, sys\ntime.sleep(2)\nsys.exit(3)"),
        python_container("side", TERMINATES_ON_SIGTERM, essential=False),
    ])
    assert cluster.describe(arn)["lastStatus"] in ("PROVISIONING", "PENDING", "RUNNING")
    cluster.wait_for(arn, "RUNNING")

    task = cluster.wait_for(arn, "STOPPED")

    assert (task["desiredStatus"], task["stopCode"], task["stoppedReason"]) == (
        "STOPPED", "EssentialContainerExited", "Essential container in task exited")
    assert {c["name"]: (c["lastStatus"], c["exitCode"]) for c in task["containers"]} == {"main": ("STOPPED", 3), "side": ("STOPPED", 0)}
    assert not [line for line in our_containers() if arn.rsplit("/", 1)[-1] in line]


@pytest.fixture
def loopback_target():
    """A server on the host's loopback that answers 200 with 'reached'."""
    class Reached(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "7")
            self.end_headers()
            self.wfile.write(b"reached")

        def log_message(self, format, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Reached)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@PRODUCTION
def test_a_task_gets_its_overrides_its_role_credentials_and_the_hosts_loopback(production, loopback_target):
    probe = (
        "import json, os, sys, urllib.request, boto3\n"
        "print('env', os.environ['GREETING'], os.environ['FROM_DEFINITION'])\n"
        "print('target', urllib.request.urlopen(os.environ['TARGET']).read().decode())\n"
        "credentials = boto3.Session().get_credentials()\n"
        "print('credentials', credentials.method, credentials.access_key.startswith('ASIA'))\n"
        "request = urllib.request.Request(os.environ['AWS_CONTAINER_CREDENTIALS_FULL_URI'],"
        " headers={'Authorization': os.environ['AWS_CONTAINER_AUTHORIZATION_TOKEN']})\n"
        "print('role', json.load(urllib.request.urlopen(request))['RoleArn'])\n"
        "print('buckets', len(boto3.client('s3', endpoint_url=os.environ['ENDPOINT']).list_buckets()['Buckets']))\n"
    )
    cluster = Cluster(production)
    production.client("s3", REGION).create_bucket(Bucket="seen-by-the-task", CreateBucketConfiguration={"LocationConstraint": REGION})
    definition_env = [{"name": "FROM_DEFINITION", "value": "kept"}, {"name": "GREETING", "value": "replaced"},
                      {"name": "TARGET", "value": loopback_target}, {"name": "ENDPOINT", "value": production.url}]
    arn = cluster.run([python_container("probe", probe, environment=definition_env)], {"probe": {"GREETING": "hello"}})

    task = cluster.wait_for(arn, "STOPPED")

    output = production.task_logs(REGION, arn, "probe")
    assert task["containers"][0]["exitCode"] == 0, output
    assert output == [
        "env hello kept", "target reached", "credentials container-role True",
        "role arn:aws:iam::123456789012:role/the-task-role", "buckets 1",
    ]


@PRODUCTION
def test_stop_task_sends_sigterm_then_sigkill_after_the_stop_timeout(production):
    cluster = Cluster(production)
    arn = cluster.run([
        python_container("polite", TERMINATES_ON_SIGTERM),
        python_container("stubborn", IGNORES_SIGTERM, essential=False, stopTimeout=2),
    ])
    cluster.wait_for(arn, "RUNNING")

    stopping = cluster.ecs.stop_task(cluster=cluster.name, task=arn, reason="Run aborted: test")["task"]
    started = time.monotonic()
    task = cluster.wait_for(arn, "STOPPED", timeout=30)

    assert stopping["desiredStatus"] == "STOPPED" and stopping["lastStatus"] != "STOPPED"  # the containers decide
    assert time.monotonic() - started < 15
    assert (task["stopCode"], task["stoppedReason"]) == ("UserInitiated", "Run aborted: test")
    assert {c["name"]: c["exitCode"] for c in task["containers"]} == {"polite": 0, "stubborn": 137}  # SIGKILL: 128 + 9


# A program with no SIGTERM handler, as any program is until it has installed one (Python: its imports).
NO_SIGTERM_HANDLER = "import time\ntime.sleep(600)"


@PRODUCTION
def test_an_init_process_passes_on_a_sigterm_that_pid_1_would_ignore(production):
    cluster = Cluster(production)
    arn = cluster.run([
        python_container("with-init", NO_SIGTERM_HANDLER, stopTimeout=5, linuxParameters={"initProcessEnabled": True}),
        python_container("pid-1", NO_SIGTERM_HANDLER, essential=False, stopTimeout=5),
    ])
    cluster.wait_for(arn, "RUNNING")
    cluster.ecs.stop_task(cluster=cluster.name, task=arn, reason="stop")

    task = cluster.wait_for(arn, "STOPPED", timeout=30)

    # SIGTERM ends the program behind the init (128 + 15); as PID 1 it is ignored, and SIGKILL comes after the stopTimeout.
    assert {c["name"]: c["exitCode"] for c in task["containers"]} == {"with-init": 143, "pid-1": 137}


@PRODUCTION
def test_an_image_that_cannot_be_pulled_fails_the_task_to_start(production):
    cluster = Cluster(production)
    image = built_images()["constellation_aggregator_image"].rsplit(":", 1)[0] + ":no-such-tag"
    arn = cluster.run([{"name": "main", "image": image, "essential": True, "memoryReservation": 128}])

    task = cluster.wait_for(arn, "STOPPED")

    assert task["stopCode"] == "TaskFailedToStart"
    assert task["stoppedReason"].startswith(f"CannotPullContainerError: pull image {image}")
    assert [c.get("exitCode") for c in task["containers"]] == [None]


@PRODUCTION
def test_ctrl_c_of_the_emulator_stops_and_removes_every_task_it_runs(production, tmp_path):
    command = [sys.executable, str(REPO / "tools" / "aws_emulator.py"), "--port", "0", "--log-dir", str(tmp_path)]
    with open(tmp_path / "emulator.log", "w") as log:
        emulator = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        endpoint = emulator.stdout.readline().split(" ", 1)[1].strip()

        class Emulator:
            def client(self, service, region):
                import boto3

                return boto3.client(service, region_name=region, endpoint_url=endpoint)

        cluster = Cluster(Emulator())
        arns = [cluster.run([python_container("main", TERMINATES_ON_SIGTERM)]), cluster.run([python_container("main", TERMINATES_ON_SIGTERM)])]
        for arn in arns:
            cluster.wait_for(arn, "RUNNING")
        assert all(any(arn.rsplit("/", 1)[-1] in line for line in our_containers()) for arn in arns)

        emulator.send_signal(signal.SIGINT)  # what Ctrl-C in `make emulator` sends
        assert emulator.wait(timeout=60) == 0
    finally:
        if emulator.poll() is None:
            emulator.kill()
            emulator.wait()
    assert not [line for line in our_containers() if any(arn.rsplit("/", 1)[-1] in line for arn in arns)]
    assert "stopped (ServiceSchedulerInitiated: The emulator stopped)" in (tmp_path / "emulator.log").read_text()
