#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: fargate_cluster
version_added: 0.1.0
short_description: An ECS cluster for Fargate tasks, tagged
description:
  - Creates, tags or deletes an ECS cluster that runs Fargate tasks started with C(RunTask)
    (no capacity providers, no container instances).
  - Unlike M(community.aws.ecs_cluster) it manages the cluster's tags, which
    C(constellation.loadtest) needs on every resource, and Container Insights.
  - ECS refuses to delete a cluster with tasks that have not stopped; stop them first, for
    example with M(constellation.loadtest.ecs_load_tasks) and O(constellation.loadtest.ecs_load_tasks#module:wait=true).
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  name:
    description: The name of the cluster.
    required: true
    type: str
  state:
    description: Whether the cluster exists (is C(ACTIVE)).
    choices: [present, absent]
    default: present
    type: str
  container_insights:
    description:
      - Enable CloudWatch Container Insights (billed per metric) on the cluster.
      - When not set, the setting of an existing cluster is left as it is; a new cluster has it off.
    type: bool
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: A cluster for the load generators
  constellation.loadtest.fargate_cluster:
    name: constellation
    tags:
      "constellation:deployment": constellation

- name: Delete it
  constellation.loadtest.fargate_cluster:
    name: constellation
    state: absent
"""

RETURN = r"""
cluster:
  description: The cluster after the change, as DescribeClusters returns it in snake_case, tags as a dict.
  returned: when O(state=present) (in check mode before creation, only the requested name and tags)
  type: dict
  contains:
    cluster_name:
      description: The name of the cluster.
      type: str
      sample: constellation
    cluster_arn:
      description: The ARN of the cluster.
      type: str
      sample: arn:aws:ecs:us-east-2:123456789012:cluster/constellation
    status:
      description: C(ACTIVE).
      type: str
      sample: ACTIVE
    running_tasks_count:
      description: Tasks in C(RUNNING).
      type: int
      sample: 0
    tags:
      description: The tags of the cluster.
      type: dict
      sample: {"constellation:deployment": "constellation"}
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.aws import ecs_cluster
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule


def main():
    argument_spec = dict(
        ecs_cluster.cluster_options(),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = ConstellationAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    retry = AWSRetry.jittered_backoff(catch_extra_error_codes=["ServerException", "UpdateInProgressException"])
    client = module.client("ecs", retry_decorator=retry)
    params = module.params
    try:
        if params["state"] == "present":
            result = ecs_cluster.ensure_cluster(client, params["name"], params["tags"], params["purge_tags"], params["container_insights"], module.check_mode)
        else:
            result = ecs_cluster.remove_cluster(client, params["name"], module.check_mode)
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"{module.region}: failed to manage ECS cluster {params['name']}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
