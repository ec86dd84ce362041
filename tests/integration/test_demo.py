"""The demo flow end to end, as `make demo` runs it, with a shorter load; its report in Chromium.

check -> init -> run_test (the fargate executor on the emulated AWS the demo starts and stops
itself: the 3 regions of examples/config.json as containers of our images, real k6 against the
demo's target service) -> visualize -> teardown_all. The report it leaves is opened in headless
Chromium; nothing of the demo is left running.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from browser import inspect_page
from conftest import PRODUCTION, REPO, VENV_BIN, our_containers, our_pods

OUTPUT = REPO / "tests" / "output"
REGIONS = json.loads((REPO / "examples" / "config.json").read_text())["REMOTE_REGIONS"]


@PRODUCTION
def test_demo_flow_writes_a_report_that_draws_in_chromium(tmp_path):
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    command = [sys.executable, "tools/demo.py", "--duration-seconds", "8", "--report-dir", str(tmp_path)]
    demo = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)

    assert demo.returncode == 0, demo.stdout[-4000:] + demo.stderr[-4000:]
    assert "Demo finished in" in demo.stdout
    assert our_containers() == [] and our_pods() == []
    assert "Run demo: PASS" in demo.stdout  # the summary table visualize printed
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["complete"] is True and summary["verdict"] == "pass"
    assert set(summary["regions"]) == set(REGIONS)
    assert all(summary["regions"][region]["requests"] > 0 for region in REGIONS)
    assert summary["start_skew_ms"] is not None and summary["start_skew_ms"] < 1000
    assert {t["name"] for t in summary["thresholds"]} >= {"http_req_duration", "http_req_failed", "checks"}
    assert all(t["ok"] for t in summary["thresholds"])

    page = inspect_page(tmp_path / "index.html", OUTPUT / "report-demo.png")

    assert page.console == []
    assert page.chart_count >= 6
    assert page.drawn_chart_count == page.chart_count
    assert (OUTPUT / "report-demo.png").stat().st_size > 10_000
