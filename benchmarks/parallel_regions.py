"""How much longer deploying 5 remote regions takes than deploying 1, on one moto server.

Runs playbooks/run_test.yml (fargate executor, constellation_wait=false: deploy every region and
start its tasks) for 1 region and for 5 regions, alternately, --repeat times each, each time on an
emptied emulator with the home region deployed beforehand (not timed). Prints each wall time and,
last, `ratio: X` = median(5 regions) / median(1 region). Regions deploy as parallel hosts, so the
ratio is near 1 when the machine has spare cores and grows toward 5 as the CPU runs out.

Each run also shows the CPU time its run_test used (Ansible and its modules, not the emulator) and
the 1-minute load average before it, to tell a run slowed down by other work on the machine.

    .venv/bin/python benchmarks/parallel_regions.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))

from emulator import FAKE_CREDENTIALS, moto_server, reset  # noqa: E402
from harness import measured_on  # noqa: E402

HOME = "eu-central-1"
REGIONS = ["us-east-2", "ca-central-1", "ap-northeast-1", "eu-west-1", "sa-east-1"]
SCRIPT = 'import http from "k6/http";\nexport default function () { http.get("http://127.0.0.1:9/"); }\n'


def playbook(name: str, variables: dict) -> tuple[float, float]:
    """Run a playbook; return its wall and CPU time in seconds, or exit with its output if it failed."""
    env = dict(os.environ, **FAKE_CREDENTIALS, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    command = [str(Path(sys.executable).parent / "ansible-playbook"), str(REPO / "playbooks" / f"{name}.yml"), "-e", json.dumps(variables)]
    cpu_before, started = cpu_of_children(), time.monotonic()
    completed = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed, cpu = time.monotonic() - started, cpu_of_children() - cpu_before
    if completed.returncode != 0:
        sys.exit(f"{name} failed:\n{completed.stdout}{completed.stderr}")
    return elapsed, cpu


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def settings(url: str, workdir: Path, regions: list[str]) -> dict:
    config = workdir / f"config-{len(regions)}.json"
    config.write_text(json.dumps({"DURATION": 20000, "HOME_REGION": HOME, "REMOTE_REGIONS": dict.fromkeys(regions, 450)}))
    return {
        "config": str(config),
        "script": str(workdir / "script.js"),
        "constellation_aws_endpoint_url": url,
        "constellation_build_dir": str(workdir / "build"),
        "constellation_bucket_tls_only": False,
        "constellation_run_id": "benchmark",
        "constellation_wait": False,
        "constellation_load_generator_image": "registry.example/constellation/load-generator:1",
        "constellation_aggregator_image": "registry.example/constellation/aggregator:1",
    }


def deploy_time(url: str, variables: dict) -> tuple[float, float]:
    reset(url)
    playbook("init", variables)
    return playbook("run_test", variables)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5, help="measurements of each size (default 5)")
    args = parser.parse_args()
    os.environ.update(FAKE_CREDENTIALS)
    times: dict[int, list[float]] = {1: [], 5: []}
    with tempfile.TemporaryDirectory() as directory, moto_server() as url:
        workdir = Path(directory)
        (workdir / "script.js").write_text(SCRIPT)
        # moto sets up its EC2 data on the first EC2 call it serves (about 1.5 s of CPU, once):
        # not in the first measured run, which would favour the ratio.
        boto3.client("ec2", region_name=HOME, endpoint_url=url).describe_vpcs()
        for attempt in range(1, args.repeat + 1):
            for count in (1, 5):
                load = os.getloadavg()[0]
                elapsed, cpu = deploy_time(url, settings(url, workdir, REGIONS[:count]))
                times[count].append(elapsed)
                print(f"run {attempt}: {count} region(s) deployed in {elapsed:.1f} s ({cpu:.0f} CPU-s, load {load:.1f} before)", flush=True)
    one, five = statistics.median(times[1]), statistics.median(times[5])
    print(f"median: 1 region {one:.1f} s, 5 regions {five:.1f} s ({os.cpu_count()} CPUs)")
    print(measured_on())
    print(f"ratio: {five / one:.2f}")


if __name__ == "__main__":
    main()
