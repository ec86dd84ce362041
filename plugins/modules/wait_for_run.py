#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: wait_for_run
version_added: 0.1.0
short_description: Wait for a load test run to end, printing each region's progress
description:
  - Polls a run until every planned task of every region has stopped, or O(timeout_seconds) has
    passed, and prints one line per region at every poll, as it goes (registered, pending,
    running, stopped and completed tasks, requests and error rate so far, the decided start).
  - A poll runs M(constellation.loadtest.ecs_load_tasks_info) for each region,
    M(constellation.loadtest.orchestrator_state_info) and M(constellation.loadtest.run_progress_info)
    on the controller. When the requests cannot be read, the line says why and the wait goes on;
    when the tasks or the orchestrator cannot be read, the wait fails, naming which.
  - It does not judge the run. A region has ended when its tasks have stopped, whether or not
    they completed. Compare the completed tasks in RV(run) with the plan for that.
  - This is an action, run on the controller whatever the host.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  run_id:
    description: The run to wait for.
    required: true
    type: str
  tasks_by_region:
    description:
      - How many tasks the run plans in each remote region, as
        RV(constellation.loadtest.plan#module:plan.tasks_by_region) gives it.
    required: true
    type: dict
  cluster:
    description: The ECS cluster of the run's tasks, of the same name in every region.
    required: true
    type: str
  state_table:
    description: The orchestrator's DynamoDB table.
    required: true
    type: str
  home_region:
    description: The home region (the state table's, and the results store's).
    required: true
    type: str
  bucket:
    description: The home bucket. Required when O(results_store=s3).
    type: str
  endpoint_url:
    description: An AWS endpoint to use instead of AWS's own (the emulated AWS in tests).
    type: str
  poll_seconds:
    description: Seconds between two polls.
    type: int
    default: 30
  timeout_seconds:
    description: The longest wait. When it has passed, the result says which regions still run.
    required: true
    type: int
  abort_thresholds:
    description:
      - The run's thresholds by source (C(script), C(constellation_thresholds)), as k6's thresholds
        option. Those with C(abortOnFail) are judged at each poll on the merged records of every
        region once their C(delayAbortEval) has passed; the first breach marks the run aborted in the
        orchestrator, and every task of every region stops k6 at its next poll.
    type: dict
  abort_poll_seconds:
    description: With O(abort_thresholds), the longest time between two polls.
    type: int
    default: 5
extends_documentation_fragment:
  - constellation.loadtest.results_store
notes:
  - Supports check mode; it only reads.
  - AWS credentials come from the environment, as for the modules it runs.
"""

EXAMPLES = r"""
- name: Wait for the run, printing progress every 30 seconds
  constellation.loadtest.wait_for_run:
    run_id: "20250601T120000Z"
    tasks_by_region: {us-east-2: 4, ap-south-1: 1}
    cluster: constellation
    state_table: constellation-orchestrator
    home_region: eu-central-1
    results_store: s3
    bucket: constellation-123456789012-eu-central-1
    timeout_seconds: 1200
  register: waited

- name: Fail if it has not ended
  ansible.builtin.fail:
    msg: "Still running in {{ waited.still_running | join(', ') }}"
  when: not waited.ended
"""

RETURN = r"""
aborted:
  description: V(null), or the abort this wait decided (C(detail), C(thresholds) breached).
  returned: always
  type: dict
ended:
  description: Whether every planned task of every region has stopped.
  returned: always
  type: bool
polls:
  description: How many polls it took.
  returned: always
  type: int
lines:
  description: The progress lines of the last poll, one per region.
  returned: always
  type: list
  elements: str
  sample: ["us-east-2: 2 of 2 tasks registered, 0 pending, 0 running, 2 stopped, 2 completed; 1,204 requests, 0.0 % errors"]
regions:
  description:
    - Per region at the last poll, whether it has ended, its task counts and tasks, the planned tasks
      that have not reported the end of the test (C(unfinished), task indexes), while the run has no
      start the tasks that have not registered (C(unregistered), task indexes), the tasks whose load
      did not run to the end (C(failed), each with its exit code named; 0 and 99 ran it) and the tasks
      whose results are missing by their own accounting (C(incomplete), each with what is missing).
  returned: always
  type: dict
  sample:
    us-east-2:
      ended: true
      counts: {"pending": 0, "running": 0, "stopped": 2, "total": 2}
      tasks: []
      unfinished: []
      unregistered: []
      failed: ["task 1: exit 107 (k6 ScriptException)"]
      incomplete: ["us-east-2 task 0: its aggregator could not write 12 records to the results store"]
still_running:
  description: The regions that had not ended at the last poll.
  returned: always
  type: list
  elements: str
run:
  description: The run as M(constellation.loadtest.orchestrator_state_info) returned it at the last poll.
  returned: always
  type: dict
"""
