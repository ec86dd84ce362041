#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: local_workers
short_description: Run a load test's tasks as processes on this machine (the local executor)
version_added: 0.1.0
description:
  - Starts, for every planned task of every remote region, the same load generator and aggregator
    that run in the Fargate tasks, as local processes, and waits until they have all ended.
  - The tasks register with the orchestrator's real handler, called in-process against the state
    table (an AWS emulator cannot invoke Lambda functions), start together at the instant it
    decides, and write interval records to the results store.
  - The run must have been planned in the orchestrator (M(constellation.loadtest.orchestrator_state))
    and its script uploaded to the home bucket first.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  run_id:
    description: The test run.
    type: str
    required: true
  config:
    description: The validated settings, as the C(config) return value of M(constellation.loadtest.plan).
    type: dict
    required: true
  state_table:
    description: The orchestrator's DynamoDB state table in the home region.
    type: str
    required: true
  bucket:
    description: The home bucket, which holds the script (and the records with the C(s3) results store).
    type: str
    required: true
  script_key:
    description: The key of the run's script in O(bucket).
    type: str
    required: true
  timestream_database:
    description: The results database, for the C(timestream) results store.
    type: str
  timestream_table:
    description: The results table, for the C(timestream) results store.
    type: str
  endpoint_url:
    description: One endpoint for every AWS service the workers call (for example a moto server).
    type: str
  load_model:
    description:
      - V(vus) runs each region's VUs for the configured duration; V(script) runs the script's own
        scenarios once in total, split over every task of every region by region weight.
    type: str
    choices: [vus, script]
    default: vus
  k6:
    description: The k6 binary the load generators run.
    type: path
    default: k6
  collection_root:
    description: Where this collection is (its C(files/containers) hold the entrypoints).
    type: path
    required: true
  log_dir:
    description: Where each process writes its log.
    type: path
    required: true
  start_timeout_seconds:
    description: How long a task waits for the start to be decided before it gives up.
    type: int
    default: 120
  interval_seconds:
    description: Length of one interval record.
    type: int
    default: 5
  timeout_seconds:
    description: The whole run is stopped (SIGTERM, then SIGKILL) when it lasts longer than this.
    type: int
    default: 900
notes:
  - Does not support check mode; it runs load.
"""

EXAMPLES = r"""
- name: Run the load on this machine
  constellation.loadtest.local_workers:
    run_id: 20261128T080000Z
    config: "{{ constellation_config }}"
    state_table: constellation-orchestrator
    bucket: constellation-123456789012-eu-central-1
    script_key: runs/20261128T080000Z/script.js
    endpoint_url: http://127.0.0.1:5000
    collection_root: "{{ playbook_dir }}/.."
    log_dir: /tmp/constellation-logs
"""

RETURN = r"""
tasks:
  description: How every task ended.
  returned: always
  type: list
  elements: dict
  contains:
    region:
      description: The (simulated) region of the task.
      type: str
      sample: us-east-2
    index:
      description: The task's index in its region.
      type: int
      sample: 0
    load_generator_exit_code:
      description: The load generator's exit status (k6's own code when k6 failed; negative for a signal).
      type: int
      sample: 0
    aggregator_exit_code:
      description: The aggregator's exit status (0 when every record was written).
      type: int
      sample: 0
    load_generator_log:
      description: The load generator's log file.
      type: str
    aggregator_log:
      description: The aggregator's log file.
      type: str
timed_out:
  description: Whether the run was stopped because it outlived O(timeout_seconds).
  returned: always
  type: bool
  sample: false
"""

import dataclasses
from pathlib import Path

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.constellation.loadtest.plugins.module_utils.config import Config
from ansible_collections.constellation.loadtest.plugins.module_utils.local_executor import Entrypoints
from ansible_collections.constellation.loadtest.plugins.module_utils.local_executor import RunSettings
from ansible_collections.constellation.loadtest.plugins.module_utils.local_executor import local_tasks
from ansible_collections.constellation.loadtest.plugins.module_utils.local_executor import run_tasks


def run_settings(params):
    extra_env = {}
    if params["timestream_database"]:
        extra_env["CONSTELLATION_TIMESTREAM_DATABASE"] = params["timestream_database"]
    if params["timestream_table"]:
        extra_env["CONSTELLATION_TIMESTREAM_TABLE"] = params["timestream_table"]
    return RunSettings(
        run_id=params["run_id"],
        orchestrator=f"local:{params['state_table']}",
        bucket=params["bucket"],
        script_key=params["script_key"],
        endpoint_url=params["endpoint_url"],
        load_model=params["load_model"],
        start_timeout_seconds=params["start_timeout_seconds"],
        interval_seconds=params["interval_seconds"],
        k6=params["k6"],
        extra_env=extra_env,
    )


def failures(results):
    return [
        f"{task.region} task {task.index}: load generator exit {task.load_generator_exit_code}, "
        f"aggregator exit {task.aggregator_exit_code} (logs: {task.load_generator_log}, {task.aggregator_log})"
        for task in results
        if task.load_generator_exit_code != 0 or task.aggregator_exit_code != 0
    ]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            run_id=dict(type="str", required=True),
            config=dict(type="dict", required=True),
            state_table=dict(type="str", required=True),
            bucket=dict(type="str", required=True),
            script_key=dict(type="str", required=True, no_log=False),
            timestream_database=dict(type="str"),
            timestream_table=dict(type="str"),
            endpoint_url=dict(type="str"),
            load_model=dict(type="str", choices=["vus", "script"], default="vus"),
            k6=dict(type="path", default="k6"),
            collection_root=dict(type="path", required=True),
            log_dir=dict(type="path", required=True),
            start_timeout_seconds=dict(type="int", default=120),
            interval_seconds=dict(type="int", default=5),
            timeout_seconds=dict(type="int", default=900),
        ),
        supports_check_mode=False,
    )
    params = module.params
    try:
        config = Config(**params["config"])
    except TypeError as error:
        module.fail_json(msg=f"config is not the config returned by constellation.loadtest.plan: {error}")
    try:
        run = run_tasks(
            local_tasks(config, run_settings(params)),
            Entrypoints.of_collection(Path(params["collection_root"])),
            Path(params["log_dir"]),
            timeout_seconds=params["timeout_seconds"],
        )
    except (OSError, ValueError) as error:
        module.fail_json(msg=f"The local executor could not run the tasks: {error}")
    tasks = [dataclasses.asdict(task) for task in run.tasks]
    for task in tasks:
        task["load_generator_log"], task["aggregator_log"] = str(task["load_generator_log"]), str(task["aggregator_log"])
    problems = failures(run.tasks)
    if run.timed_out:
        problems.insert(0, f"the run outlived timeout_seconds={params['timeout_seconds']} and was stopped")
    if problems:
        module.fail_json(msg="Run " + params["run_id"] + " failed: " + " | ".join(problems), changed=True,
                         tasks=tasks, timed_out=run.timed_out)
    module.exit_json(changed=True, tasks=tasks, timed_out=run.timed_out)


if __name__ == "__main__":
    main()
