"""How far apart the load generators of different regions really start, on the production path.

init -> run_test with the fargate executor on the emulated AWS: TASKS tasks in three regions run
as containers of our images (`make images`), register with the orchestrator function init
deployed, wait for the start instant it decides, and run k6. Each k6 logs Date.now() at its first
iteration; the figure is the spread (max - min) of those instants, read from the tasks' logs.
Last line: `skew_ms: S` (goal <= 50).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from harness import HOME, REPO, measured_on

from ecs_runner import read_container_log
from emulator import FAKE_CREDENTIALS, aws_emulator

RUN_ID = "start-skew"
DEPLOYMENT = "skew"
REGIONS = {"us-east-2": 2, "ap-northeast-1": 2, "ca-central-1": 2}
SCRIPT = """
import exec from 'k6/execution';
import { sleep } from 'k6';
export default function () {
  if (exec.vu.iterationInInstance === 0) { console.log(`first-iteration-ms=${Date.now()}`); }
  sleep(0.2);
}
"""
FIRST_ITERATION = re.compile(r"first-iteration-ms=(\d+)")


def playbook(name: str, variables: dict) -> None:
    env = dict(os.environ, **FAKE_CREDENTIALS, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = ["ansible-playbook", str(REPO / "playbooks" / f"{name}.yml"), "-e", json.dumps(variables)]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{name}.yml failed:\n{completed.stdout[-3000:]}{completed.stderr[-2000:]}")


def main() -> None:
    images = yaml.safe_load((REPO / "constellation-images.yml").read_text())
    with tempfile.TemporaryDirectory() as workdir, open(Path(workdir) / "emulator.log", "w") as log:
        logs = Path(workdir) / "emulator"
        with aws_emulator(logs, log=log) as endpoint:
            script = Path(workdir) / "script.js"
            script.write_text(SCRIPT)
            variables = {
                "constellation_home_region": HOME, "constellation_remote_regions": REGIONS, "constellation_duration_seconds": 3,
                "constellation_max_vus_per_task": 1, "constellation_results_store": "s3", "constellation_bucket_tls_only": False,
                "constellation_deployment": DEPLOYMENT, "constellation_aws_endpoint_url": endpoint, "constellation_run_id": RUN_ID,
                "constellation_start_lead_seconds": 5, "constellation_wait_poll_seconds": 3, "script": str(script),
                "constellation_build_dir": f"{workdir}/build", **images,
            }
            playbook("init", variables)
            playbook("run_test", variables)
            starts = {}
            for path in sorted(logs.glob("tasks/*/*/load-generator.log")):
                found = [FIRST_ITERATION.search(line.text) for line in read_container_log(path)]
                found = [int(match.group(1)) for match in found if match]
                if not found:
                    raise SystemExit(f"no first iteration in {path}")
                starts[f"{path.parts[-3]}/{path.parts[-2][:8]}"] = found[0]
            playbook("teardown_all", variables)
    first = min(starts.values())
    for name, at in sorted(starts.items(), key=lambda item: item[1]):
        print(f"{name:26s} first iteration at +{at - first:3d} ms")
    print(f"{len(starts)} tasks (containers on the emulated ECS) in {len(REGIONS)} regions")
    print(measured_on())
    print(f"skew_ms: {max(starts.values()) - first}")


if __name__ == "__main__":
    main()
