"""The load generator with real k6, an emulated home region and a stub aggregator, as local processes.

Each run goes the whole way: script from the bucket, registration with the orchestrator function
deployed in the emulator (invoked as the tasks invoke it), a start decided once, k6 started paused
and resumed at the start, test-end in the orchestrator state. Every task gets the environment
of the task contract (tools/task_processes.py). The script writes k6's end-of-test summary of
each task to a file, so the tests can count what every task really ran. The same runs as
containers on the emulated ECS are in test_production_path.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import http.client
import urllib.parse
from fractions import Fraction
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError
from conftest import REPO, VENV_BIN

sys.path.insert(0, str(REPO / ".build" / "collections"))

from run import orchestrator_state  # noqa: E402
from aws import orchestrator_table  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import load_config  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import plan  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import script_load_segments  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.results.progress import script_key  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import Home  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import Run as TaskRun  # noqa: E402
from containers import load_entrypoint  # noqa: E402
from task_processes import Entrypoints, contract_tasks, deploy_orchestrator, run_tasks  # noqa: E402

LOAD_GENERATOR = load_entrypoint("load_generator")
Failure = LOAD_GENERATOR.Failure

HOME = "eu-central-1"
BUCKET = "loadtest-home"
TABLE = "loadtest-state"
K6 = str(VENV_BIN / "k6")
ENTRYPOINTS = dataclasses.replace(
    Entrypoints.of_collection(REPO), aggregator=REPO / "tests" / "integration" / "stub_aggregator.py"
)
LEAD_SECONDS = 4  # enough for six generators and their k6 to come up on two busy cores

SUMMARY = """
export function handleSummary(data) {
  const name = `${__ENV.SUMMARY_DIR}/${__ENV.CONSTELLATION_REGION}-${__ENV.CONSTELLATION_TASK_INDEX}.json`;
  return { [name]: JSON.stringify(data) };
}
"""
VUS_SCRIPT = "import { sleep } from 'k6';\nexport default function () { sleep(0.1); }\n" + SUMMARY
ARRIVAL_RATE = {"rate": 60, "seconds": 3}
# preAllocatedVUs is a multiple of the sequence's exact_vus_multiple (21): k6 divides the
# iterations of an arrival-rate scenario by its VUs re-segmented over the sequence.
ARRIVAL_RATE_SCRIPT = (
    "export const options = { scenarios: { rate: { executor: 'constant-arrival-rate',"
    f" rate: {ARRIVAL_RATE['rate']}, timeUnit: '1s', duration: '{ARRIVAL_RATE['seconds']}s', preAllocatedVUs: 42 }} }} }};\n"
    "export default function () {}\n" + SUMMARY
)


@dataclasses.dataclass
class Run:
    """A finished local run: its results, the generators' JSON logs and the orchestrator state."""

    results: list
    timed_out: bool
    logs: dict[str, list[dict]]
    summaries: dict[str, dict]
    state: dict
    elapsed: float

    def events(self, name: str, key: str = "event") -> dict[str, list[dict]]:
        return {task: [line for line in lines if line.get(key) == name] for task, lines in self.logs.items()}

    def failures(self) -> str:
        """The last log lines of every task that did not succeed, for assertion messages."""
        return "\n".join(
            f"{r.region}-{r.index} exited {r.load_generator_exit_code}:\n" + "\n".join(map(str, self.logs[f"{r.region}-{r.index}"][-5:]))
            for r in self.results
            if r.load_generator_exit_code != 0
        )


def function_name(run_id: str) -> str:
    return f"orchestrator-{run_id}"  # one per run: its log is the run's alone


def prepare_home(moto_url: str, script: str, run_id: str, regions: dict[str, int], lead_seconds: int) -> None:
    """The home region as init.yml and run_test.yml leave it: bucket, script, state table, function, reset run."""
    s3 = _client("s3", moto_url)
    s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": HOME})
    # A plain script under the test's key: k6 runs it as a script (it tells an archive by its content).
    s3.put_object(Bucket=BUCKET, Key=script_key(run_id), Body=script.encode())
    dynamodb = _client("dynamodb", moto_url)
    orchestrator_table.create_table(dynamodb, TABLE, {})
    orchestrator_table.wait_for_table(dynamodb, TABLE, exists=True, timeout_seconds=10)
    orchestrator_state.reset_run(dynamodb, TABLE, run_id, regions, lead_seconds)
    deploy_orchestrator(moto_url, HOME, function_name(run_id), TABLE)


def _client(service: str, moto_url: str):
    import boto3

    return boto3.client(service, region_name=HOME, endpoint_url=moto_url)


def kept_sha256(moto_url: str, run_id: str) -> str:
    """The hash run_test would give the tasks: that of the test prepare_home kept (of nothing, if none)."""
    try:
        kept = _client("s3", moto_url).get_object(Bucket=BUCKET, Key=script_key(run_id))["Body"].read()
    except (BotoCoreError, ClientError):
        kept = b""  # a test whose tasks never fetch the script
    return hashlib.sha256(kept).hexdigest()


def tasks_of(
    config, moto_url: str, run_id: str, summary_dir: Path, k6: str = K6, token_key: bytes | None = None, **run: object
) -> list:
    """Every planned task of the run, with the contract's environment (and where k6 and the summaries are).

    Each task has its token from the run's key in the state table, unless ``token_key`` is given.
    """
    home = Home(region=HOME, results_store="s3", bucket=BUCKET, function=function_name(run_id))
    if "script_sha256" not in run:
        run["script_sha256"] = kept_sha256(moto_url, run_id)
    return contract_tasks(
        config,
        home,
        TaskRun(run_id, **run),
        endpoint_url=moto_url,
        interval_seconds=1,
        extra_env={"SUMMARY_DIR": str(summary_dir), "CONSTELLATION_K6": k6},
        token_key=token_key or orchestrator_state.read_token_key(_client("dynamodb", moto_url), TABLE, run_id),
    )


def execute(moto_server, tmp: Path, tasks: list, run_id: str, timeout: float = 60) -> Run:
    started = time.monotonic()
    process_run = run_tasks(tasks, ENTRYPOINTS, tmp / "logs", timeout_seconds=timeout, grace_seconds=5)
    elapsed = time.monotonic() - started
    logs = {f"{r.region}-{r.index}": json_lines(r.load_generator_log) for r in process_run.tasks}
    logs["orchestrator"] = json_lines(moto_server.function_log(function_name(run_id)))
    summaries = {path.stem: json.loads(path.read_text()) for path in (tmp / "summaries").glob("*.json")}
    state = orchestrator_state.read_run(_client("dynamodb", moto_server.url), TABLE, run_id)
    return Run(process_run.tasks, process_run.timed_out, logs, summaries, state, elapsed)


def json_lines(path: Path) -> list[dict]:
    """The JSON object lines of a log (k6's own summary text, if any, is skipped)."""
    lines = []
    for line in path.read_text().splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            lines.append(value)
    return lines


def home_with(moto_server, tmp: Path, script: str, config, run_id: str, lead_seconds: int = LEAD_SECONDS) -> Path:
    moto_server.reset()
    planned = {region: p["tasks"] for region, p in plan(config)["remote_regions"].items()}
    prepare_home(moto_server.url, script, run_id, planned, lead_seconds)
    summary_dir = tmp / "summaries"
    summary_dir.mkdir()
    return summary_dir


# ---------------------------------------------------------------------------------------------
# The vus load model: 2 regions x 3 tasks, one synchronized start
# ---------------------------------------------------------------------------------------------

VUS_CONFIG = load_config(
    settings={
        "home_region": HOME,
        "remote_regions": {"us-east-2": 8, "ca-central-1": 7},
        "duration_seconds": 2,
        "max_vus_per_task": 3,
    }
)


@pytest.fixture(scope="module")
def vus_run(moto_server, tmp_path_factory) -> Run:
    tmp = tmp_path_factory.mktemp("vus-run")
    summary_dir = home_with(moto_server, tmp, VUS_SCRIPT, VUS_CONFIG, "vus-run")
    tasks = tasks_of(VUS_CONFIG, moto_server.url, "vus-run", summary_dir)
    return execute(moto_server, tmp, tasks, "vus-run")


def test_every_task_succeeds(vus_run):
    assert not vus_run.timed_out, vus_run.failures()
    assert [(r.region, r.index, r.load_generator_exit_code, r.aggregator_exit_code) for r in vus_run.results] == [
        (region, index, 0, 0) for region in ("ca-central-1", "us-east-2") for index in range(3)
    ], vus_run.failures()


def test_vu_split_is_exact(vus_run):
    planned = plan(VUS_CONFIG)["remote_regions"]
    for region, region_plan in planned.items():
        ran = [vus_run.summaries[f"{region}-{index}"]["metrics"]["vus_max"]["values"]["max"] for index in range(3)]
        assert ran == region_plan["vus_per_task"]
        assert sum(ran) == VUS_CONFIG.remote_regions[region]


def test_start_is_decided_once_and_every_task_resumes_at_it(vus_run):
    decisions = vus_run.events("start_decided", key="message")["orchestrator"]
    assert len(decisions) == 1
    assert vus_run.state["start_at"] == decisions[0]["start_at"]
    starts = [lines[0]["at_ms"] for lines in vus_run.events("k6-started").values() if lines]
    assert len(starts) == 6
    spread = max(starts) - min(starts)
    lateness = [lines[0]["late_ms"] for lines in vus_run.events("k6-started").values() if lines]
    print(f"k6 start spread over 6 tasks: {spread:.1f} ms; late by {min(lateness):.1f} to {max(lateness):.1f} ms")
    assert spread < 100
    assert all(0 <= late < 100 for late in lateness)


def test_every_task_end_is_recorded(vus_run):
    state = vus_run.state
    assert state["exit_codes"] == {region: {"0": 0, "1": 0, "2": 0} for region in ("ca-central-1", "us-east-2")}, state
    assert state["completed_regions"] == ["ca-central-1", "us-east-2"], state
    assert state["task_thresholds"] == {region: {"0": {}, "1": {}, "2": {}} for region in ("ca-central-1", "us-east-2")}


def test_every_task_reports_when_k6_resumed_on_the_orchestrators_clock(vus_run):
    started_at = vus_run.state["started_at"]
    assert {region: sorted(tasks) for region, tasks in started_at.items()} == {
        region: ["0", "1", "2"] for region in ("ca-central-1", "us-east-2")
    }
    offsets = [at - vus_run.state["start_at"] for tasks in started_at.values() for at in tasks.values()]
    print(f"k6 resumed {min(offsets)} to {max(offsets)} ms after start_at; skew {vus_run.state['start_skew_ms']} ms")
    assert all(-100 < offset < 300 for offset in offsets), offsets
    assert vus_run.state["start_skew_ms"] == max(offsets) - min(offsets)


def test_every_task_reports_k6s_count_and_the_end_of_its_load_by_k6s_own_run_time(vus_run):
    """test-end's accounting: what k6 counted, and when its load ended (the span throughput divides by)."""
    accounting, started_at = vus_run.state["accounting"], vus_run.state["started_at"]
    for region in ("ca-central-1", "us-east-2"):
        for task in ("0", "1", "2"):
            counts = accounting[region][task]
            assert counts["k6_requests"] == 0, counts  # the script makes no HTTP request
            k6_run_ms = vus_run.summaries[f"{region}-{task}"]["state"]["testRunDurationMs"]
            assert abs(counts["ended_at"] - started_at[region][task] - k6_run_ms) <= 5, (counts, k6_run_ms)


def test_k6_pushes_metrics_to_the_aggregator(vus_run):
    for result in vus_run.results:
        finished = [line for line in json_lines(result.aggregator_log) if line.get("event") == "stub-aggregator-finished"]
        assert finished and finished[0]["writes"] >= 1, result.aggregator_log.read_text()


# ---------------------------------------------------------------------------------------------
# The script load model: the script's arrival rate divided over 2 regions x 3 tasks
# ---------------------------------------------------------------------------------------------

SCRIPT_CONFIG = load_config(
    settings={
        "home_region": HOME,
        "remote_regions": {"us-east-2": 12, "ca-central-1": 9},
        "duration_seconds": 3,
        "max_vus_per_task": 4,
    }
)


def test_arrival_rate_split_matches_a_single_instance(moto_server, tmp_path):
    summary_dir = home_with(moto_server, tmp_path, ARRIVAL_RATE_SCRIPT, SCRIPT_CONFIG, "script-run")
    script = tmp_path / "single.js"
    script.write_text(ARRIVAL_RATE_SCRIPT)
    single = subprocess.Popen(
        [K6, "run", "--quiet", "--no-usage-report", str(script)],
        env={**os.environ, "SUMMARY_DIR": str(tmp_path), "CONSTELLATION_REGION": "single", "CONSTELLATION_TASK_INDEX": "0"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    tasks = tasks_of(SCRIPT_CONFIG, moto_server.url, "script-run", summary_dir, load_model="script")
    run = execute(moto_server, tmp_path, tasks, "script-run")
    assert single.wait(timeout=30) == 0
    single_iterations = json.loads((tmp_path / "single-0.json").read_text())["metrics"]["iterations"]["values"]["count"]

    assert [r.load_generator_exit_code for r in run.results] == [0] * 6, run.failures()
    load = script_load_segments(SCRIPT_CONFIG)
    total = 0
    for region, region_load in load["regions"].items():
        for index, segment in enumerate(region_load["execution_segments"]):
            start, end = (Fraction(point) for point in segment.split(":"))
            iterations = run.summaries[f"{region}-{index}"]["metrics"]["iterations"]["values"]["count"]
            assert abs(iterations - single_iterations * (end - start)) <= 1, (region, index, iterations)
            total += iterations
    print(f"arrival rate: {total} iterations over 6 tasks, {single_iterations} in a single instance")
    assert abs(total - single_iterations) <= len(tasks)


# ---------------------------------------------------------------------------------------------
# Failures: each with its exit code, in the logs and in the orchestrator state
# ---------------------------------------------------------------------------------------------

ONE_REGION = load_config(
    settings={"home_region": HOME, "remote_regions": {"us-east-2": 2}, "duration_seconds": 1, "max_vus_per_task": 1}
)


def test_start_timeout_when_another_task_never_registers(moto_server, tmp_path):
    summary_dir = home_with(moto_server, tmp_path, VUS_SCRIPT, ONE_REGION, "lonely")
    tasks = tasks_of(ONE_REGION, moto_server.url, "lonely", summary_dir, start_timeout_seconds=3)
    run = execute(moto_server, tmp_path, tasks[:1], "lonely")

    assert run.results[0].load_generator_exit_code == Failure.START_TIMEOUT
    assert run.elapsed < 3 + 5
    failure = run.events("failed")["us-east-2-0"][0]
    assert failure["reason"] == "START_TIMEOUT"
    assert "was not decided within 3 s" in failure["message"] and "1 of 2" in failure["message"]
    assert run.state["exit_codes"] == {"us-east-2": {"0": int(Failure.START_TIMEOUT)}}


class AnswerDroppingProxy:
    """Forwards every request to the emulator, but drops the answers to registrations after the first.

    The orchestrator has handled each dropped registration (the second one completed the plan),
    but the task never hears of it, as when a Lambda answer is lost to a timeout or a network.
    """

    def __init__(self, target: str, drops: int) -> None:
        parsed = urllib.parse.urlsplit(target)
        self.host, self.port = parsed.hostname, parsed.port
        self.drops_left, self.dropped, self.registrations = drops, 0, 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._forward()

            def do_POST(self) -> None:
                self._forward()

            def do_PUT(self) -> None:
                self._forward()

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                refusal = proxy.refusal(self.command, self.path)
                if refusal is not None:
                    self.send_response(403)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(refusal)))
                    self.end_headers()
                    self.wfile.write(refusal)
                    return
                headers = {name: value for name, value in self.headers.items() if name.lower() != "connection"}
                upstream = http.client.HTTPConnection(proxy.host, proxy.port, timeout=30)
                try:
                    upstream.request(self.command, self.path, body=body, headers=headers)
                    response = upstream.getresponse()
                    status, answer_headers, answer = response.status, response.getheaders(), response.read()
                finally:
                    upstream.close()
                if proxy.should_drop(body):
                    self.close_connection = True  # handled by the orchestrator, never answered
                    return
                self.send_response(status)
                for name, value in answer_headers:
                    if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def refusal(self, command: str, path: str) -> bytes | None:
        """The body of a 403 to answer instead of forwarding; None: forward."""
        return None

    def should_drop(self, body: bytes) -> bool:
        with self.lock:
            if b'"agg-record"' not in body:
                return False
            self.registrations += 1
            if self.registrations > 1 and self.drops_left > 0:
                self.drops_left -= 1
                self.dropped += 1
                return True
            return False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_lost_answer_to_the_completing_registration_does_not_stall_the_run(moto_server, tmp_path):
    summary_dir = home_with(moto_server, tmp_path, VUS_SCRIPT, ONE_REGION, "lost-answer", lead_seconds=1)
    # botocore tries 5 times: 6 drops exhaust it, so the generator's own retry is exercised too.
    proxy = AnswerDroppingProxy(moto_server.url, drops=6)
    try:
        tasks = tasks_of(ONE_REGION, moto_server.url, "lost-answer", summary_dir, start_timeout_seconds=60)
        tasks = [
            dataclasses.replace(task, load_generator_env={**task.load_generator_env, "CONSTELLATION_AWS_ENDPOINT_URL": proxy.url})
            for task in tasks
        ]
        run = execute(moto_server, tmp_path, tasks, "lost-answer", timeout=90)
    finally:
        proxy.close()

    assert proxy.dropped == 6
    assert [r.load_generator_exit_code for r in run.results] == [0, 0], run.failures()
    decisions = run.events("start_decided", key="message")["orchestrator"]
    assert len(decisions) == 1, decisions
    starts = {event["start_at"] for lines in run.events("start-decided").values() for event in lines}
    assert starts == {decisions[0]["start_at"]}
    assert run.state["exit_codes"] == {"us-east-2": {"0": 0, "1": 0}}


class ScriptDenyingProxy(AnswerDroppingProxy):
    """Denies the first ``denials`` reads of the run's script, as S3 does until a new grant of the
    task role (run_grants) has reached it; drops no answer."""

    def __init__(self, target: str, run_id: str, denials: int) -> None:
        super().__init__(target, drops=0)
        self.script_path = f"/{BUCKET}/{script_key(run_id)}"
        self.denials_left, self.denied = denials, 0

    def refusal(self, command: str, path: str) -> bytes | None:
        with self.lock:
            if command != "GET" or path.split("?")[0] != self.script_path or not self.denials_left:
                return None
            self.denials_left -= 1
            self.denied += 1
        return b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"


def test_a_script_read_denied_while_the_grant_propagates_is_tried_again(moto_server, tmp_path):
    summary_dir = home_with(moto_server, tmp_path, VUS_SCRIPT, ONE_REGION, "grant-late", lead_seconds=1)
    proxy = ScriptDenyingProxy(moto_server.url, "grant-late", denials=3)
    try:
        tasks = [
            dataclasses.replace(task, load_generator_env={**task.load_generator_env, "CONSTELLATION_AWS_ENDPOINT_URL": proxy.url})
            for task in tasks_of(ONE_REGION, moto_server.url, "grant-late", summary_dir, start_timeout_seconds=60)
        ]
        run = execute(moto_server, tmp_path, tasks, "grant-late", timeout=90)
    finally:
        proxy.close()

    assert proxy.denied == 3
    assert [r.load_generator_exit_code for r in run.results] == [0, 0], run.failures()
    retried = [event for lines in run.events("script-access-denied").values() for event in lines]
    assert len(retried) == 3, retried


def test_script_exception_is_surfaced(moto_server, tmp_path):
    config = load_config(settings={"home_region": HOME, "remote_regions": {"us-east-2": 1}, "duration_seconds": 1})
    script = "export function setup() { throw new Error('no token'); }\nexport default function () {}\n"
    summary_dir = home_with(moto_server, tmp_path, script, config, "throws", lead_seconds=1)
    run = execute(moto_server, tmp_path, tasks_of(config, moto_server.url, "throws", summary_dir), "throws")

    assert run.results[0].load_generator_exit_code == 107
    exited = run.events("k6-exited")["us-east-2-0"][0]
    assert exited["exit_code"] == 107 and exited["meaning"] == "k6 ScriptException"
    assert run.state["exit_codes"] == {"us-east-2": {"0": 107}}


def test_k6_runs_without_the_tasks_aws_identity_and_token_which_the_load_generator_keeps(moto_server, tmp_path):
    config = load_config(settings={"home_region": HOME, "remote_regions": {"us-east-2": 1}, "duration_seconds": 1})
    script = (
        "export function setup() {\n"
        "  const leaked = Object.keys(__ENV).filter((name) => name.startsWith('AWS_') || name.includes('TOKEN'));\n"
        "  if (leaked.length > 0) { throw new Error('k6 sees ' + leaked.join(',')); }\n"
        "}\nexport default function () {}\n"
    )
    summary_dir = home_with(moto_server, tmp_path, script, config, "noaws", lead_seconds=1)
    tasks = tasks_of(config, moto_server.url, "noaws", summary_dir)
    assert any(name.startswith("AWS_") for name in {**os.environ, **tasks[0].load_generator_env}), "nothing to hide"
    assert "CONSTELLATION_TASK_TOKEN" in tasks[0].load_generator_env, "no token to hide"

    run = execute(moto_server, tmp_path, tasks, "noaws")

    # 107 would be the script's exception: k6 saw an AWS_ variable or the token.
    assert run.results[0].load_generator_exit_code == 0, run.results[0].load_generator_log.read_text()[-2000:]
    # The load generator itself still used its credentials: registered, and reported the end.
    assert run.state["exit_codes"] == {"us-east-2": {"0": 0}}


THRESHOLDS_SCRIPT = (
    """
import { sleep } from 'k6';
export const options = {
  tags: { team: 'blue' },
  thresholds: {
    'iterations{region:us-east-2}': ['count>0'],
    'iterations{region:eu-west-1}': ['count>0'],
    'iterations{team:blue}': ['count>0'],
  },
};
export default function () { sleep(0.1); }
"""
    + SUMMARY
)


def test_k6_threshold_verdicts_are_reported_per_task_with_its_region_tag(moto_server, tmp_path):
    config = load_config(settings={"home_region": HOME, "remote_regions": {"us-east-2": 1}, "duration_seconds": 1})
    summary_dir = home_with(moto_server, tmp_path, THRESHOLDS_SCRIPT, config, "judged", lead_seconds=1)
    tasks = tasks_of(config, moto_server.url, "judged", summary_dir)
    run = execute(moto_server, tmp_path, tasks, "judged")

    assert run.results[0].load_generator_exit_code == 99, run.failures()  # k6 ThresholdsHaveFailed
    assert run.state["exit_codes"] == {"us-east-2": {"0": 99}}
    # Only a region tag of us-east-2 passes the first and fails the second; the third passes
    # only if the script's own tags survived the region tag.
    assert run.state["task_thresholds"] == {
        "us-east-2": {
            "0": {
                "iterations{region:us-east-2}": {"count>0": True},
                "iterations{region:eu-west-1}": {"count>0": False},
                "iterations{team:blue}": {"count>0": True},
            }
        }
    }
    assert run.state["thresholds_truncated"] == {"us-east-2": []}
    assert "us-east-2-0" in run.summaries  # the script's own handleSummary still ran


def test_sigterm_stops_k6_gracefully_and_still_reports_the_end(moto_server, tmp_path):
    config = load_config(settings={"home_region": HOME, "remote_regions": {"us-east-2": 1}, "duration_seconds": 60})
    summary_dir = home_with(moto_server, tmp_path, VUS_SCRIPT, config, "stopped", lead_seconds=1)
    tasks = tasks_of(config, moto_server.url, "stopped", summary_dir)
    # The harness's timeout is the SIGTERM: it comes while k6 runs its 60 s.
    run = execute(moto_server, tmp_path, tasks, "stopped", timeout=6)

    assert run.timed_out
    assert run.results[0].load_generator_exit_code == 105  # k6 ExternalAbort
    assert run.events("k6-started")["us-east-2-0"]
    assert run.state["exit_codes"] == {"us-east-2": {"0": 105}}
    assert run.summaries["us-east-2-0"]["metrics"]["iterations"]["values"]["count"] > 0


# ---------------------------------------------------------------------------------------------
# k6 unusable: the generator stops before any AWS call
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def aws_recorder():
    """An HTTP endpoint that counts every request, standing in for AWS."""
    requests = []

    class Recorder(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._record()

        def do_POST(self) -> None:
            self._record()

        def _record(self) -> None:
            requests.append(self.path)
            self.send_response(500)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", requests
    server.shutdown()
    server.server_close()


def run_generator_alone(k6: str, endpoint_url: str) -> subprocess.CompletedProcess:
    task = tasks_of(
        ONE_REGION, endpoint_url, "no-k6", Path("/nonexistent"), k6=k6, token_key=bytes(32), script_sha256="0" * 64
    )[0]
    env = {
        **os.environ,
        **task.load_generator_env,
        "PYTHONPATH": os.pathsep.join(map(str, ENTRYPOINTS.python_path)),
    }
    return subprocess.run(
        [sys.executable, str(ENTRYPOINTS.load_generator)],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_missing_k6_fails_before_any_aws_call(aws_recorder, tmp_path):
    url, requests = aws_recorder
    completed = run_generator_alone(str(tmp_path / "no-such-k6"), url)

    assert completed.returncode == Failure.K6_UNUSABLE
    failure = json_lines_of(completed.stdout, "failed")
    assert "no-such-k6" in failure["message"] and "was not found" in failure["message"]
    assert "Traceback" not in completed.stdout + completed.stderr
    assert requests == []


def test_old_k6_fails_before_any_aws_call(aws_recorder, tmp_path):
    url, requests = aws_recorder
    fake = tmp_path / "k6"
    fake.write_text("#!/bin/sh\necho 'k6 v0.49.0 (go1.21.6, linux/amd64)'\n")
    fake.chmod(0o755)
    completed = run_generator_alone(str(fake), url)

    assert completed.returncode == Failure.K6_UNUSABLE
    message = json_lines_of(completed.stdout, "failed")["message"]
    assert "k6 0.49.0" in message and "too old" in message and ">= 1.0" in message
    assert requests == []


def json_lines_of(output: str, event: str) -> dict:
    return next(json.loads(line) for line in output.splitlines() if f'"event": "{event}"' in line)


def test_the_script_environment_reaches_k6_as_arguments_never_as_its_own_environment(moto_server, tmp_path):
    env = tasks_of(
        ONE_REGION, moto_server.url, "env", tmp_path, token_key=bytes(32), script_env={"PATH": "/nowhere", "GREETING": "hi"}
    )[0].load_generator_env
    settings = LOAD_GENERATOR.Settings.from_env(env)

    command = LOAD_GENERATOR.k6_command(settings, tmp_path / "script.js", {}, tmp_path / "summary.json")

    assert command[command.index("--env"):command.index("--env") + 4] == ["--env", "GREETING=hi", "--env", "PATH=/nowhere"]
    assert LOAD_GENERATOR.k6_environment(settings).get("PATH") != "/nowhere"  # k6 itself runs as it would
    assert "GREETING" not in LOAD_GENERATOR.k6_environment(settings)


@pytest.mark.parametrize(
    ("exit_code", "follow_up", "final"),
    [
        (0, [], 0),
        (0, [Failure.AGGREGATOR_FINISH, Failure.TEST_END], int(Failure.AGGREGATOR_FINISH)),
        # The load ran, so the lost flush is what the run must hear of, not a code it accepts.
        (99, [Failure.AGGREGATOR_FINISH], int(Failure.AGGREGATOR_FINISH)),
        (105, [Failure.AGGREGATOR_FINISH], int(Failure.AGGREGATOR_FINISH)),
        (int(Failure.RUN_STOPPED), [Failure.TEST_END], int(Failure.TEST_END)),
        # The load did not run: that is the task's story, whatever came after.
        (107, [Failure.AGGREGATOR_FINISH], 107),
        (int(Failure.START_TIMEOUT), [Failure.TEST_END], int(Failure.START_TIMEOUT)),
    ],
)
def test_a_lost_flush_is_never_hidden_behind_an_exit_code_the_run_accepts(exit_code, follow_up, final):
    assert LOAD_GENERATOR.final_exit_code(exit_code, follow_up) == final
