"""The task contract: what each task of a run gets, for both load models, computed once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[5]

from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import ConfigError
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import load_config
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import AGGREGATOR
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import LOAD_GENERATOR
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import ContractError
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import Deployment
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import Home
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import LiveMetrics
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import Run
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import contract
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import k6_env_arguments
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import manifest
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import script_environment
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import task_environment

# ca-central-1: 1 task of 100 VUs; us-east-2: 2 tasks of 150 (a region's values are weights with `script`).
CONFIG = load_config(
    settings={
        "home_region": "eu-central-1",
        "remote_regions": {"us-east-2": 300, "ca-central-1": 100},
        "duration_seconds": 20,
        "max_vus_per_task": 150,
        "results_store": "s3",
    }
)
HOME = Home(region="eu-central-1", results_store="s3", bucket="lt-123456789012-eu-central-1", function="lt-orchestrator")
DEPLOYMENT = Deployment(
    home=HOME,
    load_generator_image="registry.example/lt/load-generator:1",
    aggregator_image="registry.example/lt/aggregator:1",
    task_cpu=1024,
    task_memory=2048,
    log_group="/ecs/lt",
)


def segments(load_model: str) -> dict[str, list[tuple[str, str]]]:
    """Each task's (segment, sequence) by region."""
    regions = contract(CONFIG, DEPLOYMENT, Run("nightly-42", load_model))
    return {
        region: [
            (task[LOAD_GENERATOR]["CONSTELLATION_EXECUTION_SEGMENT"], task[LOAD_GENERATOR]["CONSTELLATION_EXECUTION_SEGMENT_SEQUENCE"])
            for task in part["tasks"]
        ]
        for region, part in regions.items()
    }


def test_vus_model_each_region_splits_its_own_vus_over_its_own_sequence():
    assert segments("vus") == {
        "ca-central-1": [("0:1", "0,1")],
        "us-east-2": [("0:1/2", "0,1/2,1"), ("1/2:1", "0,1/2,1")],
    }


def test_script_model_every_task_of_every_region_runs_a_segment_of_one_sequence():
    # The script's scenarios are the load of the whole test: 1/4 of it from ca-central-1 (100 of
    # 400), 3/4 from us-east-2 in two tasks, all segments of one sequence.
    assert segments("script") == {
        "ca-central-1": [("0:1/4", "0,1/4,5/8,1")],
        "us-east-2": [("1/4:5/8", "0,1/4,5/8,1"), ("5/8:1", "0,1/4,5/8,1")],
    }
    bounds = [segment.split(":") for tasks in segments("script").values() for segment, sequence in tasks]
    assert sum(Fraction(end) - Fraction(start) for start, end in bounds) == 1


def test_every_task_gets_its_run_index_script_and_share_and_the_aggregator_its_identity():
    tasks = contract(CONFIG, DEPLOYMENT, Run("nightly-42", "vus", start_timeout_seconds=120))["us-east-2"]["tasks"]
    assert tasks[1] == {
        LOAD_GENERATOR: {
            "CONSTELLATION_RUN_ID": "nightly-42",
            "CONSTELLATION_TASK_INDEX": "1",
            "CONSTELLATION_SCRIPT_KEY": "runs/nightly-42/test.tar",
            "CONSTELLATION_LOAD_MODEL": "vus",
            "CONSTELLATION_VUS": "300",
            "CONSTELLATION_DURATION_MS": "20000",
            "CONSTELLATION_START_TIMEOUT_SECONDS": "120",
            "CONSTELLATION_EXECUTION_SEGMENT": "1/2:1",
            "CONSTELLATION_EXECUTION_SEGMENT_SEQUENCE": "0,1/2,1",
        },
        AGGREGATOR: {"CONSTELLATION_RUN_ID": "nightly-42", "CONSTELLATION_TASK_INDEX": "1"},
    }


def test_every_task_gets_the_hash_of_the_runs_test_and_the_manifest_keeps_it():
    sha = "ab" * 32
    run = Run("nightly-42", script_sha256=sha)
    tasks = contract(CONFIG, DEPLOYMENT, run)
    hashes = {task[LOAD_GENERATOR]["CONSTELLATION_SCRIPT_SHA256"] for region in tasks.values() for task in region["tasks"]}
    assert hashes == {sha}
    assert manifest(CONFIG, run, "checkout.js")["script_sha256"] == sha
    for wrong in ("AB" * 32, "ab" * 31, "zz" * 32):
        with pytest.raises(ContractError, match=f"script_sha256 must be a SHA-256 in hex .*got '{wrong}'"):
            Run("r", script_sha256=wrong)


def test_the_task_definition_holds_what_every_run_shares():
    containers = contract(CONFIG, DEPLOYMENT, None, ["us-east-2"])["us-east-2"]["containers"]
    generator, aggregator = containers
    assert (generator["name"], generator["essential"], generator["cpu"], generator["memoryReservation"]) == (
        LOAD_GENERATOR, True, 768, 1536)
    assert (aggregator["name"], aggregator["essential"], aggregator["cpu"], aggregator["memoryReservation"]) == (
        AGGREGATOR, False, 256, 512)
    assert task_environment(containers, {}, LOAD_GENERATOR) == {
        "CONSTELLATION_REGION": "us-east-2",
        "CONSTELLATION_HOME_REGION": "eu-central-1",
        "CONSTELLATION_INTERVAL_SECONDS": "5",
        "CONSTELLATION_AGGREGATOR_PORT": "9464",
        "CONSTELLATION_ORCHESTRATOR": "lambda:lt-orchestrator",
        "CONSTELLATION_BUCKET": "lt-123456789012-eu-central-1",
    }
    assert task_environment(containers, {}, AGGREGATOR)["CONSTELLATION_RESULTS_STORE"] == "s3"
    # An init as PID 1: a StopTask in a program's first second is not ignored (PID 1 ignores SIGTERM without a handler).
    assert generator["linuxParameters"] == aggregator["linuxParameters"] == {"initProcessEnabled": True}
    # A stopped task ends k6 gracefully, then the aggregator flushes: Fargate's longest wait, not 30 s.
    assert generator["stopTimeout"] == aggregator["stopTimeout"] == 120
    assert generator["logConfiguration"]["options"] == {
        "awslogs-group": "/ecs/lt", "awslogs-region": "us-east-2", "awslogs-stream-prefix": LOAD_GENERATOR}
    # Nothing of a run is in the task definition: a new run registers no new revision.
    assert "nightly" not in json.dumps(containers)


def test_timestream_and_an_endpoint_reach_the_containers_that_use_them():
    home = Home(region="eu-central-1", results_store="timestream", bucket="b", function="f",
                timestream_database="lt", timestream_table="results")
    deployment = Deployment(home=home, load_generator_image="g", aggregator_image="a", task_cpu=1024, task_memory=2048,
                            log_group="/ecs/lt", endpoint_url="http://127.0.0.1:5000")
    containers = contract(CONFIG, deployment, None)["ca-central-1"]["containers"]
    aggregator = task_environment(containers, {}, AGGREGATOR)
    assert (aggregator["CONSTELLATION_TIMESTREAM_DATABASE"], aggregator["CONSTELLATION_TIMESTREAM_TABLE"]) == ("lt", "results")
    assert {task_environment(containers, {}, name)["CONSTELLATION_AWS_ENDPOINT_URL"] for name in (LOAD_GENERATOR, AGGREGATOR)} == {
        "http://127.0.0.1:5000"}
    assert "CONSTELLATION_TIMESTREAM_TABLE" not in task_environment(containers, {}, LOAD_GENERATOR)


def test_overrides_win_over_the_task_definition_as_on_ecs():
    containers = contract(CONFIG, DEPLOYMENT, None, ["ca-central-1"])["ca-central-1"]["containers"]
    merged = task_environment(containers, {LOAD_GENERATOR: {"CONSTELLATION_BUCKET": "other", "X": "1"}}, LOAD_GENERATOR)
    assert (merged["CONSTELLATION_BUCKET"], merged["X"], merged["CONSTELLATION_REGION"]) == ("other", "1", "ca-central-1")
    with pytest.raises(ContractError, match="no container 'sidecar'"):
        task_environment(containers, {}, "sidecar")


def test_the_script_environment_reaches_every_load_generator_and_nothing_else():
    regions = contract(CONFIG, DEPLOYMENT, Run("r1", script_env={"BASE_URL": "https://shop.example", "USERS": 40}))
    for part in regions.values():
        for task in part["tasks"]:
            assert json.loads(task[LOAD_GENERATOR]["CONSTELLATION_SCRIPT_ENV"]) == {"BASE_URL": "https://shop.example", "USERS": "40"}
            assert "CONSTELLATION_SCRIPT_ENV" not in task[AGGREGATOR]
    assert "CONSTELLATION_SCRIPT_ENV" not in contract(CONFIG, DEPLOYMENT, Run("r1"))["ca-central-1"]["tasks"][0][LOAD_GENERATOR]


@pytest.mark.parametrize(
    "variables, message",
    [
        ({"AWS_REGION": "x"}, "'AWS_REGION' is reserved"),
        ({"constellation_run_id": "x"}, "'constellation_run_id' is reserved"),
        ({"K6_VUS": "9"}, "'K6_VUS' is reserved"),
        ({"1ST": "x"}, "'1ST' is not an environment variable name"),
        ({"A-B": "x"}, "'A-B' is not an environment variable name"),
        ({"FLAG": True}, "the value of FLAG must be text or a number, got True"),
        ({"LIST": [1]}, "the value of LIST must be text or a number"),
        (["A=b"], "must be a mapping of NAME: value"),
        ("A=b", "must be a mapping of NAME: value (or a JSON object), got 'A=b'"),
    ],
)
def test_a_bad_script_environment_is_refused_naming_the_variable(variables, message):
    with pytest.raises(ContractError) as raised:
        script_environment(variables)
    assert message in str(raised.value)


def test_plans_beyond_the_tested_limits_are_refused_by_the_config_and_overrides_over_ecs_limit_by_the_contract():
    def settings(remote, per_task=50):
        return {"home_region": "eu-central-1", "remote_regions": remote, "duration_seconds": 60, "max_vus_per_task": per_task}

    # 50,000 VUs at 50 a task: 1,000 tasks, and every task's overrides would carry the region's whole sequence.
    with pytest.raises(ConfigError, match="remote_regions.us-east-2: 50000 VUs make 1000 tasks, over the 500 per region"):
        load_config(settings=settings({"us-east-2": 50_000}))
    with pytest.raises(ConfigError, match="the plan makes 2500 tasks in all, over the 2000 per run .* raise max_vus_per_task"):
        load_config(settings=settings({region: 25_000 for region in ("us-east-2", "us-west-2", "eu-west-1", "ap-south-1", "sa-east-1")}))

    # With the script load model the sequence names every task of the whole test: 2,000 is over ECS's limit.
    config = load_config(settings=settings({region: 25_000 for region in ("us-east-2", "us-west-2", "eu-west-1", "ap-south-1")}))
    with pytest.raises(ContractError) as refused:
        contract(config, DEPLOYMENT, Run("big", load_model="script"))
    message = str(refused.value)
    assert "the RunTask overrides of task 0 would be " in message
    assert "over ECS's limit of 8192" in message and "constellation_max_vus_per_task" in message
    with pytest.raises(ContractError, match="constellation_script_env"):
        contract(CONFIG, DEPLOYMENT, Run("r", script_env={"PAYLOAD": "x" * 8000}))


def test_the_script_environment_reaches_k6_as_arguments():
    assert k6_env_arguments({"B": "2", "A": "x=1"}) == ["--env", "A=x=1", "--env", "B=2"]
    assert k6_env_arguments({}) == []


def test_what_users_type_for_the_script_environment_is_understood():
    assert script_environment("") == {} and script_environment(None) == {}  # a blank AWX survey answer
    assert script_environment('{"BASE_URL": "http://127.0.0.1:8080"}') == {"BASE_URL": "http://127.0.0.1:8080"}  # -e k=v
    assert script_environment({"RATE": 2.5}) == {"RATE": "2.5"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"aggregator_cpu": 1024}, "aggregator_cpu must be more than 0 and less than the task's 1024 CPU units, got 1024"),
        ({"aggregator_memory": 0}, "aggregator_memory must be more than 0"),
        ({"aggregator_image": ""}, "aggregator_image must name an image"),
        ({"aggregator_port": 70000}, "aggregator_port must be a TCP port"),
    ],
)
def test_a_task_definition_that_cannot_work_is_refused(change, message):
    settings = dict(home=HOME, load_generator_image="g", aggregator_image="a", task_cpu=1024, task_memory=2048, log_group="/ecs/lt")
    with pytest.raises(ContractError, match=message.replace("(", r"\(")):
        Deployment(**(settings | change))


def test_a_bad_run_or_region_is_refused_before_anything_is_computed():
    with pytest.raises(ContractError, match="run_id 'a b' is not a run id"):
        Run("a b")
    with pytest.raises(ContractError, match="load_model must be one of vus, script, got 'rate'"):
        Run("r", load_model="rate")
    with pytest.raises(ContractError, match=r"regions \['eu-west-1'\] are not remote regions"):
        contract(CONFIG, DEPLOYMENT, Run("r"), ["eu-west-1"])
    with pytest.raises(ContractError, match="home must name bucket, function"):
        Home.from_names({"region": "eu-central-1", "results_store": "s3"})


def test_the_module_returns_the_contract_and_a_clear_error(tmp_path):
    def module(args: dict) -> dict:
        command = [str(Path(sys.executable).parent / "ansible"), "localhost", "-i", "localhost,", "-c", "local",
                   "-e", f"ansible_python_interpreter={sys.executable}", "-m", "constellation.loadtest.task_contract",
                   "-a", json.dumps(args)]
        env = {"ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json",
               "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "PATH": str(Path(sys.executable).parent), "HOME": str(tmp_path)}
        completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)
        return json.loads(completed.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]

    args = {"config": CONFIG.to_dict(), "home": {"region": "eu-central-1", "results_store": "s3", "bucket": "b", "function": "f",
            "state_table": "ignored"}, "run_id": "r1", "load_model": "script", "load_generator_image": "g",
            "aggregator_image": "a", "log_group": "/ecs/lt", "script_env": '{"BASE_URL": "http://x"}', "script_sha256": "ab" * 32}
    result = module(args)
    assert result["changed"] is False
    assert [t[LOAD_GENERATOR]["CONSTELLATION_EXECUTION_SEGMENT"] for t in result["regions"]["us-east-2"]["tasks"]] == ["1/4:5/8", "5/8:1"]
    assert result["script_env"] == {"BASE_URL": "http://x"}
    assert result["k6_env_arguments"] == ["--env", "BASE_URL=http://x"]

    refused = module(args | {"script_env": {"AWS_PROFILE": "x"}})
    assert refused["failed"] is True
    assert refused["msg"].startswith("task_contract: constellation_script_env: 'AWS_PROFILE' is reserved")
    assert "Traceback" not in json.dumps(refused)


SSM_ARN = "arn:aws:ssm:eu-central-1:123456789012:parameter/shop/api-token"
SECRET_ARN = "arn:aws:secretsmanager:us-east-2:123456789012:secret:shop-db"


def test_secrets_are_the_load_generators_by_arn_and_the_execution_role_reads_exactly_them():
    secrets = {"API_TOKEN": SSM_ARN, "DB_PASSWORD": f"{SECRET_ARN}:password::", "PLAIN": "arn:aws:ssm:eu-central-1:123456789012:parameter/flat"}
    deployment = Deployment(**(DEPLOYMENT.__dict__ | {"script_secrets": json.dumps(secrets), "secrets_kms_key": None}))
    parsed = {secret.name: secret for secret in deployment.script_secrets}
    assert (parsed["API_TOKEN"].secret_id, parsed["PLAIN"].secret_id, parsed["DB_PASSWORD"].secret_id) == ("/shop/api-token", "flat", SECRET_ARN)
    region = contract(CONFIG, deployment, Run("r1"), ["us-east-2"])["us-east-2"]
    generator, aggregator = region["containers"]
    assert generator["secrets"] == [{"name": name, "valueFrom": arn} for name, arn in sorted(secrets.items())]
    assert "secrets" not in aggregator and "PLAIN" not in json.dumps(region["tasks"])
    assert region["secret_statements"] == [
        {"Sid": "ReadTheScriptsParameters", "Effect": "Allow", "Action": "ssm:GetParameters",
         "Resource": sorted([SSM_ARN, "arn:aws:ssm:eu-central-1:123456789012:parameter/flat"])},
        {"Sid": "ReadTheScriptsSecrets", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
         "Resource": [SECRET_ARN, SECRET_ARN + "-??????"]},
    ]
    assert contract(CONFIG, DEPLOYMENT, Run("r1"), ["us-east-2"])["us-east-2"]["secret_statements"] == []


@pytest.mark.parametrize(
    ("secrets", "message"),
    [
        ({"AWS_SECRET": SSM_ARN}, "constellation_script_secrets: 'AWS_SECRET' is reserved"),
        ({"1TOKEN": SSM_ARN}, "constellation_script_secrets: '1TOKEN' is not an environment variable name"),
        ({"TOKEN": "s3cr3t"}, "constellation_script_secrets: TOKEN must be the ARN of an SSM parameter"),
        ({"TOKEN": "arn:aws:s3:::bucket/key"}, "constellation_script_secrets: TOKEN must be the ARN"),
        (["TOKEN"], "constellation_script_secrets must be a mapping of NAME: value"),
    ],
)
def test_bad_secrets_are_refused_naming_the_variable(secrets, message):
    with pytest.raises(ContractError, match=re.escape(message)):
        Deployment(**(DEPLOYMENT.__dict__ | {"script_secrets": secrets}))


def test_a_name_in_both_the_environment_and_the_secrets_and_a_bad_key_are_refused():
    deployment = Deployment(**(DEPLOYMENT.__dict__ | {"script_secrets": {"TOKEN": SSM_ARN}}))
    with pytest.raises(ContractError, match="TOKEN: in both constellation_script_env and constellation_script_secrets"):
        contract(CONFIG, deployment, Run("r1", script_env={"TOKEN": "x"}))
    with pytest.raises(ContractError, match="constellation_script_secrets_kms_key must be the ARN of a KMS key"):
        Deployment(**(DEPLOYMENT.__dict__ | {"script_secrets": {"TOKEN": SSM_ARN}, "secrets_kms_key": "alias/mine"}))


# ---- Live metrics: where the aggregators forward k6's metrics, and how they sign in.

WORKSPACE_URL = "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-0123abcd-4567-89ef/api/v1/remote_write"


def live(url, secret=None, username=None, home=HOME):
    deployment = Deployment(
        **(DEPLOYMENT.__dict__ | {"home": home, "live_metrics": LiveMetrics.from_settings(url, secret, username)})
    )
    region = contract(CONFIG, deployment, Run("r1"), ["us-east-2"])["us-east-2"]
    generator, aggregator = region["containers"]
    assert not any(item["name"].startswith("CONSTELLATION_PROMETHEUS") for item in generator["environment"])
    return {item["name"]: item["value"] for item in aggregator["environment"]}, aggregator.get("secrets"), region


def test_a_managed_prometheus_workspace_is_signed_and_the_task_role_may_write_to_that_workspace_only():
    home = Home(**(HOME.__dict__ | {"account": "123456789012", "partition": "aws"}))
    environment, secrets, region = live(WORKSPACE_URL, home=home)
    assert environment["CONSTELLATION_PROMETHEUS_URL"] == WORKSPACE_URL
    assert (environment["CONSTELLATION_PROMETHEUS_AUTH"], environment["CONSTELLATION_PROMETHEUS_REGION"]) == ("sigv4", "eu-west-1")
    assert secrets is None and region["secret_statements"] == []
    assert region["task_statements"] == [
        {"Sid": "RemoteWriteTheLiveMetrics", "Effect": "Allow", "Action": "aps:RemoteWrite",
         "Resource": ["arn:aws:aps:eu-west-1:123456789012:workspace/ws-0123abcd-4567-89ef"]}
    ]


def test_a_bearer_token_or_basic_password_is_the_aggregators_secret_by_arn_and_the_execution_role_reads_it():
    environment, secrets, region = live("https://prometheus.example.com/api/v1/write", SSM_ARN)
    assert environment["CONSTELLATION_PROMETHEUS_AUTH"] == "bearer" and "CONSTELLATION_PROMETHEUS_USERNAME" not in environment
    assert secrets == [{"name": "CONSTELLATION_PROMETHEUS_SECRET", "valueFrom": SSM_ARN}]
    assert region["secret_statements"] == [
        {"Sid": "ReadTheScriptsParameters", "Effect": "Allow", "Action": "ssm:GetParameters", "Resource": [SSM_ARN]}
    ]
    assert region["task_statements"] == []
    environment, secrets, _region = live("https://prometheus.example.com/api/v1/write", SECRET_ARN, "loadtest")
    assert (environment["CONSTELLATION_PROMETHEUS_AUTH"], environment["CONSTELLATION_PROMETHEUS_USERNAME"]) == ("basic", "loadtest")
    environment, secrets, region = live("http://127.0.0.1:9090/api/v1/write")
    assert environment["CONSTELLATION_PROMETHEUS_AUTH"] == "none" and secrets is None


def test_without_a_url_nothing_is_forwarded_and_blank_answers_are_unset():
    assert LiveMetrics.from_settings("", "", "") is None and LiveMetrics.from_settings(None) is None
    environment, secrets, region = live(" ")
    assert not any(name.startswith("CONSTELLATION_PROMETHEUS") for name in environment)
    assert secrets is None and region["task_statements"] == []


@pytest.mark.parametrize(
    ("url", "secret", "username", "message"),
    [
        ("prometheus:9090", None, None, "constellation_prometheus_remote_write_url must be an http:// or https:// URL, got 'prometheus:9090'"),
        ("https://user:pw@prometheus.example.com/w", None, None, "constellation_prometheus_remote_write_url must not hold credentials"),
        ("http://prometheus.example.com/w", SSM_ARN, None, "must be https:// to send credentials, got 'http://prometheus.example.com/w'"),
        ("https://prometheus.example.com/w", "s3cr3t", None, "constellation_prometheus_secret: CONSTELLATION_PROMETHEUS_SECRET must be the ARN"),
        ("https://prometheus.example.com/w", None, "loadtest", "constellation_prometheus_username needs constellation_prometheus_secret"),
        ("", SSM_ARN, None, "constellation_prometheus_secret is set but constellation_prometheus_remote_write_url is not"),
        (WORKSPACE_URL, SSM_ARN, None, "do not apply to an Amazon Managed Service for Prometheus workspace"),
        ("https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/query", None, None, "must be https://aps-workspaces.REGION"),
    ],
)
def test_bad_live_metrics_settings_are_refused_naming_the_variable(url, secret, username, message):
    with pytest.raises(ContractError, match=re.escape(message)):
        LiveMetrics.from_settings(url, secret, username)


def test_a_workspace_needs_the_account_to_grant_it():
    with pytest.raises(ContractError, match="home.account must be the account id"):
        Deployment(**(DEPLOYMENT.__dict__ | {"live_metrics": LiveMetrics.from_settings(WORKSPACE_URL)}))
