"""Results-store records written per 1,000,000 requests, at a realistic request mix.

One k6 run (five request names, GET and POST, a 5% failing endpoint) against nginx on loopback,
through the whole pipeline (k6 remote-write output -> aggregator -> interval records in the
emulated home bucket). Every stored record counts: one S3 line is one Timestream record.
Last line: `records_per_million_requests: N` (goal <= 2000; the seed wrote about 2 per request,
i.e. 2,000,000).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness import aggregator, create_bucket, k6_output_env, measured_on, run_k6, stored_records
from scripts import mixed_requests
from targets import nginx_target

from emulator import moto_server

RUN_ID = "write-cost"


def main() -> None:
    with tempfile.TemporaryDirectory() as workdir, moto_server() as endpoint, nginx_target() as target:
        work = Path(workdir)
        s3 = create_bucket(endpoint)
        script = work / "script.js"
        script.write_text(mixed_requests(vus=16, duration="30s"))
        with aggregator(endpoint, run_id=RUN_ID) as write_url:
            summary = run_k6(script, work / "summary.json", {"TARGET": target, **k6_output_env(write_url)}, pipeline=True)
        records = stored_records(s3, RUN_ID)
    requests = summary["metrics"]["http_reqs"]["count"]
    stored_requests = sum(getattr(record, "requests", 0) for record in records)
    print(f"requests made: {requests}, requests counted in the records: {stored_requests}")
    print(f"records written: {len(records)} ({len(records) - sum(1 for r in records if hasattr(r, 'requests'))} task records)")
    print(measured_on())
    print(f"records_per_million_requests: {len(records) / requests * 1_000_000:.0f}")


if __name__ == "__main__":
    main()
