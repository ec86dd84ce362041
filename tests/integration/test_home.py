"""init / teardown_home against a moto server: what exists, its tags, idempotency, check mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import REPO, run_playbook

PLAYBOOKS = REPO / "playbooks"
HOME = "eu-central-1"
DEPLOYMENT = "itest"
TAG = {"constellation:deployment": DEPLOYMENT}
ACCOUNT = "123456789012"
BUCKET = f"{DEPLOYMENT}-{ACCOUNT}-{HOME}"


def write_config(tmp_path: Path, home: str = HOME) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"DURATION": 20000, "HOME_REGION": home, "REMOTE_REGIONS": {"us-east-2": 202}}))
    return path


def home_vars(moto, config: Path, **extra) -> dict:
    return {
        "config": str(config),
        "constellation_aws_endpoint_url": moto.url,
        "constellation_deployment": DEPLOYMENT,
        "constellation_build_dir": str(config.parent / "build"),
        **extra,
    }


def init(moto, config: Path, *args: str, **extra):
    return run_playbook(PLAYBOOKS / "init.yml", home_vars(moto, config, **extra), *args)


def teardown(moto, config: Path, **extra):
    return run_playbook(PLAYBOOKS / "teardown_home.yml", home_vars(moto, config, **extra))


def tags_of_everything(moto, region: str) -> dict[str, dict[str, str]]:
    """The tags of every home resource, by resource, as plain dicts."""
    s3 = moto.client("s3", region)
    ddb = moto.client("dynamodb", region)
    table_arn = ddb.describe_table(TableName=f"{DEPLOYMENT}-orchestrator")["Table"]["TableArn"]
    function = moto.client("lambda", region).get_function(FunctionName=f"{DEPLOYMENT}-orchestrator")
    log_group_arn = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:/aws/lambda/{DEPLOYMENT}-orchestrator"
    pairs = {
        "bucket": s3.get_bucket_tagging(Bucket=f"{DEPLOYMENT}-{ACCOUNT}-{region}")["TagSet"],
        "state_table": ddb.list_tags_of_resource(ResourceArn=table_arn)["Tags"],
        "role": moto.client("iam").list_role_tags(RoleName=f"{DEPLOYMENT}-orchestrator-{region}")["Tags"],
    }
    tags = {name: {t["Key"]: t["Value"] for t in tag_list} for name, tag_list in pairs.items()}
    tags["function"] = function["Tags"]
    tags["log_group"] = moto.client("logs", region).list_tags_for_resource(resourceArn=log_group_arn)["tags"]
    return tags


def test_init_creates_every_home_resource_tagged_then_changes_nothing(moto, tmp_path):
    config = write_config(tmp_path)

    first = init(moto, config)
    assert first.rc == 0, first.output
    assert first.recap()["changed"] > 0

    for resource, tags in tags_of_everything(moto, HOME).items():
        assert tags.get("constellation:deployment") == DEPLOYMENT, f"{resource} lacks the deployment tag: {tags}"

    tsw = moto.client("timestream-write", HOME)
    database = tsw.describe_database(DatabaseName=DEPLOYMENT)["Database"]
    table = tsw.describe_table(DatabaseName=DEPLOYMENT, TableName="results")["Table"]
    for arn in (database["Arn"], table["Arn"]):
        tags = {t["Key"]: t["Value"] for t in tsw.list_tags_for_resource(ResourceARN=arn)["Tags"]}
        assert tags == TAG

    s3 = moto.client("s3", HOME)
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values()), block
    rule = s3.get_bucket_encryption(Bucket=BUCKET)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    policy = json.loads(s3.get_bucket_policy(Bucket=BUCKET)["Policy"])
    assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert policy["Statement"][0]["Effect"] == "Deny"

    function = moto.client("lambda", HOME).get_function_configuration(FunctionName=f"{DEPLOYMENT}-orchestrator")
    assert function["Runtime"] == "python3.12"
    assert function["Environment"]["Variables"]["STATE_TABLE"] == f"{DEPLOYMENT}-orchestrator"

    second = init(moto, config)
    assert second.rc == 0, second.output
    assert second.recap()["changed"] == 0, second.output


def test_orchestrator_role_may_touch_only_its_table_and_log_group(moto, tmp_path):
    config = write_config(tmp_path)
    assert init(moto, config).rc == 0
    iam = moto.client("iam")
    role = f"{DEPLOYMENT}-orchestrator-{HOME}"
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    document = iam.get_role_policy(RoleName=role, PolicyName="orchestrator")["PolicyDocument"]
    for statement in document["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in action for action in actions), statement
        assert "*" not in statement["Resource"].removesuffix(":*"), statement
    resources = {statement["Resource"] for statement in document["Statement"]}
    assert resources == {
        f"arn:aws:dynamodb:{HOME}:{ACCOUNT}:table/{DEPLOYMENT}-orchestrator",
        f"arn:aws:logs:{HOME}:{ACCOUNT}:log-group:/aws/lambda/{DEPLOYMENT}-orchestrator:*",
    }


def test_init_in_check_mode_on_an_empty_account_creates_nothing(moto, tmp_path):
    result = init(moto, write_config(tmp_path), "--check")
    assert result.rc == 0, result.output
    assert result.recap()["changed"] > 0, "check mode should report what it would create"
    moto.assert_empty([HOME])


def test_teardown_home_removes_everything_and_runs_twice(moto, tmp_path):
    config = write_config(tmp_path)
    # moto ignores policy conditions: under the TLS-only policy it refuses every object request.
    assert init(moto, config, constellation_bucket_tls_only=False).rc == 0
    moto.client("s3", HOME).put_object(Bucket=BUCKET, Key="runs/r1/script.js", Body=b"export default () => {}")

    first = teardown(moto, config, constellation_bucket_tls_only=False)
    assert first.rc == 0, first.output
    assert "deletes the stored results" in " ".join(first.stdout.split())
    moto.assert_empty([HOME])

    second = teardown(moto, config, constellation_bucket_tls_only=False)
    assert second.rc == 0, second.output
    assert second.recap()["changed"] == 0, second.output


def test_teardown_home_after_a_partial_init(moto, tmp_path):
    config = write_config(tmp_path)
    assert init(moto, config).rc == 0
    moto.client("lambda", HOME).delete_function(FunctionName=f"{DEPLOYMENT}-orchestrator")
    moto.client("dynamodb", HOME).delete_table(TableName=f"{DEPLOYMENT}-orchestrator")

    result = teardown(moto, config)
    assert result.rc == 0, result.output
    moto.assert_empty([HOME])


@pytest.mark.parametrize("home", ["ca-central-1"])
def test_s3_results_store_in_a_region_without_timestream(moto, tmp_path, home):
    config = write_config(tmp_path, home=home)
    created = init(moto, config, constellation_results_store="s3")
    assert created.rc == 0, created.output
    assert f"{DEPLOYMENT}-{ACCOUNT}-{home}" in moto.inventory([home])["s3_buckets"]

    removed = teardown(moto, config, constellation_results_store="s3")
    assert removed.rc == 0, removed.output
    moto.assert_empty([home])


def test_same_named_home_resources_of_another_owner_are_never_taken_over_nor_torn_down(moto, tmp_path):
    """What another team or tool made under the names this deployment uses: init and teardown_home
    fail naming it, and leave it, and everything else, as it was."""
    config = write_config(tmp_path)
    s3, ddb, logs = moto.client("s3", HOME), moto.client("dynamodb", HOME), moto.client("logs", HOME)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": HOME})
    s3.put_object(Bucket=BUCKET, Key="their-data.csv", Body=b"keep me")

    refused = init(moto, config)
    assert refused.rc != 0
    message = " ".join(refused.stdout.split())
    assert f"S3 bucket {BUCKET} exists and has no constellation:deployment tag" in message, refused.output
    assert f"tag it constellation:deployment={DEPLOYMENT} and run again" in message
    assert ddb.list_tables()["TableNames"] == [] and logs.describe_log_groups()["logGroups"] == []  # nothing else made

    refused = teardown(moto, config)
    assert refused.rc != 0
    assert f"S3 bucket {BUCKET} exists and has no constellation:deployment tag" in " ".join(refused.stdout.split())
    assert s3.get_object(Bucket=BUCKET, Key="their-data.csv")["Body"].read() == b"keep me"

    # Tagged for another deployment, the log group: the same.
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": [{"Key": "constellation:deployment", "Value": DEPLOYMENT}]})
    group = f"/aws/lambda/{DEPLOYMENT}-orchestrator"
    logs.create_log_group(logGroupName=group, tags={"constellation:deployment": "another"})
    refused = teardown(moto, config)
    assert refused.rc != 0
    assert f"log group {group} exists and is tagged constellation:deployment=another" in " ".join(refused.stdout.split())
    assert s3.get_object(Bucket=BUCKET, Key="their-data.csv")["Body"].read() == b"keep me", "checked before anything is deleted"
    assert logs.list_tags_log_group(logGroupName=group)["tags"] == {"constellation:deployment": "another"}
