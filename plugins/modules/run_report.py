#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: run_report
version_added: 0.1.0
short_description: Report on a load test run and judge it against thresholds
description:
  - Reads a run's interval records from the results store (every page of a Timestream query over
    the time from 15 minutes before the run's decided start on, or
    every object under the run's prefix in the home bucket), its state from the orchestrator table
    and its manifest from the home bucket, merges the latency histograms of all tasks and regions,
    and writes C(index.html) (a self-contained report that works offline), C(summary.json) and
    C(report.xml) (JUnit XML, for CI systems) into O(report_dir).
  - Thresholds are k6's own syntax and are evaluated on the merged data of every region. They
    are those of the run's script (its C(options.thresholds), read with C(k6 inspect)) and those
    of O(thresholds). Metrics the results store does not hold (checks, custom metrics) are judged
    from the verdicts k6 reported for each task.
  - The module does not fail on a breached threshold; it returns RV(breaches) and
    RV(summary.verdict), so a playbook can print the report first and fail afterwards.
  - While the run is still going, the report holds the data so far and says so.
  - The files are written only when their content changes; a report of a finished run is the same
    every time, so a second run reports no change.
author:
  - Constellation maintainers (@constellation-loadtest)
requirements:
  - plotly (the charts; its JavaScript is embedded in the report)
  - k6, to read the script's thresholds (see O(script_thresholds))
options:
  run_id:
    description:
      - The run to report on.
    required: true
    type: str
  bucket:
    description:
      - The home bucket, holding the run's script and manifest (and its records for the C(s3) store).
    required: true
    type: str
  state_table:
    description:
      - The orchestrator's DynamoDB table.
    required: true
    type: str
  report_dir:
    description:
      - The directory to write C(index.html) and C(summary.json) into; created if missing.
    required: true
    type: path
  thresholds:
    description:
      - More thresholds in k6's syntax, metric (with an optional tag filter such as
        C(http_req_duration{region:us-east-2})) to a list of expressions, each a string such as
        C(p(95\)<500) or a dict with C(threshold) and C(abortOnFail).
    type: dict
    default: {}
  script_thresholds:
    description:
      - Whether to evaluate the thresholds in the run's script too.
      - Needs O(k6_binary) on the machine running the module.
    type: bool
    default: true
  k6_binary:
    description:
      - The k6 executable used to read the script's options.
    type: str
    default: k6
  baseline_run_id:
    description:
      - A run of the same deployment to compare with; the report and summary gain per-region deltas
        of throughput, p95 latency and error rate.
    type: str
  grafana_url:
    description:
      - The base URL of the Grafana that has the collection's dashboard (C(files/grafana/constellation-loadtest.json))
        over the Prometheus the tasks forwarded to; the report then links to the dashboard for this run, its time
        and its overall p95 and error-rate thresholds (RV(summary.dashboard_url)).
    type: str
extends_documentation_fragment:
  - constellation.loadtest.results_store
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Report on a run and compare it with the previous one
  constellation.loadtest.run_report:
    run_id: nightly-42
    bucket: constellation-123456789012-eu-central-1
    state_table: constellation-orchestrator
    results_store: s3
    report_dir: reports/nightly-42
    thresholds:
      http_req_duration: ["p(95)<500"]
      "http_req_duration{region:ap-northeast-1}": ["p(99)<1500"]
      http_req_failed: ["rate<0.01"]
    baseline_run_id: nightly-41
  register: report

- name: Fail the job on a breached threshold
  ansible.builtin.fail:
    msg: "{{ report.breaches | map(attribute='message') | join('; ') }}"
  when: report.breaches | length > 0
"""

RETURN = r"""
report:
  description: The path of the HTML report.
  returned: success
  type: str
  sample: reports/nightly-42/index.html
summary_file:
  description: The path of C(summary.json).
  returned: success
  type: str
  sample: reports/nightly-42/summary.json
junit_file:
  description:
    - The path of C(report.xml), the run as JUnit XML for CI systems (Jenkins, GitLab, GitHub Actions, Azure DevOps).
    - One test suite for the run, one test case per threshold and one per planned task.
  returned: success
  type: str
  sample: reports/nightly-42/report.xml
summary:
  description:
    - The content of C(summary.json); see the collection's C(docs/summary.md) for every field.
  returned: success
  type: dict
  contains:
    run_id:
      description: The run.
      type: str
      sample: nightly-42
    complete:
      description: Whether every planned task has ended; if not, the numbers are the data so far.
      type: bool
      sample: true
    verdict:
      description:
        - V(pass), V(fail), V(partial) (the run has not ended) or V(incomplete) (results of a task are
          missing, RV(incomplete)); missing results come before thresholds, which judged part of the load.
      type: str
      sample: pass
    dashboard_url:
      description: The run in the collection's Grafana dashboard, with O(grafana_url); else null.
      type: str
      sample: https://grafana.example.com/d/constellation-loadtest/constellation-loadtest-run?var-run_id=nightly-42
    accounting:
      description:
        - Per task, the requests k6 counted against those in the results store, what its aggregator
          wrote, lost and retried, and what is missing; the totals of the run.
      type: dict
      sample: {"k6_requests": 1561, "stored_requests": 1561, "store_retries": 0, "incomplete": [],
               "tasks": {"us-east-2": {"0": {"k6_requests": 1561, "requests_received": 1561,
               "requests_written": 1561, "records_lost": 0, "store_retries": 0, "stored_requests": 1561, "missing": []}}}}
    overall:
      description: Requests, failures, error rate, throughput and latency percentiles of the whole run.
      type: dict
      sample: {"requests": 1212, "failures": 12, "error_rate": 0.0099, "rps": 40.4,
               "latency": {"p50": 12.0, "p95": 41.0, "p99": 80.3}}
    thresholds:
      description: Every threshold with its measured value, limit and verdict.
      type: list
      elements: dict
table:
  description: A compact text table of the summary, as printed by the visualize playbook.
  returned: success
  type: list
  elements: str
breaches:
  description: The thresholds that were breached, each with a one-line C(message).
  returned: success
  type: list
  elements: dict
  sample: [{"name": "http_req_duration", "expression": "p(95)<500", "value": 612.3, "limit": 500.0,
            "message": "http_req_duration p(95)<500 breached: measured 612.3, limit 500"}]
failed_tasks:
  description: Tasks whose k6 ended with an error other than a crossed threshold (exit code 99).
  returned: success
  type: list
  elements: dict
  sample: [{"region": "us-east-2", "task": "1", "exit_code": 107,
            "message": "us-east-2 task 1 ended with exit 107 (k6 ScriptException): its share of the load may be missing"}]
incomplete:
  description:
    - The tasks whose results are missing, one line each naming the task and what is missing (the
      requests k6 counted that are not in the results store, records the aggregator could not write,
      a final flush it did not confirm). Not empty makes the verdict V(incomplete).
  returned: success
  type: list
  elements: str
  sample: ["us-east-2 task 1: 326 of the 386 requests k6 counted are not in the results store"]
failures:
  description: The messages of RV(breaches) and RV(failed_tasks), one line each.
  returned: success
  type: list
  elements: str
"""

import json
import os

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.run import orchestrator_state
from ansible_collections.constellation.loadtest.plugins.module_utils.run.exit_codes import describe_exit_code
from ansible_collections.constellation.loadtest.plugins.module_utils.results import report_data
from ansible_collections.constellation.loadtest.plugins.module_utils.results.accounting import interrupted
from ansible_collections.constellation.loadtest.plugins.module_utils.results import report_html
from ansible_collections.constellation.loadtest.plugins.module_utils.results import report_junit
from ansible_collections.constellation.loadtest.plugins.module_utils.results import thresholds as k6_thresholds
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import REPORT_OPTIONS
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import ReportError
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import check_run_id
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import judged_thresholds
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import parse_thresholds
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import read_manifest
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import report_and_exit
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import read_records
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import read_run
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import summarize
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import write_if_changed
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import RESULTS_STORE_OPTIONS
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule


def breaches_of(summary):
    return [
        dict(threshold, message=k6_thresholds.breach_message(threshold))
        for threshold in summary["thresholds"]
        if not threshold["ok"]
    ]


def failed_tasks_of(summary):
    return [
        {
            "region": region,
            "task": task,
            "exit_code": code,
            "message": f"{region} task {task} ended with exit {code} ({describe_exit_code(int(code))}): its share of the load may be missing",
        }
        for region, codes in sorted(summary.get("exit_codes", {}).items())
        for task, code in sorted(codes.items(), key=lambda item: int(item[0]))
        if not report_data.ran_its_load(code, stopped=bool(summary.get("stop"))) and not interrupted(code, bool(summary.get("stop")))
    ]


def build_report(module):
    params = module.params
    run_id = params["run_id"]
    check_run_id("run_id", run_id)
    if params["baseline_run_id"] is not None:
        check_run_id("baseline_run_id", params["baseline_run_id"])
    if params["results_store"] == "timestream" and not (params["database"] and params["table"]):
        raise ReportError("results_store timestream needs database and table")
    # Bad thresholds are refused before anything is read.
    thresholds = parse_thresholds(params["thresholds"], "constellation_thresholds")

    retry = AWSRetry.jittered_backoff()
    s3 = module.client("s3", retry_decorator=retry)
    dynamodb = orchestrator_state.RetryingClient(module.client("dynamodb"), retry)
    run = read_run(dynamodb, params["state_table"], run_id)
    manifest = read_manifest(s3, params["bucket"], run_id, run)
    thresholds = judged_thresholds(module, s3, run_id, thresholds)

    baseline_run = baseline_records = None
    if params["baseline_run_id"] is not None:
        baseline_run = read_run(dynamodb, params["state_table"], params["baseline_run_id"])
        baseline_records = read_records(module, params["baseline_run_id"], baseline_run)

    summary = summarize(
        module,
        run_id,
        run,
        manifest,
        thresholds,
        baseline_records=baseline_records,
        baseline_run_id=params["baseline_run_id"],
        baseline_run=baseline_run,
    )
    summary["dashboard_url"] = report_data.dashboard_link(params["grafana_url"], summary)

    report_dir = params["report_dir"]
    report_path = os.path.join(report_dir, "index.html")
    summary_path = os.path.join(report_dir, "summary.json")
    junit_path = os.path.join(report_dir, "report.xml")
    breaches = breaches_of(summary)
    failed_tasks = failed_tasks_of(summary)
    junit = report_junit.render(summary, {(task["region"], task["task"]): task["message"] for task in failed_tasks})
    changed = write_if_changed(report_path, report_html.render(summary), module.check_mode)
    changed |= write_if_changed(summary_path, json.dumps(summary, indent=2, sort_keys=True) + "\n", module.check_mode)
    changed |= write_if_changed(junit_path, junit, module.check_mode)
    return dict(
        changed=changed,
        report=report_path,
        summary_file=summary_path,
        junit_file=junit_path,
        summary=summary,
        table=report_html.summary_table(summary).splitlines(),
        breaches=breaches,
        failed_tasks=failed_tasks,
        incomplete=summary["accounting"]["incomplete"],
        failures=[item["message"] for item in breaches + failed_tasks],
    )


def main():
    module = ConstellationAWSModule(
        argument_spec=dict(
            RESULTS_STORE_OPTIONS, **REPORT_OPTIONS, run_id=dict(type="str", required=True), grafana_url=dict(type="str")
        ),
        required_if=[("results_store", "timestream", ("database", "table"))],
        supports_check_mode=True,
    )
    report_and_exit(module, build_report, f"run {module.params['run_id']}", report_html.PLOTLY_IMPORT_ERROR)


if __name__ == "__main__":
    main()
