"""How far apart the load generators of different regions really start.

TASKS local tasks (load generator + aggregator processes, the local executor) in three
simulated regions register with the real orchestrator handler (state in the emulated DynamoDB),
wait for the start instant it decides, and run k6. Each k6 logs Date.now() at its first
iteration; the figure is the spread (max - min) of those instants. Last line: `skew_ms: S`
(goal <= 50).
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import boto3
from harness import BUCKET, HOME, K6, REPO, create_bucket

from emulator import moto_server

import orchestrator_state
from ansible_collections.constellation.loadtest.plugins.module_utils.config import load_config
from ansible_collections.constellation.loadtest.plugins.module_utils.local_executor import (
    Entrypoints,
    RunSettings,
    local_tasks,
    run_tasks,
)

RUN_ID = "start-skew"
STATE_TABLE = "bench-orchestrator"
REGIONS = {"us-east-2": 2, "ap-northeast-1": 2, "ca-central-1": 2}
LEAD_SECONDS = 5
SCRIPT = """
import exec from 'k6/execution';
import { sleep } from 'k6';
export default function () {
  if (exec.vu.iterationInInstance === 0) { console.log(`first-iteration-ms=${Date.now()}`); }
  sleep(0.2);
}
"""
FIRST_ITERATION = re.compile(r"first-iteration-ms=(\d+)")


def prepare_home(endpoint: str) -> None:
    s3 = create_bucket(endpoint)
    s3.put_object(Bucket=BUCKET, Key=f"runs/{RUN_ID}/script.js", Body=SCRIPT.encode())
    dynamodb = boto3.client("dynamodb", region_name=HOME, endpoint_url=endpoint)
    orchestrator_state.create_table(dynamodb, STATE_TABLE, tags={})
    orchestrator_state.wait_for_table(dynamodb, STATE_TABLE, exists=True, timeout_seconds=30)
    orchestrator_state.reset_run(dynamodb, STATE_TABLE, RUN_ID, {region: 2 for region in REGIONS}, LEAD_SECONDS)


def main() -> None:
    config = load_config(settings={
        "home_region": HOME, "remote_regions": REGIONS, "duration_seconds": 3,
        "max_vus_per_task": 1, "results_store": "s3",
    })
    with tempfile.TemporaryDirectory() as workdir, moto_server() as endpoint:
        prepare_home(endpoint)
        settings = RunSettings(
            run_id=RUN_ID, orchestrator=f"local:{STATE_TABLE}", bucket=BUCKET, script_key=f"runs/{RUN_ID}/script.js",
            endpoint_url=endpoint, k6=K6, extra_env={"CONSTELLATION_RESULTS_STORE": "s3", "CONSTELLATION_BUCKET": BUCKET},
        )
        run = run_tasks(local_tasks(config, settings), Entrypoints.of_collection(REPO), Path(workdir), timeout_seconds=180)
        starts = {}
        for task in run.tasks:
            found = FIRST_ITERATION.findall(Path(task.load_generator_log).read_text())
            if task.load_generator_exit_code != 0 or not found:
                raise SystemExit(f"task {task.region}-{task.index} failed (exit {task.load_generator_exit_code}); "
                                 f"see {task.load_generator_log}")
            starts[f"{task.region}-{task.index}"] = int(found[0])
    first = min(starts.values())
    for name, at in sorted(starts.items(), key=lambda item: item[1]):
        print(f"{name:18s} first iteration at +{at - first:3d} ms")
    print(f"{len(starts)} tasks in {len(REGIONS)} regions")
    print(f"skew_ms: {max(starts.values()) - first}")


if __name__ == "__main__":
    main()
