"""Results-store records written, per task-minute and per million requests, at two request rates.

Two k6 runs through the whole pipeline (k6 remote-write output -> aggregator -> interval records
in the emulated home bucket) against nginx on loopback. Every stored record counts: one S3 line
is one Timestream record, and a record's cost does not depend on what it counts.

* **Realistic**: one task at 100 requests per second (a constant arrival rate), 5 request names,
  for REALISTIC_SECONDS. With 5 s intervals a task writes about one record per request name and
  status class per interval, whatever the rate: the figure per million requests falls as the rate
  rises, the figure per task-minute does not.
* **High rate**: 16 VUs as fast as nginx answers (five request names, GET and POST, a 5 % failing
  endpoint), the earlier figure.

The baseline, in the same run: the seed's one record per request at the realistic rate (6,000 per
task-minute). Last line: `records_per_task_minute: N` at the realistic rate.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness import aggregator, create_bucket, k6_output_env, measured_on, run_k6, stored_records
from scripts import mixed_requests
from targets import nginx_target

from emulator import moto_server

RUN_ID = "write-cost"
REALISTIC_RATE = 100  # requests per second per task
REALISTIC_SECONDS = 60
REALISTIC = f"""
import http from 'k6/http';
export const options = {{ scenarios: {{ steady: {{ executor: 'constant-arrival-rate', rate: {REALISTIC_RATE},
  timeUnit: '1s', duration: '{REALISTIC_SECONDS}s', preAllocatedVUs: 20 }} }} }};
const names = ['list-users', 'list-orders', 'create-order', 'search', 'checkout'];
export default function () {{
  const name = names[__ITER % names.length];
  http.get(`${{__ENV.TARGET}}/api/${{name}}`, {{ tags: {{ name }} }});
}}
"""


def measure(endpoint: str, target: str, script_text: str, run_id: str) -> tuple[int, int, float]:
    """Requests k6 made, records stored, and how long k6 ran (s), for one run of one task."""
    with tempfile.TemporaryDirectory() as workdir:
        work = Path(workdir)
        s3 = create_bucket(endpoint)
        script = work / "script.js"
        script.write_text(script_text)
        with aggregator(endpoint, run_id=run_id) as write_url:
            summary = run_k6(script, work / "summary.json", {"TARGET": target, **k6_output_env(write_url)}, pipeline=True)
        records = stored_records(s3, run_id)
    requests = summary["metrics"]["http_reqs"]["count"]
    seconds = requests / summary["metrics"]["http_reqs"]["rate"]
    stored_requests = sum(getattr(record, "requests", 0) for record in records)
    if stored_requests != requests:
        raise SystemExit(f"{run_id}: k6 made {requests} requests, the records count {stored_requests}")
    return requests, len(records), seconds


def main() -> None:
    commit = measured_on()  # before the runs: the tree may change while they run
    with moto_server() as endpoint, nginx_target() as target:
        realistic = measure(endpoint, target, REALISTIC, f"{RUN_ID}-realistic")
        high = measure(endpoint, target, mixed_requests(vus=16, duration="30s"), f"{RUN_ID}-high")
    rows = {}
    for name, (requests, records, seconds) in (("realistic", realistic), ("high rate", high)):
        rows[name] = (records / seconds * 60, records / requests * 1_000_000)
        print(
            f"{name:9s}: {requests:9,} requests in {seconds:5.1f} s ({requests / seconds:8,.0f} req/s), {records:5,} records:"
            f" {rows[name][0]:6,.0f} per task-minute, {rows[name][1]:9,.0f} per million requests"
        )
    per_minute = rows["realistic"][0]
    print(f"baseline, one record per request (the seed) at {REALISTIC_RATE} req/s: {REALISTIC_RATE * 60:,} per task-minute")
    print(f"records_per_million_requests_at_{REALISTIC_RATE}_rps: {rows['realistic'][1]:.0f}")
    print(f"records_per_million_requests_high_rate: {rows['high rate'][1]:.0f}")
    print(f"vs_one_record_per_request: {per_minute / (REALISTIC_RATE * 60):.4f}")
    print(commit)
    print(f"records_per_task_minute: {per_minute:.0f}")


if __name__ == "__main__":
    main()
