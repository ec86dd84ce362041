"""The report of a 2,000-task run: does visualize read 1.2 million interval records within 60 s and 2 GB?

2,000 tasks over 20 regions ran 10 minutes with 5 request names: each task's aggregator wrote one
object per 5 s interval (120 objects a task, 240,000 in all), each holding a request record per
request name and the task's record, in the S3 results store's own format (``records.to_json``
lines under ``runs/<run>/records/<region>/<task>/``): 1.2 million request records and 240,000
task records. The latencies are real histograms (a few hundred distinct ones, log-normal samples
of each task's 250 requests an interval per name).

The objects are generated into a directory, and a child process reads them the way visualize
does: ``report_data.read_records_s3`` (the objects read 10 at a time, each record folded over the
tasks as it is parsed), ``build_summary`` with thresholds, and the HTML page. The child's S3
client lists and reads that directory, so the figure is the report's own work, without S3's
latency (which the 10 reads at a time hide).

Measured in the same child, as the baseline: parsing every line of every object with
``json.loads`` alone, the least any reader of this format does. Printed: the records, the time,
the peak memory (the child's maximum resident set), ``vs_json_parse`` (our time over the
baseline's), and last ``records_per_second: N``. Goals: at most 60 s, at most 2,048 MB.
"""

from __future__ import annotations

import io
import json
import math
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import REPO, TWENTY_REGIONS, measured_on

from results.histogram import Histogram
from results.progress import task_records_prefix
from results.records import RequestRecord
from results.records import TaskRecord
from results.records import to_json

RUN_ID = "scale-2000"
BUCKET = "constellation-bench"
REGIONS = TWENTY_REGIONS
TASKS_PER_REGION = 100
INTERVALS = 120  # 10 minutes of 5 s intervals
INTERVAL_MS = 5000
REQUEST_NAMES = ["list-users", "get-user", "search", "add-to-cart", "checkout"]
REQUESTS_PER_NAME = 250  # per task and interval: 50 requests a second per name
DISTINCT_HISTOGRAMS = 300
START_MS = 1_764_320_000_000
GOAL_SECONDS = 60
GOAL_MB = 2048


def generate(root: Path) -> int:
    """Write the run's objects under ``root`` (the bucket); return how many records they hold."""
    rng = random.Random(2000)
    latencies = []
    for _index in range(DISTINCT_HISTOGRAMS):
        histogram = Histogram()
        median = rng.uniform(0.02, 0.2)
        for _sample in range(REQUESTS_PER_NAME):
            histogram.record(rng.lognormvariate(math.log(median), 0.5))
        latencies.append(histogram)
    records = 0
    for region in REGIONS:
        for task in map(str, range(TASKS_PER_REGION)):
            directory = root / task_records_prefix(RUN_ID, region, task)
            directory.mkdir(parents=True)
            for step in range(INTERVALS):
                start = START_MS + step * INTERVAL_MS
                lines = [
                    to_json(
                        RequestRecord(
                            RUN_ID, region, task, name, "GET", "2xx", start, INTERVAL_MS,
                            REQUESTS_PER_NAME, 0, latencies[rng.randrange(DISTINCT_HISTOGRAMS)],
                        )
                    )
                    for name in REQUEST_NAMES
                ]  # fmt: skip
                lines.append(to_json(TaskRecord(RUN_ID, region, task, start, INTERVAL_MS, 1200, 3_000_000, 400_000, 10)))
                (directory / f"{start:013d}-{step:012x}.jsonl").write_text("\n".join(lines) + "\n")
                records += len(lines)
    return records


class DirectoryS3:
    """The two calls read_records_s3 makes, over a directory standing for the bucket."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def get_paginator(self, operation: str):
        assert operation == "list_objects_v2"
        root = self.root

        class Paginator:
            def paginate(self, Bucket: str, Prefix: str):  # noqa: N803 (boto3's names)
                keys = sorted(
                    str(path.relative_to(root)) for path in (root / Prefix).rglob("*") if path.is_file()
                )
                for first in range(0, len(keys), 1000):
                    yield {"Contents": [{"Key": key} for key in keys[first : first + 1000]]}

        return Paginator()

    def get_object(self, Bucket: str, Key: str) -> dict:  # noqa: N803 (boto3's names)
        return {"Body": io.BytesIO((self.root / Key).read_bytes())}


def child(root: Path) -> None:
    """Read the run as visualize does, then the baseline; print the figures as JSON."""
    from results import report_data
    from results import report_html
    from results.thresholds import parse_all

    client = DirectoryS3(root)
    started = time.perf_counter()
    records = report_data.read_records_s3(client, BUCKET, RUN_ID)
    tasks = {region: [str(task) for task in range(TASKS_PER_REGION)] for region in REGIONS}
    run = {
        "regions": dict.fromkeys(REGIONS, TASKS_PER_REGION),
        "start_at": START_MS,
        "start_at_iso8601": "2025-11-28T08:53:20.000Z",
        "completed_tasks": tasks,
        "exit_codes": {region: dict.fromkeys(ids, 0) for region, ids in tasks.items()},
        "started_at": {region: dict.fromkeys(ids, START_MS) for region, ids in tasks.items()},
    }
    thresholds = parse_all(
        {"http_req_duration": ["p(95)<500", "p(99)<1500"], "http_req_failed": ["rate<0.01"], "checks": ["rate>0.99"]},
        "constellation_thresholds",
    )
    summary = report_data.build_summary(
        records,
        run=run,
        plan={region: {"vus": 1000, "tasks": TASKS_PER_REGION} for region in REGIONS},
        run_id=RUN_ID,
        deployment="bench",
        results_store="s3",
        thresholds=thresholds,
        duration_ms=INTERVALS * INTERVAL_MS,
    )
    page = report_html.render(summary)
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    baseline_started = time.perf_counter()
    parsed = 0
    for page_of_keys in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=f"runs/{RUN_ID}/records/"):
        for item in page_of_keys["Contents"]:
            for line in client.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read().splitlines():
                json.loads(line)
                parsed += 1
    baseline = time.perf_counter() - baseline_started
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "peak_mb": peak_mb,
                "requests": summary["overall"]["requests"],
                "folded_records": len(records),
                "page_bytes": len(page),
                "baseline_seconds": baseline,
                "baseline_lines": parsed,
            }
        )
    )


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="report-scale-") as directory:
        root = Path(directory)
        generating = time.perf_counter()
        records = generate(root)
        print(
            f"generated: {records:,} records ({len(REGIONS) * TASKS_PER_REGION:,} tasks x {INTERVALS} intervals x"
            f" {len(REQUEST_NAMES)} request names, and a task record each) in {len(REGIONS) * TASKS_PER_REGION * INTERVALS:,}"
            f" objects, {time.perf_counter() - generating:.0f} s"
        )
        completed = subprocess.run(
            [sys.executable, __file__, "--child", str(root)], capture_output=True, text=True, check=True, cwd=REPO
        )
        figures = json.loads(completed.stdout.strip().splitlines()[-1])
    expected_requests = len(REGIONS) * TASKS_PER_REGION * INTERVALS * len(REQUEST_NAMES) * REQUESTS_PER_NAME
    if figures["requests"] != expected_requests or figures["baseline_lines"] != records:
        sys.exit(f"the report counted {figures['requests']} requests of {expected_requests}: not measured")
    seconds, peak_mb = figures["seconds"], figures["peak_mb"]
    print(
        f"visualize's reading, summary and page: {seconds:.1f} s (goal <= {GOAL_SECONDS}), {figures['folded_records']:,}"
        f" records after folding over the tasks, every one of the {expected_requests:,} requests counted"
    )
    print(f"baseline, json.loads of every line alone: {figures['baseline_seconds']:.1f} s")
    print(f"vs_json_parse: {seconds / figures['baseline_seconds']:.2f}")
    print(measured_on())
    print(f"peak_rss_mb: {peak_mb:.0f} (goal <= {GOAL_MB})")
    print(f"records_per_second: {records / seconds:.0f}")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]))
    else:
        main()
