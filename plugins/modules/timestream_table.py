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
    params = module.params
    table = timestream.TimestreamTable(client, params["database_name"], params["table_name"], module.check_mode)
    try:
        result = table.ensure_present(params) if params["state"] == "present" else table.ensure_absent()
    except timestream.TimestreamError as e:
        module.fail_json(msg=str(e), **e.details)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(
            e, msg=f"Failed to manage Timestream table {params['database_name']}.{params['table_name']} ({params['state']})"
        )
    for warning in table.warnings:
        module.warn(warning)
    module.exit_json(changed=table.changed, **result)


if __name__ == "__main__":
    main()
