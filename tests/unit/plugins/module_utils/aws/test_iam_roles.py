"""plugins/module_utils/aws/iam_roles.py: input checks, and the roles against moto's IAM."""

from __future__ import annotations

import json
from dataclasses import replace

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws


from ansible_collections.amazon.aws.plugins.module_utils.iam import AnsibleIAMError
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.constellation.loadtest.plugins.module_utils.aws import iam_roles
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.iam_roles import IamRoles
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.iam_roles import RoleSpec

TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
OTHER_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
TAGS = {"constellation:deployment": "d"}


def allow(action: str) -> dict:
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}


def specs(task_policy: dict | None = None, description: str | None = "Task role") -> list[RoleSpec]:
    return [
        RoleSpec("d-task-execution", "Execution role", {"task-execution": allow("logs:PutLogEvents")}),
        RoleSpec("d-task", description, {"task": task_policy or allow("s3:GetObject")}),
    ]


@pytest.fixture
def iam(monkeypatch):
    """moto's IAM behind the retrying wrapper AnsibleAWSModule.client returns; no backoff sleeps."""
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    with mock_aws():
        yield boto3.client("iam", region_name="us-east-1")


def wrapped(client):
    return RetryingBotoClientWrapper(client, AWSRetry.jittered_backoff())


def run(client, state: str = "present", purge_tags: bool = True, check_mode: bool = False, **kw):
    roles = IamRoles(wrapped(client), kw.get("tags", TAGS), purge_tags, check_mode)
    if state == "present":
        result = roles.ensure_present(kw.get("trust", TRUST), kw.get("roles", specs()))
    else:
        result = roles.ensure_absent(kw.get("names", ["d-task-execution", "d-task"]))
    return roles.changed, result


def role_names(client) -> list[str]:
    return sorted(role["RoleName"] for role in client.list_roles()["Roles"])


# ---- input


def test_a_policy_that_is_not_json_is_refused_naming_its_place():
    roles = [{"name": "a", "policies": {"x": "{}"}}, {"name": "b", "policies": {"task": '{"Version": '}}]
    message = r"^roles\[1\]\.policies\.task is not valid JSON: Expecting value"
    with pytest.raises(iam_roles.IamRolesError, match=message):
        iam_roles.parse_roles(roles, TRUST)


@pytest.mark.parametrize("document", ["[]", '"text"', "null", ["Statement"]])
def test_a_document_that_is_no_json_object_is_refused(document):
    with pytest.raises(iam_roles.IamRolesError, match="^assume_role_policy_document is not a policy document"):
        iam_roles.parse_document(document, "assume_role_policy_document")


def test_documents_as_text_and_as_dicts_parse_to_the_same_roles():
    as_text = iam_roles.parse_roles([{"name": "a", "description": "x", "policies": {"p": json.dumps(TRUST)}}], TRUST)
    as_dict = iam_roles.parse_roles([{"name": "a", "description": "x", "policies": {"p": TRUST}}], TRUST)
    assert as_text == as_dict == [RoleSpec("a", "x", {"p": TRUST})]
    assert iam_roles.parse_roles([{"name": "a", "policies": None}], TRUST) == [RoleSpec("a", None, {})]


def test_a_role_may_have_its_own_trust_policy_and_needs_one():
    own = dict(TRUST, Statement=[dict(TRUST["Statement"][0], Sid="Own")])
    roles = [{"name": "a"}, {"name": "b", "assume_role_policy_document": json.dumps(own)}]
    assert iam_roles.parse_roles(roles, TRUST) == [RoleSpec("a"), RoleSpec("b", trust_policy=own)]
    assert iam_roles.parse_roles(roles[1:]) == [RoleSpec("b", trust_policy=own)]
    with pytest.raises(iam_roles.IamRolesError, match=r"^roles\[0\] \(a\) has no trust policy"):
        iam_roles.parse_roles(roles)


@pytest.mark.parametrize(
    "roles, message",
    [
        ([{"name": "a"}, {"name": "has space"}], r"^roles\[1\]\.name 'has space' is not a valid role name: role name"),
        ([{"name": "x" * 65}], r"^roles\[0\]\.name 'x+' is not a valid role name: Length of role name may not exceed"),
        ([{"name": "a"}, {"name": "b"}, {"name": "a"}], r"^roles\[2\]\.name 'a' is also roles\[0\]\.name"),
    ],
)
def test_bad_or_repeated_role_names_are_refused(roles, message):
    with pytest.raises(iam_roles.IamRolesError, match=message):
        iam_roles.role_names(roles)


def test_a_bad_policy_name_is_refused():
    with pytest.raises(iam_roles.IamRolesError, match=r"^roles\[0\]\.policies: 'a/b' is not a policy name"):
        iam_roles.parse_roles([{"name": "a", "policies": {"a/b": {}}}])


# ---- present


def test_check_mode_reports_the_roles_it_would_create_and_creates_none(iam):
    changed, result = run(iam, check_mode=True)
    assert changed
    assert role_names(iam) == []
    expected = {"role_name": "d-task", "description": "Task role", "tags": TAGS, "policies": ["task"]}
    assert result["roles"]["d-task"] == expected
    assert result["diff"]["before"] == {}


def test_roles_are_created_with_their_policies_then_left_alone(iam):
    changed, result = run(iam)
    assert changed
    assert role_names(iam) == ["d-task", "d-task-execution"]
    task = result["roles"]["d-task"]
    assert task["arn"] == iam.get_role(RoleName="d-task")["Role"]["Arn"]
    assert task["role_id"] and task["description"] == "Task role"
    assert task["tags"] == TAGS and task["policies"] == ["task"]
    assert iam.get_role_policy(RoleName="d-task", PolicyName="task")["PolicyDocument"] == allow("s3:GetObject")
    assert iam.get_role(RoleName="d-task")["Role"]["AssumeRolePolicyDocument"] == TRUST
    assert iam.list_instance_profiles_for_role(RoleName="d-task")["InstanceProfiles"] == []

    changed_again, again = run(iam)
    assert not changed_again
    assert again["roles"] == result["roles"]


def test_every_difference_is_repaired_and_nothing_else_is_touched(iam):
    run(iam)
    policy_arn = iam.create_policy(PolicyName="extra", PolicyDocument=json.dumps(allow("*")))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="d-task", PolicyArn=policy_arn)
    iam.put_role_policy(RoleName="d-task", PolicyName="by-hand", PolicyDocument=json.dumps(allow("ec2:*")))
    iam.tag_role(RoleName="d-task", Tags=[{"Key": "Owner", "Value": "qa"}])
    wanted = specs(task_policy=allow("s3:PutObject"), description="New description")

    changed, checked = run(iam, check_mode=True, trust=OTHER_TRUST, roles=wanted)
    assert changed
    assert checked["roles"]["d-task"]["policies"] == ["task"]
    assert sorted(iam.list_role_policies(RoleName="d-task")["PolicyNames"]) == ["by-hand", "task"]
    assert iam.get_role(RoleName="d-task")["Role"]["Description"] == "Task role"

    changed, result = run(iam, trust=OTHER_TRUST, roles=wanted)
    assert changed
    role = iam.get_role(RoleName="d-task")["Role"]
    assert role["AssumeRolePolicyDocument"] == OTHER_TRUST and role["Description"] == "New description"
    assert iam.list_role_tags(RoleName="d-task")["Tags"] == [{"Key": "constellation:deployment", "Value": "d"}]
    assert iam.list_role_policies(RoleName="d-task")["PolicyNames"] == ["task"]
    assert iam.get_role_policy(RoleName="d-task", PolicyName="task")["PolicyDocument"] == allow("s3:PutObject")
    assert iam.list_attached_role_policies(RoleName="d-task")["AttachedPolicies"] == []
    assert result["roles"]["d-task"]["description"] == "New description" and result["roles"]["d-task"]["tags"] == TAGS
    assert result["diff"]["before"]["d-task"]["managed_policy_arns"] == [policy_arn]
    assert result["diff"]["after"]["d-task"]["managed_policy_arns"] == []

    assert run(iam, trust=OTHER_TRUST, roles=wanted)[0] is False


def test_kept_policies_are_neither_put_nor_deleted_but_the_others_are(iam):
    """The task role's "runs" is run_grants': iam_roles keeps it as it is, and still removes the rest."""
    kept = [replace(spec, kept_policies=frozenset({"runs"})) for spec in specs()]
    run(iam, roles=kept)
    assert iam.list_role_policies(RoleName="d-task")["PolicyNames"] == ["task"]  # not created
    iam.put_role_policy(RoleName="d-task", PolicyName="runs", PolicyDocument=json.dumps(allow("s3:GetObject")))
    iam.put_role_policy(RoleName="d-task", PolicyName="by-hand", PolicyDocument=json.dumps(allow("ec2:*")))

    changed, result = run(iam, roles=kept)
    assert changed  # by-hand deleted
    assert sorted(iam.list_role_policies(RoleName="d-task")["PolicyNames"]) == ["runs", "task"]
    assert result["roles"]["d-task"]["policies"] == ["runs", "task"]
    assert run(iam, roles=kept)[0] is False
    run(iam)  # without it, "runs" is one more policy not asked for
    assert iam.list_role_policies(RoleName="d-task")["PolicyNames"] == ["task"]
    with pytest.raises(iam_roles.IamRolesError, match=r"'task' is also in roles\[0\]\.policies"):
        iam_roles.parse_roles([{"name": "a", "policies": {"task": {}}, "kept_policies": ["task"]}], TRUST)


def test_tags_are_left_alone_without_tags_and_kept_without_purge(iam):
    run(iam)
    iam.tag_role(RoleName="d-task", Tags=[{"Key": "Owner", "Value": "qa"}])
    changed, result = run(iam, tags=None)
    assert not changed and result["roles"]["d-task"]["tags"] == dict(TAGS, Owner="qa")

    changed, result = run(iam, tags={"Team": "load"}, purge_tags=False)
    assert changed and result["roles"]["d-task"]["tags"] == dict(TAGS, Owner="qa", Team="load")


def test_an_unset_description_keeps_the_roles_own(iam):
    run(iam)
    changed, result = run(iam, roles=specs(description=None))
    assert not changed and result["roles"]["d-task"]["description"] == "Task role"


def test_a_new_role_unknown_to_iam_for_a_moment_still_gets_its_policies(iam):
    put_role_policy, calls = iam.put_role_policy, []

    def not_yet_consistent(**params):
        calls.append(params["RoleName"])
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": "NoSuchEntity", "Message": "no role"}}, "PutRolePolicy")
        return put_role_policy(**params)

    iam.put_role_policy = not_yet_consistent
    assert run(iam)[0] is True
    # The roles are handled concurrently: whichever was refused first was tried again, the other once.
    assert len(calls) == 3 and calls.count(calls[0]) == 2
    assert set(calls) == {"d-task-execution", "d-task"}
    assert iam.list_role_policies(RoleName="d-task-execution")["PolicyNames"] == ["task-execution"]
    assert iam.list_role_policies(RoleName="d-task")["PolicyNames"] == ["task"]


def test_an_aws_failure_names_the_role_and_the_call(iam):
    run(iam)

    def refused(**params):
        raise ClientError({"Error": {"Code": "NoSuchEntity", "Message": "gone"}}, "PutRolePolicy")

    iam.put_role_policy = refused
    with pytest.raises(AnsibleIAMError) as raised:
        run(iam, roles=specs(task_policy=allow("s3:PutObject")))
    # The retry after creation is for new roles only: a role that existed is not waited for.
    assert raised.value.message == "role d-task: Failed to put inline policy task"
    assert raised.value.exception.response["Error"]["Code"] == "NoSuchEntity"


# ---- absent


def test_delete_removes_policies_and_profiles_first_and_skips_missing_roles(iam):
    run(iam)
    policy_arn = iam.create_policy(PolicyName="extra", PolicyDocument=json.dumps(allow("*")))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="d-task", PolicyArn=policy_arn)
    iam.create_instance_profile(InstanceProfileName="profile")
    iam.add_role_to_instance_profile(InstanceProfileName="profile", RoleName="d-task")

    changed, checked = run(iam, state="absent", check_mode=True, names=["d-task", "missing"])
    assert changed and role_names(iam) == ["d-task", "d-task-execution"]
    assert sorted(checked["diff"]["before"]) == ["d-task"]

    changed, result = run(iam, state="absent", names=["d-task", "missing", "d-task-execution"])
    assert changed and result["roles"] == {} and role_names(iam) == []
    assert iam.get_instance_profile(InstanceProfileName="profile")["InstanceProfile"]["Roles"] == []
    assert iam.get_policy(PolicyArn=policy_arn)["Policy"]["AttachmentCount"] == 0

    assert run(iam, state="absent")[0] is False


def test_the_roles_of_many_regions_in_one_run_each_with_its_own_trust_policy(iam):
    # run_test creates the two roles of every region at once; each region's trust policy names it.
    regions = ["us-east-2", "ca-central-1", "ap-northeast-1", "eu-west-1", "sa-east-1"]

    def trust(region: str) -> dict:
        condition = {"ArnLike": {"aws:SourceArn": f"arn:aws:ecs:{region}:123456789012:*"}}
        return dict(TRUST, Statement=[dict(TRUST["Statement"][0], Condition=condition)])

    roles = [
        replace(spec, name=f"{spec.name}-{region}", trust_policy=trust(region)) for region in regions for spec in specs()
    ]
    changed, result = run(iam, trust=None, roles=roles)
    assert changed and list(result["roles"]) == [role.name for role in roles]
    for region in regions:
        for name in (f"d-task-execution-{region}", f"d-task-{region}"):
            assert iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"] == trust(region)
    assert run(iam, trust=None, roles=roles)[0] is False
    changed = run(iam, "absent", names=[role.name for role in roles])[0]
    assert changed and role_names(iam) == []
