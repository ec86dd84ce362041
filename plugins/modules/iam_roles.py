#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: iam_roles
version_added: 0.1.0
short_description: IAM roles with their trust policy, tags and inline policies only, several in one module run
description:
  - Creates, updates or deletes IAM roles, each with a trust policy (O(assume_role_policy_document), or the
    role's own), a description, tags and inline policies. The collection manages every role of its own with
    it, the orchestrator function's role as the ECS tasks' task execution roles and task roles.
  - Called C(ecs_task_roles) before; that name still works.
  - The roles are handled four at a time, so the roles of many regions take about as long in one module
    run as those of one region.
  - What two M(amazon.aws.iam_role) and two M(amazon.aws.iam_policy) runs would do, this module does in
    one, reading each role once and changing only what differs. When many regions deploy in parallel on
    one controller, module runs are what they compete for.
  - Least privilege. A role has the inline policies of O(roles[].policies) and nothing else. Inline policies
    not listed are deleted, and managed policies attached to the role, by hand or by another tool, are
    detached.
  - A new role gets no instance profile. An existing role keeps its path and its instance profiles.
  - With O(state=absent), each role of O(roles) that exists is deleted, after its managed policies are
    detached, its inline policies deleted and the role removed from its instance profiles (which are kept).
    A role that does not exist is left alone.
  - Ownership. When O(tags) has the tag C(constellation:deployment), an existing role of O(roles) must
    carry the same value, with either O(state). A role without it, or of another deployment, fails the
    module, naming the role, before any role is changed or deleted.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  roles:
    description:
      - The roles, each named once.
    required: true
    type: list
    elements: dict
    suboptions:
      name:
        description:
          - The name of the role, unique in the account.
        required: true
        type: str
      description:
        description:
          - The description of the role.
          - When unset, a new role has none and an existing role keeps its own.
        type: str
      policies:
        description:
          - The inline policies of the role, policy name to policy document (JSON text or a dict).
          - Inline policies of the role not named here, or in O(roles[].kept_policies), are deleted.
          - Not used with O(state=absent).
        type: dict
        default: {}
      kept_policies:
        description:
          - Names of inline policies of the role that another module manages (the task roles' grants on
            the active runs, M(constellation.loadtest.run_grants)). This module neither puts nor deletes
            them, but deletes them with the role.
          - Not used with O(state=absent).
        type: list
        elements: str
        default: []
      assume_role_policy_document:
        description:
          - The trust policy of this role, as JSON text or a dict, instead of O(assume_role_policy_document).
          - Not used with O(state=absent).
        type: json
  assume_role_policy_document:
    description:
      - The trust policy of the roles of O(roles) without their own, as JSON text or a dict.
      - With O(state=present), every role needs one or the other.
      - Not used with O(state=absent).
    type: json
  state:
    description:
      - Whether the roles exist.
    choices: [present, absent]
    default: present
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - IAM is global; O(region) does not matter, but O(endpoint_url) does.
  - In check mode nothing is created or changed; each role is returned as it would be after the run, a role
    that would be created without RV(roles.arn) and RV(roles.role_id).
  - IAM is eventually consistent. The inline policies of a new role are put with retries while IAM does not
    know the role yet, but other services may take a few seconds more to be able to use it.
"""

EXAMPLES = r"""
- name: A Lambda function's role, allowed to write to its own log group only
  constellation.loadtest.iam_roles:
    roles:
      - name: orchestrator
        description: Role of the orchestrator function
        assume_role_policy_document: "{{ lookup('ansible.builtin.file', 'lambda-trust.json') }}"
        policies:
          logs: "{{ lookup('ansible.builtin.template', 'orchestrator-logs.json.j2') }}"
    tags:
      "constellation:deployment": constellation

- name: The task execution role and the task role of the load generator tasks in us-east-2
  constellation.loadtest.iam_roles:
    assume_role_policy_document: "{{ lookup('ansible.builtin.template', 'task-trust.json.j2') }}"
    roles:
      - name: constellation-task-execution-us-east-2
        description: ECS task execution role of the load generator tasks in us-east-2
        policies:
          task-execution: "{{ lookup('ansible.builtin.template', 'task-execution-policy.json.j2') }}"
      - name: constellation-task-us-east-2
        description: Task role of the load generator tasks in us-east-2
        policies:
          task: "{{ lookup('ansible.builtin.template', 'task-policy.json.j2') }}"
    tags:
      "constellation:deployment": constellation
  register: task_roles

- name: A task definition that uses them
  community.aws.ecs_taskdefinition:
    region: us-east-2
    family: constellation-load
    launch_type: FARGATE
    network_mode: awsvpc
    cpu: "1024"
    memory: "2048"
    execution_role_arn: "{{ task_roles.roles['constellation-task-execution-us-east-2'].arn }}"
    task_role_arn: "{{ task_roles.roles['constellation-task-us-east-2'].arn }}"
    containers: "{{ containers }}"
    state: present

- name: Delete both roles with their policies
  constellation.loadtest.iam_roles:
    roles:
      - name: constellation-task-execution-us-east-2
      - name: constellation-task-us-east-2
    state: absent
"""

RETURN = r"""
roles:
  description:
    - The roles of O(roles) by name, as they are after the run (in check mode, as they would be).
    - Empty with O(state=absent).
  returned: always
  type: dict
  contains:
    arn:
      description: The ARN of the role (not in check mode before creation).
      type: str
      sample: arn:aws:iam::123456789012:role/constellation-task-us-east-2
    role_name:
      description: The name of the role.
      type: str
      sample: constellation-task-us-east-2
    role_id:
      description: The ID of the role (not in check mode before creation).
      type: str
      sample: AROA1234567890EXAMPLE
    description:
      description: The description of the role, null when it has none.
      type: str
      sample: Task role of the load generator tasks in us-east-2
    tags:
      description: The tags of the role.
      type: dict
      sample: {"constellation:deployment": "constellation"}
    policies:
      description: The names of the inline policies of the role, sorted.
      type: list
      elements: str
      sample: ["task"]
  sample:
    constellation-task-us-east-2:
      arn: arn:aws:iam::123456789012:role/constellation-task-us-east-2
      role_name: constellation-task-us-east-2
      role_id: AROA1234567890EXAMPLE
      description: Task role of the load generator tasks in us-east-2
      tags: {"constellation:deployment": "constellation"}
      policies: ["task"]
"""

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.aws.iam_roles import IamRoles
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.iam_roles import IamRolesError
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.iam_roles import parse_document
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.iam_roles import parse_roles
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.iam_roles import role_names
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.tagging import NotOwnedError


def main():
    argument_spec = dict(
        roles=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                description=dict(type="str"),
                policies=dict(type="dict", default={}),
                kept_policies=dict(type="list", elements="str", default=[]),
                assume_role_policy_document=dict(type="json"),
            ),
        ),
        assume_role_policy_document=dict(type="json"),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = ConstellationAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
    )
    params = module.params
    client = module.client("iam", retry_decorator=AWSRetry.jittered_backoff())
    roles = IamRoles(client, params["tags"], params["purge_tags"], module.check_mode)
    try:
        # The input is parsed and checked before the first AWS call.
        if params["state"] == "present":
            trust_policy = None
            if params["assume_role_policy_document"] is not None:
                trust_policy = parse_document(params["assume_role_policy_document"], "assume_role_policy_document")
            result = roles.ensure_present(trust_policy, parse_roles(params["roles"], trust_policy))
        else:
            result = roles.ensure_absent(role_names(params["roles"]))
    except (IamRolesError, NotOwnedError) as e:
        module.fail_json(msg=str(e))
    except AnsibleAWSError as e:
        module.fail_json_aws_error(e)
    module.exit_json(changed=roles.changed, **result)


if __name__ == "__main__":
    main()
