"""plugins/module_utils/run/run_grants.py: the task roles' grants on the active runs, against moto.

What a task may touch is read off the policy the way IAM matches resources (``*`` any characters),
so a grant that covered another run's objects, or missed its own, fails here.
"""

from __future__ import annotations

import fnmatch
import json

import pytest

from ansible_collections.constellation.loadtest.plugins.module_utils.aws import orchestrator_table
from ansible_collections.constellation.loadtest.plugins.module_utils.results.progress import script_key
from ansible_collections.constellation.loadtest.plugins.module_utils.results.progress import task_records_prefix
from ansible_collections.constellation.loadtest.plugins.module_utils.run import orchestrator_state
from ansible_collections.constellation.loadtest.plugins.module_utils.run import run_grants
from ansible_collections.constellation.loadtest.plugins.module_utils.run.run_grants import RunGrants
from ansible_collections.constellation.loadtest.plugins.module_utils.run.run_grants import RunGrantsError

TABLE = "d-orchestrator"
HOME = "eu-central-1"
BUCKET_ARN = "arn:aws:s3:::d-123456789012-eu-central-1"
ROLES = {"us-east-2": "d-task-us-east-2", "ap-northeast-1": "d-task-ap-northeast-1"}
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
TASK_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": "arn:aws:lambda:eu-central-1:1:function:f"}],
}


@pytest.fixture
def aws(moto):
    """moto's IAM with the two task roles (their policy ``task`` only) and the state table."""
    iam, dynamodb = moto.client("iam", HOME), moto.client("dynamodb", HOME)
    for role in ROLES.values():
        iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(TRUST))
        iam.put_role_policy(RoleName=role, PolicyName="task", PolicyDocument=json.dumps(TASK_POLICY))
    orchestrator_table.create_table(dynamodb, TABLE, {"constellation:deployment": "d"})
    orchestrator_table.wait_for_table(dynamodb, TABLE, exists=True, timeout_seconds=60)
    return iam, dynamodb


def grants(aws, check_mode: bool = False, roles: dict | None = None, dynamodb=None) -> RunGrants:
    iam, table_client = aws
    return RunGrants(iam, dynamodb or table_client, TABLE, BUCKET_ARN, True, roles or ROLES, check_mode)


def plan(dynamodb, run_id: str, regions: list[str]) -> None:
    orchestrator_state.reset_run(dynamodb, TABLE, run_id, {region: 2 for region in regions}, 30, active_seconds=3600)


def allowed(iam, role: str, action: str, key: str) -> bool:
    """Whether the role's policies allow ``action`` on the bucket's object ``key``, as IAM matches ARNs."""
    arn = f"{BUCKET_ARN}/{key}"
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        for statement in iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            if action in actions and any(fnmatch.fnmatchcase(arn, resource) for resource in resources):
                return True
    return False


def can_run(iam, role: str, run_id: str, region: str) -> bool:
    """Whether a task of ``run_id`` in ``region`` may read its script and write its records."""
    records = task_records_prefix(run_id, region, "0") + "0001748779200000-0123456789ab.jsonl"
    return allowed(iam, role, "s3:GetObject", script_key(run_id)) and allowed(iam, role, "s3:PutObject", records)


def test_each_region_grants_exactly_the_runs_active_there(aws):
    iam, dynamodb = aws
    plan(dynamodb, "run-1", ["us-east-2", "ap-northeast-1"])
    plan(dynamodb, "run-10", ["us-east-2"])
    plan(dynamodb, "old", ["us-east-2"])
    orchestrator_state.end_run(dynamodb, TABLE, "old")

    assert grants(aws).ensure() == {"ap-northeast-1": ["run-1"], "us-east-2": ["run-1", "run-10"]}
    east, tokyo = ROLES["us-east-2"], ROLES["ap-northeast-1"]
    assert can_run(iam, east, "run-1", "us-east-2") and can_run(iam, east, "run-10", "us-east-2")
    assert can_run(iam, tokyo, "run-1", "ap-northeast-1")
    assert not can_run(iam, tokyo, "run-10", "ap-northeast-1")  # run-10 does not run there
    assert not can_run(iam, east, "old", "us-east-2")  # ended: its grants are gone
    # "run-1" is not a prefix of run-10's objects, nor records of a bucket's other keys.
    assert not allowed(iam, tokyo, "s3:PutObject", "runs/run-10/records/ap-northeast-1/0/x.jsonl")
    assert not allowed(iam, east, "s3:PutObject", script_key("run-1"))
    assert not allowed(iam, east, "s3:GetObject", "runs/run-1/run.json")

    # run-1 ends: its grants go everywhere, run-10's stay; the region without an active run has no policy.
    orchestrator_state.end_run(dynamodb, TABLE, "run-1")
    again = grants(aws)
    assert again.ensure() == {"ap-northeast-1": [], "us-east-2": ["run-10"]}
    assert again.changed
    assert not can_run(iam, east, "run-1", "us-east-2") and can_run(iam, east, "run-10", "us-east-2")
    assert iam.list_role_policies(RoleName=tokyo)["PolicyNames"] == ["task"]
    # Nothing changed since: nothing written.
    unchanged = grants(aws)
    unchanged.ensure()
    assert not unchanged.changed


def test_a_run_planned_between_the_read_and_the_write_keeps_its_grants(aws):
    """Two run_test at once: this one read the active runs before the other planned its run."""
    iam, dynamodb = aws
    plan(dynamodb, "first", ["us-east-2"])

    class PlannedMeanwhile:
        """The table as this run_test sees it: another run is planned right after its first read."""

        def __init__(self) -> None:
            self.scans = 0

        def __getattr__(self, name):
            return getattr(dynamodb, name)

        def get_paginator(self, operation):
            paginator = dynamodb.get_paginator(operation)
            outer = self

            class Paginator:
                def paginate(self, **request):
                    pages = list(paginator.paginate(**request))
                    outer.scans += 1
                    if outer.scans == 1:
                        plan(dynamodb, "second", ["us-east-2"])
                    return pages

            return Paginator()

    table = PlannedMeanwhile()
    assert grants(aws, roles={"us-east-2": ROLES["us-east-2"]}, dynamodb=table).ensure() == {"us-east-2": ["first", "second"]}
    assert table.scans == 3  # read, check (changed: written again), check
    assert can_run(iam, ROLES["us-east-2"], "second", "us-east-2")


def test_check_mode_writes_nothing_and_says_what_would_change(aws):
    iam, dynamodb = aws
    plan(dynamodb, "run-1", ["us-east-2"])
    would = grants(aws, check_mode=True)
    assert would.ensure()["us-east-2"] == ["run-1"]
    assert would.changed
    assert iam.list_role_policies(RoleName=ROLES["us-east-2"])["PolicyNames"] == ["task"]
    # A role not created yet (a first run in check mode): would be created, then granted.
    missing = grants(aws, check_mode=True, roles={"us-west-1": "d-task-us-west-1"})
    plan(dynamodb, "run-2", ["us-west-1"])
    missing.ensure()
    assert missing.changed


def test_a_missing_role_is_named(aws):
    dynamodb = aws[1]
    plan(dynamodb, "run-1", ["us-west-1"])
    with pytest.raises(RunGrantsError, match="task role d-task-us-west-1 does not exist"):
        grants(aws, roles={"us-west-1": "d-task-us-west-1"}).ensure()


def test_more_active_runs_than_iam_allows_are_refused_naming_the_limit_with_nothing_written(aws):
    iam, dynamodb = aws
    plan(dynamodb, "run-0", ["us-east-2"])
    grants(aws).ensure()
    before = iam.get_role_policy(RoleName=ROLES["us-east-2"], PolicyName="runs")["PolicyDocument"]
    for index in range(1, 60):
        plan(dynamodb, f"nightly-build-of-the-checkout-service-{index:03d}", ["us-east-2"])
    with pytest.raises(RunGrantsError) as refused:
        grants(aws).ensure()
    assert "task role d-task-us-east-2 cannot grant 60 active runs at once" in str(refused.value)
    assert "IAM allows 10,240" in str(refused.value) and "stop_test" in str(refused.value)
    assert iam.get_role_policy(RoleName=ROLES["us-east-2"], PolicyName="runs")["PolicyDocument"] == before


def test_the_runs_policy_has_room_for_25_runs_of_the_longest_names_and_50_of_usual_ones():
    """Beside the task policy's 600 characters: 25 runs at the longest bucket name (63) and run id
    (64), 50 at a usual bucket name and a timestamp run id."""
    longest = "arn:aws-us-gov:s3:::" + "b" * 63
    document = run_grants.runs_policy(longest, [f"{index:02d}" + "r" * 62 for index in range(25)], True)
    assert run_grants.policy_chars(document) + 600 <= run_grants.MAX_INLINE_POLICIES_CHARS
    document = run_grants.runs_policy(BUCKET_ARN, [f"20261206T0{index:02d}000Z" for index in range(50)], True)
    assert run_grants.policy_chars(document) + 600 <= run_grants.MAX_INLINE_POLICIES_CHARS
    assert run_grants.runs_policy(longest, [], True) is None
    # With Timestream the records go to the table: only the scripts are granted.
    timestream = run_grants.runs_policy(longest, ["r"], False)
    assert [statement["Action"] for statement in timestream["Statement"]] == ["s3:GetObject"]
