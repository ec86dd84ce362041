#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: fargate_region
version_added: 0.1.0
short_description: What Fargate tasks need in one region (network, cluster, task definition, log group), in one module run
description:
  - Deploys or removes, in one module run, what M(constellation.loadtest.region_network),
    M(constellation.loadtest.fargate_cluster) and M(constellation.loadtest.fargate_task_definition)
    each manage, with the same behaviour. That is a dedicated network (O(network)), an ECS cluster
    (O(cluster)) and a task definition family with the log group of its containers
    (O(task_definition)). Any of the three may be left out.
  - The network and the ECS resources do not depend on each other, so they are handled at the same
    time, in two threads; within ECS, the cluster comes first, then the log group, then the task
    definition.
  - When many regions deploy in parallel on one controller, each module run costs about a second of
    CPU before its first AWS call; one run per region instead of three is what lets five regions
    deploy in little more time than one.
  - The roles of the task definition are not created here; see M(constellation.loadtest.iam_roles).
  - Ownership. When O(tags) has the tag C(constellation:deployment), an existing cluster, task
    definition family (its latest revision) or log group must carry the same value, with either
    O(state). One without it, or of another deployment, fails the module, naming the resource,
    before anything is changed or deleted.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  state:
    description:
      - Whether the resources are there as asked, or gone.
      - With O(state=absent), stop the cluster's tasks first (M(constellation.loadtest.ecs_load_tasks)
        with C(state=stopped)); deleting the network waits while their network interfaces are released.
    choices: [present, absent]
    default: present
    type: str
  network:
    description:
      - The dedicated network, as M(constellation.loadtest.region_network) manages it; see its options.
      - Unset, no network is touched (for tasks in subnets of your own).
    type: dict
    suboptions:
      name:
        description:
          - The C(Name) tag of the VPC, and the prefix of the names of the resources in it.
        required: true
        type: str
      cidr_block:
        description:
          - The IPv4 CIDR block of the VPC. Required with O(state=present).
          - With O(state=absent), only a VPC with this block is deleted, when given.
        type: str
      subnet_cidrs:
        description:
          - One public subnet per CIDR block, each in another availability zone. Required with O(state=present).
        type: list
        elements: str
      security_group_name:
        description:
          - The name of the security group of the tasks (all outbound, no inbound). Required with O(state=present).
        type: str
      security_group_description:
        description:
          - The description of the security group.
        type: str
  cluster:
    description:
      - The ECS cluster, as M(constellation.loadtest.fargate_cluster) manages it.
      - Unset, no cluster is touched.
    type: dict
    suboptions:
      name:
        description:
          - The name of the cluster.
        required: true
        type: str
      container_insights:
        description:
          - Whether CloudWatch Container Insights is on for the cluster. Unset, a new cluster has it
            off and an existing one keeps its setting.
        type: bool
  task_definition:
    description:
      - The task definition family and the log group of its containers, as
        M(constellation.loadtest.fargate_task_definition) manages them; see its options.
      - Unset, no task definition or log group is touched.
    type: dict
    suboptions:
      family:
        description:
          - The name of the task definition family.
        required: true
        type: str
      cpu:
        description:
          - The CPU units of the task, for example C(1024). Required with O(state=present).
        type: str
      memory:
        description:
          - The memory of the task in MiB, for example C(2048). Required with O(state=present).
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
          - The container definitions, as the ECS API takes them (camelCase). Required with O(state=present).
        type: list
        elements: dict
      cpu_architecture:
        description:
          - The CPU architecture of the task; its images must be built for it.
        choices: [X86_64, ARM64]
        default: X86_64
        type: str
      log_group:
        description:
          - The CloudWatch Logs group the containers log to, created before a revision is registered
            and deleted after the last one. Unset, no log group is touched.
        type: dict
        suboptions:
          name:
            description:
              - The name of the log group.
            required: true
            type: str
          retention_days:
            description:
              - How many days its log events are kept; one of the values CloudWatch Logs takes.
            type: int
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - O(tags) and O(purge_tags) apply to every resource, that is the network's (with their C(Name) tags),
    the cluster, the log group and the task definition revision.
  - The options are checked before anything is created; a refused one is named (for example
    C(task_definition.cpu) or C(network.subnet_cidrs[1])). What only AWS can refuse (a region with
    fewer availability zones than O(network.subnet_cidrs), a quota) fails the part that asked for it.
  - When one part fails, the other still completes, and what it did is returned with the failure
    (C(changed), C(diff)); the message names the region and the resource, both when both fail.
  - In check mode nothing is created, changed or deleted; see the modules above for what is returned.
"""

EXAMPLES = r"""
- name: Network, cluster, task definition and log group of the load generators in us-east-2
  constellation.loadtest.fargate_region:
    region: us-east-2
    network:
      name: constellation
      cidr_block: 10.64.0.0/16
      subnet_cidrs: [10.64.0.0/20, 10.64.16.0/20]
      security_group_name: constellation-tasks
    cluster:
      name: constellation
    task_definition:
      family: constellation-load
      cpu: "1024"
      memory: "2048"
      execution_role_arn: arn:aws:iam::123456789012:role/constellation-task-execution-us-east-2
      task_role_arn: arn:aws:iam::123456789012:role/constellation-task-us-east-2
      containers:
        - name: load-generator
          image: 123456789012.dkr.ecr.us-east-2.amazonaws.com/constellation/load-generator:1.0
          essential: true
          logConfiguration:
            logDriver: awslogs
            options:
              awslogs-group: /ecs/constellation
              awslogs-region: us-east-2
              awslogs-stream-prefix: load-generator
      log_group:
        name: /ecs/constellation
        retention_days: 14
    tags:
      "constellation:deployment": constellation
  register: region

- name: The subnets to start tasks in
  ansible.builtin.debug:
    msg: "{{ region.network.subnets | map(attribute='subnet_id') | list }}"

- name: Remove them (after the cluster's tasks have stopped)
  constellation.loadtest.fargate_region:
    region: us-east-2
    network:
      name: constellation
    cluster:
      name: constellation
    task_definition:
      family: constellation-load
      log_group:
        name: /ecs/constellation
    state: absent
"""

RETURN = r"""
network:
  description:
    - The network as M(constellation.loadtest.region_network) returns it (C(vpc), C(subnets),
      C(internet_gateway), C(route_table), C(security_group)).
  returned: when O(state=present) and O(network) is set
  type: dict
  sample:
    vpc: {"vpc_id": "vpc-0a1b2c3d4e5f67890", "cidr_block": "10.64.0.0/16"}
    subnets: [{"subnet_id": "subnet-0a1b2c3d4e5f67890", "cidr_block": "10.64.0.0/20", "availability_zone": "us-east-2a"}]
    security_group: {"group_id": "sg-0a1b2c3d4e5f67890", "group_name": "constellation-tasks"}
cluster:
  description: The cluster as M(constellation.loadtest.fargate_cluster) returns it.
  returned: when O(state=present) and O(cluster) is set
  type: dict
  sample: {"cluster_name": "constellation", "status": "ACTIVE", "tags": {"constellation:deployment": "constellation"}}
task_definition:
  description: The C(ACTIVE) revision as M(constellation.loadtest.fargate_task_definition) returns it.
  returned: when O(state=present) and O(task_definition) is set
  type: dict
  sample: {"family": "constellation-load", "revision": 3, "status": "ACTIVE"}
log_group:
  description: The log group as M(constellation.loadtest.fargate_task_definition) returns it.
  returned: when O(state=present) and O(task_definition.log_group) is set
  type: dict
  sample: {"log_group_name": "/ecs/constellation", "retention_in_days": 14}
"""

import ipaddress
from concurrent.futures import ThreadPoolExecutor

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.aws import ecs_cluster
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
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.parts import attempt
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.parts import fail
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.region_network import RegionNetwork
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.region_network import RegionNetworkError
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.region_network import network_options
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.tagging import NotOwnedError
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.tagging import check_owned
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.tagging import deployment_of

NETWORK_REQUIRED = ("cidr_block", "subnet_cidrs", "security_group_name")
TASK_DEFINITION_REQUIRED = ("cpu", "memory", "containers")


def argument_spec():
    return dict(
        state=dict(type="str", default="present", choices=["present", "absent"]),
        network=dict(type="dict", options=network_options()),
        cluster=dict(type="dict", options=ecs_cluster.cluster_options()),
        task_definition=dict(type="dict", options=task_definition_options()),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )


def missing_options(params):
    """The options ``state=present`` needs that are not set, as ``network.cidr_block``."""
    if params["state"] != "present":
        return []
    required = (("network", NETWORK_REQUIRED), ("task_definition", TASK_DEFINITION_REQUIRED))
    return [f"{part}.{key}" for part, keys in required if params[part] for key in keys if params[part][key] in (None, [])]


def check_network(params):
    """Raise RegionNetworkError naming the network option EC2 would refuse (before anything is created)."""
    network = params["network"]
    if not network or params["state"] != "present":
        return
    try:
        vpc = ipaddress.IPv4Network(network["cidr_block"])
    except ValueError as e:
        raise RegionNetworkError(f"network.cidr_block {network['cidr_block']!r} is not an IPv4 CIDR block: {e}") from None
    for position, cidr in enumerate(network["subnet_cidrs"]):
        try:
            subnet = ipaddress.IPv4Network(cidr)
        except ValueError as e:
            raise RegionNetworkError(f"network.subnet_cidrs[{position}] {cidr!r} is not an IPv4 CIDR block: {e}") from None
        if not subnet.subnet_of(vpc):
            raise RegionNetworkError(f"network.subnet_cidrs[{position}] {cidr!r} is not inside network.cidr_block {network['cidr_block']!r}")


def checked_request(params):
    """The task definition registration ``params`` ask for (None when absent); raises on a refused request."""
    present = params["state"] == "present"
    definition = params["task_definition"]
    if not definition:
        return None
    if definition["log_group"]:
        validate_log_group(definition["log_group"]["name"], definition["log_group"]["retention_days"])
    if not present:
        validate_family(definition["family"])
        return None
    return requested(definition)


class FargateRegion:
    """The two independent parts of a region: its network, and its ECS resources (cluster, then family)."""

    def __init__(self, module, request):
        self.module = module
        self.params = module.params
        self.present = self.params["state"] == "present"
        self.request = request
        check_mode = module.check_mode
        network, definition = self.params["network"], self.params["task_definition"]
        # Clients are created here, in one thread; using them from two is safe.
        self.network = None
        if network:
            ec2 = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff(retries=10))
            self.network = RegionNetwork(ec2, network["name"], self.params["tags"], self.params["purge_tags"], check_mode)
        needs_ecs = self.params["cluster"] or definition
        retry = AWSRetry.jittered_backoff(catch_extra_error_codes=["ServerException", "UpdateInProgressException"])
        self.ecs = module.client("ecs", retry_decorator=retry) if needs_ecs else None
        self.family = TaskDefinitionFamily(self.ecs, definition["family"], check_mode) if definition else None
        self.log_group = None
        if definition and definition["log_group"]:
            logs = module.client("logs", retry_decorator=AWSRetry.jittered_backoff())
            self.log_group = LogGroup(logs, definition["log_group"]["name"], check_mode)

    def check_ownership(self):
        """Raise NotOwnedError if the cluster, the family or the log group exists and is another's.

        Checked for every part before any part changes: set-up never takes over, and teardown never
        deletes, what the ``tags`` option's deployment does not own (the network finds its VPC by tag).
        """
        deployment = deployment_of(self.params["tags"])
        if deployment is None:
            return
        cluster = self.params["cluster"]
        if cluster:
            current = ecs_cluster.describe_cluster(self.ecs, cluster["name"])
            if current is not None:
                check_owned("ECS cluster", cluster["name"], current["tags"], deployment)
        if self.family:
            revisions = self.family.revisions("ACTIVE") or self.family.revisions("INACTIVE")
            current = self.family.describe(revisions[-1]) if revisions else None
            if current is not None:
                check_owned("task definition family", self.family.family, current["tags"], deployment)
        if self.log_group:
            current = self.log_group.describe()
            if current is not None:
                check_owned("log group", self.log_group.name, current["tags"], deployment)

    def run(self):
        """Both parts at once, each to its end: the results of those that succeeded, the errors of the others."""
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(self.network_part), pool.submit(self.ecs_part)]
        results, errors = {}, []
        for future in futures:
            error = future.exception()
            if isinstance(error, PartError):
                errors.append(error)
            elif error is not None:
                raise error  # a bug, not an AWS error or a refused request
            else:
                results.update(future.result())
        return results, errors

    def network_part(self):
        network = self.params["network"]
        if not self.network:
            return {}
        subject = f"the network {network['name']}"
        if self.present:
            description = network["security_group_description"] or f"Outbound only: {network['name']}"
            args = (network["cidr_block"], network["subnet_cidrs"], network["security_group_name"], description)
            result = attempt(subject, (RegionNetworkError,), self.network.ensure_present, *args)
        else:
            result = attempt(subject, (RegionNetworkError,), self.network.ensure_absent, network["cidr_block"])
        diff = result.pop("diff")
        return {"network": result, "network_diff": diff, "network_changed": self.network.changed}

    def ecs_part(self):
        params, results = self.params, {}
        cluster = params["cluster"]
        if cluster:
            subject = f"the ECS cluster {cluster['name']}"
            if self.present:
                args = (self.ecs, cluster["name"], params["tags"], params["purge_tags"], cluster["container_insights"], self.module.check_mode)
                results["cluster_result"] = attempt(subject, (), ecs_cluster.ensure_cluster, *args)
            else:
                results["cluster_result"] = attempt(subject, (), ecs_cluster.remove_cluster, self.ecs, cluster["name"], self.module.check_mode)
        if self.family:
            retention = params["task_definition"]["log_group"]["retention_days"] if self.log_group else None
            results["family_result"] = manage_family(self.family, self.log_group, self.request, retention, params["tags"], params["purge_tags"])
        return results


def outcome(results, present):
    """The module's result from the parts' results: one ``changed`` and one ``diff``."""
    changed = results.get("network_changed", False)
    before, after, returned = {}, {}, {}
    if "network" in results:
        before["network"], after["network"] = results["network_diff"]["before"], results["network_diff"]["after"]
        if present:
            returned["network"] = results["network"]
    cluster = results.get("cluster_result")
    if cluster:
        changed = changed or cluster["changed"]
        if "diff" in cluster:
            before["cluster"], after["cluster"] = cluster["diff"]["before"], cluster["diff"]["after"]
        if "cluster" in cluster:
            returned["cluster"] = cluster["cluster"]
    family = results.get("family_result")
    if family:
        changed = changed or family["changed"]
        before["task_definition"], after["task_definition"] = family["diff"]["before"], family["diff"]["after"]
        for key in ("task_definition", "log_group"):
            if key in family:
                returned[key] = family[key]
    return dict(returned, changed=changed, diff={"before": before, "after": after})


def main():
    module = ConstellationAWSModule(
        argument_spec=argument_spec(),
        required_one_of=[("network", "cluster", "task_definition")],
        supports_check_mode=True,
    )
    missing = missing_options(module.params)
    if missing:
        module.fail_json(msg=f"state is present: set {', '.join(missing)}")
    try:
        check_network(module.params)
        request = checked_request(module.params)
    except RegionNetworkError as e:
        module.fail_json(msg=str(e))
    except (TaskDefinitionError, LogGroupError) as e:
        # Their messages begin with the option they refuse, as fargate_task_definition names it.
        module.fail_json(msg=f"task_definition.{e}")
    region = FargateRegion(module, request)
    try:
        region.check_ownership()
    except NotOwnedError as e:
        module.fail_json(msg=f"{module.region}: {e}")
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg=f"{module.region}: failed to read the tags of the region's resources")
    results, errors = region.run()
    if region.family:
        for warning in region.family.warnings:
            module.warn(warning)
    result = outcome(results, module.params["state"] == "present")
    if errors:
        # The network's error first; what the other part did is returned with it.
        fail(module, errors[0], errors[1:], **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
