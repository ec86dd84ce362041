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

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

from ansible_collections.constellation.loadtest.plugins.module_utils import ecs
from ansible_collections.constellation.loadtest.plugins.module_utils.modules import ConstellationAWSModule


def ensure_present(module, client):
    name, tags, insights = module.params["name"], module.params["tags"], module.params["container_insights"]
    cluster = ecs.describe_cluster(client, name)
    if cluster is None:
        if not module.check_mode:
            ecs.create_cluster(client, name, tags or {}, bool(insights))
        after = ecs.describe_cluster(client, name) if not module.check_mode else {"clusterName": name, "tags": tags or {}}
        return {"changed": True, "cluster": after, "diff": {"before": {}, "after": {"cluster_name": name, "tags": tags or {}}}}
    to_add, to_remove = compare_aws_tags(cluster["tags"], tags, module.params["purge_tags"]) if tags is not None else ({}, [])
    insights_differ = insights is not None and insights != ecs.container_insights_enabled(cluster)
    changed = bool(to_add or to_remove or insights_differ)
    if changed and not module.check_mode:
        if to_remove:
            ecs.untag_resource(client, cluster["clusterArn"], to_remove)
        if to_add:
            ecs.tag_resource(client, cluster["clusterArn"], to_add)
        if insights_differ:
            ecs.set_container_insights(client, name, insights)
        cluster = ecs.describe_cluster(client, name)
    return {"changed": changed, "cluster": cluster}


def ensure_absent(module, client):
    name = module.params["name"]
    if ecs.describe_cluster(client, name) is None:
        return {"changed": False}
    if not module.check_mode:
        ecs.delete_cluster(client, name)
    return {"changed": True, "diff": {"before": {"cluster_name": name}, "after": {}}}


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        container_insights=dict(type="bool"),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = ConstellationAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    retry = AWSRetry.jittered_backoff(catch_extra_error_codes=["ServerException", "UpdateInProgressException"])
    client = module.client("ecs", retry_decorator=retry)
    try:
        result = ensure_present(module, client) if module.params["state"] == "present" else ensure_absent(module, client)
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"{module.region}: failed to manage ECS cluster {module.params['name']}")
    if "cluster" in result:
        result["cluster"] = camel_dict_to_snake_dict(result["cluster"], ignore_list=["tags"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
