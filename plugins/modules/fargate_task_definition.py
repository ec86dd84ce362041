#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: fargate_task_definition
version_added: 0.1.0
short_description: A Fargate task definition family with one active, tagged revision, in one module run
description:
  - Registers, retires and deletes the revisions of an ECS task definition family for Fargate
    (network mode C(awsvpc), compatibility C(FARGATE), Linux), so that one C(ACTIVE) revision
    remains, tagged with O(tags).
  - Deploying a family with M(community.aws.ecs_taskdefinition) and M(community.aws.ecs_tag) takes three
    module runs (register, retire the revision before, tag) and deleting it two
    (M(community.aws.ecs_taskdefinition_info), M(community.aws.ecs_taskdefinition)); this module does
    either in one, reading the family once. When many regions deploy in parallel on one controller,
    module runs are what they compete for.
  - The family's latest C(ACTIVE) revision is kept when its task size (O(cpu), O(memory)), roles,
    network mode, compatibilities and runtime platform are as asked, and its containers have the
    names of O(containers), in the same order, and every key given there. Unlike
    M(community.aws.ecs_taskdefinition), which compares only the containers, a new task size
    registers a new revision.
  - Otherwise a new revision is registered, with O(tags). Every other C(ACTIVE) revision of the
    family is then deregistered (tasks already running keep running).
  - ECS adds defaults to the containers it describes (C(portMappings=[]), C(mountPoints=[]),
    C(cpu=0), ...). Keys not given, at any depth, are not compared; C(environment) is compared as
    a set of name and value pairs, in any order; numbers and strings compare by their text.
  - With O(state=absent), every C(ACTIVE) revision of the family is deregistered and every
    C(INACTIVE) one deleted. AWS keeps C(INACTIVE) revisions, tagged, until they are deleted;
    O(state=present) deregisters the revisions it replaces but leaves their deletion to O(state=absent).
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  family:
    description:
      - The name of the task definition family (up to 255 letters, digits, hyphens and underscores).
    required: true
    type: str
  state:
    description:
      - Whether the family has one C(ACTIVE) revision as asked, or no revision at all.
    choices: [present, absent]
    default: present
    type: str
  cpu:
    description:
      - The CPU units of the task, as a whole number, for example C(1024) for one vCPU.
      - An integer is taken too. Fargate accepts only some combinations of O(cpu) and O(memory).
      - Required with O(state=present).
    type: str
  memory:
    description:
      - The memory of the task in MiB, as a whole number, for example C(2048).
      - An integer is taken too.
      - Required with O(state=present).
    type: str
  execution_role_arn:
    description:
      - The ARN of the task execution role, which pulls the images and writes the logs.
    type: str
  task_role_arn:
    description:
      - The ARN of the role of the containers.
    type: str
  containers:
    description:
      - The container definitions, as the ECS API takes them (C(containerDefinitions), in camelCase),
        for example C(name), C(image), C(essential), C(cpu), C(memoryReservation),
        C(environment) (a list of C(name) and C(value) dicts) and C(logConfiguration).
      - Each needs a C(name), unique in the task, and an C(image).
      - Environment values that are not strings are sent as JSON (C(10) as C("10"), C(true) as C("true")).
      - Required with O(state=present).
    type: list
    elements: dict
  cpu_architecture:
    description:
      - The CPU architecture of the task (C(runtimePlatform.cpuArchitecture)); its images must be built for it.
    choices: [X86_64, ARM64]
    default: X86_64
    type: str
  log_group:
    description:
      - The CloudWatch Logs group the containers log to (their C(awslogs-group)), managed with the family
        in the same module run, as the task definitions of terraform-aws-modules/ecs do.
      - With O(state=present) it is created, tagged with O(tags), before a revision is registered, and
        its retention and tags are brought in line; with O(state=absent) it is deleted, with its log
        events, after the revisions.
      - Unset, no log group is touched.
    type: dict
    suboptions:
      name:
        description:
          - The name of the log group, for example C(/ecs/constellation).
        required: true
        type: str
      retention_days:
        description:
          - How many days its log events are kept; one of the values CloudWatch Logs takes
            (1, 3, 5, 7, 14, 30, 60, 90, ..., 3653).
          - Unset, the retention is left as it is (a new group keeps its events forever).
        type: int
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - In check mode nothing is created, registered, tagged, deregistered or deleted; a revision that would be
    registered is returned without C(task_definition_arn), C(revision) and C(status), a log group that
    would be created without C(arn).
  - With O(tags) unset, a kept revision's tags are left as they are, and a new revision gets the tags
    of the latest C(ACTIVE) revision before it. So are the log group's.
  - A key removed from a container is not seen as a change, since keys not given are not compared;
    change another value (the image, for example) to register a revision without it.
"""

EXAMPLES = r"""
- name: The task definition of the load generators in us-east-2
  constellation.loadtest.fargate_task_definition:
    region: us-east-2
    family: constellation-load
    cpu: "1024"
    memory: "2048"
    execution_role_arn: arn:aws:iam::123456789012:role/constellation-task-execution
    task_role_arn: arn:aws:iam::123456789012:role/constellation-task
    containers:
      - name: load-generator
        image: 123456789012.dkr.ecr.us-east-2.amazonaws.com/constellation/load-generator:1.0
        essential: true
        cpu: 768
        memoryReservation: 1536
        environment:
          - {name: CONSTELLATION_REGION, value: us-east-2}
        logConfiguration:
          logDriver: awslogs
          options:
            awslogs-group: /constellation/tasks
            awslogs-region: us-east-2
            awslogs-stream-prefix: load-generator
    log_group:
      name: /constellation/tasks
      retention_days: 14
    tags:
      "constellation:deployment": constellation
  register: task_definition

- name: Start a task of it
  constellation.loadtest.ecs_load_tasks:
    region: us-east-2
    cluster: constellation
    task_definition: "{{ task_definition.task_definition.task_definition_arn }}"
    run_id: "20250601T120000"
    subnets: [subnet-0a1b2c3d4e5f67890]
    security_groups: [sg-0a1b2c3d4e5f67890]
    assign_public_ip: true
    tasks:
      - load-generator: {CONSTELLATION_TASK_INDEX: 0}

- name: Delete every revision of the family, and the log group
  constellation.loadtest.fargate_task_definition:
    region: us-east-2
    family: constellation-load
    log_group:
      name: /constellation/tasks
    state: absent
"""

RETURN = r"""
task_definition:
  description:
    - The C(ACTIVE) revision, as DescribeTaskDefinition returns it in snake_case, tags as a dict.
    - Its container definitions are as ECS describes them, in camelCase, the shape O(containers) takes,
      with the defaults ECS adds.
    - In check mode, when a revision would be registered, what would be registered.
  returned: when O(state=present)
  type: dict
  contains:
    task_definition_arn:
      description: The ARN of the revision (not in check mode before registration).
      type: str
      sample: arn:aws:ecs:us-east-2:123456789012:task-definition/constellation-load:3
    family:
      description: O(family).
      type: str
      sample: constellation-load
    revision:
      description: The revision number (not in check mode before registration).
      type: int
      sample: 3
    status:
      description: C(ACTIVE) (not in check mode before registration).
      type: str
      sample: ACTIVE
    cpu:
      description: The CPU units of the task.
      type: str
      sample: "1024"
    memory:
      description: The memory of the task in MiB.
      type: str
      sample: "2048"
    network_mode:
      description: C(awsvpc).
      type: str
      sample: awsvpc
    requires_compatibilities:
      description: C([FARGATE]).
      type: list
      elements: str
      sample: [FARGATE]
    runtime_platform:
      description: The CPU architecture and operating system family.
      type: dict
      sample: {"cpu_architecture": "X86_64", "operating_system_family": "LINUX"}
    execution_role_arn:
      description: The ARN of the task execution role, when there is one.
      type: str
      sample: arn:aws:iam::123456789012:role/constellation-task-execution
    task_role_arn:
      description: The ARN of the task role, when there is one.
      type: str
      sample: arn:aws:iam::123456789012:role/constellation-task
    container_definitions:
      description: The container definitions, in camelCase.
      type: list
      elements: dict
      sample:
        - name: load-generator
          image: 123456789012.dkr.ecr.us-east-2.amazonaws.com/constellation/load-generator:1.0
          cpu: 768
          memoryReservation: 1536
          essential: true
          environment: [{"name": "CONSTELLATION_REGION", "value": "us-east-2"}]
          portMappings: []
          mountPoints: []
          volumesFrom: []
    tags:
      description: The tags of the revision.
      type: dict
      sample: {"constellation:deployment": "constellation"}
log_group:
  description: The log group of O(log_group), as it is after the module run.
  returned: when O(state=present) and O(log_group) is set
  type: dict
  contains:
    log_group_name:
      description: O(log_group.name).
      type: str
      sample: /constellation/tasks
    arn:
      description: The ARN of the log group, without the C(:*) DescribeLogGroups appends (not in check mode before creation).
      type: str
      sample: arn:aws:logs:us-east-2:123456789012:log-group:/constellation/tasks
    retention_in_days:
      description: How many days its log events are kept; null when forever.
      type: int
      sample: 14
    tags:
      description: The tags of the log group.
      type: dict
      sample: {"constellation:deployment": "constellation"}
"""

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.aws.fargate_task_definition import TaskDefinitionError
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.fargate_task_definition import TaskDefinitionFamily
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.fargate_task_definition import manage_family
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.fargate_task_definition import requested
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.fargate_task_definition import task_definition_options
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.fargate_task_definition import validate_family
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.log_group import LogGroup
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.log_group import LogGroupError
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.log_group import validate as validate_log_group
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.parts import PartError
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.parts import fail


def main():
    argument_spec = dict(
        task_definition_options(),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = ConstellationAWSModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ["cpu", "memory", "containers"])],
        supports_check_mode=True,
    )
    params = module.params
    present = params["state"] == "present"
    log_group_params = params["log_group"]
    try:
        if present:  # registration() checks the family with the rest of the request
            request = requested(params)
        else:
            validate_family(params["family"])
            request = None
        if log_group_params:
            validate_log_group(log_group_params["name"], log_group_params["retention_days"])
    except (TaskDefinitionError, LogGroupError) as e:
        module.fail_json(msg=str(e))
    retry = AWSRetry.jittered_backoff(catch_extra_error_codes=["ServerException"])
    family = TaskDefinitionFamily(module.client("ecs", retry_decorator=retry), params["family"], module.check_mode)
    log_group = None
    if log_group_params:
        logs = module.client("logs", retry_decorator=AWSRetry.jittered_backoff())
        log_group = LogGroup(logs, log_group_params["name"], module.check_mode)
    retention = log_group_params["retention_days"] if log_group_params else None
    try:
        result = manage_family(family, log_group, request, retention, params["tags"], params["purge_tags"])
    except PartError as e:
        fail(module, e)
    for warning in family.warnings:
        module.warn(warning)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
