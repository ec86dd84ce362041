#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: run_history
version_added: 0.1.0
short_description: Write the history of a deployment's last load test runs
description:
  - Lists the runs in the orchestrator table, takes the last O(runs) of them by start (a run whose
    start is not decided yet counts from its creation), and writes C(history.json) and
    C(history.html) into O(report_dir).
  - Each run that has ended is read and judged as M(constellation.loadtest.run_report) reads and
    judges it (its records from the results store, its manifest, the thresholds of its script and
    O(thresholds)), so its verdict and figures are those of its report. Per run, C(history.json)
    holds its id, start, verdict, and overall and per region its requests, failures, throughput,
    error rate and p50/p95/p99 latency.
  - A run that has not ended is listed as V(running) without figures, or as V(partial) once it is no
    longer active (a task never reported its end); so is a run without records, with its verdict.
    Neither fails the module.
  - C(history.html) is one self-contained page that works offline (plotly.js is embedded), with trend
    charts of p50/p95/p99 latency, p95 and p99 per region, throughput and error rate over the runs,
    each run's verdict on its markers, and O(baseline_run_id)'s values as dashed lines.
  - The files are written only when their content changes; the history of the same finished runs is
    the same every time, so a second run reports no change.
author:
  - Constellation maintainers (@constellation-loadtest)
requirements:
  - plotly (the charts; its JavaScript is embedded in the page)
  - k6, to read the scripts' thresholds (see O(script_thresholds))
options:
  runs:
    description:
      - How many of the deployment's last runs to show; 1 or more.
    type: int
    default: 10
  bucket:
    description:
      - The home bucket, holding each run's script and manifest (and its records for the C(s3) store).
    required: true
    type: str
  state_table:
    description:
      - The orchestrator's DynamoDB table, which lists the deployment's runs.
    required: true
    type: str
  report_dir:
    description:
      - The directory to write C(history.json) and C(history.html) into; created if missing.
    required: true
    type: path
  baseline_run_id:
    description:
      - A run of the deployment to pin as the baseline; its values are drawn as a dashed horizontal
        line on every chart, and C(history.json) holds its row as C(baseline).
      - It may be older than the runs shown. It must be in the orchestrator table and have ended with records.
    type: str
  thresholds:
    description:
      - More thresholds in k6's syntax every run is judged on, as in M(constellation.loadtest.run_report).
    type: dict
    default: {}
  script_thresholds:
    description:
      - Whether to judge each run on the thresholds of its script too.
      - Needs O(k6_binary) on the machine running the module.
    type: bool
    default: true
  k6_binary:
    description:
      - The k6 executable used to read the scripts' options.
    type: str
    default: k6
extends_documentation_fragment:
  - constellation.loadtest.results_store
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: The last 20 runs, with nightly-30 pinned as the baseline
  constellation.loadtest.run_history:
    runs: 20
    bucket: constellation-123456789012-eu-central-1
    state_table: constellation-orchestrator
    results_store: s3
    report_dir: reports/history
    baseline_run_id: nightly-30
  register: history

- name: Show the runs
  ansible.builtin.debug:
    msg: "{{ history.table }}"
"""

RETURN = r"""
report:
  description: The path of the HTML page.
  returned: success
  type: str
  sample: reports/history/history.html
history_file:
  description: The path of C(history.json).
  returned: success
  type: str
  sample: reports/history/history.json
history:
  description: The content of C(history.json).
  returned: success
  type: dict
  contains:
    runs:
      description:
        - One row per run shown, oldest first. V(overall) and each entry of V(regions) hold V(requests),
          V(failures), V(rps), V(error_rate) (a fraction), V(p50), V(p95) and V(p99) (milliseconds).
        - V(overall) is V(null) and V(regions) empty for a run that has not ended or has no records.
      type: list
      elements: dict
      sample: [{"run_id": "nightly-42", "start_at": "2025-06-01T12:00:30.000Z", "start_at_ms": 1748779230000,
                "created_at": "2025-06-01T12:00:00.000Z", "created_at_ms": 1748779200000, "stopped": false,
                "verdict": "pass", "complete": true,
                "overall": {"requests": 1212, "failures": 12, "rps": 40.4, "error_rate": 0.0099,
                            "p50": 12.0, "p95": 41.0, "p99": 80.3},
                "regions": {"us-east-2": {"requests": 1212, "failures": 12, "rps": 40.4, "error_rate": 0.0099,
                                          "p50": 12.0, "p95": 41.0, "p99": 80.3}}}]
    baseline:
      description: The row of O(baseline_run_id), shaped like an element of RV(history.runs); V(null) without one.
      type: dict
    runs_asked:
      description: O(runs).
      type: int
      sample: 10
    deployment:
      description: The deployment, as the runs' manifests name it.
      type: str
      sample: constellation
    results_store:
      description: O(results_store).
      type: str
      sample: s3
table:
  description: A compact text table of the runs, as printed by the history playbook.
  returned: success
  type: list
  elements: str
"""

import json
import os

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.results import report_history
from ansible_collections.constellation.loadtest.plugins.module_utils.run import orchestrator_state
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import REPORT_OPTIONS
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import ReportError
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import check_run_id
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import judged_thresholds
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import parse_thresholds
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import read_manifest
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import report_and_exit
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import summarize
from ansible_collections.constellation.loadtest.plugins.module_utils.run.reporting import write_if_changed
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import RESULTS_STORE_OPTIONS
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule

SHOWN_RUN_IDS = 10  # the runs an unknown baseline's message names


def check_options(params):
    """Refuse what can be refused before anything is read; the thresholds every run is judged on."""
    if params["runs"] < 1:
        raise ReportError(f"runs must be a whole number of runs, 1 or more; got {params['runs']}")
    if params["baseline_run_id"] is not None:
        check_run_id("baseline_run_id", params["baseline_run_id"])
    if params["results_store"] == "timestream" and not (params["database"] and params["table"]):
        raise ReportError("results_store timestream needs database and table")
    return parse_thresholds(params["thresholds"], "constellation_thresholds")


def check_baseline(baseline_run_id, runs, state_table):
    known = [run["run_id"] for run in sorted(runs, key=report_history.start_order)]
    if baseline_run_id is not None and baseline_run_id not in known:
        raise ReportError(
            f"baseline run {baseline_run_id!r} (baseline_run_id) is not a run of this deployment: the orchestrator"
            f" table {state_table} holds {', '.join(known[-SHOWN_RUN_IDS:])} (the last {SHOWN_RUN_IDS} by start)"
        )


def run_row(module, s3, run, thresholds):
    """The run's row, with its summary once it has ended, and the deployment its manifest names."""
    if not report_history.has_ended(run):
        return report_history.history_row(run), None
    run_id = run["run_id"]
    manifest = read_manifest(s3, module.params["bucket"], run_id, run)
    summary = summarize(module, run_id, run, manifest, judged_thresholds(module, s3, run_id, thresholds))
    return report_history.history_row(run, summary), manifest.get("deployment")


def build_history(module):
    params = module.params
    thresholds = check_options(params)
    retry = AWSRetry.jittered_backoff()
    s3 = module.client("s3", retry_decorator=retry)
    dynamodb = orchestrator_state.RetryingClient(module.client("dynamodb"), retry)
    runs = orchestrator_state.list_runs(dynamodb, params["state_table"])
    if not runs:
        raise ReportError(f"the orchestrator table {params['state_table']} holds no run yet: start one with run_test")
    check_baseline(params["baseline_run_id"], runs, params["state_table"])

    rows, deployments = {}, []
    shown = report_history.last_runs(runs, params["runs"])
    shown_ids = {run["run_id"] for run in shown}
    pinned = [run for run in runs if run["run_id"] == params["baseline_run_id"] and run["run_id"] not in shown_ids]
    for run in shown + pinned:
        rows[run["run_id"]], deployment = run_row(module, s3, run, thresholds)
        deployments.append(deployment)
    history = report_history.build_history(
        [rows[run["run_id"]] for run in shown],
        runs_asked=params["runs"],
        deployment=next((name for name in reversed(deployments) if name), None),
        results_store=params["results_store"],
        baseline=rows[params["baseline_run_id"]] if params["baseline_run_id"] is not None else None,
    )

    report_path = os.path.join(params["report_dir"], "history.html")
    history_path = os.path.join(params["report_dir"], "history.json")
    changed = write_if_changed(report_path, report_history.render(history), module.check_mode)
    changed |= write_if_changed(history_path, json.dumps(history, indent=2, sort_keys=True) + "\n", module.check_mode)
    return dict(
        changed=changed,
        report=report_path,
        history_file=history_path,
        history=history,
        table=report_history.history_table(history).splitlines(),
    )


def main():
    module = ConstellationAWSModule(
        argument_spec=dict(RESULTS_STORE_OPTIONS, **REPORT_OPTIONS, runs=dict(type="int", default=report_history.DEFAULT_RUNS)),
        required_if=[("results_store", "timestream", ("database", "table"))],
        supports_check_mode=True,
    )
    report_and_exit(module, build_history, f"the runs of {module.params['state_table']}", report_history.PLOTLY_IMPORT_ERROR)


if __name__ == "__main__":
    main()
