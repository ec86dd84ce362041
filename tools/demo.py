"""`make demo`: the whole flow on this machine, on the emulated AWS, the production path.

Starts the emulated AWS (tools/aws_emulator.py: moto, ECS tasks as podman containers from the
images `make images` built, the orchestrator function run as deployed) and a small target service
on loopback (endpoints with their own latencies and a small error rate), runs playbooks/demo.yml:
check -> init -> run_test (fargate executor, the three regions of examples/config.json) ->
visualize -> teardown_all, prints where the report is and how long it took, and stops both again
(also on failure and Ctrl-C: the emulator stops every task it runs before it exits).

    python tools/demo.py [--duration-seconds 30] [--report-dir demo-report]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml
from emulator import FAKE_CREDENTIALS, aws_emulator
from targets import demo_target

REPO = Path(__file__).resolve().parents[1]
RUN_ID = "demo"
IMAGES = REPO / "constellation-images.yml"
LOGS = REPO / ".build" / "demo"


def demo_variables(endpoint: str, target: str, duration_seconds: int | None, report_dir: Path) -> dict:
    config = REPO / "examples" / "config.json"
    if duration_seconds is None:
        settings = {"config": str(config)}
    else:  # the same settings as variables, with another duration
        file = json.loads(config.read_text())
        settings = {
            "constellation_home_region": file["HOME_REGION"],
            "constellation_remote_regions": file["REMOTE_REGIONS"],
            "constellation_duration_seconds": duration_seconds,
        }
    return {
        **settings,
        **yaml.safe_load(IMAGES.read_text()),  # as -e @constellation-images.yml gives them
        "script": str(REPO / "examples" / "script.js"),
        "constellation_script_env": {"TARGET": target},  # the script reads its target from __ENV
        "constellation_aws_endpoint_url": endpoint,
        "constellation_run_id": RUN_ID,
        # The emulator cannot run Timestream queries, which the report needs; S3 works everywhere.
        "constellation_results_store": "s3",
        # moto ignores bucket-policy conditions and would refuse every object request.
        "constellation_bucket_tls_only": False,
        "constellation_start_lead_seconds": 5,
        "constellation_wait_poll_seconds": 5,
        "constellation_build_dir": str(LOGS / "build"),
        "constellation_report_dir": str(report_dir),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration-seconds", type=int, help="how long the load runs (default: DURATION of examples/config.json, 30 s)"
    )
    parser.add_argument("--report-dir", type=Path, default=REPO / "demo-report", help="where the report goes")
    options = parser.parse_args(argv)
    if not IMAGES.is_file():
        print(f"{IMAGES.name} is missing: `make images` builds the two images and writes it (make demo does both)")
        return 1
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    env = dict(os.environ, **FAKE_CREDENTIALS, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    started = time.monotonic()
    with (
        open(LOGS / "emulator.log", "w") as emulator_log,
        aws_emulator(LOGS / "emulator", log=emulator_log) as endpoint,
        demo_target() as target,
    ):
        report_dir = options.report_dir.resolve()
        variables = demo_variables(endpoint, target, options.duration_seconds, report_dir)
        print(f"Emulated AWS on {endpoint} (tasks run in podman; logs in {LOGS}); target service on {target}", flush=True)
        command = ["ansible-playbook", str(REPO / "playbooks" / "demo.yml"), "-e", json.dumps(variables)]
        returncode = subprocess.run(command, cwd=REPO, env=env, check=False).returncode
    elapsed = time.monotonic() - started
    if returncode != 0:
        print(
            f"\nDemo failed after {elapsed:.0f} s (ansible-playbook exit code {returncode}, see above); "
            f"the emulator and the target are stopped. Logs: {LOGS}"
        )
        return 1
    print(f"\nReport: {report_dir / 'index.html'} (summary for machines: {report_dir / 'summary.json'})")
    print(f"Demo finished in {elapsed:.0f} s: check -> init -> run_test -> visualize -> teardown_all.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted; the emulator (with every task it ran) and the target are stopped.")
        sys.exit(130)
