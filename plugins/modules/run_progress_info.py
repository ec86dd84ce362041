#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: run_progress_info
version_added: 0.1.0
short_description: Read the requests and errors so far of a load test run, per region
description:
  - Returns how many requests the tasks of a run have made so far in each region, how many of
    them failed, and the totals of the run. Meant to be polled while the run goes on; the numbers
    trail the load by an interval or two.
  - With the C(s3) store, reads the small running-totals object C(progress.json) each task's
    aggregator keeps beside its records under C(runs/<run_id>/records/<region>/<task>/), not the
    records themselves. A task that has written no records yet is not counted.
  - With the C(timestream) store, runs one aggregate query over the run's request records.
  - Use M(constellation.loadtest.orchestrator_state_info) for which tasks registered and ended.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  run_id:
    description:
      - The run, 1 to 64 letters, digits, hyphens and underscores, starting with a letter or digit.
    required: true
    type: str
  bucket:
    description:
      - The home bucket. Required when O(results_store=s3).
    type: str
  start_at:
    description:
      - The run's decided start in epoch milliseconds, as M(constellation.loadtest.orchestrator_state_info)
        returns it in RV(constellation.loadtest.orchestrator_state_info#module:run.start_at).
      - With the C(timestream) store, the query reads only records from 15 minutes before it on
        (Timestream bills the data a query scans). Unset, it reads the whole table.
    type: int
  abort_thresholds:
    description:
      - The run's thresholds, to tell which C(abortOnFail) ones the merged records of every region
        breach now, in RV(abort_breaches). A mapping of source (C(script), C(constellation_thresholds))
        to k6's thresholds option (metric selector to a list of expressions or objects).
      - Read only once O(start_at) is set. It reads every record of the run, not only the progress.
    type: dict
notes:
  - Needs C(s3:ListBucket) and C(s3:GetObject) on the home bucket (C(s3) store), or
    C(timestream:Select) on the table and C(timestream:DescribeEndpoints) (C(timestream) store).
  - A poll costs one S3 C(ListObjectsV2) call per region plus one C(GetObject) per task, or one
    Timestream query.
extends_documentation_fragment:
  - constellation.loadtest.results_store
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read the progress of a run stored in S3
  constellation.loadtest.run_progress_info:
    run_id: "20250601T120000Z"
    results_store: s3
    bucket: constellation-123456789012-eu-central-1
  register: progress

- name: Show the requests and the error rate of every region
  ansible.builtin.debug:
    msg: >-
      {{ item.key }}: {{ item.value.requests }} requests,
      {{ '%.1f' | format(item.value.error_rate * 100) }} % errors
  loop: "{{ progress.regions | dict2items }}"

- name: Read the progress of a run stored in Timestream
  constellation.loadtest.run_progress_info:
    run_id: "20250601T120000Z"
    results_store: timestream
    database: constellation
    table: results
  register: progress
"""

RETURN = r"""
abort_breaches:
  description:
    - The C(abortOnFail) thresholds of O(abort_thresholds) that the merged records of every region
      breach now, each as C(summary.json) shows a threshold (C(name), C(expression), C(value), C(source)).
  returned: always
  type: list
  elements: dict
  sample: [{"name": "http_req_failed", "expression": "rate<0.01", "value": 0.042, "ok": false}]
regions:
  description:
    - Region name to the progress of the run's tasks in that region, for every region that has
      stored anything so far. Each is shaped like RV(totals).
  returned: always
  type: dict
  sample:
    us-east-2: {"requests": 12345, "failures": 99, "error_rate": 0.00802, "tasks_reporting": 3}
    ap-northeast-1: {"requests": 4100, "failures": 0, "error_rate": 0.0, "tasks_reporting": 1}
totals:
  description: The progress of the whole run, the sum over RV(regions).
  returned: always
  type: dict
  contains:
    requests:
      description: Requests made so far.
      type: int
      sample: 16445
    failures:
      description: Requests k6 counted as failed (C(http_req_failed)) so far.
      type: int
      sample: 99
    error_rate:
      description: RV(totals.failures) divided by RV(totals.requests); V(0.0) before any request.
      type: float
      sample: 0.00602
    tasks_reporting:
      description:
        - The tasks the numbers come from. With C(s3), the tasks with a progress object; with
          C(timestream), the tasks with request records.
      type: int
      sample: 4
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.results import progress
from ansible_collections.constellation.loadtest.plugins.module_utils.aws import timestream
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import RESULTS_STORE_OPTIONS
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule
from ansible_collections.constellation.loadtest.plugins.module_utils.results import report_data
from ansible_collections.constellation.loadtest.plugins.module_utils.results import thresholds as k6_thresholds
from ansible_collections.constellation.loadtest.plugins.module_utils.run import orchestrator_state
from ansible_collections.constellation.loadtest.plugins.module_utils.run.orchestrator_state import RetryingClient


def read_progress(module):
    params = module.params
    # A poll that cannot read progress is shown as such; it should not wait minutes to say so.
    retry = AWSRetry.jittered_backoff(retries=3, delay=1, max_delay=5)
    if params["results_store"] == "s3":
        s3 = RetryingClient(module.client("s3"), retry)
        return progress.read_s3_progress(s3, params["bucket"], params["run_id"])
    query = RetryingClient(module.client("timestream-query"), retry)
    return progress.read_timestream_progress(query, params["database"], params["table"], params["run_id"], params["start_at"])


def read_abort_breaches(module):
    """The abortOnFail thresholds the merged records breach now (their delayAbortEval passed)."""
    params = module.params
    parsed = []
    for source, thresholds in sorted((params["abort_thresholds"] or {}).items()):
        parsed += k6_thresholds.parse_all(thresholds, source)
    if not any(threshold.abort_on_fail for threshold in parsed) or params["start_at"] is None:
        return []
    elapsed_ms = orchestrator_state.now_ms() - params["start_at"]
    if params["results_store"] == "s3":
        records = report_data.read_records_s3(module.client("s3"), params["bucket"], params["run_id"])
    else:
        records = report_data.read_records_timestream(
            module.client("timestream-query"), params["database"], params["table"], params["run_id"], params["start_at"]
        )
    measured = max(elapsed_ms, 1) / 1000
    return k6_thresholds.abort_breaches(parsed, records, elapsed_ms=elapsed_ms, measured_seconds=measured)


def main():
    argument_spec = dict(
        RESULTS_STORE_OPTIONS,
        run_id=dict(type="str", required=True),
        bucket=dict(type="str"),
        start_at=dict(type="int"),
        abort_thresholds=dict(type="dict"),
    )
    module = ConstellationAWSModule(
        argument_spec=argument_spec,
        required_if=[("results_store", "s3", ("bucket",)), ("results_store", "timestream", ("database", "table"))],
        supports_check_mode=True,
    )
    params = module.params
    if params["results_store"] == "timestream":
        errors = timestream.name_errors(database=params["database"], table=params["table"])
        if errors:
            module.fail_json(msg=" ".join(errors))
    try:
        progress.validate_run_id(params["run_id"])
        regions = read_progress(module)
        breaches = read_abort_breaches(module)
    except (progress.ProgressError, ValueError, report_data.RecordsError) as e:
        module.fail_json(msg=str(e))
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to read the progress of run {params['run_id']}")
    module.exit_json(changed=False, abort_breaches=breaches, **progress.summary(regions))


if __name__ == "__main__":
    main()
