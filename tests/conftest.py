"""Shared test fixtures: the emulated AWS on loopback and an ansible-playbook runner.

Every test that talks to "AWS" talks to an emulator this module starts on 127.0.0.1 and stops at
the end of the session: moto with Lambda functions run as deployed, ECS tasks recorded but not
run (``moto``); the end-to-end tests start the whole emulated AWS, tasks in containers included
(test_production_path.py). Each test starts from an empty emulator.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tools"))
# The collection by its FQCN (the repository root is the collection, linked under .build/collections)
# and its shared packages as the data plane imports them (``results``, ``run``: see the Dockerfiles).
sys.path.insert(0, str(REPO / ".build" / "collections"))
sys.path.insert(0, str(REPO / "plugins" / "module_utils"))

import podman  # noqa: E402
import yaml  # noqa: E402
from ecs_runner import SESSION_LABEL, read_container_log  # noqa: E402
from emulator import FAKE_CREDENTIALS, aws_emulator, reset  # noqa: E402
from run.regions import TIMESTREAM_LIVEANALYTICS_REGIONS  # noqa: E402


@dataclass
class MotoServer:
    url: str
    log_dir: Path  # the emulator's logs: functions/<function>.log, tasks/<region>/<task id>/<container>.log

    def function_log(self, function: str) -> Path:
        """What the function ``function`` logged in the emulator (its handler's output)."""
        return self.log_dir / "functions" / f"{function}.log"

    def reset(self) -> None:
        reset(self.url)

    def client(self, service: str, region: str = "eu-central-1"):
        return boto3.client(service, region_name=region, endpoint_url=self.url)

    def inventory(self, regions: list[str]) -> dict[str, list[str]]:
        """Every resource kind the playbooks create, listed per kind (global and per region)."""
        found: dict[str, list[str]] = {
            "s3_buckets": [b["Name"] for b in self.client("s3").list_buckets()["Buckets"]],
            "iam_roles": [r["RoleName"] for r in self.client("iam").list_roles()["Roles"]],
        }
        for region in regions:
            found[f"{region}/dynamodb_tables"] = self.client("dynamodb", region).list_tables()["TableNames"]
            found[f"{region}/lambda_functions"] = [
                f["FunctionName"] for f in self.client("lambda", region).list_functions()["Functions"]
            ]
            found[f"{region}/log_groups"] = [
                g["logGroupName"] for g in self.client("logs", region).describe_log_groups()["logGroups"]
            ]
            found.update(self.remote_inventory(region))
            if region in TIMESTREAM_LIVEANALYTICS_REGIONS:
                found[f"{region}/timestream_databases"] = [
                    d["DatabaseName"] for d in self.client("timestream-write", region).list_databases()["Databases"]
                ]
        return found

    def remote_inventory(self, region: str) -> dict[str, list[str]]:
        """What the remote role creates in a region: ECS, and the network tagged with a deployment."""
        ecs = self.client("ecs", region)
        cluster_arns = ecs.list_clusters()["clusterArns"]
        clusters = ecs.describe_clusters(clusters=cluster_arns)["clusters"] if cluster_arns else []
        active = [c["clusterName"] for c in clusters if c["status"] == "ACTIVE"]
        tagged = [{"Name": "tag-key", "Values": ["constellation:deployment"]}]
        ec2 = self.client("ec2", region)
        return {
            f"{region}/ecs_clusters": active,
            # AWS keeps deregistered (INACTIVE) revisions, tags and all, until they are deleted.
            f"{region}/ecs_task_definitions": [
                arn for status in ("ACTIVE", "INACTIVE") for arn in ecs.list_task_definitions(status=status)["taskDefinitionArns"]
            ],
            f"{region}/ecs_tasks_not_stopping": [
                arn for cluster in active for arn in ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"]
            ],
            f"{region}/vpcs": [v["VpcId"] for v in ec2.describe_vpcs(Filters=tagged)["Vpcs"]],
            f"{region}/subnets": [s["SubnetId"] for s in ec2.describe_subnets(Filters=tagged)["Subnets"]],
            f"{region}/security_groups": [g["GroupId"] for g in ec2.describe_security_groups(Filters=tagged)["SecurityGroups"]],
            f"{region}/internet_gateways": [
                g["InternetGatewayId"] for g in ec2.describe_internet_gateways(Filters=tagged)["InternetGateways"]
            ],
            f"{region}/route_tables": [t["RouteTableId"] for t in ec2.describe_route_tables(Filters=tagged)["RouteTables"]],
        }

    def assert_empty(self, regions: list[str]) -> None:
        leftovers = {kind: names for kind, names in self.inventory(regions).items() if names}
        assert not leftovers, f"resources left in the emulator: {leftovers}"

    def run_tasks(self, region: str, cluster: str, run_id: str) -> list[dict]:
        """Every task of the run in the cluster, running or stopped, with its tags."""
        ecs = self.client("ecs", region)
        arns = [
            arn
            for status in ("RUNNING", "STOPPED")
            for arn in ecs.list_tasks(cluster=cluster, startedBy=run_id, desiredStatus=status)["taskArns"]
        ]
        return ecs.describe_tasks(cluster=cluster, tasks=arns, include=["TAGS"])["tasks"] if arns else []

    def task_logs(self, region: str, task_arn: str, container: str) -> list[str]:
        """What a container of an emulated ECS task wrote (its lines, long ones joined)."""
        path = self.log_dir / "tasks" / region / task_arn.rsplit("/", 1)[-1] / f"{container}.log"
        return [line.text for line in read_container_log(path)]


def our_containers() -> list[str]:
    """Every podman container an emulator of ours runs or left (any session), as 'name status'."""
    env = podman.environment()
    listed = podman.run(["ps", "--all", "--format", "{{.Names}} {{.Status}}", "--filter", f"label={SESSION_LABEL}"], env)
    return listed.stdout.split("\n")[:-1]


def our_pods() -> list[str]:
    env = podman.environment()
    return podman.run(["pod", "ps", "--quiet", "--filter", f"label={SESSION_LABEL}"], env).stdout.split()


def built_images() -> dict[str, str]:
    """The image names `make images` wrote (make test builds them first)."""
    path = REPO / "constellation-images.yml"
    assert path.is_file(), "constellation-images.yml is missing: run `make images` (make test does) before these tests"
    return yaml.safe_load(path.read_text())


@pytest.fixture(scope="session")
def moto_server():
    """The emulated AWS without running tasks, on loopback for the whole session (one per xdist worker)."""
    os.environ.update(FAKE_CREDENTIALS)
    output = REPO / "tests" / "output"
    output.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    log_dir = output / f"emulator-{worker}"
    shutil.rmtree(log_dir, ignore_errors=True)  # a function's log holds this session's invocations only
    with open(output / f"moto-{worker}.log", "w") as log, aws_emulator(log_dir, with_tasks=False, log=log) as url:
        yield MotoServer(url=url, log_dir=log_dir)


@pytest.fixture
def moto(moto_server):
    """The session's moto server, emptied before the test."""
    moto_server.reset()
    return moto_server


# The production path: the whole emulated AWS, tasks as containers of the images `make images`
# built. `make test` runs these tests in a pytest run of their own, without xdist (-m production):
# one after the other, on one emulator and one registry, each the only one running containers.
PRODUCTION = pytest.mark.production


@pytest.fixture(scope="session")
def production_emulator():
    """The whole emulated AWS on loopback, for the session that runs the production-path tests."""
    os.environ.update(FAKE_CREDENTIALS)
    output = REPO / "tests" / "output"
    output.mkdir(parents=True, exist_ok=True)
    log_dir = output / "production-emulator"
    shutil.rmtree(log_dir, ignore_errors=True)
    with open(output / "production-emulator.log", "w") as log, aws_emulator(log_dir, log=log) as url:
        yield MotoServer(url=url, log_dir=log_dir)
    assert our_containers() == [] and our_pods() == [], "the emulator left containers or pods behind"


@pytest.fixture
def production(production_emulator):
    """The whole emulated AWS, emptied before the test (its tasks stopped and removed)."""
    production_emulator.reset()
    return production_emulator


@dataclass
class PlaybookResult:
    rc: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def recaps(self) -> dict[str, dict[str, int]]:
        """The PLAY RECAP counters of every host (localhost and one host per remote region)."""
        lines = re.findall(r"^(\S+)\s+:\s+(ok=.*)$", self.stdout, re.MULTILINE)
        assert lines, f"no PLAY RECAP in output:\n{self.output}"
        return {host: {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", counters)} for host, counters in lines}

    def recap(self) -> dict[str, int]:
        """The PLAY RECAP counters of localhost (ok, changed, failed, ...)."""
        match = re.search(r"^localhost\s+:\s+(.*)$", self.stdout, re.MULTILINE)
        assert match, f"no PLAY RECAP in output:\n{self.output}"
        return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", match.group(1))}


def run_playbook(playbook: str | Path, extra_vars: dict, *args: str, timeout: int = 600) -> PlaybookResult:
    env = dict(os.environ, **FAKE_CREDENTIALS)
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env['PATH']}"
    command = [str(VENV_BIN / "ansible-playbook"), str(playbook), "-e", json.dumps(extra_vars), *args]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return PlaybookResult(completed.returncode, completed.stdout, completed.stderr)


@pytest.fixture
def playbook():
    return run_playbook
