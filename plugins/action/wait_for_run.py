# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Action for constellation.loadtest.wait_for_run: poll a run until it has ended, printing its progress.

One loop, on the controller: each poll runs the collection's info modules (the run's tasks in
every region, the orchestrator's state, the requests so far), prints one line per region and
sleeps. What a poll means is decided in ``module_utils/run/watch.py``.

The global abort: with ``abort_thresholds``, each poll also judges their ``abortOnFail`` ones on
the merged records of every region (``run_progress_info``), every ``abort_poll_seconds`` at least;
the first breach marks the run aborted in the orchestrator, naming it, and every task of every
region stops k6 at its next poll of the run's state, as for stop_test.
"""

from __future__ import annotations

import time

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import RESULTS_STORE_OPTIONS
from ansible_collections.constellation.loadtest.plugins.module_utils.run import watch

display = Display()

ARGUMENT_SPEC = dict(
    run_id=dict(type="str", required=True),
    tasks_by_region=dict(type="dict", required=True),
    cluster=dict(type="str", required=True),
    state_table=dict(type="str", required=True),
    home_region=dict(type="str", required=True),
    bucket=dict(type="str"),
    **RESULTS_STORE_OPTIONS,
    endpoint_url=dict(type="str"),
    poll_seconds=dict(type="int", default=30),
    timeout_seconds=dict(type="int", required=True),
    abort_thresholds=dict(type="dict"),
    abort_poll_seconds=dict(type="int", default=5),
)
MODULE = "constellation.loadtest.{}"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        super().run(tmp, task_vars)
        args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)[1]
        if args["poll_seconds"] < 1 or args["timeout_seconds"] < 0:
            raise AnsibleActionFail(
                f"poll_seconds must be 1 or more and timeout_seconds 0 or more, got {args['poll_seconds']} and "
                f"{args['timeout_seconds']}"
            )
        planned = {region: int(tasks) for region, tasks in args["tasks_by_region"].items()}
        deadline = time.monotonic() + args["timeout_seconds"]
        period = args["poll_seconds"]
        if args["abort_thresholds"]:
            period = max(1, min(period, args["abort_poll_seconds"]))
        polls, aborted = 0, None
        while True:
            regions, run, breaches = self._poll(args, planned, task_vars)
            polls += 1
            for region in regions:
                display.display(region.line())
            if breaches and not run.get("stop"):
                aborted = self._abort(args, breaches, task_vars)
            ended = all(region.ended for region in regions)
            remaining = deadline - time.monotonic()
            if ended or remaining <= 0:
                break
            time.sleep(min(period, remaining))
        return {
            "changed": aborted is not None,
            "aborted": aborted,
            "ended": ended,
            "polls": polls,
            "lines": [region.line() for region in regions],
            "regions": {region.region: region.summary() for region in regions},
            "still_running": [region.region for region in regions if not region.ended],
            "run": run,
        }

    def _poll(self, args, planned, task_vars):
        """One reading of every region, the orchestrator and the results store."""
        endpoint = {"endpoint_url": args["endpoint_url"]} if args["endpoint_url"] else {}
        tasks = {
            region: self._module(
                "ecs_load_tasks_info",
                dict(cluster=args["cluster"], run_id=args["run_id"], region=region, **endpoint),
                task_vars,
                what=f"the run's tasks in {region}",
            )
            for region in planned
        }
        run = self._module(
            "orchestrator_state_info",
            dict(name=args["state_table"], run_id=args["run_id"], region=args["home_region"], **endpoint),
            task_vars,
            what="the orchestrator's state",
        )["run"]
        # Unknown requests are shown as such, with the reason: the run goes on regardless.
        progress = self._execute_module(
            module_name=MODULE.format("run_progress_info"),
            module_args=dict(
                run_id=args["run_id"],
                results_store=args["results_store"],
                bucket=args["bucket"],
                database=args["database"],
                table=args["table"],
                region=args["home_region"],
                **({"start_at": run["start_at"]} if run.get("start_at") else {}),
                **({"abort_thresholds": args["abort_thresholds"]} if args["abort_thresholds"] and not run.get("stop") else {}),
                **endpoint,
            ),
            task_vars=task_vars,
        )
        return watch.poll(planned, tasks, run, progress), run, progress.get("abort_breaches") or []

    def _abort(self, args, breaches, task_vars):
        """Mark the run aborted in the orchestrator, naming the breached thresholds; return what was said."""
        named = "; ".join(f"{b['name']} {b['expression']} = {b['value']} ({b['source']})" for b in breaches)
        detail = f"breached on the merged data of every region: {named}"
        endpoint = {"endpoint_url": args["endpoint_url"]} if args["endpoint_url"] else {}
        self._module(
            "orchestrator_state",
            dict(
                name=args["state_table"], run_id=args["run_id"], state="stopped", stop_reason="aborted",
                stop_detail=detail, region=args["home_region"], **endpoint,
            ),
            task_vars,
            what="the orchestrator's state, to abort the run",
        )
        display.display(f"Run {args['run_id']} ABORTED: {detail}. Every task stops at its next poll.")
        return {"detail": detail, "thresholds": breaches}

    def _module(self, name, module_args, task_vars, what):
        result = self._execute_module(module_name=MODULE.format(name), module_args=module_args, task_vars=task_vars)
        if result.get("failed"):
            raise AnsibleActionFail(f"Could not read {what}: {result.get('msg', 'no message')}", result=result)
        return result
