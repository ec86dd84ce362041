"""How far apart the tasks' first requests reach the target, with the tasks' clocks set wrong.

init -> run_test with the fargate executor on the emulated AWS: TASKS tasks in three regions run
as containers of our images (`make images`), register with the orchestrator function init
deployed, wait for the start instant it decides, and run k6. Each task's host clock is off by a
different amount (CLOCK_OFFSETS_S, through libfaketime: Debian's `faketime` package, which the
emulated ECS mounts into the load generator), as real hosts' clocks may be: a load generator that
trusted its own clock would start seconds early or late. Each k6 makes one request at its first
iteration to a target on loopback, which notes when it arrived **on the target's own clock**; the
figure is the spread (latest minus earliest) of those arrivals.

The baseline, in the same run: the spread the tasks would have had, had each waited for the start
on its own clock (the decided start shifted by its clock's offset): the offsets' own spread.

Needs: `make images`; `apt-get install faketime`. Last line: `skew_ms: S` (goal <= 50).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import yaml
from harness import HOME, REPO, measured_on

from ecs_runner import CLOCK_OFFSETS_VARIABLE, FAKETIME_LIBRARY
from emulator import FAKE_CREDENTIALS, aws_emulator

RUN_ID = "start-skew"
DEPLOYMENT = "skew"
REGIONS = {"us-east-2": 2, "ap-northeast-1": 2, "ca-central-1": 2}
# Seconds each task's clock is off by: behind, right, ahead; the two tasks of a region differ too.
CLOCK_OFFSETS_S = {
    "us-east-2/0": -3, "us-east-2/1": 0,
    "ap-northeast-1/0": 2, "ap-northeast-1/1": -1,
    "ca-central-1/0": 0, "ca-central-1/1": 1,
}  # fmt: skip
SCRIPT = """
import http from 'k6/http';
import exec from 'k6/execution';
import { sleep } from 'k6';
export default function () {
  if (exec.vu.iterationInInstance === 0) {
    http.get(`${__ENV.TARGET}/first/${__ENV.CONSTELLATION_REGION}/${__ENV.CONSTELLATION_TASK_INDEX}`);
  }
  sleep(0.2);
}
"""
FIRST = re.compile(r"^/first/([a-z0-9-]+)/([0-9]+)$")


class ArrivalTarget(ThreadingHTTPServer):
    """Notes when each task's first request arrives, on this host's (the target's) clock."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.arrivals: dict[str, float] = {}
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: ArrivalTarget

    def do_GET(self) -> None:
        arrived = time.time() * 1000
        match = FIRST.match(self.path)
        if match:
            with self.server.lock:
                self.server.arrivals.setdefault(f"{match.group(1)}/{match.group(2)}", arrived)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args) -> None:
        pass


def playbook(name: str, variables: dict) -> None:
    env = dict(os.environ, **FAKE_CREDENTIALS, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = ["ansible-playbook", str(REPO / "playbooks" / f"{name}.yml"), "-e", json.dumps(variables)]
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"{name}.yml failed:\n{completed.stdout[-3000:]}{completed.stderr[-2000:]}")


def main() -> None:
    if not Path(FAKETIME_LIBRARY).exists():
        raise SystemExit(f"{FAKETIME_LIBRARY} is missing: apt-get install faketime")
    commit = measured_on()  # before the run: the tree may change while it runs
    images = yaml.safe_load((REPO / "constellation-images.yml").read_text())
    target = ArrivalTarget()
    threading.Thread(target=target.serve_forever, daemon=True).start()
    os.environ[CLOCK_OFFSETS_VARIABLE] = json.dumps(CLOCK_OFFSETS_S)  # read by the emulated ECS
    with tempfile.TemporaryDirectory() as workdir, open(Path(workdir) / "emulator.log", "w") as log:
        with aws_emulator(Path(workdir) / "emulator", log=log) as endpoint:
            script = Path(workdir) / "script.js"
            script.write_text(SCRIPT)
            variables = {
                "constellation_home_region": HOME, "constellation_remote_regions": REGIONS, "constellation_duration_seconds": 3,
                "constellation_max_vus_per_task": 1, "constellation_results_store": "s3", "constellation_bucket_tls_only": False,
                "constellation_deployment": DEPLOYMENT, "constellation_aws_endpoint_url": endpoint, "constellation_run_id": RUN_ID,
                "constellation_start_lead_seconds": 5, "constellation_wait_poll_seconds": 3, "script": str(script),
                "constellation_script_env": {"TARGET": f"http://127.0.0.1:{target.server_address[1]}"},
                "constellation_build_dir": f"{workdir}/build", **images,
            }
            try:
                playbook("init", variables)
                playbook("run_test", variables)
            finally:
                playbook("teardown_all", variables)
    target.shutdown()
    arrivals = target.arrivals
    if set(arrivals) != set(CLOCK_OFFSETS_S):
        raise SystemExit(f"first requests from {sorted(arrivals)}, expected {sorted(CLOCK_OFFSETS_S)}")
    first = min(arrivals.values())
    for name, at in sorted(arrivals.items(), key=lambda item: item[1]):
        print(f"{name:18s} clock {CLOCK_OFFSETS_S[name]:+d} s, first request at the target +{at - first:6.1f} ms")
    uncorrected_ms = 1000 * (max(CLOCK_OFFSETS_S.values()) - min(CLOCK_OFFSETS_S.values()))
    print(f"{len(arrivals)} tasks (containers on the emulated ECS) in {len(REGIONS)} regions")
    print(f"baseline, each task trusting its own clock: {uncorrected_ms} ms apart")
    print(commit)
    print(f"skew_ms: {max(arrivals.values()) - first:.0f}")


if __name__ == "__main__":
    main()
