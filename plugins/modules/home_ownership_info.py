#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: home_ownership_info
version_added: 0.2.0
short_description: Check that the home region's resources that exist are this deployment's, before set-up or teardown touches any
description:
  - Reads the C(constellation:deployment) tag of the home region's bucket, orchestrator state table,
    orchestrator function and its log group, and (with Timestream) the results database, those of
    them that exist.
  - Fails, naming the resource and how to resolve it, when one exists untagged or tagged for another
    deployment, so that the home role neither takes it over nor deletes it. The orchestrator's IAM
    role is checked by M(constellation.loadtest.iam_roles) itself.
  - Changes nothing.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  deployment:
    description:
      - The deployment whose resources these must be.
    required: true
    type: str
  bucket:
    description:
      - The home bucket.
    type: str
  state_table:
    description:
      - The orchestrator state table (DynamoDB).
    type: str
  function:
    description:
      - The orchestrator Lambda function.
    type: str
  log_group:
    description:
      - The orchestrator function's log group.
    type: str
  timestream_database:
    description:
      - The Timestream results database, with the Timestream results store.
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The home region's resources that exist are this deployment's
  constellation.loadtest.home_ownership_info:
    region: eu-central-1
    deployment: constellation
    bucket: constellation-123456789012-eu-central-1
    state_table: constellation-orchestrator
    function: constellation-orchestrator
    log_group: /aws/lambda/constellation-orchestrator
"""

RETURN = r"""
resources:
  description: Each resource checked, by kind, with whether it exists.
  returned: always
  type: dict
  sample: {"S3 bucket": {"name": "constellation-123456789012-eu-central-1", "exists": true}}
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.tagging import NotOwnedError
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.tagging import check_owned


def bucket_tags(module, name):
    s3 = module.client("s3", retry_decorator=AWSRetry.jittered_backoff())
    try:
        s3.head_bucket(Bucket=name, aws_retry=True)
    except is_boto3_error_code(["404", "NoSuchBucket", "NotFound"]):
        return None
    try:
        tag_set = s3.get_bucket_tagging(Bucket=name, aws_retry=True)["TagSet"]
    except is_boto3_error_code("NoSuchTagSet"):
        return {}
    return boto3_tag_list_to_ansible_dict(tag_set)


def table_tags(module, name):
    dynamodb = module.client("dynamodb", retry_decorator=AWSRetry.jittered_backoff())
    try:
        arn = dynamodb.describe_table(TableName=name, aws_retry=True)["Table"]["TableArn"]
    except is_boto3_error_code("ResourceNotFoundException"):
        return None
    tags = []
    for page in dynamodb.get_paginator("list_tags_of_resource").paginate(ResourceArn=arn):
        tags.extend(page.get("Tags", []))
    return boto3_tag_list_to_ansible_dict(tags)


def function_tags(module, name):
    client = module.client("lambda", retry_decorator=AWSRetry.jittered_backoff())
    try:
        return client.get_function(FunctionName=name, aws_retry=True).get("Tags") or {}
    except is_boto3_error_code("ResourceNotFoundException"):
        return None


def log_group_tags(module, name):
    logs = module.client("logs", retry_decorator=AWSRetry.jittered_backoff())
    groups = logs.describe_log_groups(logGroupNamePrefix=name, aws_retry=True).get("logGroups", [])
    if not any(group["logGroupName"] == name for group in groups):
        return None
    return logs.list_tags_log_group(logGroupName=name, aws_retry=True).get("tags") or {}


def database_tags(module, name):
    client = module.client("timestream-write", retry_decorator=AWSRetry.jittered_backoff())
    try:
        arn = client.describe_database(DatabaseName=name, aws_retry=True)["Database"]["Arn"]
    except is_boto3_error_code("ResourceNotFoundException"):
        return None
    return boto3_tag_list_to_ansible_dict(client.list_tags_for_resource(ResourceARN=arn, aws_retry=True).get("Tags", []))


# Option, what the message calls it, and how its tags are read (None: it does not exist).
RESOURCES = (
    ("bucket", "S3 bucket", bucket_tags),
    ("state_table", "DynamoDB table", table_tags),
    ("function", "Lambda function", function_tags),
    ("log_group", "log group", log_group_tags),
    ("timestream_database", "Timestream database", database_tags),
)


def main():
    argument_spec = dict(
        deployment=dict(type="str", required=True),
        **{option: dict(type="str") for option, _kind, _read in RESOURCES},
    )
    module = ConstellationAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    checked = {}
    try:
        for option, kind, read_tags in RESOURCES:
            name = module.params[option]
            if not name:
                continue
            tags = read_tags(module, name)
            checked[kind] = {"name": name, "exists": tags is not None}
            if tags is not None:
                check_owned(kind, name, tags, module.params["deployment"])
    except NotOwnedError as e:
        module.fail_json(msg=str(e), resources=checked)
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg="Failed to read the tags of the home region's resources")
    module.exit_json(changed=False, resources=checked)


if __name__ == "__main__":
    main()
