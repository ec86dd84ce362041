# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The orchestrator's state table as an AWS resource: describe, create, wait for, tag and delete it.

The runs it holds, and the rules for changing them, are in ``orchestrator_state`` (which the
orchestrator function ships); this file is only the table's lifecycle, for the
``orchestrator_state`` module and the tests. It takes a plain boto3 DynamoDB client.
"""

from __future__ import annotations

from typing import Any

try:
    from botocore.exceptions import ClientError
except ImportError:
    pass  # The Ansible modules report a missing botocore.


def describe_table(client, table: str) -> dict | None:
    """Return DescribeTable's ``Table`` with its tags as ``Tags`` (a dict), or None if missing."""
    try:
        description = client.describe_table(TableName=table)["Table"]
    except ClientError as error:
        if _error_code(error) == "ResourceNotFoundException":
            return None
        raise
    tags: dict[str, str] = {}
    paginator = client.get_paginator("list_tags_of_resource")
    for page in paginator.paginate(ResourceArn=description["TableArn"]):
        tags.update({tag["Key"]: tag["Value"] for tag in page.get("Tags", [])})
    description["Tags"] = tags
    return description


def create_table(client, table: str, tags: dict[str, str]) -> None:
    """Create the state table, on demand: a test run writes in bursts and is idle otherwise."""
    request: dict[str, Any] = {
        "TableName": table,
        "AttributeDefinitions": [{"AttributeName": "run_id", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "run_id", "KeyType": "HASH"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if tags:
        request["Tags"] = [{"Key": key, "Value": value} for key, value in tags.items()]
    client.create_table(**request)


def wait_for_table(client, table: str, exists: bool, timeout_seconds: int) -> None:
    """Block until the table is ACTIVE (``exists``) or gone, polling every 5 seconds at most."""
    delay = max(1, min(5, timeout_seconds))
    waiter = client.get_waiter("table_exists" if exists else "table_not_exists")
    waiter.wait(TableName=table, WaiterConfig={"Delay": delay, "MaxAttempts": max(1, timeout_seconds // delay)})


def delete_table(client, table: str) -> None:
    """Delete the state table and with it every run."""
    client.delete_table(TableName=table)


def tag_table(client, table_arn: str, tags: dict[str, str]) -> None:
    """Add or overwrite ``tags`` on the table."""
    client.tag_resource(ResourceArn=table_arn, Tags=[{"Key": key, "Value": value} for key, value in tags.items()])


def untag_table(client, table_arn: str, tag_keys: list[str]) -> None:
    """Remove the tags named in ``tag_keys`` from the table."""
    client.untag_resource(ResourceArn=table_arn, TagKeys=tag_keys)


def _error_code(error: ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")
