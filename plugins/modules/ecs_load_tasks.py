#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ecs_load_tasks
version_added: 0.1.0
short_description: Start or stop the load generator tasks of one test run on ECS Fargate
description:
  - Starts one Fargate task per planned task of a test run, each with its own container
    environment (its task index, its k6 execution segment), or stops the run's tasks.
  - A run's tasks are found by C(startedBy), which is the run id, and told apart by the tag
    C(constellation:task-index). With O(state=running), only the planned indexes that never had
    a task are started. A task that ran, whether it is still running or already stopped, is
    never started again, so a task that died is not replaced by one that would repeat its share
    of the load. ECS lists stopped tasks for about an hour only; O(registered) covers the tasks
    it no longer lists.
  - Tasks are started with one C(RunTask) call each (every task has its own overrides),
    O(launch_concurrency) calls at a time. Throttling is retried with jittered backoff; a
    C(Capacity is unavailable) or C(RESOURCE:ENI) answer, and C(ECS was unable to assume the role)
    (a task role IAM has not propagated yet, seconds after it was created), are retried with
    jittered backoff for about three minutes per task before the launch fails.
  - If some tasks cannot be started, the module fails naming the region, the task indexes and
    the reasons; the tasks that did start keep running and are returned in RV(tasks), so that
    the caller can stop them with O(state=stopped).
  - Use M(constellation.loadtest.ecs_load_tasks_info) to follow the run's tasks.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  cluster:
    description:
      - Name or ARN of the ECS cluster.
      - With O(state=running) the cluster must exist. With O(state=stopped) a missing cluster has
        no tasks to stop.
    required: true
    type: str
  run_id:
    description:
      - The test run, used as the tasks' C(startedBy) and as the tag C(constellation:run-id).
      - 1 to 64 letters, digits, hyphens and underscores, starting with a letter or digit.
      - Required with O(state=running). With O(state=stopped) and no O(run_id), every task of the
        cluster is stopped.
    type: str
  state:
    description:
      - C(running) starts the run's planned tasks that never started.
      - C(stopped) stops the run's tasks that are not stopped or stopping yet.
    choices: [running, stopped]
    default: running
    type: str
  task_definition:
    description:
      - The task definition to run, C(family), C(family:revision) or its ARN. A family alone
        means its latest C(ACTIVE) revision.
      - Required with O(state=running).
    type: str
  tasks:
    description:
      - The planned tasks of the run in this cluster, one element per task; task index I(i) is
        the I(i)-th element.
      - Each element maps a container name to the environment variables that container of that
        task gets in addition to those of the task definition (a C(containerOverrides) entry).
        Values are passed as strings.
      - Required with O(state=running).
    type: list
    elements: dict
  orchestrator_table:
    description:
      - The orchestrator state table holding the run's plan (in O(orchestrator_region)).
      - Each task started gets, in its load generator's environment, the token that proves it to
        the orchestrator, derived from the run's key in that table. The key and the tokens are
        never returned.
      - Required with O(state=running).
    type: str
  orchestrator_region:
    description:
      - The region of O(orchestrator_table), the home region.
      - Required with O(state=running).
    type: str
  registered:
    description:
      - Task indexes known to have run already, for example those registered with the
        orchestrator (M(constellation.loadtest.orchestrator_state) returns them). They are never
        started again, even once ECS no longer lists their tasks.
      - Indexes outside the planned O(tasks) are ignored.
    type: list
    elements: int
    default: []
  subnets:
    description:
      - The subnets the tasks run in (C(awsvpc) networking). Task I(i) gets the list rotated by
        I(i), spreading consecutive tasks over availability zones.
      - Required with O(state=running).
    type: list
    elements: str
  security_groups:
    description: The security groups of the tasks' network interfaces.
    type: list
    elements: str
    default: []
  assign_public_ip:
    description:
      - Give each task a public IP address, which lets tasks in public subnets pull images and
        reach AWS APIs without a NAT gateway.
    type: bool
    default: true
  launch_concurrency:
    description: How many C(RunTask) calls are in flight at once.
    type: int
    default: 10
  spot_tasks:
    description:
      - How many of the run's tasks run on Fargate Spot, the last ones (task indexes from the number of
        O(tasks) minus this on); the others on demand. The cluster needs the C(FARGATE_SPOT) capacity
        provider (M(constellation.loadtest.fargate_cluster) associates it).
      - A Spot interruption stops a task as C(StopTask) does (SIGTERM, two minutes' notice); its k6 ends
        gracefully and its records up to then are kept, and the report names it and what of its load is missing.
    type: int
    default: 0
  tags:
    description:
      - Tags of every task started, besides C(constellation:run-id) and C(constellation:task-index).
      - Tags of tasks already started are left as they are.
      - With O(state=stopped) and the tag C(constellation:deployment), only the tasks carrying that tag
        with that value are stopped, never the tasks of another deployment in the same cluster.
    type: dict
    aliases: ['resource_tags']
  reason:
    description: The reason recorded on every task stopped with O(state=stopped).
    type: str
    default: Stopped by constellation.loadtest
  wait:
    description: With O(state=stopped), wait until every task of the run has stopped.
    type: bool
    default: false
  wait_timeout:
    description: How many seconds to wait with O(wait=true).
    type: int
    default: 300
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
notes:
  - ECS lists a stopped task for about an hour after it stopped. Running the same O(run_id)
    again later than that starts again every planned task that ECS no longer lists, unless its
    index is in O(registered); use a new run id for a new run.
  - Check mode reports the indexes that would be started or the tasks that would be stopped
    without starting or stopping any. It accepts a missing cluster and no O(subnets), as a
    deployment checked before it exists has them.
"""

EXAMPLES = r"""
- name: Start the 3 tasks of run 20250601T120000 in us-east-2
  constellation.loadtest.ecs_load_tasks:
    region: us-east-2
    cluster: constellation
    task_definition: constellation-load
    run_id: "20250601T120000"
    subnets: [subnet-0a1b2c3d4e5f60001, subnet-0a1b2c3d4e5f60002]
    security_groups: [sg-0a1b2c3d4e5f60003]
    tasks:
      - load-generator: {CONSTELLATION_TASK_INDEX: 0, CONSTELLATION_EXECUTION_SEGMENT: "0:1/3"}
      - load-generator: {CONSTELLATION_TASK_INDEX: 1, CONSTELLATION_EXECUTION_SEGMENT: "1/3:2/3"}
      - load-generator: {CONSTELLATION_TASK_INDEX: 2, CONSTELLATION_EXECUTION_SEGMENT: "2/3:1"}
    tags:
      "constellation:deployment": constellation

- name: Abort the run in us-east-2
  constellation.loadtest.ecs_load_tasks:
    region: us-east-2
    cluster: constellation
    run_id: "20250601T120000"
    reason: Aborted, another region failed
    state: stopped

- name: Stop every task of the cluster and wait until they have stopped
  constellation.loadtest.ecs_load_tasks:
    region: us-east-2
    cluster: constellation
    state: stopped
    wait: true
"""

RETURN = r"""
tasks:
  description: Every task of the run (of the cluster, for O(state=stopped) without O(run_id)) after the change, by task index.
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
      description: The last status ECS reported, for example C(PROVISIONING), C(RUNNING), C(STOPPED).
      type: str
      sample: RUNNING
    desired_status:
      description: C(RUNNING), or C(STOPPED) once the task was asked to stop or its essential container exited.
      type: str
      sample: RUNNING
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
      sample: [{"name": "load-generator", "last_status": "RUNNING", "exit_code": null}]
started:
  description: The task indexes started by this call (in check mode, those that would be).
  returned: when O(state=running)
  type: list
  elements: int
  sample: [2, 3]
stopped:
  description: The ARNs of the tasks asked to stop by this call (in check mode, those that would be).
  returned: when O(state=stopped)
  type: list
  elements: str
  sample: ["arn:aws:ecs:us-east-2:123456789012:task/constellation/0f9d4c0e3b2a4f7a9d4c0e3b2a4f7a9d"]
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
    from botocore.exceptions import WaiterError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.run import load_tasks
from ansible_collections.constellation.loadtest.plugins.module_utils.run import orchestrator_state
from ansible_collections.constellation.loadtest.plugins.module_utils.aws import ecs_cluster
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.tagging import DEPLOYMENT_TAG
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.tagging import deployment_of


def ensure_running(module, client):
    params = module.params
    if ecs_cluster.describe_cluster(client, params["cluster"]) is not None:
        existing = load_tasks.find_tasks(client, params["cluster"], params["run_id"])
    elif module.check_mode:
        existing = []  # A deployment checked before it exists: every planned task would start.
    else:
        raise load_tasks.EcsLoadTaskError(f"ECS cluster {params['cluster']} does not exist in {module.region}")
    missing = load_tasks.missing_indexes(existing, len(params["tasks"]), params["registered"])
    result = {"changed": bool(missing), "started": missing, "tasks": [load_tasks.task_summary(task) for task in existing]}
    if not missing or module.check_mode:
        return result
    token_key = read_token_key(module, params["orchestrator_table"], params["orchestrator_region"], params["run_id"])
    requests = [
        load_tasks.run_task_request(
            cluster=params["cluster"],
            task_definition=params["task_definition"],
            run_id=params["run_id"],
            index=index,
            environment=load_tasks.with_task_token(params["tasks"][index], token_key, params["run_id"], module.region, index),
            subnets=params["subnets"],
            security_groups=params["security_groups"],
            assign_public_ip=params["assign_public_ip"],
            tags=params["tags"] or {},
            spot=index >= len(params["tasks"]) - params["spot_tasks"],
        )
        for index in missing
    ]
    launched, failed = load_tasks.launch_tasks(lambda request: load_tasks.launch_task(client, request), requests, params["launch_concurrency"])
    result["tasks"] = [load_tasks.task_summary(task) for task in load_tasks.by_index(existing + launched)]
    if failed:
        reasons = "; ".join(f"task {load_tasks.request_index(request)}: {error}" for request, error in failed)
        module.fail_json(
            msg=f"{module.region}: could not start {len(failed)} of {len(requests)} tasks of run {params['run_id']} "
            f"in cluster {params['cluster']}: {reasons}",
            **result,
        )
    return result


def read_token_key(module, table, region, run_id):
    """The run's token key from the orchestrator state table in the home region."""
    client = orchestrator_state.RetryingClient(module.client("dynamodb", region=region), AWSRetry.jittered_backoff())
    try:
        return orchestrator_state.read_token_key(client, table, run_id)
    except orchestrator_state.OrchestratorStateError as error:
        raise load_tasks.EcsLoadTaskError(f"cannot give the tasks of run {run_id} their tokens: {error}") from None


def of_deployment(tasks, tags):
    """The tasks of the deployment ``tags`` name (every task if they name none): another's are never touched."""
    deployment = deployment_of(tags)
    if deployment is None:
        return tasks
    return [task for task in tasks if {t["key"]: t["value"] for t in task.get("tags", [])}.get(DEPLOYMENT_TAG) == deployment]


def ensure_stopped(module, client):
    params = module.params
    if ecs_cluster.describe_cluster(client, params["cluster"]) is None:
        return {"changed": False, "stopped": [], "tasks": []}
    existing = of_deployment(load_tasks.find_tasks(client, params["cluster"], params["run_id"]), params["tags"])
    to_stop = load_tasks.not_yet_stopping(existing)
    result = {"changed": bool(to_stop), "stopped": [task["taskArn"] for task in to_stop]}
    if module.check_mode:
        return dict(result, tasks=[load_tasks.task_summary(task) for task in existing])
    load_tasks.stop_tasks(client, params["cluster"], to_stop, params["reason"])
    if params["wait"] and existing:
        load_tasks.wait_until_stopped(client, params["cluster"], [task["taskArn"] for task in existing], params["wait_timeout"])
    if to_stop or params["wait"]:
        existing = of_deployment(load_tasks.find_tasks(client, params["cluster"], params["run_id"]), params["tags"])
    return dict(result, tasks=[load_tasks.task_summary(task) for task in existing])


def main():
    argument_spec = dict(
        cluster=dict(type="str", required=True),
        run_id=dict(type="str"),
        state=dict(type="str", default="running", choices=["running", "stopped"]),
        task_definition=dict(type="str"),
        tasks=dict(type="list", elements="dict"),
        orchestrator_table=dict(type="str"),
        orchestrator_region=dict(type="str"),
        registered=dict(type="list", elements="int", default=[]),
        subnets=dict(type="list", elements="str"),
        security_groups=dict(type="list", elements="str", default=[]),
        assign_public_ip=dict(type="bool", default=True),
        launch_concurrency=dict(type="int", default=10),
        spot_tasks=dict(type="int", default=0),
        tags=dict(type="dict", aliases=["resource_tags"]),
        reason=dict(type="str", default="Stopped by constellation.loadtest"),
        wait=dict(type="bool", default=False),
        wait_timeout=dict(type="int", default=300),
    )
    module = ConstellationAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_if=[
            ("state", "running", ["run_id", "task_definition", "tasks", "subnets", "orchestrator_table", "orchestrator_region"])
        ],
    )
    params = module.params
    try:
        if params["run_id"] is not None:
            load_tasks.validate_run_id(params["run_id"])
        # In check mode a dedicated network that does not exist yet has no subnets to name.
        if params["state"] == "running" and not params["subnets"] and not module.check_mode:
            raise load_tasks.EcsLoadTaskError("subnets must name at least one subnet")
    except load_tasks.EcsLoadTaskError as e:
        module.fail_json(msg=str(e))
    client = module.client("ecs", retry_decorator=AWSRetry.jittered_backoff(catch_extra_error_codes=["ServerException"]))
    action = ensure_running if params["state"] == "running" else ensure_stopped
    where = f"run {params['run_id']}" if params["run_id"] else "every task"
    try:
        result = action(module, client)
    except load_tasks.EcsLoadTaskError as e:
        module.fail_json(msg=str(e))
    except WaiterError as e:
        module.fail_json_aws(e, msg=f"{module.region}: timed out waiting for {where} in cluster {params['cluster']} to stop")
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"{module.region}: failed to manage the tasks of {where} in cluster {params['cluster']}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
