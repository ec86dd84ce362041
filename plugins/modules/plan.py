#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: plan
short_description: Validate a load test configuration and compute its run plan
version_added: 0.1.0
description:
  - Validates a load test configuration, given as the seed's JSON config file (O(config)), as
    native settings, or both, and returns the normalised configuration and the run plan.
  - The plan gives, for every remote region, the number of Fargate tasks (C(ceil(VUs / max_vus_per_task))),
    the exact VUs of each task, each task's k6 C(--execution-segment) and the shared
    C(--execution-segment-sequence); totals; and a rough cost estimate.
  - A field given both in the config file and as a native setting is an error, so that it is always
    clear which value a run used.
  - Every invalid value fails the task with a message that names the field and the value and says
    what is allowed. Nothing is created or changed, and no AWS API is called.
  - Region names are checked against the endpoint data of the installed botocore.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  config:
    description:
      - >-
        Path of a config file in the seed's JSON format, for example
        C({"DURATION": 20000, "HOME_REGION": "eu-central-1", "REMOTE_REGIONS": {"us-east-2": 202}}).
      - C(DURATION) is the test duration in milliseconds, from 1000 to 86400000.
      - C(HOME_REGION) and C(REMOTE_REGIONS) are as O(home_region) and O(remote_regions).
      - The file is strictly typed JSON; duplicate and unknown keys are rejected.
    type: path
  home_region:
    description:
      - The region that holds the results store, the script bucket and the orchestrator.
      - Must be a region of the standard C(aws) partition. With O(results_store=timestream) it must
        be a region with Timestream for LiveAnalytics.
      - Required unless the config file has C(HOME_REGION).
    type: str
  remote_regions:
    description:
      - The regions that generate load, mapped to the number of virtual users (VUs) each runs,
        from 1 to 50000 per region.
      - "A region's value may instead be an object, its shape: C({\"vus\": 200}) (constant VUs), or
        C({\"stages\": [{\"duration\": \"2m\", \"target\": 300}, ...]}) (k6 C(ramping-vus) stages from 0 VUs, 1 to 100
        of them, durations in k6's syntax, targets from 0 to 50000), either with C(\"start_after\": \"90s\"): the region
        joins that long after the common start. A constant region runs for the duration; the run lasts as long as
        its longest region (RV(plan.duration_ms))."
      - Required unless the config file has C(REMOTE_REGIONS).
      - A dict, or the same as a JSON string (an AWX survey's textarea); VU counts may be strings of digits.
    type: raw
  duration_seconds:
    description:
      - The test duration in seconds, from 1 to 86400. A string of digits is accepted.
      - Required unless the config file has C(DURATION).
    type: raw
  results_store:
    description:
      - Where the load generators write their results.
      - Defaults to V(timestream). Use V(s3) in accounts that cannot use Timestream for LiveAnalytics
        (closed to new customers since 2025-06-20).
      - One of V(timestream), V(s3).
    type: str
  max_vus_per_task:
    description:
      - The most VUs one load generator task runs, from 1 to 5000. A string of digits is accepted.
      - Defaults to V(200).
    type: raw
  deployment:
    description:
      - Name prefix of every resource, including S3 bucket names.
      - 1 to 24 lowercase letters, digits and hyphens; starts with a letter, does not end with a hyphen.
      - Defaults to V(constellation).
    type: str
  task_cpu:
    description:
      - CPU units of each load generator task; a Fargate size (256, 512, 1024, 2048, 4096, 8192, 16384).
      - Defaults to V(1024).
    type: raw
  task_memory:
    description:
      - Memory (MiB) of each load generator task; must be a valid Fargate combination with O(task_cpu),
        for example 2048 to 8192 in steps of 1024 with 1024 CPU units.
      - Defaults to V(2048).
    type: raw
  start_lead_seconds:
    description:
      - Seconds from the last task of the run registering to the start everywhere, 0 to 3600.
        A string of digits is accepted.
      - Defaults to V(30).
    type: raw
  start_timeout_seconds:
    description:
      - How long a load generator waits for the synchronized start before it gives up, 1 to 86400
        seconds. A string of digits is accepted.
      - Defaults to V(900).
    type: raw
  capacity:
    description:
      - Where the tasks run. V(fargate) on demand; V(fargate_spot) on Fargate Spot (about 70 % cheaper, and a task
        may be interrupted with two minutes' notice); V(mixed) puts O(spot_percent) of each region's tasks
        (rounded down) on Spot and the rest on demand.
      - Defaults to V(fargate).
    type: str
  spot_percent:
    description:
      - With O(capacity=mixed), the share of each region's tasks on Fargate Spot, 1 to 99 percent. A string of
        digits is accepted.
      - Defaults to V(50).
    type: raw
  names_of:
    description:
      - What the messages call the settings. V(options) names this module's options (V(remote_regions));
        V(variables) names the playbook variables that carry them (V(constellation_remote_regions)),
        which the collection's C(config) role sets, so that an error names what the user typed.
    type: str
    choices: [options, variables]
    default: options
notes:
  - An empty or blank string for any setting counts as not given (an optional AWX survey question
    left blank), so the default applies, or the file's value; a required setting left blank is an
    error naming it.
  - Supports check mode; the module never changes anything and always returns C(changed=false).
  - Cost figures use us-east-1 Fargate list prices; RV(plan.cost_estimate.assumptions) lists every assumption.
requirements:
  - botocore
"""

EXAMPLES = r"""
- name: Validate the seed's config file and plan the run
  constellation.loadtest.plan:
    config: config.json
  register: run

- name: Show the tasks per region
  ansible.builtin.debug:
    msg: "{{ item.key }}: {{ item.value.tasks }} tasks, VUs {{ item.value.vus_per_task }}"
  loop: "{{ run.plan.remote_regions | dict2items }}"

- name: Plan from survey answers (numbers may arrive as strings)
  constellation.loadtest.plan:
    home_region: eu-central-1
    remote_regions:
      ap-northeast-1: 5
      us-east-2: 202
    duration_seconds: "20"
    results_store: s3
"""

RETURN = r"""
config:
  description: The validated configuration, defaults filled in.
  returned: success
  type: dict
  contains:
    home_region:
      description: The home region.
      type: str
      sample: eu-central-1
    remote_regions:
      description: Remote region to VU count (a shaped region's peak), sorted by region.
      type: dict
      sample: {"ap-northeast-1": 5, "us-east-2": 202}
    duration_ms:
      description: The duration in milliseconds (DURATION), how long a region of constant VUs runs.
      type: int
      sample: 20000
    shapes:
      description:
        - The regions given a shape, each its C(start_after_ms) and C(stages) (C([duration ms, target]) pairs; null
          for constant VUs after the start_after).
      type: dict
      sample: {"eu-west-1": {"start_after_ms": 90000, "stages": null}}
    results_store:
      description: V(timestream) or V(s3).
      type: str
      sample: timestream
    max_vus_per_task:
      description: The most VUs one task runs.
      type: int
      sample: 200
    deployment:
      description: The resource name prefix.
      type: str
      sample: constellation
    task_cpu:
      description: CPU units per task.
      type: int
      sample: 1024
    task_memory:
      description: Memory (MiB) per task.
      type: int
      sample: 2048
    start_lead_seconds:
      description: Seconds from the last registration to the synchronized start.
      type: int
      sample: 30
    start_timeout_seconds:
      description: How long a load generator waits for the start.
      type: int
      sample: 900
    capacity:
      description: V(fargate), V(fargate_spot) or V(mixed).
      type: str
      sample: fargate
    spot_percent:
      description: With V(mixed), the share of each region's tasks on Spot.
      type: int
      sample: 50
plan:
  description: What the run deploys.
  returned: success
  type: dict
  contains:
    home_region:
      description: The home region.
      type: str
      sample: eu-central-1
    duration_ms:
      description: How long the run's load lasts, from the common start to the end of its longest region.
      type: int
      sample: 480000
    regions:
      description: Every region the run uses (home and remote), sorted, each once.
      type: list
      elements: str
      sample: ["ap-northeast-1", "eu-central-1", "us-east-2"]
    remote_regions:
      description: Per remote region, how its VUs are spread over tasks.
      type: dict
      sample:
        us-east-2:
          vus: 777
          tasks: 4
          vus_per_task: [195, 194, 194, 194]
          execution_segments: ["0:1/4", "1/4:2/4", "2/4:3/4", "3/4:1"]
          execution_segment_sequence: "0,1/4,2/4,3/4,1"
          vcpus: 4.0
          memory_gib: 8.0
      contains:
        vus:
          description: The region's VUs.
          type: int
        tasks:
          description: Number of load generator tasks, V(ceil(vus / max_vus_per_task)).
          type: int
        vus_per_task:
          description:
            - VUs of each task; they sum to RV(plan.remote_regions.vus) exactly.
            - The first V(vus % tasks) tasks run one VU more, as k6 splits VUs over equal segments.
          type: list
          elements: int
        execution_segments:
          description: The k6 C(--execution-segment) of each task, in task order.
          type: list
          elements: str
        execution_segment_sequence:
          description: The k6 C(--execution-segment-sequence) every task of the region passes.
          type: str
        vcpus:
          description: vCPUs of all the region's tasks together.
          type: float
        memory_gib:
          description: Memory (GiB) of all the region's tasks together.
          type: float
        duration_ms:
          description: How long the region runs load from the common start, its start_after included.
          type: int
        start_after_ms:
          description: How long after the common start the region joins (0 for at once).
          type: int
        stages:
          description:
            - The k6 C(ramping-vus) stages every task of the region runs from 0 VUs, C([duration ms, target]) pairs, the
              start_after as a first stage of 0 VUs; k6 scales each target to the task's execution segment, so the
              tasks add up to the target at every moment. Null for constant VUs from the start.
          type: list
          elements: list
        planned_vus:
          description: The region's planned VUs over time, C([ms from the start, VUs]) points joined by straight lines.
          type: list
          elements: list
        description:
          description: The region's plan in a line, as C(check.yml) prints it.
          type: str
          sample: 400 VUs (in stages, at the peak) in 2 tasks, from 180 s to 720 s
        spot_tasks:
          description: How many of the region's tasks run on Fargate Spot (its last ones).
          type: int
    tasks_by_region:
      description: The number of tasks of each remote region, as the orchestrator plans a run.
      type: dict
      sample: {"ap-northeast-1": 1, "us-east-2": 2}
    totals:
      description: Sums over all remote regions.
      type: dict
      sample: {"vus": 984, "tasks": 7, "vcpus": 7.0, "memory_gib": 14.0}
      contains:
        vus:
          description: All VUs.
          type: int
        tasks:
          description: All tasks. Compare with the Fargate vCPU quota per region (M(constellation.loadtest.preflight_info)).
          type: int
        vcpus:
          description: All vCPUs.
          type: float
        memory_gib:
          description: All memory in GiB.
          type: float
    cost_estimate:
      description: A rough cost of one run in US dollars.
      type: dict
      contains:
        total_usd:
          description: Fargate plus results store.
          type: float
          sample: 0.0193
        fargate_usd:
          description: Fargate tasks, including the start-up allowance.
          type: float
          sample: 0.0192
        results_store_usd:
          description: Timestream writes or S3 PUTs.
          type: float
          sample: 0.0001
        billed_seconds_per_task:
          description: Seconds a task of the longest region is assumed to be billed for.
          type: int
          sample: 200
        task_seconds:
          description: Task-seconds billed in all, each region's tasks for its own length.
          type: int
          sample: 1400
        fargate_on_demand_usd:
          description: The Fargate cost with every task on demand.
          type: float
          sample: 0.0202
        fargate_spot_usd:
          description: The Fargate cost with every task on Fargate Spot (assumed 70 % off).
          type: float
          sample: 0.0061
        capacity:
          description: The capacity RV(plan.cost_estimate.fargate_usd) is for.
          type: str
          sample: mixed
        results_store_requests:
          description: Timestream record writes or S3 PUTs assumed.
          type: int
          sample: 140
        assumptions:
          description: The prices and assumptions behind the figures, in words.
          type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.basic import missing_required_lib

from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import ConfigError
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import NATIVE_SETTINGS
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import VARIABLE_PREFIX
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import load_config
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import named_as_variables
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import not_blank
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import plan
from ansible_collections.constellation.loadtest.plugins.module_utils.run.regions import HAS_BOTOCORE


def main():
    module = AnsibleModule(
        argument_spec=dict(
            config=dict(type="path"),
            home_region=dict(type="str"),
            remote_regions=dict(type="raw"),
            duration_seconds=dict(type="raw"),
            results_store=dict(type="str"),
            max_vus_per_task=dict(type="raw"),
            deployment=dict(type="str"),
            task_cpu=dict(type="raw"),
            task_memory=dict(type="raw"),
            start_lead_seconds=dict(type="raw"),
            start_timeout_seconds=dict(type="raw"),
            capacity=dict(type="str"),
            spot_percent=dict(type="raw"),
            names_of=dict(type="str", choices=["options", "variables"], default="options"),
        ),
        supports_check_mode=True,
    )
    if not HAS_BOTOCORE:
        module.fail_json(msg=missing_required_lib("botocore"))
    path = module.params["config"] or None
    config_file = os.path.abspath(path) if path else None
    settings = {name: not_blank(module.params[name]) for name in NATIVE_SETTINGS}
    try:
        config = load_config(config_file, settings)
    except ConfigError as error:
        if module.params["names_of"] == "variables":
            field = VARIABLE_PREFIX + error.field if error.field in NATIVE_SETTINGS else error.field
            module.fail_json(msg=named_as_variables(str(error)), field=field)
        module.fail_json(msg=str(error), field=error.field)
    module.exit_json(changed=False, config=config.to_dict(), plan=plan(config))


if __name__ == "__main__":
    main()
