#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ecs_load_tasks_info
version_added: 0.1.0
short_description: Progress of the load generator tasks of one test run on ECS Fargate
description:
  - Returns the tasks of a test run in one ECS cluster (found by C(startedBy), the run id), how
    many are pending, running and stopped, and the exit code of every container that exited.
  - A missing cluster has no tasks; RV(cluster_exists) tells it apart.
  - Use M(constellation.loadtest.ecs_load_tasks) to start and stop them.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  cluster:
    description: Name or ARN of the ECS cluster.
    required: true
    type: str
  run_id:
    description: The test run. Without it, every task of the cluster is returned.
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Follow run 20250601T120000 in us-east-2
  constellation.loadtest.ecs_load_tasks_info:
    region: us-east-2
    cluster: constellation
    run_id: "20250601T120000"
  register: progress

- name: Show it
  ansible.builtin.debug:
    msg: "{{ progress.counts.running }} running, {{ progress.counts.stopped }} stopped of {{ progress.counts.total }}"
"""

RETURN = r"""
cluster_exists:
  description: Whether the cluster exists (is C(ACTIVE)).
  returned: always
  type: bool
  sample: true
counts:
  description: How many of the run's tasks are in each phase.
  returned: always
  type: dict
  contains:
    pending:
      description: Tasks being provisioned (C(PROVISIONING), C(PENDING), C(ACTIVATING)).
      type: int
      sample: 1
    running:
      description: Tasks in C(RUNNING).
      type: int
      sample: 2
    stopped:
      description: Tasks whose containers have exited or are exiting (C(DEACTIVATING) to C(STOPPED)).
      type: int
      sample: 1
    total:
      description: Every task of the run that ECS still lists.
      type: int
      sample: 4
exit_codes:
  description: The exit code of each container that exited, by task index (a string) and container name.
  returned: always
  type: dict
  sample: {"0": {"load-generator": 0, "aggregator": 0}}
tasks:
  description: Every task of the run, by task index.
  returned: always
  type: list
  elements: dict
  contains:
    task_arn:
      description: The ARN of the task.
      type: str
      sample: arn:aws:ecs:us-east-2:123456789012:task/constellation/0f9d4c0e3b2a4f7a9d4c0e3b2a4f7a9d
    task_index:
      description: The planned index of the task, from its C(constellation:task-index) tag.
      type: int
      sample: 0
    last_status:
      description: The last status ECS reported.
      type: str
      sample: STOPPED
    desired_status:
      description: C(RUNNING) or C(STOPPED).
      type: str
      sample: STOPPED
    stopped_reason:
      description: Why the task stopped, if it did.
      type: str
      sample: Essential container in task exited
    availability_zone:
      description: The availability zone the task runs in.
      type: str
      sample: us-east-2a
    capacity_provider:
      description: C(FARGATE_SPOT) for a task on Fargate Spot, else C(FARGATE).
      type: str
      sample: FARGATE_SPOT
    containers:
      description: Name, last status and exit code of each container.
      type: list
      elements: dict
      sample: [{"name": "load-generator", "last_status": "STOPPED", "exit_code": 0}]
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.run import load_tasks
from ansible_collections.constellation.loadtest.plugins.module_utils.aws import ecs_cluster
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule


def main():
    argument_spec = dict(
        cluster=dict(type="str", required=True),
        run_id=dict(type="str"),
    )
    module = ConstellationAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    cluster, run_id = module.params["cluster"], module.params["run_id"]
    try:
        if run_id is not None:
            load_tasks.validate_run_id(run_id)
    except load_tasks.EcsLoadTaskError as e:
        module.fail_json(msg=str(e))
    client = module.client("ecs", retry_decorator=AWSRetry.jittered_backoff(catch_extra_error_codes=["ServerException"]))
    try:
        exists = ecs_cluster.describe_cluster(client, cluster) is not None
        tasks = load_tasks.find_tasks(client, cluster, run_id) if exists else []
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"{module.region}: failed to read the tasks of cluster {cluster}")
    module.exit_json(changed=False, cluster_exists=exists, tasks=[load_tasks.task_summary(task) for task in tasks], **load_tasks.summarize(tasks))


if __name__ == "__main__":
    main()
