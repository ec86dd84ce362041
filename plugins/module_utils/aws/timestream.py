# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Timestream for LiveAnalytics databases and tables: read them, compare them, change them.

The service calls take a ``timestream-write`` client made by
``module.client("timestream-write", retry_decorator=AWSRetry.jittered_backoff(...))`` and call it
with ``aws_retry=True``. They let botocore errors through for the caller to report. Endpoint
discovery, which real AWS requires for this service, is left entirely to botocore: nothing here
builds or overrides endpoints.

Resources are kept in their API shape (CamelCase), with their tags added as a plain dict under
``Tags``; ``snake_case()`` turns one into what the modules return. The ``*_changes`` functions are
pure: they compare a current resource with what the user asked for and return only what differs,
or nothing. ``TimestreamDatabase`` and ``TimestreamTable`` are the modules' managers, on the
``Changes`` base as every resource manager of the collection.
"""

from __future__ import annotations

import re
from typing import Any
from typing import Optional

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible.module_utils.common.dict_transformations import snake_dict_to_camel_dict

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from .changes import Changes
from .tagging import plan_tags

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_.-]{3,256}$")
MEMORY_STORE_RETENTION_HOURS = (1, 8766)
MAGNETIC_STORE_RETENTION_DAYS = (1, 73000)

# What AWS applies when CreateTable gets no RetentionProperties. The API needs both values
# whenever it gets one, so these fill in the one the user left out.
DEFAULT_RETENTION = {"MemoryStoreRetentionPeriodInHours": 6, "MagneticStoreRetentionPeriodInDays": 73000}
MAGNETIC_STORE_WRITES_DISABLED = {"EnableMagneticStoreWrites": False}


# ---- Validation: messages name the module option and the value the user gave.


def name_errors(**names: Optional[str]) -> list[str]:
    """Messages for every name (option=value) Timestream would reject."""
    return [
        f"{option} must be 3 to 256 characters from a-z, A-Z, 0-9, '_', '.' and '-', got {value!r}."
        for option, value in names.items()
        if value is not None and not NAME_PATTERN.match(value)
    ]


def table_option_errors(params: dict[str, Any]) -> list[str]:
    """Messages for every timestream_table option value AWS would reject or we cannot honour."""
    errors = name_errors(database_name=params["database_name"], table_name=params["table_name"])
    for option, (low, high) in (
        ("memory_store_retention_hours", MEMORY_STORE_RETENTION_HOURS),
        ("magnetic_store_retention_days", MAGNETIC_STORE_RETENTION_DAYS),
    ):
        value = params.get(option)
        if value is not None and not low <= value <= high:
            errors.append(f"{option} must be between {low} and {high}, got {value}.")
    if params.get("magnetic_store_rejected_data_location") and params.get("enable_magnetic_store_writes") is not True:
        errors.append("magnetic_store_rejected_data_location is only used with enable_magnetic_store_writes=true.")
    return errors


# ---- Pure comparisons.


def snake_case(resource: Optional[dict[str, Any]]) -> dict[str, Any]:
    """A database or table as modules return it; tag keys are left as they are."""
    return camel_dict_to_snake_dict(resource, ignore_list=["Tags"]) if resource else {}


def kms_key_matches(current: Optional[str], desired: str) -> bool:
    """Whether the database key (AWS reports an ARN) is the one the user named by ARN or key ID.

    Aliases are not resolved: that would need a KMS call and permission for it.
    """
    return current == desired or bool(current and current.endswith(f":key/{desired}"))


def retention_changes(
    current_table: Optional[dict[str, Any]],
    memory_store_retention_hours: Optional[int],
    magnetic_store_retention_days: Optional[int],
) -> Optional[dict[str, int]]:
    """RetentionProperties to send, or None when the table (or the AWS default, for a new one) already has them."""
    current = (current_table or {}).get("RetentionProperties") or DEFAULT_RETENTION
    desired = dict(current)
    if memory_store_retention_hours is not None:
        desired["MemoryStoreRetentionPeriodInHours"] = memory_store_retention_hours
    if magnetic_store_retention_days is not None:
        desired["MagneticStoreRetentionPeriodInDays"] = magnetic_store_retention_days
    return None if desired == current else desired


def rejected_data_location(option: dict[str, Optional[str]]) -> dict[str, Any]:
    """The API shape of the module's magnetic_store_rejected_data_location option."""
    s3_configuration = {key: value for key, value in option.items() if value is not None}
    return {"S3Configuration": snake_dict_to_camel_dict(s3_configuration, capitalize_first=True)}


def magnetic_store_writes_changes(
    current_table: Optional[dict[str, Any]],
    enable: Optional[bool],
    rejected_location: Optional[dict[str, Optional[str]]],
) -> Optional[dict[str, Any]]:
    """MagneticStoreWriteProperties to send, or None when the table already has them.

    ``enable=None`` keeps the current setting; a missing ``rejected_location`` keeps the current one.
    """
    current = (current_table or {}).get("MagneticStoreWriteProperties") or MAGNETIC_STORE_WRITES_DISABLED
    currently_enabled = current.get("EnableMagneticStoreWrites", False)
    if not (currently_enabled if enable is None else enable):
        return dict(MAGNETIC_STORE_WRITES_DISABLED) if currently_enabled else None

    desired: dict[str, Any] = {"EnableMagneticStoreWrites": True}
    if rejected_location:
        location = rejected_data_location(rejected_location)
    else:
        location = current.get("MagneticStoreRejectedDataLocation")
    if location:
        desired["MagneticStoreRejectedDataLocation"] = location
    return None if desired == current else desired


def planned_table(
    current: Optional[dict[str, Any]],
    database_name: str,
    table_name: str,
    retention: Optional[dict[str, int]],
    magnetic_store_writes: Optional[dict[str, Any]],
    tags: dict[str, str],
) -> dict[str, Any]:
    """The table as it will be once the given changes are made (what check mode reports)."""
    planned = dict(
        current
        or {
            "DatabaseName": database_name,
            "TableName": table_name,
            "RetentionProperties": DEFAULT_RETENTION,
            "MagneticStoreWriteProperties": MAGNETIC_STORE_WRITES_DISABLED,
        }
    )
    if retention:
        planned["RetentionProperties"] = retention
    if magnetic_store_writes:
        planned["MagneticStoreWriteProperties"] = magnetic_store_writes
    planned["Tags"] = tags
    return planned


# ---- Service calls.


def get_tags(client, arn: str) -> dict[str, str]:
    response = client.list_tags_for_resource(aws_retry=True, ResourceARN=arn)
    return boto3_tag_list_to_ansible_dict(response.get("Tags", []))


def update_tags(client, arn: str, to_set: dict[str, str], to_remove: list[str]) -> None:
    if to_remove:
        client.untag_resource(aws_retry=True, ResourceARN=arn, TagKeys=to_remove)
    if to_set:
        client.tag_resource(aws_retry=True, ResourceARN=arn, Tags=ansible_dict_to_boto3_tag_list(to_set))


def get_database(client, database_name: str) -> Optional[dict[str, Any]]:
    """The database with its tags, or None if it does not exist."""
    try:
        database = client.describe_database(aws_retry=True, DatabaseName=database_name)["Database"]
    except is_boto3_error_code("ResourceNotFoundException"):
        return None
    database["Tags"] = get_tags(client, database["Arn"])
    return database


def create_database(client, database_name: str, kms_key_id: Optional[str], tags: dict[str, str]) -> dict[str, Any]:
    request: dict[str, Any] = {"DatabaseName": database_name}
    if kms_key_id:
        request["KmsKeyId"] = kms_key_id
    if tags:
        request["Tags"] = ansible_dict_to_boto3_tag_list(tags)
    database = client.create_database(aws_retry=True, **request)["Database"]
    database["Tags"] = tags
    return database


def update_database_kms_key(client, database_name: str, kms_key_id: str) -> None:
    client.update_database(aws_retry=True, DatabaseName=database_name, KmsKeyId=kms_key_id)


def delete_database(client, database_name: str) -> None:
    """Delete an empty database; one that is already gone is fine."""
    try:
        client.delete_database(aws_retry=True, DatabaseName=database_name)
    except is_boto3_error_code("ResourceNotFoundException"):
        pass


def list_table_names(client, database_name: str) -> list[str]:
    """Names of every table in the database, in the order AWS lists them."""
    names: list[str] = []
    request = {"DatabaseName": database_name}
    while True:
        response = client.list_tables(aws_retry=True, **request)
        names.extend(table["TableName"] for table in response.get("Tables", []))
        if not response.get("NextToken"):
            return names
        request["NextToken"] = response["NextToken"]


def get_table(client, database_name: str, table_name: str) -> Optional[dict[str, Any]]:
    """The table with its tags, or None if it (or its database) does not exist."""
    try:
        table = client.describe_table(aws_retry=True, DatabaseName=database_name, TableName=table_name)["Table"]
    except is_boto3_error_code("ResourceNotFoundException"):
        return None
    table["Tags"] = get_tags(client, table["Arn"])
    return table


def create_table(
    client,
    database_name: str,
    table_name: str,
    retention: Optional[dict[str, int]],
    magnetic_store_writes: Optional[dict[str, Any]],
    tags: dict[str, str],
) -> dict[str, Any]:
    request: dict[str, Any] = {"DatabaseName": database_name, "TableName": table_name}
    if retention:
        request["RetentionProperties"] = retention
    if magnetic_store_writes:
        request["MagneticStoreWriteProperties"] = magnetic_store_writes
    if tags:
        request["Tags"] = ansible_dict_to_boto3_tag_list(tags)
    table = client.create_table(aws_retry=True, **request)["Table"]
    table["Tags"] = tags
    return table


def update_table(
    client,
    current: dict[str, Any],
    retention: Optional[dict[str, int]],
    magnetic_store_writes: Optional[dict[str, Any]],
) -> None:
    request: dict[str, Any] = {
        "DatabaseName": current["DatabaseName"],
        "TableName": current["TableName"],
        # Sent even when unchanged: AWS keeps a missing value, but moto resets it to nothing.
        "RetentionProperties": retention or current["RetentionProperties"],
    }
    if magnetic_store_writes:
        request["MagneticStoreWriteProperties"] = magnetic_store_writes
    client.update_table(aws_retry=True, **request)


def delete_table(client, database_name: str, table_name: str) -> None:
    """Delete a table; one that is already gone is fine."""
    try:
        client.delete_table(aws_retry=True, DatabaseName=database_name, TableName=table_name)
    except is_boto3_error_code("ResourceNotFoundException"):
        pass


# ---- Managers: what the timestream_database and timestream_table modules do, on the Changes base.


class TimestreamError(Exception):
    """A request the user can act on (a database that still has tables, a missing database).

    ``details`` go into the module's failure result beside the message.
    """

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class TimestreamDatabase(Changes):
    """Brings the database ``name`` to the requested state; ``changed`` tells whether it had to."""

    def __init__(self, client, name: str, check_mode: bool) -> None:
        self.client = client
        self.name = name
        super().__init__(check_mode)

    def ensure_present(self, kms_key_id: Optional[str], tags: Optional[dict[str, str]], purge_tags: bool) -> dict[str, Any]:
        current = get_database(self.client, self.name)
        if current is None:
            planned: dict[str, Any] = {"DatabaseName": self.name, "Tags": tags or {}}
            if kms_key_id:
                planned["KmsKeyId"] = kms_key_id
            if self.act():
                planned = create_database(self.client, self.name, kms_key_id, planned["Tags"])
            after = snake_case(planned)
            return {"database": after, "diff": {"before": {}, "after": after}}

        new_kms_key = None if kms_key_id is None or kms_key_matches(current.get("KmsKeyId"), kms_key_id) else kms_key_id
        after_tags, to_set, to_remove = plan_tags(current["Tags"], tags, purge_tags)
        planned = dict(current, Tags=after_tags)
        if new_kms_key:
            planned["KmsKeyId"] = new_kms_key
        if (new_kms_key or to_set or to_remove) and self.act():
            if new_kms_key:
                update_database_kms_key(self.client, self.name, new_kms_key)
            update_tags(self.client, current["Arn"], to_set, to_remove)
            planned = get_database(self.client, self.name)
        return {"database": snake_case(planned), "diff": {"before": snake_case(current), "after": snake_case(planned)}}

    def ensure_absent(self, delete_tables: bool) -> dict[str, Any]:
        """Delete the database, and its tables (with their data) only when ``delete_tables``."""
        current = get_database(self.client, self.name)
        if current is None:
            return {"database": {}, "deleted_tables": []}
        tables = list_table_names(self.client, self.name)
        if tables and not delete_tables:
            raise TimestreamError(
                f"Timestream database {self.name} still has tables: {', '.join(tables)}. Delete them first, or set"
                " delete_tables=true to delete them, and their data, with the database.",
                tables=tables,
            )
        if self.act():
            for table in tables:
                delete_table(self.client, self.name, table)
            delete_database(self.client, self.name)
        return {"database": {}, "deleted_tables": tables, "diff": {"before": snake_case(current), "after": {}}}


class TimestreamTable(Changes):
    """Brings the table ``database_name.table_name`` to the requested state."""

    def __init__(self, client, database_name: str, table_name: str, check_mode: bool) -> None:
        self.client = client
        self.database_name = database_name
        self.table_name = table_name
        self.warnings: list[str] = []
        super().__init__(check_mode)

    def ensure_present(self, params: dict[str, Any]) -> dict[str, Any]:
        """``params``: the module's retention, magnetic store writes and tag options."""
        current = get_table(self.client, self.database_name, self.table_name)
        if current is None:
            self._require_database()
        retention = retention_changes(
            current, params["memory_store_retention_hours"], params["magnetic_store_retention_days"]
        )
        writes = magnetic_store_writes_changes(
            current, params["enable_magnetic_store_writes"], params["magnetic_store_rejected_data_location"]
        )
        after_tags, to_set, to_remove = plan_tags(current["Tags"] if current else {}, params["tags"], params["purge_tags"])
        planned = planned_table(current, self.database_name, self.table_name, retention, writes, after_tags)
        if (current is None or retention or writes or to_set or to_remove) and self.act():
            if current is None:
                planned = create_table(self.client, self.database_name, self.table_name, retention, writes, planned["Tags"])
            else:
                if retention or writes:
                    update_table(self.client, current, retention, writes)
                update_tags(self.client, current["Arn"], to_set, to_remove)
                planned = get_table(self.client, self.database_name, self.table_name)
        return {"table": snake_case(planned), "diff": {"before": snake_case(current), "after": snake_case(planned)}}

    def ensure_absent(self) -> dict[str, Any]:
        current = get_table(self.client, self.database_name, self.table_name)
        # A table AWS is already deleting counts as gone, so a second run reports no change.
        if current is None or current.get("TableStatus") == "DELETING":
            return {"table": {}}
        if self.act():
            delete_table(self.client, self.database_name, self.table_name)
        return {"table": {}, "diff": {"before": snake_case(current), "after": {}}}

    def _require_database(self) -> None:
        """Refuse a table whose database does not exist; in check mode, warn instead."""
        if get_database(self.client, self.database_name) is not None:
            return
        message = (
            f"Timestream database {self.database_name} does not exist;"
            " create it first with constellation.loadtest.timestream_database."
        )
        if not self.check_mode:
            raise TimestreamError(message)
        self.warnings.append(f"{message} A real run fails unless an earlier task creates it.")
