# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What the report modules share (run_report for one run, run_history for the last runs).

Reading a run besides its interval records: its state in the orchestrator table, the manifest
run_test kept beside its test, the thresholds of its script (``k6 inspect`` of the archive); its
records from the store the module's options name; and writing a report file only when its content
changes, so that a second report of the same runs changes nothing. It lives in ``run`` because it
joins the orchestrator's state (``run``) to the results store's readers (``results``).

The functions take the module (``AnsibleAWSModule``) where they need its clients, options or
``run_command``; errors a user can fix are :class:`ReportError`, reported without a traceback.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any
from typing import Optional

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible.module_utils.basic import missing_required_lib
from ansible.module_utils.common.text.converters import to_native

from . import k6
from . import orchestrator_state
from ..results import progress
from ..results import report_data
from ..results import thresholds as k6_thresholds

REPORT_FILE_MODE = 0o644

# The options both report modules take, besides the results store's (RESULTS_STORE_OPTIONS).
REPORT_OPTIONS = dict(
    bucket=dict(type="str", required=True),
    state_table=dict(type="str", required=True),
    report_dir=dict(type="path", required=True),
    thresholds=dict(type="dict", default={}),
    script_thresholds=dict(type="bool", default=True),
    k6_binary=dict(type="str", default="k6"),
    baseline_run_id=dict(type="str"),
)


class ReportError(Exception):
    """A problem the user can fix, reported without a traceback."""


def check_run_id(option: str, run_id: Any) -> None:
    try:
        progress.validate_run_id(run_id, option)
    except ValueError as e:
        raise ReportError(str(e)) from None


def parse_thresholds(thresholds: Any, source: str) -> list:
    try:
        return k6_thresholds.parse_all(thresholds, source)
    except ValueError as e:
        raise ReportError(f"{source}: {e}") from None


def read_object(s3, bucket: str, key: str) -> Optional[bytes]:
    """The object's bytes, or None if it does not exist."""
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            return None
        raise


def read_run(dynamodb, state_table: str, run_id: str) -> dict:
    try:
        return orchestrator_state.read_run(dynamodb, state_table, run_id)
    except orchestrator_state.RunNotFoundError:
        runs = [run["run_id"] for run in orchestrator_state.list_runs(dynamodb, state_table)]
        known = ", ".join(runs[-10:]) if runs else "none"
        raise ReportError(f"run {run_id!r} is not in the orchestrator table {state_table} (runs there: {known})") from None


def read_manifest(s3, bucket: str, run_id: str, run: dict) -> dict:
    """The manifest run_test uploaded; a stand-in from the orchestrator's plan if it is missing."""
    body = read_object(s3, bucket, progress.manifest_key(run_id))
    if body is not None:
        return json.loads(body)
    return {"run_id": run_id, "regions": {region: {"tasks": tasks} for region, tasks in run["regions"].items()}}


def read_script_thresholds(module, s3, bucket: str, run_id: str) -> Any:
    """The thresholds of the run's script, read with `k6 inspect` from the run's test (the archive run_test kept)."""
    body = read_object(s3, bucket, progress.script_key(run_id))
    if body is None:
        raise ReportError(f"the script of run {run_id} is not in s3://{bucket}/{progress.script_key(run_id)}")
    try:
        k6_path = k6.find_k6(module.params["k6_binary"])
    except k6.K6Error as e:
        raise ReportError(f"{e} k6 reads the thresholds of the run's script; or set constellation_script_thresholds to false") from None
    with tempfile.TemporaryDirectory(prefix="constellation-report-") as workdir:
        path = os.path.join(workdir, os.path.basename(progress.script_key(run_id)))
        with open(path, "wb") as script:
            script.write(body)
        rc, out, err = module.run_command([k6_path, "inspect", path])
    if rc != 0:
        raise ReportError(f"k6 inspect could not read the script of run {run_id}: {err.strip() or out.strip()}")
    try:
        return k6_thresholds.from_k6_inspect(out)
    except ValueError as e:
        raise ReportError(f"the thresholds of the script of run {run_id}: {e}") from None


def judged_thresholds(module, s3, run_id: str, thresholds: list) -> list:
    """The thresholds a run is judged on: its script's (unless O(script_thresholds) is off), then ``thresholds``."""
    if not module.params["script_thresholds"]:
        return thresholds
    return parse_thresholds(read_script_thresholds(module, s3, module.params["bucket"], run_id), "script") + thresholds


def summarize(module, run_id: str, run: dict, manifest: dict, thresholds: list, **baseline: Any) -> dict:
    """The run's summary.json (report_data.build_summary) from its records in the store; ``baseline`` is
    build_summary's ``baseline_records``, ``baseline_run_id`` and ``baseline_run``."""
    fold = report_data.TaskFold()
    summary = report_data.build_summary(
        read_records(module, run_id, run, fold),
        run=run,
        plan=manifest["regions"],
        run_id=run_id,
        deployment=manifest.get("deployment"),
        results_store=module.params["results_store"],
        thresholds=thresholds,
        # With the script load model the script decides how long the load runs.
        duration_ms=manifest.get("duration_ms") if manifest.get("load_model") == "vus" else None,
        stored_requests=fold.requests_by_task,
        **baseline,
    )
    summary["executor"] = manifest.get("executor")
    summary["duration_ms"] = manifest.get("duration_ms")
    summary["script"] = manifest.get("script")
    return summary


def read_records(module, run_id: str, run: dict, fold: Optional[report_data.TaskFold] = None) -> list:
    """The run's records folded over the tasks; ``fold`` (a report_data.TaskFold) keeps each task's requests."""
    params = module.params
    if params["results_store"] == "s3":
        return report_data.read_records_s3(module.client("s3"), params["bucket"], run_id, fold)
    return report_data.read_records_timestream(
        module.client("timestream-query"), params["database"], params["table"], run_id, run.get("start_at"), fold
    )


def write_if_changed(path: str, content: str, check_mode: bool) -> bool:
    """Write content to path unless it already holds it; whether it changed."""
    data = content.encode("utf-8")
    try:
        with open(path, "rb") as current:
            if current.read() == data:
                return False
    except FileNotFoundError:
        pass
    if not check_mode:
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, delete=False) as staged:
            staged.write(data)
        os.chmod(staged.name, REPORT_FILE_MODE)  # mkstemp makes it private; a report is for sharing
        os.replace(staged.name, path)
    return True


def report_and_exit(module, build: Any, reading: str, plotly_error: Optional[str]) -> None:
    """Exit ``module`` with ``build(module)``'s result; each failure a user can act on as a message naming what was being
    read (``reading``) or written, never a traceback. ``plotly_error`` is plotly's import error, if it is missing."""
    if plotly_error is not None:
        module.fail_json(msg=missing_required_lib("plotly"), exception=plotly_error)
    try:
        result = build(module)
    except ReportError as e:
        module.fail_json(msg=str(e))
    except orchestrator_state.TableNotFoundError as e:
        module.fail_json(msg=f"{e} (looked in region {module.region}); is the home region deployed? Run init first")
    except (orchestrator_state.OrchestratorStateError, ValueError) as e:
        module.fail_json(msg=to_native(e))
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to read {reading}")
    except OSError as e:
        module.fail_json(msg=f"Cannot write into {module.params['report_dir']}: {to_native(e)}")
    module.exit_json(**result)
