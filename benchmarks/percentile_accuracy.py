"""Merged percentiles from stored interval records vs the exact percentiles of every raw sample.

TASKS load generator tasks (k6 + aggregator each, as the local executor runs them) hit one
API-like target at once; each k6 also writes its raw samples (JSON output) for this check only.
Exact p50/p90/p95/p99/p99.9 of all http_req_duration samples of all tasks, k6's own
interpolation, against the same quantiles of the histograms merged from the stored records of all
tasks and intervals. Three latency distributions, one after the other: lognormal (one mode, an
API's usual shape), bimodal (90 % fast cache hits, 10 % slow misses: the percentiles between the
modes are the hard ones) and heavy-tailed (Pareto, alpha 1.5: p99.9 far out). Last line:
`max_relative_error: E`, the worst over every distribution and quantile (goal <= 0.01).
"""

from __future__ import annotations

import json
import math
import random
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
QUANTILES = (0.50, 0.90, 0.95, 0.99, 0.999)
DURATION = "15s"


def bimodal() -> float:
    """90 % cache hits around 4 ms, 10 % misses around 150 ms."""
    median = 0.004 if random.random() < 0.9 else 0.150
    return random.lognormvariate(math.log(median), 0.25)


def heavy_tailed() -> float:
    """Pareto from 3 ms, alpha 1.5 (infinite variance), capped at 2 s to bound the run."""
    return min(0.003 * random.paretovariate(1.5), 2.0)


# Name -> the target's latency function (None: api_like_target's lognormal, median 8 ms).
DISTRIBUTIONS = {"lognormal": None, "bimodal": bimodal, "heavy-tailed": heavy_tailed}


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


def run_task(task: int, work: Path, endpoint: str, target: str, script: Path, run_id: str) -> None:
    with aggregator(endpoint, run_id=run_id, task=task) as write_url:
        run_k6(script, work / f"summary-{task}.json", {"TARGET": target, **k6_output_env(write_url)},
               pipeline=True, raw_samples=work / f"raw-{task}.json")


def measure(name: str, delay, endpoint: str) -> list[float]:
    """One distribution: the relative error of each quantile, printed."""
    with tempfile.TemporaryDirectory() as workdir, api_like_target(delay=delay) as target:
        work = Path(workdir)
        s3 = create_bucket(endpoint)
        run_id = f"{RUN_ID}-{name}"
        script = work / "script.js"
        script.write_text(mixed_requests(vus=8, duration=DURATION))
        threads = [
            threading.Thread(target=run_task, args=(task, work, endpoint, target, script, run_id)) for task in range(TASKS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        merged = merge_all(record.latency for record in request_records(stored_records(s3, run_id)))
        samples = sorted(value for task in range(TASKS) for value in raw_durations_ms(work / f"raw-{task}.json"))
    print(f"{name}: {TASKS} tasks, {len(samples)} raw samples, {merged.count:.0f} in the merged histogram (schema {merged.schema})")
    errors = []
    for q in QUANTILES:
        exact, ours = exact_quantile(samples, q), merged.quantile(q) * 1000
        errors.append(abs(ours - exact) / exact)
        print(f"  p{q * 100:g}: exact {exact:9.3f} ms, merged {ours:9.3f} ms, relative error {errors[-1]:.4f}")
    return errors


def main() -> None:
    commit = measured_on()  # before the run: the tree may change while it runs
    worst = []
    with moto_server() as endpoint:
        for name, delay in DISTRIBUTIONS.items():
            errors = measure(name, delay, endpoint)
            worst.append((max(errors), name, QUANTILES[errors.index(max(errors))]))
    error, name, quantile = max(worst)
    print(f"worst: p{quantile * 100:g} of {name}")
    print(commit)
    print(f"max_relative_error: {error:.4f}")


if __name__ == "__main__":
    main()
