#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: run_grants
version_added: 0.2.0
short_description: Grant each region's task role the scripts and records of the runs active there, and nothing else
description:
  - Several runs of one deployment may overlap. The task role of a region holds, in its inline policy
    C(runs), read access to the script and (with the S3 results store) write access to the records of
    every run that is active in that region, and of no other run.
  - A run is active from its plan (M(constellation.loadtest.orchestrator_state)) until every task of
    it stopped (O(constellation.loadtest.orchestrator_state#module:state=ended)), or until its
    C(active_seconds) have passed. The runs are read from the orchestrator state table.
  - Every write is checked against the active runs read again after it, and written again when
    another run started or ended in between, so two run_test at once never leave a run without its
    grants.
  - With no active run in a region, the role has no C(runs) policy.
  - IAM limits a role's inline policies to 10,240 characters together; a run that would go past it
    fails the module, naming the role and the limit, with nothing written.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  table:
    description:
      - The orchestrator state table, in the module's region (the home region).
    required: true
    type: str
  bucket_arn:
    description:
      - The ARN of the home bucket, which holds the runs' scripts and, with the S3 results store, their records.
    required: true
    type: str
  results_store:
    description:
      - Where the tasks write their records. With V(s3) the grants include the runs' records prefixes;
        with V(timestream) the task role's own policy grants the results table.
    choices: ["s3", "timestream"]
    default: s3
    type: str
  roles:
    description:
      - The task role of each region whose grants to bring up to date, region name to role name.
    required: true
    type: dict
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - The roles must exist (M(constellation.loadtest.iam_roles), which keeps the C(runs) policy with
    O(constellation.loadtest.iam_roles#module:roles[].kept_policies)).
  - IAM applies a change everywhere within seconds; the tasks retry a denied read or write of their
    run's objects meanwhile.
"""

EXAMPLES = r"""
- name: Grant the task roles the runs active now
  constellation.loadtest.run_grants:
    region: eu-west-1
    table: constellation-orchestrator
    bucket_arn: arn:aws:s3:::constellation-123456789012-eu-west-1
    roles:
      us-east-2: constellation-task-us-east-2
      ap-northeast-1: constellation-task-ap-northeast-1
"""

RETURN = r"""
runs:
  description: The runs each region's task role is granted, by region.
  returned: always
  type: dict
  sample: {"us-east-2": ["20250601T120000Z", "nightly-42"], "ap-northeast-1": ["nightly-42"]}
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.run import orchestrator_state
from ansible_collections.constellation.loadtest.plugins.module_utils.run.run_grants import RunGrants
from ansible_collections.constellation.loadtest.plugins.module_utils.run.run_grants import RunGrantsError
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule


def main():
    argument_spec = dict(
        table=dict(type="str", required=True),
        bucket_arn=dict(type="str", required=True),
        results_store=dict(type="str", default="s3", choices=["s3", "timestream"]),
        roles=dict(type="dict", required=True),
    )
    module = ConstellationAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    for region, role in params["roles"].items():
        if not isinstance(role, str) or not role:
            module.fail_json(msg=f"roles.{region} must name the region's task role, got {orchestrator_state.shown(role)}")
    retry = AWSRetry.jittered_backoff()
    grants = RunGrants(
        iam=orchestrator_state.RetryingClient(module.client("iam"), retry),
        dynamodb=orchestrator_state.RetryingClient(module.client("dynamodb"), retry),
        table=params["table"],
        bucket_arn=params["bucket_arn"],
        records_in_bucket=params["results_store"] == "s3",
        roles=params["roles"],
        check_mode=module.check_mode,
    )
    try:
        orchestrator_state.validate_table_name(params["table"])
        runs = grants.ensure()
    except (RunGrantsError, orchestrator_state.OrchestratorStateError) as e:
        module.fail_json(msg=str(e))
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to grant the task roles the active runs of {params['table']}")
    module.exit_json(changed=grants.changed, runs=runs)


if __name__ == "__main__":
    main()
