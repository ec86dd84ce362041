"""Merged percentiles from stored interval records vs the exact percentiles of every raw sample.

TASKS load generator tasks (k6 + aggregator each, as the local executor runs them) hit one
API-like target at once; each k6 also writes its raw samples (JSON output) for this check only.
Exact p50/p90/p95/p99 of all http_req_duration samples of all tasks, k6's own interpolation,
against the same quantiles of the histograms merged from the stored records of all tasks and
intervals. Last line: `max_relative_error: E` (goal <= 0.01).
"""

from __future__ import annotations

import json
import math
import tempfile
import threading
from pathlib import Path

from harness import aggregator, create_bucket, k6_output_env, measured_on, request_records, run_k6, stored_records
from results.histogram import merge_all
from scripts import mixed_requests
from targets import api_like_target

from emulator import moto_server

TASKS = 3
RUN_ID = "percentile-accuracy"
QUANTILES = (0.50, 0.90, 0.95, 0.99)


def exact_quantile(ordered: list[float], q: float) -> float:
    """k6's percentile: linear interpolation between the closest ranks."""
    position = q * (len(ordered) - 1)
    lower = math.floor(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def raw_durations_ms(path: Path) -> list[float]:
    values = []
    with path.open() as lines:
        for line in lines:
            sample = json.loads(line)
            if sample.get("type") == "Point" and sample.get("metric") == "http_req_duration":
                values.append(sample["data"]["value"])
    return values


def run_task(task: int, work: Path, endpoint: str, target: str, script: Path) -> None:
    with aggregator(endpoint, run_id=RUN_ID, task=task) as write_url:
        run_k6(script, work / f"summary-{task}.json", {"TARGET": target, **k6_output_env(write_url)},
               pipeline=True, raw_samples=work / f"raw-{task}.json")


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir, moto_server() as endpoint, api_like_target() as target:
        work = Path(workdir)
        s3 = create_bucket(endpoint)
        script = work / "script.js"
        script.write_text(mixed_requests(vus=8, duration="20s"))
        threads = [threading.Thread(target=run_task, args=(task, work, endpoint, target, script)) for task in range(TASKS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        merged = merge_all(record.latency for record in request_records(stored_records(s3, RUN_ID)))
        samples = sorted(value for task in range(TASKS) for value in raw_durations_ms(work / f"raw-{task}.json"))
    print(f"{TASKS} tasks, {len(samples)} raw samples, {merged.count:.0f} in the merged histogram (schema {merged.schema})")
    errors = []
    for q in QUANTILES:
        exact, ours = exact_quantile(samples, q), merged.quantile(q) * 1000
        errors.append(abs(ours - exact) / exact)
        print(f"p{q * 100:g}: exact {exact:8.3f} ms, merged {ours:8.3f} ms, relative error {errors[-1]:.4f}")
    print(measured_on())
    print(f"max_relative_error: {max(errors):.4f}")


if __name__ == "__main__":
    main()
