"""`make demo`: the flow that exists so far, on this machine, against an AWS emulator.

Starts a moto server on loopback, runs check -> init -> teardown_home with examples/config.json,
and stops the server again (also on failure and Ctrl-C).
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

REPO = Path(__file__).resolve().parents[1]
STEPS = ["check", "init", "teardown_home"]


def run_step(step: str, variables: dict, env: dict) -> int:
    print(f"\n=== {step} " + "=" * (70 - len(step)), flush=True)
    command = ["ansible-playbook", str(REPO / "playbooks" / f"{step}.yml"), "-e", json.dumps(variables)]
    return subprocess.run(command, cwd=REPO, env=env, check=False).returncode


def main() -> int:
    env = dict(os.environ, **FAKE_CREDENTIALS, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="constellation-demo-") as workdir, moto_server() as endpoint:
        variables = {
            "config": str(REPO / "examples" / "config.json"),
            "constellation_aws_endpoint_url": endpoint,
            "constellation_executor": "local",
            "constellation_build_dir": workdir,
        }
        print(f"AWS emulator (moto) on {endpoint}")
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
