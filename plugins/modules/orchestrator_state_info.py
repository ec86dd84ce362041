#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: orchestrator_state_info
version_added: 0.1.0
short_description: Read test runs from the orchestrator state table
description:
  - Returns one test run, or every run, from the DynamoDB table in which the orchestrator Lambda
    keeps its state. A run shows its plan, the registered tasks, the decided start, the ended
    tasks, their exit codes, when their k6 started and k6's threshold verdicts.
  - Fails if the table does not exist.
  - Use M(constellation.loadtest.orchestrator_state) to create the table and plan runs.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  name:
    description:
      - The name of the DynamoDB table holding the orchestrator state.
    required: true
    type: str
  run_id:
    description:
      - The run to return as RV(run). Without it, every run is returned as RV(runs).
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read one run
  constellation.loadtest.orchestrator_state_info:
    name: constellation-orchestrator
    run_id: "20250601T120000"
  register: orchestrator

- name: Show which regions have finished
  ansible.builtin.debug:
    msg: "{{ orchestrator.run.completed_regions }}"
  when: orchestrator.run.exists

- name: List every run in the table
  constellation.loadtest.orchestrator_state_info:
    name: constellation-orchestrator
  register: orchestrator_runs
"""

RETURN = r"""
run:
  description:
    - The run named by O(run_id).
    - If the run does not exist, only RV(run.run_id) and RV(run.exists=false) are returned.
  returned: when O(run_id) is set
  type: dict
  contains:
    run_id:
      description: The identifier of the run.
      type: str
      sample: "20250601T120000"
    exists:
      description: Whether the run exists.
      type: bool
      sample: true
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
      sample: {"us-east-2": ["0", "1", "2"], "ap-northeast-1": ["0"]}
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
      sample: {"us-east-2": ["0", "1", "2"], "ap-northeast-1": []}
    completed_regions:
      description: The regions whose planned tasks have all reported their end.
      type: list
      elements: str
      sample: ["us-east-2"]
    exit_codes:
      description: The exit code each ended task reported, by region and task id.
      type: dict
      sample: {"us-east-2": {"0": 0, "1": 0, "2": 99}, "ap-northeast-1": {}}
    started_at:
      description:
        - When each task's k6 resumed, in epoch milliseconds on the orchestrator's clock, by region
          and task id, as the task first reported it in its end.
        - A task that ended before k6 resumed reports none.
      type: dict
      sample: {"us-east-2": {"0": 1748779260004, "1": 1748779260011, "2": 1748779260007}, "ap-northeast-1": {}}
    accounting:
      description:
        - What became of each task's requests, by region and task id, as the task first reported it
          in its end. Every field is optional.
        - V(k6_requests) is what k6 counted, V(requests_received) what the task's aggregator took in from
          k6, V(requests_written) what it wrote to the results store, V(records_lost) the records it
          produced and did not write, V(store_retries) the calls to the store it tried again, and
          V(ended_at) when k6's load ended (epoch milliseconds on the orchestrator's clock).
      type: dict
      sample: {"us-east-2": {"0": {"k6_requests": 1561, "requests_received": 1561, "requests_written": 1561,
               "records_lost": 0, "store_retries": 2, "ended_at": 1748779280011}}}
    start_skew_ms:
      description:
        - The spread of RV(run.started_at) over every task that reported it, in milliseconds
          (latest minus earliest).
        - V(0) when one task reported it, V(null) when none did.
      type: int
      sample: 7
    task_thresholds:
      description:
        - k6's verdict on each threshold of the script, as each task first reported it, by region
          and task id; V(true) means the threshold passed in that task.
        - Each task runs k6 with the tag C(region), so a threshold on a submetric such as
          C(http_req_duration{region:us-east-2}) is judged in that region's tasks only.
        - The verdicts of one task are cut to fit the run's DynamoDB item, failed ones kept first;
          RV(run.thresholds_truncated) names the tasks that were cut.
      type: dict
      sample: {"us-east-2": {"0": {"http_req_duration{region:us-east-2}": {"p(95)<500": true}}}, "ap-northeast-1": {}}
    thresholds_truncated:
      description: The ids of the tasks of each planned region whose threshold verdicts were cut to fit.
      type: dict
      sample: {"us-east-2": [], "ap-northeast-1": []}
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
runs:
  description: Every run in the table, ordered by run id, each shaped like RV(run).
  returned: when O(run_id) is not set
  type: list
  elements: dict
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.run import orchestrator_state
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule


def read_state(client, table, run_id):
    if run_id is None:
        return {"runs": orchestrator_state.list_runs(client, table)}
    try:
        return {"run": orchestrator_state.read_run(client, table, run_id)}
    except orchestrator_state.RunNotFoundError:
        return {"run": {"run_id": run_id, "exists": False}}


def main():
    argument_spec = dict(
        name=dict(type="str", required=True),
        run_id=dict(type="str"),
    )
    module = ConstellationAWSModule(argument_spec=argument_spec, supports_check_mode=True)
    client = orchestrator_state.RetryingClient(module.client("dynamodb"), AWSRetry.jittered_backoff())
    try:
        orchestrator_state.validate_table_name(module.params["name"])
        result = read_state(client, module.params["name"], module.params["run_id"])
    except orchestrator_state.TableNotFoundError as e:
        module.fail_json(msg=f"{e} (looked in region {module.region})")
    except orchestrator_state.OrchestratorStateError as e:
        module.fail_json(msg=str(e))
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to read orchestrator state table {module.params['name']}")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
