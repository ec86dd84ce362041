"""`make demo`: the flow that exists so far, on this machine, against an AWS emulator.

Starts a moto server and a small API-like target service on loopback, runs
check -> init -> run_test (local executor, the three simulated regions of examples/config.json)
-> teardown_all, and stops both again (also on failure and Ctrl-C).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from emulator import FAKE_CREDENTIALS, moto_server
from targets import api_like_target

REPO = Path(__file__).resolve().parents[1]
STEPS = ["check", "init", "run_test", "teardown_all"]


def run_step(step: str, variables: dict, env: dict) -> int:
    print(f"\n=== {step} " + "=" * (70 - len(step)), flush=True)
    command = ["ansible-playbook", str(REPO / "playbooks" / f"{step}.yml"), "-e", json.dumps(variables)]
    return subprocess.run(command, cwd=REPO, env=env, check=False).returncode


def main() -> int:
    env = dict(os.environ, **FAKE_CREDENTIALS, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="constellation-demo-") as workdir,
        moto_server() as endpoint,
        api_like_target() as target,
    ):
        env["TARGET"] = target  # the script reads it from __ENV
        variables = {
            "config": str(REPO / "examples" / "config.json"),
            "script": str(REPO / "examples" / "script.js"),
            "constellation_aws_endpoint_url": endpoint,
            "constellation_executor": "local",
            # The emulator cannot query Timestream, which the report will need; S3 works everywhere.
            "constellation_results_store": "s3",
            # moto ignores bucket-policy conditions and would refuse every object request.
            "constellation_bucket_tls_only": False,
            "constellation_start_lead_seconds": 5,
            "constellation_build_dir": workdir,
            "constellation_local_log_dir": f"{workdir}/runs",
        }
        print(f"AWS emulator (moto) on {endpoint}; target service on {target}")
        for step in STEPS:
            if run_step(step, variables, env) != 0:
                print(f"\nDemo failed at {step}; the emulator is stopped and nothing is left behind.")
                return 1
    print(f"\nDemo finished in {time.monotonic() - started:.0f} s: {' -> '.join(STEPS)}.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted; the emulator is stopped.")
        sys.exit(130)
