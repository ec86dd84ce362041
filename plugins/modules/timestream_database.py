#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: timestream_database
version_added: 0.1.0
short_description: Manage an Amazon Timestream for LiveAnalytics database
description:
  - Create, update, tag and delete an Amazon Timestream for LiveAnalytics database.
  - An existing database's KMS key is changed in place when O(kms_key_id) differs from the current one.
  - A database that still has tables is only deleted with O(delete_tables=true),
    which deletes its tables (and their data) first.
  - Amazon Timestream for LiveAnalytics is closed to new AWS customers since 2025-06-20;
    accounts that did not use it before get C(AccessDeniedException).
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  database_name:
    description:
      - The name of the database.
      - 3 to 256 characters from V(a-z), V(A-Z), V(0-9), V(_), V(.) and V(-).
    required: true
    type: str
    aliases: ['name']
  state:
    description:
      - Whether the database should exist.
    choices: ['present', 'absent']
    default: present
    type: str
  kms_key_id:
    description:
      - The KMS key that encrypts the database, as a key ARN or key ID.
      - When not set, a new database is encrypted with the Timestream managed key of the account,
        and an existing database keeps its key.
      - An alias is passed to AWS as is, but it is not resolved when comparing, so it reports a change on every run;
        use the key ARN or key ID.
    type: str
  delete_tables:
    description:
      - With O(state=absent), delete the database's tables first, losing their data.
      - Without it, deleting a database that still has tables fails and names the tables.
    type: bool
    default: false
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - Timestream requires endpoint discovery, which botocore does unless O(endpoint_url) is set
    (for example to use an emulator); then every call goes to that endpoint.
  - "IAM actions used: C(timestream:DescribeEndpoints), C(timestream:DescribeDatabase), C(timestream:CreateDatabase),
    C(timestream:UpdateDatabase), C(timestream:DeleteDatabase), C(timestream:ListTables), C(timestream:DeleteTable),
    C(timestream:ListTagsForResource), C(timestream:TagResource), C(timestream:UntagResource); with O(kms_key_id),
    also the KMS permissions AWS documents for encrypting Timestream with a customer managed key."
"""

EXAMPLES = r"""
- name: Create the results database, tagged for its deployment
  constellation.loadtest.timestream_database:
    database_name: constellation-results
    tags:
      constellation:deployment: constellation

- name: Encrypt it with a customer managed key
  constellation.loadtest.timestream_database:
    database_name: constellation-results
    kms_key_id: arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
    tags:
      constellation:deployment: constellation
    purge_tags: false

- name: Delete the database and every table in it
  constellation.loadtest.timestream_database:
    database_name: constellation-results
    state: absent
    delete_tables: true
"""

RETURN = r"""
database:
  description: The database. Empty when O(state=absent).
  returned: always
  type: dict
  contains:
    arn:
      description: The ARN of the database.
      returned: when the database exists (not in check mode before it is created)
      type: str
      sample: arn:aws:timestream:eu-central-1:123456789012:database/constellation-results
    database_name:
      description: The name of the database.
      returned: success
      type: str
      sample: constellation-results
    kms_key_id:
      description: The KMS key that encrypts the database.
      returned: when the database exists or O(kms_key_id) is set
      type: str
      sample: arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab
    table_count:
      description: The number of tables in the database.
      returned: when the database exists
      type: int
      sample: 1
    creation_time:
      description: When the database was created.
      returned: when the database exists
      type: str
      sample: "2025-01-31T12:00:00+00:00"
    last_updated_time:
      description: When the database was last changed.
      returned: when the database exists
      type: str
      sample: "2025-01-31T12:00:00+00:00"
    tags:
      description: The tags of the database.
      returned: success
      type: dict
      sample: {"constellation:deployment": "constellation"}
deleted_tables:
  description: The tables deleted with the database (or that would be, in check mode).
  returned: when O(state=absent)
  type: list
  elements: str
  sample: ["results"]
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
        database_name=dict(type="str", required=True, aliases=["name"]),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        kms_key_id=dict(type="str"),
        delete_tables=dict(type="bool", default=False),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = ConstellationAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    errors = timestream.name_errors(database_name=module.params["database_name"])
    if errors:
        module.fail_json(msg=" ".join(errors))

    client = module.client("timestream-write", retry_decorator=AWSRetry.jittered_backoff(retries=10))
    params = module.params
    database = timestream.TimestreamDatabase(client, params["database_name"], module.check_mode)
    try:
        if params["state"] == "present":
            result = database.ensure_present(params["kms_key_id"], params["tags"], params["purge_tags"])
        else:
            result = database.ensure_absent(params["delete_tables"])
    except timestream.TimestreamError as e:
        module.fail_json(msg=str(e), **e.details)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to manage Timestream database {params['database_name']} ({params['state']})")
    module.exit_json(changed=database.changed, **result)


if __name__ == "__main__":
    main()
