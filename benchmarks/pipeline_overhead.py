"""k6's request rate with our whole results pipeline ÷ k6 with no output, same script and target.

Pipeline: k6's experimental-prometheus-rw output with native histograms -> the aggregator process
-> interval records in the (emulated) home bucket. Baseline: the same k6 run with no output.
The two alternate, PAIRS times, against one nginx on loopback; the figure is the median of the
per-pair ratios. Last line: `ratio: X` (goal >= 0.90).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from harness import aggregator, create_bucket, k6_output_env, measured_on, median, run_k6
from scripts import mixed_requests
from targets import nginx_target

from emulator import moto_server

PAIRS = 5
VUS = 16
DURATION = "8s"


def run_pipeline(script: Path, work: Path, endpoint: str, target: str, pair: int) -> dict:
    with aggregator(endpoint, run_id=f"overhead-{pair}") as write_url:
        return run_k6(script, work / "ours.json", {"TARGET": target, **k6_output_env(write_url)}, pipeline=True)


def main() -> None:
    ratios = []
    with tempfile.TemporaryDirectory() as workdir, moto_server() as endpoint, nginx_target() as target:
        work = Path(workdir)
        create_bucket(endpoint)
        script = work / "script.js"
        script.write_text(mixed_requests(VUS, DURATION))
        for pair in range(PAIRS):
            # Alternate which of the two goes first, so a drift in machine load favours neither.
            if pair % 2:
                ours = run_pipeline(script, work, endpoint, target, pair)
                baseline = run_k6(script, work / "baseline.json", {"TARGET": target}, pipeline=False)
            else:
                baseline = run_k6(script, work / "baseline.json", {"TARGET": target}, pipeline=False)
                ours = run_pipeline(script, work, endpoint, target, pair)
            base_rate, our_rate = baseline["metrics"]["http_reqs"]["rate"], ours["metrics"]["http_reqs"]["rate"]
            ratios.append(our_rate / base_rate)
            print(f"pair {pair + 1}: no output {base_rate:8.0f} req/s, pipeline {our_rate:8.0f} req/s, ratio {ratios[-1]:.3f}")
    print(measured_on())
    print(f"ratio: {median(ratios):.3f}")


if __name__ == "__main__":
    main()
