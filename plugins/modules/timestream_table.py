#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: timestream_table
version_added: 0.1.0
short_description: Manage an Amazon Timestream for LiveAnalytics table
description:
  - Create, update, tag and delete a table in an Amazon Timestream for LiveAnalytics database.
  - Retention and magnetic store writes of an existing table are changed in place;
    options left unset keep their current value.
  - The database must exist; create it with M(constellation.loadtest.timestream_database).
  - Amazon Timestream for LiveAnalytics is closed to new AWS customers since 2025-06-20;
    accounts that did not use it before get C(AccessDeniedException).
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  database_name:
    description:
      - The name of the database that holds the table.
    required: true
    type: str
  table_name:
    description:
      - The name of the table.
      - 3 to 256 characters from V(a-z), V(A-Z), V(0-9), V(_), V(.) and V(-).
    required: true
    type: str
    aliases: ['name']
  state:
    description:
      - Whether the table should exist.
      - Deleting a table deletes its data.
    choices: ['present', 'absent']
    default: present
    type: str
  memory_store_retention_hours:
    description:
      - How long records stay in the memory store, in hours, from V(1) to V(8766).
      - A new table created without it gets the AWS default of V(6) hours.
    type: int
  magnetic_store_retention_days:
    description:
      - How long records stay in the magnetic store, in days, from V(1) to V(73000).
      - A new table created without it gets the AWS default of V(73000) days.
    type: int
  enable_magnetic_store_writes:
    description:
      - Whether the table accepts records older than the memory store retention, writing them to the magnetic store.
      - When not set, a new table has them disabled and an existing table keeps its setting.
    type: bool
  magnetic_store_rejected_data_location:
    description:
      - Where Timestream writes reports of records it rejects asynchronously during magnetic store writes.
      - Needs O(enable_magnetic_store_writes=true). When not set, an existing table keeps its location.
    type: dict
    suboptions:
      bucket_name:
        description:
          - The S3 bucket.
        type: str
        required: true
      object_key_prefix:
        description:
          - The key prefix of the reports.
        type: str
      encryption_option:
        description:
          - How the reports are encrypted.
        type: str
        choices: ['SSE_S3', 'SSE_KMS']
        default: SSE_S3
      kms_key_id:
        description:
          - The KMS key for O(magnetic_store_rejected_data_location.encryption_option=SSE_KMS).
        type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - Timestream requires endpoint discovery, which botocore does unless O(endpoint_url) is set
    (for example to use an emulator); then every call goes to that endpoint.
  - In check mode, creating a table in a database that does not exist yet reports a change and a warning,
    so that a play which creates the database first can be checked; the real run fails.
  - "IAM actions used: C(timestream:DescribeEndpoints), C(timestream:DescribeDatabase), C(timestream:DescribeTable),
    C(timestream:CreateTable), C(timestream:UpdateTable), C(timestream:DeleteTable), C(timestream:ListTagsForResource),
    C(timestream:TagResource), C(timestream:UntagResource)."
"""

EXAMPLES = r"""
- name: Create the results table, keeping an hour in memory and a week on magnetic storage
  constellation.loadtest.timestream_table:
    database_name: constellation-results
    table_name: intervals
    memory_store_retention_hours: 1
    magnetic_store_retention_days: 7
    tags:
      constellation:deployment: constellation

- name: Accept late records, reporting rejected ones to S3
  constellation.loadtest.timestream_table:
    database_name: constellation-results
    table_name: intervals
    enable_magnetic_store_writes: true
    magnetic_store_rejected_data_location:
      bucket_name: constellation-rejected-records
      object_key_prefix: intervals/

- name: Delete the table and its data
  constellation.loadtest.timestream_table:
    database_name: constellation-results
    table_name: intervals
    state: absent
"""

RETURN = r"""
table:
  description: The table. Empty when O(state=absent).
  returned: always
  type: dict
  contains:
    arn:
      description: The ARN of the table.
      returned: when the table exists (not in check mode before it is created)
      type: str
      sample: arn:aws:timestream:eu-central-1:123456789012:database/constellation-results/table/intervals
    database_name:
      description: The name of the database that holds the table.
      returned: success
      type: str
      sample: constellation-results
    table_name:
      description: The name of the table.
      returned: success
      type: str
      sample: intervals
    table_status:
      description: The state of the table, C(ACTIVE), C(DELETING) or C(RESTORING).
      returned: when the table exists
      type: str
      sample: ACTIVE
    retention_properties:
      description: How long records are kept.
      returned: success
      type: dict
      contains:
        memory_store_retention_period_in_hours:
          description: Hours in the memory store.
          returned: success
          type: int
          sample: 1
        magnetic_store_retention_period_in_days:
          description: Days in the magnetic store.
          returned: success
          type: int
          sample: 7
    magnetic_store_write_properties:
      description: Whether late records are written to the magnetic store, and where rejections are reported.
      returned: success
      type: dict
      contains:
        enable_magnetic_store_writes:
          description: Whether magnetic store writes are enabled. May be missing when they never were.
          returned: when known
          type: bool
          sample: true
        magnetic_store_rejected_data_location:
          description: Where reports of rejected records go.
          returned: when set
          type: dict
          sample: {"s3_configuration": {"bucket_name": "constellation-rejected-records", "encryption_option": "SSE_S3"}}
    schema:
      description: The partitioning schema of the table.
      returned: when the table exists
      type: dict
    creation_time:
      description: When the table was created.
      returned: when the table exists and AWS reports it
      type: str
      sample: "2025-01-31T12:00:00+00:00"
    last_updated_time:
      description: When the table was last changed.
      returned: when the table exists and AWS reports it
      type: str
      sample: "2025-01-31T12:00:00+00:00"
    tags:
      description: The tags of the table.
      returned: success
      type: dict
      sample: {"constellation:deployment": "constellation"}
"""

try:
    import botocore
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.aws import timestream
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.tagging import plan_tags


def require_database(module, client, database_name):
    """Fail when the table's database does not exist; in check mode, warn instead."""
    try:
        database = timestream.get_database(client, database_name)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to describe Timestream database {database_name}")
    if database is not None:
        return
    message = (
        f"Timestream database {database_name} does not exist;"
        " create it first with constellation.loadtest.timestream_database."
    )
    if not module.check_mode:
        module.fail_json(msg=message)
    module.warn(f"{message} A real run fails unless an earlier task creates it.")


def ensure_present(module, client, current):
    params = module.params
    database_name, table_name = params["database_name"], params["table_name"]
    retention = timestream.retention_changes(
        current, params["memory_store_retention_hours"], params["magnetic_store_retention_days"]
    )
    writes = timestream.magnetic_store_writes_changes(
        current, params["enable_magnetic_store_writes"], params["magnetic_store_rejected_data_location"]
    )
    current_tags = current["Tags"] if current else {}
    tags, tags_to_set, tags_to_remove = plan_tags(current_tags, params["tags"], params["purge_tags"])
    planned = timestream.planned_table(current, database_name, table_name, retention, writes, tags)
    changed = current is None or bool(retention or writes or tags_to_set or tags_to_remove)

    if changed and not module.check_mode:
        try:
            if current is None:
                planned = timestream.create_table(client, database_name, table_name, retention, writes, planned["Tags"])
            else:
                if retention or writes:
                    timestream.update_table(client, current, retention, writes)
                timestream.update_tags(client, current["Arn"], tags_to_set, tags_to_remove)
                planned = timestream.get_table(client, database_name, table_name)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            action = "create" if current is None else "update"
            module.fail_json_aws(e, msg=f"Failed to {action} Timestream table {database_name}.{table_name}")
    module.exit_json(
        changed=changed,
        table=timestream.snake_case(planned),
        diff={"before": timestream.snake_case(current), "after": timestream.snake_case(planned)},
    )


def ensure_absent(module, client, current):
    # A table AWS is already deleting counts as gone, so a second run reports no change.
    if current is None or current.get("TableStatus") == "DELETING":
        module.exit_json(changed=False, table={})
    database_name, table_name = current["DatabaseName"], current["TableName"]
    if not module.check_mode:
        try:
            timestream.delete_table(client, database_name, table_name)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Failed to delete Timestream table {database_name}.{table_name}")
    module.exit_json(changed=True, table={}, diff={"before": timestream.snake_case(current), "after": {}})


def main():
    argument_spec = dict(
        database_name=dict(type="str", required=True),
        table_name=dict(type="str", required=True, aliases=["name"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        memory_store_retention_hours=dict(type="int"),
        magnetic_store_retention_days=dict(type="int"),
        enable_magnetic_store_writes=dict(type="bool"),
        magnetic_store_rejected_data_location=dict(
            type="dict",
            options=dict(
                bucket_name=dict(type="str", required=True),
                object_key_prefix=dict(type="str", no_log=False),
                encryption_option=dict(type="str", default="SSE_S3", choices=["SSE_S3", "SSE_KMS"]),
                kms_key_id=dict(type="str"),
            ),
            required_if=[("encryption_option", "SSE_KMS", ["kms_key_id"])],
        ),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = ConstellationAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    errors = timestream.table_option_errors(module.params)
    if errors:
        module.fail_json(msg=" ".join(errors))

    client = module.client("timestream-write", retry_decorator=AWSRetry.jittered_backoff(retries=10))
    database_name, table_name = module.params["database_name"], module.params["table_name"]
    try:
        current = timestream.get_table(client, database_name, table_name)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to describe Timestream table {database_name}.{table_name}")

    if module.params["state"] == "absent":
        ensure_absent(module, client, current)
    else:
        if current is None:
            require_database(module, client, database_name)
        ensure_present(module, client, current)


if __name__ == "__main__":
    main()
