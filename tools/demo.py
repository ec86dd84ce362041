"""`make demo`: the whole flow on this machine, against an AWS emulator.

Starts a moto server and a small target service on loopback (endpoints with their own latencies
and a small error rate), runs playbooks/demo.yml: check -> init -> run_test (local executor, the
three simulated regions of examples/config.json) -> visualize -> teardown_all, prints where the
report is and how long it took, and stops both again (also on failure and Ctrl-C).

    python tools/demo.py [--duration-seconds 30] [--report-dir demo-report]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from emulator import FAKE_CREDENTIALS, moto_server
from targets import demo_target

REPO = Path(__file__).resolve().parents[1]
RUN_ID = "demo"
# Every process the demo starts inherits this variable, also those that leave its process group
# (Ansible's async jobs and the local load generators start their own sessions).
MARKER = "CONSTELLATION_DEMO_SESSION"


def marked_processes(session: str) -> list[int]:
    """The processes (other than this one) that carry this demo's marker in their environment."""
    marked = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:  # gone already, or not ours to read
            continue
        if f"{MARKER}={session}".encode() in environ:
            marked.append(int(entry.name))
    return marked


def stop_leftovers(session: str, grace_seconds: float = 10.0) -> int:
    """Stop the processes this demo left running (after Ctrl-C or a failure); how many there were.

    SIGTERM first (an aggregator then writes what it holds), SIGKILL for what is left after the grace.
    """
    leftovers = marked_processes(session)
    for signal_number in (signal.SIGTERM, signal.SIGKILL):
        for pid in marked_processes(session):
            with contextlib.suppress(OSError):
                os.kill(pid, signal_number)
        deadline = time.monotonic() + grace_seconds
        while marked_processes(session) and time.monotonic() < deadline:
            time.sleep(0.2)
    return len(leftovers)


def demo_variables(endpoint: str, workdir: str, duration_seconds: int | None, report_dir: Path) -> dict:
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
        "script": str(REPO / "examples" / "script.js"),
        "constellation_aws_endpoint_url": endpoint,
        "constellation_executor": "local",
        "constellation_run_id": RUN_ID,
        # The emulator cannot run Timestream queries, which the report needs; S3 works everywhere.
        "constellation_results_store": "s3",
        # moto ignores bucket-policy conditions and would refuse every object request.
        "constellation_bucket_tls_only": False,
        "constellation_start_lead_seconds": 5,
        "constellation_build_dir": workdir,
        "constellation_local_log_dir": f"{workdir}/runs",
        "constellation_report_dir": str(report_dir),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--duration-seconds", type=int, help="how long the load runs (default: DURATION of examples/config.json, 30 s)"
    )
    parser.add_argument("--report-dir", type=Path, default=REPO / "demo-report", help="where the report goes")
    options = parser.parse_args(argv)

    session = uuid.uuid4().hex
    env = dict(os.environ, **FAKE_CREDENTIALS, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), **{MARKER: session})
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="constellation-demo-") as workdir,
        moto_server() as endpoint,
        demo_target() as target,
    ):
        env["TARGET"] = target  # the script reads it from __ENV
        report_dir = options.report_dir.resolve()
        variables = demo_variables(endpoint, workdir, options.duration_seconds, report_dir)
        print(f"AWS emulator (moto) on {endpoint}; target service on {target}", flush=True)
        command = ["ansible-playbook", str(REPO / "playbooks" / "demo.yml"), "-e", json.dumps(variables)]
        try:
            returncode = subprocess.run(command, cwd=REPO, env=env, check=False).returncode
        finally:
            if stop_leftovers(session):
                print("Stopped the demo's processes that were still running.")
    elapsed = time.monotonic() - started
    if returncode != 0:
        print(
            f"\nDemo failed after {elapsed:.0f} s (ansible-playbook exit code {returncode}, see above); "
            "the emulator and the target are stopped."
        )
        return 1
    print(f"\nReport: {report_dir / 'index.html'} (summary for machines: {report_dir / 'summary.json'})")
    print(f"Demo finished in {elapsed:.0f} s: check -> init -> run_test -> visualize -> teardown_all.")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\nInterrupted; the emulator and the target are stopped.")
        sys.exit(130)
