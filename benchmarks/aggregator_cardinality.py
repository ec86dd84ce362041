"""The aggregator's CPU and memory as the number of distinct URLs grows, with the request-name cap on.

k6 names a request by its URL unless the script tags it (``name``), so a script that builds URLs
(``/items/${id}``) sends one series per URL: the aggregator keeps at most 1,000 request names per
task (CONSTELLATION_MAX_REQUEST_NAMES) and sums the rest into ``(other)``. Here one k6 makes
RATE requests per second for SECONDS, cycling over 10, 1,000 and then 10,000 distinct URLs, into a
real aggregator process (the local executor's) storing to the emulated bucket. Measured per run:
the aggregator's CPU seconds per minute of load and per push, and its peak resident memory.

The baseline, in the same run: the 10-URL run. Last line: `cpu_ratio: R`, the CPU seconds per
minute at 10,000 URLs over those at 10 URLs (goal <= 3).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness import aggregator, create_bucket, k6_output_env, measured_on, run_k6, stored_records
from targets import nginx_target

from emulator import moto_server

RUN_ID = "cardinality"
RATE = 200  # requests per second
SECONDS = 40
URLS = (10, 1_000, 10_000)
SCRIPT = """
import http from 'k6/http';
import exec from 'k6/execution';
export const options = {{ scenarios: {{ urls: {{ executor: 'constant-arrival-rate', rate: {rate}, timeUnit: '1s',
  duration: '{seconds}s', preAllocatedVUs: 20 }} }} }};
export default function () {{
  http.get(`${{__ENV.TARGET}}/items/${{exec.scenario.iterationInTest % {urls}}}`);  // __ITER counts per VU
}}
"""


def measure(endpoint: str, target: str, urls: int) -> dict:
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        s3 = create_bucket(endpoint)
        script = work / "script.js"
        script.write_text(SCRIPT.format(rate=RATE, seconds=SECONDS, urls=urls))
        usage: dict = {}
        run_id = f"{RUN_ID}-{urls}"
        with aggregator(endpoint, run_id=run_id, usage=usage) as write_url:
            summary = run_k6(script, work / "summary.json", {"TARGET": target, **k6_output_env(write_url)}, pipeline=True)
        stored = sum(getattr(record, "requests", 0) for record in stored_records(s3, run_id))
    requests = summary["metrics"]["http_reqs"]["count"]
    minutes = requests / summary["metrics"]["http_reqs"]["rate"] / 60
    finish = usage["finish"]
    if stored != requests:
        raise SystemExit(f"{urls} URLs: k6 made {requests} requests, the store holds {stored}")
    return {
        "cpu_per_minute": usage["cpu_seconds"] / minutes,
        "cpu_ms_per_push": 1000 * usage["cpu_seconds"] / max(finish["pushes"], 1),
        "peak_rss_mb": usage["peak_rss_mb"],
        "folded": finish["folded_request_names"],
        "requests": requests,
    }


def main() -> None:
    commit = measured_on()  # before the runs: the tree may change while they run
    with moto_server() as endpoint, nginx_target() as target:
        results = {urls: measure(endpoint, target, urls) for urls in URLS}
    for urls, result in results.items():
        print(
            f"{urls:6,} URLs: {result['requests']:6,} requests, aggregator {result['cpu_per_minute']:5.2f} CPU-s per minute,"
            f" {result['cpu_ms_per_push']:6.1f} ms per push, peak {result['peak_rss_mb']:5.0f} MB;"
            f" {result['folded']:,} names folded into (other)"
        )
    print(commit)
    print(f"cpu_ratio: {results[URLS[-1]]['cpu_per_minute'] / results[URLS[0]]['cpu_per_minute']:.2f}")


if __name__ == "__main__":
    main()
