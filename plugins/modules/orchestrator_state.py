#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: orchestrator_state
version_added: 0.1.0
short_description: Manage the orchestrator state table and the test runs in it
description:
  - Creates, updates or deletes the DynamoDB table in which the orchestrator Lambda keeps the
    state of test runs, and the plan of one test run in it.
  - The table has one item per test run, keyed by C(run_id), and is billed on demand
    (C(PAY_PER_REQUEST)).
  - A run's plan is the number of load generator tasks each required region runs and the lead
    time of the start. The orchestrator decides the start time once every planned task of every
    region has registered, O(start_lead_seconds) ahead.
  - With O(run_id) and O(state=present), the run exists with exactly the given plan afterwards.
    A missing run is created; a run with a different plan is replaced, discarding its progress;
    a run with the same plan is left alone, keeping the tasks registered so far, unless
    O(force_reset=true).
  - Use M(constellation.loadtest.orchestrator_state_info) to read runs.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  name:
    description:
      - The name of the DynamoDB table holding the orchestrator state.
    required: true
    type: str
  state:
    description:
      - With O(state=present) the table exists and, if O(run_id) is set, so does the run with the
        given plan.
      - With O(state=absent) and O(run_id) set, only that run is deleted; the table and other
        runs stay. Without O(run_id) the whole table is deleted, every run with it.
      - With O(state=stopped), the run O(run_id) is marked stopped (O(stop_reason)) unless it already
        is; its tasks see it at their next poll and end k6 as at a normal end. A run that does not
        exist fails the module.
      - With O(state=ended), every task of the run O(run_id) has stopped, and the run is no longer
        active, unless it already is not. M(constellation.loadtest.run_grants) then takes the task
        roles' grants on its script and records away. A run that does not exist fails the module.
    choices: ["present", "absent", "stopped", "ended"]
    default: present
    type: str
  wait:
    description:
      - Wait for the table to become C(ACTIVE) after creating it, or to disappear after deleting it.
      - When O(run_id) is set the module always waits for a new table, because runs can only be
        written into an C(ACTIVE) table.
    default: true
    type: bool
  wait_timeout:
    description:
      - How many seconds to wait for the table.
    default: 300
    type: int
  run_id:
    description:
      - The identifier of one test run, for example a timestamp or a CI build id.
    type: str
  regions:
    description:
      - The plan of the run, a mapping of AWS region name to the number of load generator tasks
        that run in that region.
      - Every count must be a positive integer. Task ids of a region are C(0) to count - 1.
      - Required when O(run_id) is set and O(state=present).
    type: dict
  start_lead_seconds:
    description:
      - How many seconds after the last planned task registered the test starts.
      - Long enough for every task in every region to learn the decided start before it arrives.
    default: 30
    type: int
  active_seconds:
    description:
      - How long from the plan the run stays active, unless O(state=ended) ends it before. While
        it is active, its tasks may read its script and write its records
        (M(constellation.loadtest.run_grants)).
      - Long enough for the deploy, the image pulls, the start timeout, the lead time, the test and
        the final flush; run_test computes it. At most a week.
      - Set when the run is planned or reset; an unchanged plan keeps its own.
    default: 7200
    type: int
  force_reset:
    description:
      - Reset the run even if its plan is unchanged, discarding registrations, the decided start
        and completions. Reports a change only if the run had any of those.
    default: false
    type: bool
  stop_reason:
    description:
      - With O(state=stopped), why the run stops. V(stopped) by a user (stop_test), V(aborted) by a
        threshold with C(abortOnFail). The first stop of a run is kept.
    choices: ["stopped", "aborted"]
    default: stopped
    type: str
  stop_detail:
    description:
      - With O(state=stopped), what the report says of the stop, at most 500 characters.
    default: ""
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - Tags apply to the table; runs have no tags.
  - The orchestrator Lambda changes runs while a test is running; this module only sets plans.
"""

EXAMPLES = r"""
- name: Create the orchestrator state table
  constellation.loadtest.orchestrator_state:
    name: constellation-orchestrator
    tags:
      "constellation:deployment": constellation

- name: Plan a run with 3 tasks in us-east-2 and 1 in ap-northeast-1
  constellation.loadtest.orchestrator_state:
    name: constellation-orchestrator
    run_id: "20250601T120000"
    regions:
      us-east-2: 3
      ap-northeast-1: 1
    start_lead_seconds: 60

- name: Start the same run over, discarding registrations
  constellation.loadtest.orchestrator_state:
    name: constellation-orchestrator
    run_id: "20250601T120000"
    regions:
      us-east-2: 3
      ap-northeast-1: 1
    start_lead_seconds: 60
    force_reset: true

- name: Stop a run (its tasks end k6 as at a normal end)
  constellation.loadtest.orchestrator_state:
    name: constellation-orchestrator
    run_id: "20250601T120000"
    state: stopped

- name: Every task of the run has stopped (its grants can be taken away)
  constellation.loadtest.orchestrator_state:
    name: constellation-orchestrator
    run_id: "20250601T120000"
    state: ended

- name: Delete one run
  constellation.loadtest.orchestrator_state:
    name: constellation-orchestrator
    run_id: "20250601T120000"
    state: absent

- name: Delete the table and every run in it
  constellation.loadtest.orchestrator_state:
    name: constellation-orchestrator
    state: absent
"""

RETURN = r"""
table:
  description: The state table, as returned by DescribeTable in snake_case, with its tags.
  returned: when O(state=present) and the table exists (not in check mode before it is created)
  type: dict
  contains:
    table_name:
      description: The name of the table.
      type: str
      sample: constellation-orchestrator
    table_arn:
      description: The ARN of the table.
      type: str
      sample: arn:aws:dynamodb:eu-central-1:123456789012:table/constellation-orchestrator
    table_status:
      description: The status of the table.
      type: str
      sample: ACTIVE
    key_schema:
      description: The key of the table, C(run_id) as hash key.
      type: list
      elements: dict
      sample: [{"attribute_name": "run_id", "key_type": "HASH"}]
    billing_mode_summary:
      description: The billing mode, C(PAY_PER_REQUEST).
      type: dict
      sample: {"billing_mode": "PAY_PER_REQUEST"}
    item_count:
      description: The approximate number of runs (updated by DynamoDB about every six hours).
      type: int
      sample: 2
    tags:
      description: The tags of the table.
      type: dict
      sample: {"constellation:deployment": "constellation"}
run:
  description: The run after the change; in check mode, the run as it is.
  returned: when O(run_id) is set, O(state=present) and the run exists (not in check mode before it is created)
  type: dict
  contains:
    run_id:
      description: The identifier of the run.
      type: str
      sample: "20250601T120000"
    exists:
      description: Always V(true) here.
      type: bool
    regions:
      description: The plan, region name to planned task count.
      type: dict
      sample: {"us-east-2": 3, "ap-northeast-1": 1}
    start_lead_seconds:
      description: Seconds between the last registration and the start.
      type: int
      sample: 60
    registered_tasks:
      description: The ids of the registered tasks of each planned region.
      type: dict
      sample: {"us-east-2": ["0", "2"], "ap-northeast-1": []}
    start_at:
      description: The decided start in epoch milliseconds, V(null) until every planned task registered.
      type: int
      sample: 1748779260000
    start_at_iso8601:
      description: RV(run.start_at) in ISO 8601 UTC, V(null) until decided.
      type: str
      sample: "2025-06-01T12:01:00.000Z"
    completed_tasks:
      description: The ids of the tasks of each planned region that reported their end.
      type: dict
      sample: {"us-east-2": [], "ap-northeast-1": []}
    completed_regions:
      description: The regions whose planned tasks have all reported their end.
      type: list
      elements: str
      sample: []
    exit_codes:
      description: The exit code each ended task reported, by region and task id.
      type: dict
      sample: {"us-east-2": {}, "ap-northeast-1": {}}
    created_at:
      description: When the run was created or last reset, in epoch milliseconds.
      type: int
      sample: 1748779200000
    created_at_iso8601:
      description: RV(run.created_at) in ISO 8601 UTC.
      type: str
      sample: "2025-06-01T12:00:00.000Z"
    active:
      description: Whether the run is active now, its tasks granted its script and records (M(constellation.loadtest.run_grants)).
      type: bool
      sample: true
    active_until:
      description: Until when the run stays active unless ended, in epoch milliseconds; V(null) for a run planned before runs had grants.
      type: int
      sample: 1748782800000
    active_until_iso8601:
      description: RV(run.active_until) in ISO 8601 UTC.
      type: str
      sample: "2025-06-01T13:00:00.000Z"
    stop:
      description: V(null), or how the run was stopped (C(reason), C(detail), C(at) in epoch ms, C(at_iso8601)).
      type: dict
      sample: {"reason": "stopped", "detail": "", "at": 1748779300000, "at_iso8601": "2025-06-01T12:01:40.000Z"}
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
    from botocore.exceptions import WaiterError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

from ansible_collections.constellation.loadtest.plugins.module_utils.run import orchestrator_state
from ansible_collections.constellation.loadtest.plugins.module_utils.aws import orchestrator_table
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule


def ensure_table(module, client):
    """Make the table exist with the requested tags; return (changed, description or None)."""
    name = module.params["name"]
    must_be_active = module.params["wait"] or module.params["run_id"]
    table = orchestrator_table.describe_table(client, name)
    if table is None:
        if module.check_mode:
            return True, None
        orchestrator_table.create_table(client, name, module.params["tags"] or {})
        if must_be_active:
            orchestrator_table.wait_for_table(client, name, exists=True, timeout_seconds=module.params["wait_timeout"])
        return True, orchestrator_table.describe_table(client, name)
    if table["TableStatus"] == "CREATING" and must_be_active and not module.check_mode:
        # Created by an earlier run with wait=false: runs and tags can only be written once ACTIVE.
        orchestrator_table.wait_for_table(client, name, exists=True, timeout_seconds=module.params["wait_timeout"])
        table = orchestrator_table.describe_table(client, name)
    if not ensure_tags(module, client, table):
        return False, table
    return True, table if module.check_mode else orchestrator_table.describe_table(client, name)


def ensure_tags(module, client, table):
    """Bring the table's tags to the requested ones; return whether they differed."""
    if module.params["tags"] is None:
        return False
    to_add, to_remove = compare_aws_tags(table["Tags"], module.params["tags"], module.params["purge_tags"])
    if not (to_add or to_remove):
        return False
    if not module.check_mode:
        if to_remove:
            orchestrator_table.untag_table(client, table["TableArn"], to_remove)
        if to_add:
            orchestrator_table.tag_table(client, table["TableArn"], to_add)
    return True


def ensure_run(module, client, desired, table_exists):
    """Make the run exist with exactly the ``desired`` plan; return (changed, run or None, diff)."""
    name, run_id = module.params["name"], module.params["run_id"]
    current = read_run_if_exists(client, name, run_id) if table_exists else None
    before = run_summary(current)
    if current is not None:
        same_plan = {key: current[key] for key in desired} == desired
        if same_plan and not (module.params["force_reset"] and run_has_progress(current)):
            return False, current, {"before": before, "after": before}
    diff = {"before": before, "after": dict(desired, registered_tasks=0, completed_tasks=0, start_at=None)}
    if module.check_mode:
        return True, current, diff
    orchestrator_state.reset_run(
        client, name, run_id, desired["regions"], desired["start_lead_seconds"], active_seconds=module.params["active_seconds"]
    )
    return True, orchestrator_state.read_run(client, name, run_id), diff


def desired_plan(module):
    """The requested plan, validated before anything is created; digit-string counts are accepted."""
    regions = module.params["regions"]
    if regions is None:
        module.fail_json(msg="regions is required when run_id is set and state is present")
    counts = {
        region: int(count) if isinstance(count, str) and count.isdigit() else count for region, count in regions.items()
    }
    return {
        "regions": orchestrator_state.validate_plan(counts),
        "start_lead_seconds": orchestrator_state.validate_lead_seconds(module.params["start_lead_seconds"]),
    }


def read_run_if_exists(client, table, run_id):
    try:
        return orchestrator_state.read_run(client, table, run_id)
    except orchestrator_state.RunNotFoundError:
        return None


def run_has_progress(run):
    """Whether resetting the run would discard anything the orchestrator recorded."""
    return run["start_at"] is not None or any(run["registered_tasks"].values()) or any(run["completed_tasks"].values())


def run_summary(run):
    """What the diff shows of a run: its plan and how far it got."""
    if run is None:
        return {}
    return {
        "regions": run["regions"],
        "start_lead_seconds": run["start_lead_seconds"],
        "registered_tasks": sum(len(ids) for ids in run["registered_tasks"].values()),
        "completed_tasks": sum(len(ids) for ids in run["completed_tasks"].values()),
        "start_at": run["start_at"],
    }


def ensure_present(module, client, desired):
    changed, table = ensure_table(module, client)
    result = {"changed": changed}
    if table is not None:
        result["table"] = camel_dict_to_snake_dict(table, ignore_list=["Tags"])
    if desired is not None:
        run_changed, run, diff = ensure_run(module, client, desired, table_exists=table is not None)
        result["changed"] |= run_changed
        result["diff"] = diff
        if run is not None:
            result["run"] = run
    return result


def ensure_stopped(module, client):
    """Mark the run stopped unless it is; a missing run fails."""
    name, run_id = module.params["name"], module.params["run_id"]
    current = orchestrator_state.read_run(client, name, run_id)
    if current["stop"] is not None:
        return {"changed": False, "run": current}
    if module.check_mode:
        return {"changed": True, "run": current}
    orchestrator_state.stop_run(client, name, run_id, module.params["stop_reason"], module.params["stop_detail"])
    return {"changed": True, "run": orchestrator_state.read_run(client, name, run_id)}


def ensure_ended(module, client):
    """End the run unless it is no longer active; a missing run fails."""
    name, run_id = module.params["name"], module.params["run_id"]
    current = orchestrator_state.read_run(client, name, run_id)
    if not current["active"]:
        return {"changed": False, "run": current}
    if module.check_mode:
        return {"changed": True, "run": current}
    changed = orchestrator_state.end_run(client, name, run_id)
    return {"changed": changed, "run": orchestrator_state.read_run(client, name, run_id)}


def ensure_absent(module, client):
    name, run_id = module.params["name"], module.params["run_id"]
    table = orchestrator_table.describe_table(client, name)
    if table is None:
        return {"changed": False}
    if run_id:
        current = read_run_if_exists(client, name, run_id)
        diff = {"before": run_summary(current), "after": {}}
        if current is None:
            return {"changed": False, "diff": diff}
        if not module.check_mode:
            orchestrator_state.delete_run(client, name, run_id)
        return {"changed": True, "diff": diff}
    if not module.check_mode:
        orchestrator_table.delete_table(client, name)
        if module.params["wait"]:
            orchestrator_table.wait_for_table(client, name, exists=False, timeout_seconds=module.params["wait_timeout"])
    return {"changed": True}


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        state=dict(type="str", default="present", choices=["present", "absent", "stopped", "ended"]),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
        wait=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        run_id=dict(type="str"),
        regions=dict(type="dict"),
        start_lead_seconds=dict(type="int", default=30),
        active_seconds=dict(type="int", default=7200),
        force_reset=dict(type="bool", default=False),
        stop_reason=dict(type="str", default="stopped", choices=["stopped", "aborted"]),
        stop_detail=dict(type="str", default=""),
    )
    module = ConstellationAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        required_by={"regions": "run_id"},
        required_if=[("state", "stopped", ["run_id"]), ("state", "ended", ["run_id"])],
    )
    try:
        orchestrator_state.validate_table_name(module.params["name"])
        present = module.params["state"] == "present"
        desired = desired_plan(module) if present and module.params["run_id"] else None
        if desired is not None:
            orchestrator_state.validate_active_seconds(module.params["active_seconds"])
    except orchestrator_state.OrchestratorStateError as e:
        module.fail_json(msg=str(e))
    retry = AWSRetry.jittered_backoff(catch_extra_error_codes=["ResourceInUseException", "LimitExceededException"])
    client = orchestrator_state.RetryingClient(module.client("dynamodb"), retry)
    try:
        if present:
            result = ensure_present(module, client, desired)
        elif module.params["state"] == "stopped":
            result = ensure_stopped(module, client)
        elif module.params["state"] == "ended":
            result = ensure_ended(module, client)
        else:
            result = ensure_absent(module, client)
    except orchestrator_state.OrchestratorStateError as e:
        module.fail_json(msg=str(e))
    except WaiterError as e:
        module.fail_json_aws(e, msg=f"Timed out waiting for orchestrator state table {module.params['name']}")
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to manage orchestrator state table {module.params['name']}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
