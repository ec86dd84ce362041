# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The load generator: one task's share of a test run, started at the instant every task starts.

Flow: check k6 (>= 1.0) -> fetch the script from the home bucket -> read the script's tags
-> wait for the aggregator sidecar -> register with the orchestrator -> poll until the start
is decided -> start k6 paused (VUs initialise now, not at the start) -> resume k6 at the
decided instant -> wait for k6 -> ask the aggregator to flush -> report ``test-end`` with
k6's exit code, when k6 resumed (on the orchestrator's clock) and k6's threshold verdicts ->
exit.

k6 tags every sample of the task with ``region``, so a script threshold on a submetric such
as ``http_req_duration{region:us-east-2}`` holds in that region's tasks only.

Runs the same in the container and as a local process (tools/task_processes.py, for tests),
with ``PYTHONPATH=<collection>/plugins/module_utils``.

Environment (required unless a default is given):

``CONSTELLATION_RUN_ID``                 the test run
``CONSTELLATION_REGION``                 the region this task counts for (simulated locally)
``CONSTELLATION_TASK_INDEX``             this task's index in its region: 0, 1, ...
``CONSTELLATION_TASK_TOKEN``             the token that proves this task to the orchestrator (k6 never sees it)
``CONSTELLATION_HOME_REGION``            the region of the bucket and the orchestrator
``CONSTELLATION_AWS_ENDPOINT_URL``       one endpoint for every AWS service (e.g. moto); optional
``CONSTELLATION_ORCHESTRATOR``           ``lambda:<function name>``
``CONSTELLATION_BUCKET``                 the home bucket holding the script
``CONSTELLATION_SCRIPT_KEY``             the object key of the run's test, a k6 archive
``CONSTELLATION_SCRIPT_SHA256``          its SHA-256 as run_test checked it: another is not run
``CONSTELLATION_LOAD_MODEL``             ``vus`` (default: --vus/--duration per region) or
                                         ``script`` (the script's scenarios are the whole test)
``CONSTELLATION_VUS``                    the region's VUs (``vus`` model)
``CONSTELLATION_DURATION_MS``            how long this region runs load, in ms (``vus`` model)
``CONSTELLATION_STAGES``                 the region's shape (``vus`` model, optional): k6 ramping-vus
                                         stages from 0 VUs, ``<duration ms>:<target VUs>,...``; k6
                                         scales each target to this task's execution segment
``CONSTELLATION_EXECUTION_SEGMENT``      this task's k6 execution segment, e.g. ``1/4:2/4``
``CONSTELLATION_EXECUTION_SEGMENT_SEQUENCE``  the full sequence, e.g. ``0,1/4,2/4,3/4,1``
``CONSTELLATION_SCRIPT_ENV``             the script's own environment, a JSON object of NAME: text;
                                         k6 gets each as ``__ENV.NAME`` (optional)
``CONSTELLATION_START_TIMEOUT_SECONDS``  the longest wait from launch to the start (600)
``CONSTELLATION_INTERVAL_SECONDS``       how often, while k6 runs, the task asks whether the run was stopped (5)
``CONSTELLATION_AGGREGATOR_PORT``        the aggregator's port on 127.0.0.1 (9464)
``CONSTELLATION_K6``                     the k6 binary (``k6`` on PATH)
``CONSTELLATION_K6_API_PORT``            k6's REST API port on 127.0.0.1 (6565)

Exit status: 0 on success; k6's own exit code when k6 ran and failed (99 thresholds crossed,
107 script exception, ... see ``run/exit_codes.py``); 128 + signal number when stopped by a
signal before k6 ran; otherwise one of ``Failure`` (80-89). Every line written is JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Mapping

import boto3
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError

from run.exit_codes import Failure
from run.exit_codes import describe_exit_code
from run.exit_codes import load_ran
from run.orchestrator_client import OrchestratorClient
from run.orchestrator_client import OrchestratorError
from run.orchestrator_client import OrchestratorUnavailable
from run.orchestrator_client import Task
from run.orchestrator_state import MAX_START_LEAD_SECONDS

MINIMUM_K6_VERSION = (1, 0, 0)
LOAD_MODELS = ("vus", "script")

# Polling test-init: the cap must stay well below the orchestrator's start lead (30 s by
# default) so every task learns the start early enough to initialise its VUs before it.
POLL_FIRST_DELAY_SECONDS = 0.25
POLL_MAX_DELAY_SECONDS = 2.0
# Initialising many VUs of a large script can take tens of seconds.
K6_API_TIMEOUT_SECONDS = 120
# `k6 inspect` runs the script's init code once, as each VU will.
K6_INSPECT_TIMEOUT_SECONDS = K6_API_TIMEOUT_SECONDS
# After its duration k6 stops iterations gracefully; this bounds our wait after a SIGTERM.
K6_STOP_GRACE_SECONDS = 60
# The aggregator writes everything it holds to the results store before answering /finish.
AGGREGATOR_FINISH_TIMEOUT_SECONDS = 60  # its flush takes 45 s at most (FLUSH_SECONDS)
HTTP_TIMEOUT_SECONDS = 5
MAX_ANSWER_BYTES = 64 * 1024  # the most of an HTTP answer the load generator reads
# An orchestrator that does not answer (a timeout, throttling) is asked again, with backoff:
# registering until the start timeout, reporting the end this many times.
RETRY_FIRST_DELAY_SECONDS = 1.0
RETRY_MAX_DELAY_SECONDS = 15.0
TEST_END_ATTEMPTS = 6
# The task role is granted the run's script when run_test starts the run (run_grants); IAM applies
# a change within seconds, so a denied read is tried again for this long.
GRANT_PROPAGATION_SECONDS = 60.0
GRANT_RETRY_DELAY_SECONDS = 2.0
# A decided start this far ahead of the orchestrator's clock is refused (the plan allows
# MAX_START_LEAD_SECONDS from the last registration, which is at most now).
START_AHEAD_LIMIT_MS = (MAX_START_LEAD_SECONDS + 60) * 1000
# The clock offset to the orchestrator is estimated from several test-init answers, keeping the one
# with the shortest round trip (its error is at most half that round trip, as NTP reasons): up to
# this many, within a quarter of the time left before the start.
CLOCK_SAMPLES = 6


class LoadGeneratorError(Exception):
    """A failure this process expected and can explain; ``failure`` becomes the exit status."""

    def __init__(self, failure: Failure, message: str) -> None:
        super().__init__(message)
        self.failure = failure


class Interrupted(Exception):
    """A SIGTERM or SIGINT arrived before k6 ran."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


def log(level: str, event: str, **fields: Any) -> None:
    """One JSON line on stdout, where the container runtime collects it."""
    line = {"time_ms": now_ms(), "level": level, "event": event, **fields}
    print(json.dumps(line, default=str), flush=True)


def now_ms() -> int:
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """The environment, validated."""

    run_id: str
    region: str
    task_index: str
    task_token: str = field(repr=False)
    home_region: str
    endpoint_url: str | None
    orchestrator: str
    bucket: str
    script_key: str
    script_sha256: str
    load_model: str
    vus: int | None
    duration_ms: int | None
    stages: tuple[tuple[int, int], ...]  # (duration ms, target VUs): a shape instead of constant VUs
    execution_segment: str | None
    execution_segment_sequence: str | None
    start_timeout_seconds: int
    interval_seconds: int
    aggregator_port: int
    k6: str
    k6_api_port: int
    script_env: Mapping[str, str]

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Settings":
        load_model = env.get("CONSTELLATION_LOAD_MODEL", "vus")
        if load_model not in LOAD_MODELS:
            _bad_setting("CONSTELLATION_LOAD_MODEL", load_model, f"one of {', '.join(LOAD_MODELS)}")
        by_vus = load_model == "vus"
        return cls(
            run_id=_required(env, "CONSTELLATION_RUN_ID"),
            region=_required(env, "CONSTELLATION_REGION"),
            task_index=str(_integer(env, "CONSTELLATION_TASK_INDEX", minimum=0)),
            task_token=_required(env, "CONSTELLATION_TASK_TOKEN"),
            home_region=_required(env, "CONSTELLATION_HOME_REGION"),
            endpoint_url=env.get("CONSTELLATION_AWS_ENDPOINT_URL") or None,
            orchestrator=_orchestrator_spec(env),
            bucket=_required(env, "CONSTELLATION_BUCKET"),
            script_key=_required(env, "CONSTELLATION_SCRIPT_KEY"),
            script_sha256=_sha256(env, "CONSTELLATION_SCRIPT_SHA256"),
            load_model=load_model,
            vus=_integer(env, "CONSTELLATION_VUS", minimum=1) if by_vus else None,
            duration_ms=_integer(env, "CONSTELLATION_DURATION_MS", minimum=1) if by_vus else None,
            stages=_stages(env) if by_vus else (),
            execution_segment=env.get("CONSTELLATION_EXECUTION_SEGMENT") or None,
            execution_segment_sequence=env.get("CONSTELLATION_EXECUTION_SEGMENT_SEQUENCE") or None,
            start_timeout_seconds=_integer(env, "CONSTELLATION_START_TIMEOUT_SECONDS", minimum=1, default=600),
            interval_seconds=_integer(env, "CONSTELLATION_INTERVAL_SECONDS", minimum=1, default=5),
            aggregator_port=_integer(env, "CONSTELLATION_AGGREGATOR_PORT", minimum=1, default=9464),
            k6=env.get("CONSTELLATION_K6") or "k6",
            k6_api_port=_integer(env, "CONSTELLATION_K6_API_PORT", minimum=1, default=6565),
            script_env=_script_env(env),
        )

    @property
    def task(self) -> Task:
        """Who this task is to the orchestrator."""
        return Task(self.run_id, self.region, self.task_index, self.task_token)

    @property
    def aggregator_url(self) -> str:
        return f"http://127.0.0.1:{self.aggregator_port}"

    @property
    def k6_api_url(self) -> str:
        return f"http://127.0.0.1:{self.k6_api_port}"


def _bad_setting(name: str, value: Any, expected: str) -> None:
    raise LoadGeneratorError(Failure.CONFIG, f"environment variable {name} must be {expected}, got {value!r}")


def _required(env: Mapping[str, str], name: str) -> str:
    value = env.get(name, "")
    if not value:
        raise LoadGeneratorError(Failure.CONFIG, f"environment variable {name} is not set")
    return value


def _integer(env: Mapping[str, str], name: str, minimum: int, default: int | None = None) -> int:
    raw = env.get(name, "") or (str(default) if default is not None else _required(env, name))
    if not re.fullmatch(r"0|[1-9][0-9]*", raw) or int(raw) < minimum:
        _bad_setting(name, raw, f"a whole number >= {minimum}")
    return int(raw)


def _stages(env: Mapping[str, str]) -> tuple[tuple[int, int], ...]:
    raw = env.get("CONSTELLATION_STAGES", "")
    if not raw:
        return ()
    if not re.fullmatch(r"[0-9]+:[0-9]+(,[0-9]+:[0-9]+)*", raw):
        _bad_setting("CONSTELLATION_STAGES", raw, "stages as <duration ms>:<target VUs>, separated by commas")
    return tuple((int(duration), int(target)) for duration, target in (stage.split(":") for stage in raw.split(",")))


def _script_env(env: Mapping[str, str]) -> dict[str, str]:
    raw = env.get("CONSTELLATION_SCRIPT_ENV", "") or "{}"
    try:
        variables = json.loads(raw)
    except ValueError:
        variables = None
    if not isinstance(variables, dict) or not all(isinstance(v, str) for v in variables.values()):
        _bad_setting("CONSTELLATION_SCRIPT_ENV", raw[:200], "a JSON object of NAME: text")
    return variables


def _sha256(env: Mapping[str, str], name: str) -> str:
    value = _required(env, name)
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        _bad_setting(name, value, "a SHA-256 in hex (64 digits 0-9a-f)")
    return value


def _orchestrator_spec(env: Mapping[str, str]) -> str:
    spec = _required(env, "CONSTELLATION_ORCHESTRATOR")
    kind, separator, name = spec.partition(":")
    if kind != "lambda" or not separator or not name:
        _bad_setting("CONSTELLATION_ORCHESTRATOR", spec, "'lambda:<function name>'")
    return spec


# ---------------------------------------------------------------------------------------------
# k6
# ---------------------------------------------------------------------------------------------


def check_k6(binary: str) -> str:
    """Return k6's version if ``binary`` runs and is at least 1.0; raise K6_UNUSABLE if not."""
    try:
        completed = subprocess.run([binary, "version"], capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        raise LoadGeneratorError(
            Failure.K6_UNUSABLE,
            f"the k6 binary {binary!r} was not found; install k6 >= 1.0 or set CONSTELLATION_K6 to its path",
        ) from None
    except (OSError, subprocess.TimeoutExpired) as error:
        raise LoadGeneratorError(Failure.K6_UNUSABLE, f"the k6 binary {binary!r} does not run: {error}") from None
    match = re.search(r"\bv?(\d+)\.(\d+)\.(\d+)", completed.stdout)
    if completed.returncode != 0 or not match:
        raise LoadGeneratorError(
            Failure.K6_UNUSABLE,
            f"'{binary} version' did not report a k6 version (exit {completed.returncode}):"
            f" {(completed.stdout + completed.stderr).strip()[:200]!r}",
        )
    version = tuple(int(part) for part in match.groups())
    shown = ".".join(map(str, version))
    if version < MINIMUM_K6_VERSION:
        raise LoadGeneratorError(
            Failure.K6_UNUSABLE,
            f"k6 {shown} at {binary!r} is too old: k6 >= 1.0 is required (execution segments, native"
            " histograms in the Prometheus remote-write output)",
        )
    return shown


def k6_command(settings: Settings, script: Path, tags: Mapping[str, str], summary_export: Path) -> list[str]:
    """The k6 command line for this task: paused, metrics to the aggregator, its segment.

    ``summary_export`` receives k6's legacy JSON summary, thresholds included; unlike a
    ``handleSummary`` of ours it leaves the script's own ``handleSummary`` alone.
    """
    command = [
        settings.k6,
        "run",
        "--paused",
        "--address",
        f"127.0.0.1:{settings.k6_api_port}",
        "--out",
        "experimental-prometheus-rw",
        "--log-format",
        "json",
        "--quiet",  # no progress bar: its redraws are noise in container logs
        "--no-usage-report",  # no call home from the load generators
        "--summary-export",
        str(summary_export),
    ]
    for name, value in tags.items():
        command += ["--tag", f"{name}={value}"]
    command += script_env_arguments(settings)
    if settings.load_model == "vus" and settings.stages:
        # k6's ramping-vus from 0 VUs: the first stage ramps (or, lasting 0 ms, jumps) to its target.
        command += ["--vus", "0"] + [argument for duration, target in settings.stages for argument in ("--stage", f"{duration}ms:{target}")]
    elif settings.load_model == "vus":
        command += ["--vus", str(settings.vus), "--duration", f"{settings.duration_ms}ms"]
    if settings.execution_segment:
        command += ["--execution-segment", settings.execution_segment]
    if settings.execution_segment_sequence:
        command += ["--execution-segment-sequence", settings.execution_segment_sequence]
    return [*command, str(script)]


def script_env_arguments(settings: Settings) -> list[str]:
    """The script's environment as k6 arguments: __ENV.NAME for the script, nothing in k6's own environment."""
    return [argument for name, value in sorted(settings.script_env.items()) for argument in ("--env", f"{name}={value}")]


def k6_tags(settings: Settings, script_tags: Mapping[str, str] | None) -> dict[str, str]:
    """The tags to give k6: the script's own ``options.tags`` and ``region``, which wins.

    ``k6 run --tag`` replaces the script's ``options.tags`` rather than adding to them (k6 1.1),
    so when the script's are unknown no tag is given.
    """
    if script_tags is None:
        return {}
    return {**script_tags, "region": settings.region}


def read_script_tags(settings: Settings, script: Path) -> dict[str, str] | None:
    """The script's ``options.tags`` (``{}`` if it has none), from ``k6 inspect``; None if unknown."""
    try:
        completed = subprocess.run(
            [settings.k6, "inspect", *script_env_arguments(settings), str(script)],
            env=k6_environment(settings),
            capture_output=True,
            text=True,
            timeout=K6_INSPECT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        log("warning", "script-tags-unknown", message=f"k6 inspect did not run: {error}; k6 runs without tags")
        return None
    try:
        options = json.loads(completed.stdout) if completed.returncode == 0 else None
    except ValueError:
        options = None
    tags = (options.get("tags") or {}) if isinstance(options, dict) else None
    if not isinstance(tags, dict) or not all(isinstance(value, str) for value in tags.values()):
        log(
            "warning",
            "script-tags-unknown",
            message=f"k6 inspect (exit {completed.returncode}) did not report the script's options; k6 runs without"
            f" tags: {completed.stderr.strip()[:300]!r}",
        )
        return None
    return tags


def read_summary_metrics(summary_export: Path) -> dict[str, Any] | None:
    """The ``metrics`` of k6's summary export; None without one.

    k6 writes the summary after a script exception and after SIGTERM too, but not when it cannot
    start or is killed.
    """
    try:
        summary = json.loads(summary_export.read_text())
    except (OSError, ValueError):
        return None
    metrics = summary.get("metrics") if isinstance(summary, dict) else None
    return metrics if isinstance(metrics, dict) else None


def read_requests(metrics: Mapping[str, Any] | None) -> tuple[int | None, float | None]:
    """The requests k6 counted (``http_reqs``) and how long its load ran by its own clock, in ms.

    k6's rate is the count over the test's run time, so the run time is their ratio; a script
    without HTTP requests gives it by its iterations. A summary without either gives no duration,
    and no summary no count.
    """
    if metrics is None:
        return None, None
    duration_ms = None
    for name in ("http_reqs", "iterations"):
        metric = metrics.get(name)
        count, rate = (metric.get("count"), metric.get("rate")) if isinstance(metric, dict) else (None, None)
        if isinstance(count, (int, float)) and isinstance(rate, (int, float)) and count > 0 and rate > 0:
            duration_ms = 1000 * count / rate
            break
    requests = metrics.get("http_reqs", {}).get("count", 0) if isinstance(metrics.get("http_reqs", {}), dict) else 0
    return (int(requests) if isinstance(requests, (int, float)) else 0), duration_ms


def read_thresholds(metrics: Mapping[str, Any] | None) -> dict[str, dict[str, bool]] | None:
    """k6's verdict on each threshold, ``{metric selector: {expression: passed}}``; None without a summary.

    In the summary export a threshold maps to whether it was *crossed*: k6 1.1 writes
    ``"count>100": true`` for a counter at 3, so the verdict is its negation.
    """
    if metrics is None:
        return None
    verdicts = {}
    for selector, metric in metrics.items():
        thresholds = metric.get("thresholds") if isinstance(metric, dict) else None
        if not isinstance(thresholds, dict):
            continue
        passed = {
            expression: not crossed
            for expression, crossed in thresholds.items()
            if expression and isinstance(crossed, bool)
        }
        if selector and passed:
            verdicts[selector] = passed
    return verdicts


K6_PUSH_INTERVAL = "1s"
AWS_PREFIX = "AWS_"  # the task's AWS identity and settings, never k6's
TASK_TOKEN_VARIABLE = "CONSTELLATION_TASK_TOKEN"  # the task's proof to the orchestrator, never k6's


def k6_environment(settings: Settings) -> dict[str, str]:
    """k6's environment: ours (the script sees CONSTELLATION_* in __ENV) and its output's; the script's own comes as --env.

    Without AWS_*: the task role's credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI on Fargate,
    AWS_ACCESS_KEY_ID and its siblings elsewhere) stay with this process and the aggregator, so a
    script cannot call the orchestrator or write results with them; nor the task's token.
    """
    return {
        **{
            name: value
            for name, value in os.environ.items()
            if not name.startswith(AWS_PREFIX) and name != TASK_TOKEN_VARIABLE
        },
        "K6_PROMETHEUS_RW_SERVER_URL": f"{settings.aggregator_url}/api/v1/write",
        "K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM": "true",
        # Pushes are cumulative snapshots; the aggregator files each push's increase under the
        # interval of its timestamp, so pushing every second keeps interval edges within a second.
        "K6_PROMETHEUS_RW_PUSH_INTERVAL": K6_PUSH_INTERVAL,
    }


# ---------------------------------------------------------------------------------------------
# HTTP on loopback (the aggregator and k6's REST API)
# ---------------------------------------------------------------------------------------------


def http_request(url: str, method: str = "GET", body: dict | None = None, timeout: float = HTTP_TIMEOUT_SECONDS) -> int:
    """Send one request; return the status code (raise OSError if nothing answered)."""
    return http_exchange(url, method, body, timeout)[0]


def http_exchange(
    url: str, method: str = "GET", body: dict | None = None, timeout: float = HTTP_TIMEOUT_SECONDS
) -> tuple[int, Any]:
    """Send one request; return the status code and the JSON answer, None if it has none (raise
    OSError if nothing answered)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status, answer = response.status, response.read(MAX_ANSWER_BYTES)
    except urllib.error.HTTPError as error:
        status, answer = error.code, error.read(MAX_ANSWER_BYTES)
    try:
        return status, json.loads(answer) if answer else None
    except ValueError:
        return status, None


# The aggregator's /finish counts, as test-end's accounting names them (orchestrator_state's
# ACCOUNTING_FIELDS): what it took in from k6, wrote, lost and retried; with live metrics, the pushes
# the Prometheus endpoint took and those it did not.
_AGGREGATOR_COUNTS = {
    "requests_received": "requests_received",
    "requests_written": "requests_written",
    "lost": "records_lost",
    "retries": "store_retries",
    "prometheus_sent": "live_metrics_sent",
    "prometheus_lost": "live_metrics_lost",
}


def aggregator_accounting(answer: Any) -> dict[str, int]:
    """The aggregator's counts in ``answer`` (/finish's JSON) that test-end carries; those missing are left out."""
    if not isinstance(answer, dict):
        return {}
    return {
        field: answer[count]
        for count, field in _AGGREGATOR_COUNTS.items()
        if isinstance(answer.get(count), int) and not isinstance(answer.get(count), bool) and answer[count] >= 0
    }


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Start:
    """The decided start on this machine's clock, and the orchestrator's clock relative to it."""

    at_local_ms: float
    clock_offset_ms: float  # the orchestrator's clock = ours + clock_offset_ms

    def on_orchestrator_clock(self, local_ms: float) -> int:
        return round(local_ms + self.clock_offset_ms)


@dataclass(frozen=True)
class K6Run:
    """How k6 ran: its exit code, when it resumed and ended, its threshold verdicts and the
    requests it counted (None if unknown)."""

    exit_code: int
    started_at: int | None  # epoch ms on the orchestrator's clock
    thresholds: dict[str, dict[str, bool]] | None
    requests: int | None = None
    ended_at: int | None = None  # epoch ms on the orchestrator's clock

    def test_end_fields(self) -> dict[str, Any]:
        """The optional fields of ``test-end`` that are known (``accounting`` completed by the aggregator's counts)."""
        fields = {"started_at": self.started_at, "thresholds": self.thresholds}
        accounting = {"k6_requests": self.requests, "ended_at": self.ended_at}
        fields["accounting"] = {name: value for name, value in accounting.items() if value is not None} or None
        return {name: value for name, value in fields.items() if value is not None}


class LoadGenerator:
    """One task: everything between launch and exit, stoppable by SIGTERM at any point."""

    def __init__(self, settings: Settings, orchestrator: OrchestratorClient) -> None:
        self.settings = settings
        self.orchestrator = orchestrator
        self.deadline = time.monotonic() + settings.start_timeout_seconds
        self.stop_signal: int | None = None
        self.k6: subprocess.Popen | None = None
        self.k6_signalled = False

    # --- signals --------------------------------------------------------------------------

    def handle_signal(self, signum: int, _frame: Any) -> None:
        """Stop waiting; stop k6 if it runs. Only flags and a kill: nothing that takes a lock."""
        self.stop_signal = signum
        self.terminate_k6()

    def terminate_k6(self) -> None:
        """SIGTERM k6 once: k6 then ends its iterations and flushes its output (exit 105).

        A second signal would make k6 abort without flushing, hence once.
        """
        if self.k6 is not None and not self.k6_signalled and self.k6.poll() is None:
            self.k6_signalled = True
            self.k6.send_signal(signal.SIGTERM)

    def pause(self, seconds: float) -> None:
        """Sleep for ``seconds`` unless a stop signal arrives first (noticed within 0.1 s)."""
        end = time.monotonic() + seconds
        while True:
            self.check_stop()
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.1))

    def check_stop(self) -> None:
        """Raise Interrupted if a stop signal arrived (the handler itself never raises)."""
        if self.stop_signal is not None:
            raise Interrupted(self.stop_signal)

    # --- the flow -------------------------------------------------------------------------

    def run(self) -> int:
        """Run the task; return the exit status. test-end is reported whatever happened."""
        aggregator_ready = False
        k6_run: K6Run | None = None
        try:
            with tempfile.TemporaryDirectory(prefix="constellation-") as workdir:
                script = self.fetch_script(Path(workdir))
                tags = k6_tags(self.settings, read_script_tags(self.settings, script))
                self.wait_for_aggregator()
                aggregator_ready = True
                self.check_stop()
                registration = self.register()
                start = self.wait_for_start(registration)
                self.check_stop()
                k6_run = self.run_k6(script, tags, start, Path(workdir) / "summary-export.json")
                exit_code = k6_run.exit_code
        except LoadGeneratorError as error:
            log("error", "failed", exit_code=int(error.failure), reason=error.failure.name, message=str(error))
            exit_code = int(error.failure)
        except Interrupted as interruption:
            log("warning", "interrupted", exit_code=interruption.exit_code, message=str(interruption))
            exit_code = interruption.exit_code
        flush_failure, counts = self.finish_aggregator() if aggregator_ready else (None, {})
        # The orchestrator hears of a flush the aggregator did not confirm (its records are
        # missing): run_test and the report judge the run by the codes it keeps.
        exit_code = final_exit_code(exit_code, [flush_failure] if flush_failure is not None else [])
        fields = k6_run.test_end_fields() if k6_run else {}
        if counts:
            fields["accounting"] = {**fields.get("accounting", {}), **counts}
        reported = self.report_end(exit_code, fields)
        return final_exit_code(exit_code, [reported] if reported is not None else [])

    def fetch_script(self, workdir: Path) -> Path:
        s = self.settings
        try:
            body = self.read_script()
        except (BotoCoreError, ClientError) as error:
            raise LoadGeneratorError(
                Failure.SCRIPT_FETCH, f"cannot read the script s3://{s.bucket}/{s.script_key}: {error}"
            ) from None
        fetched = hashlib.sha256(body).hexdigest()
        if fetched != s.script_sha256:
            raise LoadGeneratorError(
                Failure.SCRIPT_MISMATCH,
                f"the test s3://{s.bucket}/{s.script_key} is not the one run_test checked: its sha256 is {fetched},"
                f" run_test's {s.script_sha256}; nothing was run",
            )
        script = workdir / (Path(s.script_key).name or "test.tar")
        script.write_bytes(body)
        log("info", "script-fetched", bucket=s.bucket, key=s.script_key, bytes=len(body), sha256=fetched)
        return script

    def read_script(self) -> bytes:
        """The run's test from the home bucket, read again while access is denied (its grant may not
        have reached every IAM endpoint yet) for at most GRANT_PROPAGATION_SECONDS."""
        s = self.settings
        client = boto3.client("s3", region_name=s.home_region, endpoint_url=s.endpoint_url)
        deadline = time.monotonic() + GRANT_PROPAGATION_SECONDS
        while True:
            try:
                return client.get_object(Bucket=s.bucket, Key=s.script_key)["Body"].read()
            except ClientError as error:
                denied = error.response.get("Error", {}).get("Code") == "AccessDenied"
                if not denied or time.monotonic() + GRANT_RETRY_DELAY_SECONDS > deadline:
                    raise
                log("warning", "script-access-denied", message=str(error), retry_in_s=GRANT_RETRY_DELAY_SECONDS)
                time.sleep(GRANT_RETRY_DELAY_SECONDS)

    def wait_for_aggregator(self) -> None:
        url = f"{self.settings.aggregator_url}/ready"
        while True:
            try:
                if http_request(url, timeout=1) == 200:
                    log("info", "aggregator-ready", url=url)
                    return
            except OSError:
                pass  # not listening yet
            if time.monotonic() > self.deadline:
                raise LoadGeneratorError(
                    Failure.AGGREGATOR_NOT_READY,
                    f"the aggregator at {url} did not answer 200 within the start timeout of"
                    f" {self.settings.start_timeout_seconds} s",
                )
            self.pause(0.2)

    def register(self) -> dict:
        """Register, asking again while the orchestrator does not answer, until the start timeout.

        Registering twice is harmless, and a registration retried after its answer was lost
        decides the start if it completed the plan.
        """
        delay = RETRY_FIRST_DELAY_SECONDS
        while True:
            try:
                answer = self.orchestrator.register()
                break
            except OrchestratorUnavailable as error:
                if time.monotonic() + delay > self.deadline:
                    raise LoadGeneratorError(Failure.ORCHESTRATOR, f"registration failed: {error}") from None
                log("warning", "register-failed", message=str(error), retry_in_s=round(delay, 1))
            except OrchestratorError as error:
                raise LoadGeneratorError(Failure.ORCHESTRATOR, f"registration failed: {error}") from None
            self.pause(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, RETRY_MAX_DELAY_SECONDS)
        log("info", "registered", registered=answer["registered"], planned=answer["planned"])
        return answer

    def wait_for_start(self, registration: dict) -> Start:
        """Poll test-init until the start is decided; return it on our clock, with the offset.

        The start was set by the orchestrator's clock; ``server_time`` estimates the offset of
        ours to it (to within half the round trip of the answering poll).
        """
        delay = POLL_FIRST_DELAY_SECONDS
        while True:
            sent_ms = time.time() * 1000
            try:
                answer = self.orchestrator.start_state()
            except OrchestratorUnavailable as error:
                log("warning", "poll-failed", message=str(error))
                answer = {"state": False}
            except OrchestratorError as error:
                raise LoadGeneratorError(Failure.ORCHESTRATOR, f"polling the start failed: {error}") from None
            if answer.get("stop"):
                raise LoadGeneratorError(
                    Failure.RUN_STOPPED, f"the run was {answer['stop']['reason']} before it started: k6 never ran"
                )
            if answer["state"]:
                ahead_ms = answer["start_at"] - answer["server_time"]
                if ahead_ms > START_AHEAD_LIMIT_MS:
                    raise LoadGeneratorError(
                        Failure.ORCHESTRATOR,
                        f"the orchestrator decided a start {ahead_ms / 1000:.0f} s ahead, more than the"
                        f" {START_AHEAD_LIMIT_MS // 1000} s a plan allows; not waiting for it",
                    )
                offset_ms, round_trip_ms = self.estimate_offset(answer, sent_ms)
                log(
                    "info", "start-decided", start_at=answer["start_at"], clock_offset_ms=round(offset_ms, 1),
                    round_trip_ms=round(round_trip_ms, 1),
                )
                return Start(at_local_ms=answer["start_at"] - offset_ms, clock_offset_ms=offset_ms)
            if time.monotonic() + delay > self.deadline:
                raise LoadGeneratorError(
                    Failure.START_TIMEOUT,
                    f"the start of run {self.settings.run_id!r} was not decided within"
                    f" {self.settings.start_timeout_seconds} s: not every planned task registered"
                    f" ({registration['registered']} of {registration['planned']} had when this one did)",
                )
            self.pause(delay * random.uniform(0.5, 1.0))
            delay = min(delay * 2, POLL_MAX_DELAY_SECONDS)

    def estimate_offset(self, answer: dict, sent_ms: float) -> tuple[float, float]:
        """The orchestrator's clock minus ours, and the round trip it was measured over.

        ``answer`` is the test-init answer that decided the start, asked at ``sent_ms``; more are
        asked while there is time, and the one with the shortest round trip wins. A failed
        sample is skipped: the first answer is always usable.
        """
        received_ms = time.time() * 1000
        best = (answer["server_time"] - (sent_ms + received_ms) / 2, received_ms - sent_ms)
        sample_until_ms = received_ms + (answer["start_at"] - answer["server_time"]) / 4
        for _sample in range(CLOCK_SAMPLES - 1):
            sent_ms = time.time() * 1000
            if sent_ms + best[1] > sample_until_ms:
                break
            try:
                server_time = self.orchestrator.start_state()["server_time"]
            except (OrchestratorError, KeyError, TypeError):
                continue
            received_ms = time.time() * 1000
            if received_ms - sent_ms < best[1]:
                best = (server_time - (sent_ms + received_ms) / 2, received_ms - sent_ms)
        return best

    def run_k6(self, script: Path, tags: Mapping[str, str], start: Start, summary_export: Path) -> K6Run:
        """Start k6 paused now, resume it at the start, and wait for it to exit."""
        command = k6_command(self.settings, script, tags, summary_export)
        log("info", "k6-launching", command=command)
        self.k6 = subprocess.Popen(command, env=k6_environment(self.settings))
        started_at = None
        try:
            if self.wait_for_k6_api():
                start_monotonic = time.monotonic() + (start.at_local_ms - time.time() * 1000) / 1000
                self.pause(start_monotonic - time.monotonic())
                started_at = start.on_orchestrator_clock(self.resume_k6(start.at_local_ms))
            exit_code = self.wait_for_k6()
            exited_at = start.on_orchestrator_clock(time.time() * 1000)
        except (Interrupted, LoadGeneratorError):
            self.stop_k6()
            raise
        log(
            "info" if exit_code == 0 else "error",
            "k6-exited",
            exit_code=exit_code,
            meaning=describe_exit_code(exit_code),
        )
        metrics = read_summary_metrics(summary_export)
        requests, duration_ms = read_requests(metrics)
        # The load ended when k6's own run time says, after it resumed; k6 exits a little later
        # (its last push, the summary), which is the bound when the run time is unknown.
        ended_at = exited_at if started_at is None or duration_ms is None else min(exited_at, started_at + round(duration_ms))
        return K6Run(exit_code, started_at, read_thresholds(metrics), requests, ended_at if started_at else None)

    def wait_for_k6(self) -> int:
        """Wait for k6 to exit, asking the orchestrator every interval whether the run was stopped.

        A stopped or aborted run's k6 gets one SIGTERM: it ends its iterations and pushes its last
        metrics to the aggregator, as at a normal end, and exits 105.
        """
        period = self.settings.interval_seconds
        next_poll = time.monotonic() + period * random.uniform(0.5, 1.0)
        while True:
            try:
                return self.k6.wait(timeout=max(0.0, next_poll - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            if not self.k6_signalled:
                self.stop_k6_if_run_stopped()
            next_poll = time.monotonic() + period

    def stop_k6_if_run_stopped(self) -> None:
        try:
            stop = self.orchestrator.start_state().get("stop")
        except OrchestratorError as error:
            log("warning", "stop-poll-failed", message=str(error))
            return
        if stop:
            log("warning", "run-stopped", reason=stop["reason"], detail=stop.get("detail", ""), at=stop["at"])
            self.terminate_k6()

    def wait_for_k6_api(self) -> bool:
        """Wait until paused k6 answers on its REST API; False if k6 exited first."""
        url = f"{self.settings.k6_api_url}/v1/status"
        deadline = time.monotonic() + K6_API_TIMEOUT_SECONDS
        while self.k6.poll() is None:
            try:
                if http_request(url, timeout=1) == 200:
                    return True
            except OSError:
                pass  # k6 is still initialising its VUs
            if time.monotonic() > deadline:
                raise LoadGeneratorError(
                    Failure.K6_NOT_READY, f"k6 did not answer at {url} within {K6_API_TIMEOUT_SECONDS} s"
                )
            self.pause(0.05)
        return False

    def resume_k6(self, start_at_local_ms: float) -> float:
        """Resume k6; return when, in local epoch ms (k6 answers once it has resumed)."""
        body = {"data": {"type": "status", "id": "default", "attributes": {"paused": False}}}
        try:
            status = http_request(f"{self.settings.k6_api_url}/v1/status", method="PATCH", body=body)
        except OSError as error:
            self.check_stop()  # k6 went away because we were told to stop
            raise LoadGeneratorError(Failure.K6_NOT_READY, f"k6 did not answer the resume request: {error}") from None
        at_ms = time.time() * 1000
        if status != 200:
            raise LoadGeneratorError(Failure.K6_NOT_READY, f"k6 refused to resume (HTTP {status})")
        log("info", "k6-started", at_ms=round(at_ms, 1), late_ms=round(at_ms - start_at_local_ms, 1))
        return at_ms

    def stop_k6(self) -> None:
        """Stop k6 gracefully, and kill it if it does not exit within the grace period."""
        self.terminate_k6()
        try:
            self.k6.wait(timeout=K6_STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.k6.kill()
            self.k6.wait()

    def finish_aggregator(self) -> tuple[Failure | None, dict[str, int]]:
        """Ask the aggregator to write everything and exit: a failure if it did not confirm, and
        the counts it answered with for test-end's ``accounting`` (none if it did not answer)."""
        url = f"{self.settings.aggregator_url}/finish"
        try:
            status, answer = http_exchange(url, method="POST", body={}, timeout=AGGREGATOR_FINISH_TIMEOUT_SECONDS)
        except OSError as error:
            status, answer, detail = None, None, str(error)
        else:
            detail = f"HTTP {status}"
        counts = aggregator_accounting(answer)
        if status == 200:
            log("info", "aggregator-finished", **counts)
            return None, counts
        log("error", "aggregator-finish-failed", url=url, message=f"results of this task may be incomplete: {detail}", **counts)
        return Failure.AGGREGATOR_FINISH, counts

    def report_end(self, exit_code: int, k6_fields: Mapping[str, Any]) -> Failure | None:
        """Report ``test-end``: the exit code, and what is known of k6's run (``K6Run.test_end_fields``).

        Asked again while the orchestrator does not answer, ``TEST_END_ATTEMPTS`` times at most:
        the first report is kept, so a report that arrived twice changes nothing.
        """
        delay = RETRY_FIRST_DELAY_SECONDS
        for attempt in range(1, TEST_END_ATTEMPTS + 1):
            try:
                self.orchestrator.report_end(exit_code, **k6_fields)
                break
            except OrchestratorUnavailable as error:
                if attempt == TEST_END_ATTEMPTS:
                    log("error", "test-end-failed", exit_code=exit_code, message=str(error), attempts=attempt)
                    return Failure.TEST_END
                log("warning", "test-end-retry", message=str(error), retry_in_s=round(delay, 1))
            except OrchestratorError as error:
                log("error", "test-end-failed", exit_code=exit_code, message=str(error))
                return Failure.TEST_END
            time.sleep(delay * random.uniform(0.5, 1.0))  # the run is over: a stop signal changes nothing now
            delay = min(delay * 2, RETRY_MAX_DELAY_SECONDS)
        log("info", "test-end", exit_code=exit_code, meaning=describe_exit_code(exit_code), **k6_fields)
        return None


def final_exit_code(exit_code: int, follow_up_failures: list[Failure]) -> int:
    """The run's own failure (k6's or ours) first, unless the load ran (0, k6's crossed thresholds
    99, a stopped run's 105 or 90): then the first failure after it, a flush the aggregator did not
    confirm or an end not reported, which would otherwise hide behind a code the run accepts
    (records missing from a task whose k6 crossed a threshold would go unnoticed)."""
    if not follow_up_failures or not load_ran(exit_code, stopped=True):
        return exit_code
    return int(follow_up_failures[0])


def main() -> int:
    log("info", "load-generator-starting", pid=os.getpid())
    try:
        k6_version = check_k6(os.environ.get("CONSTELLATION_K6") or "k6")
        settings = Settings.from_env(os.environ)
        orchestrator = OrchestratorClient.from_spec(
            settings.orchestrator, settings.home_region, settings.task, settings.endpoint_url
        )
    except LoadGeneratorError as error:
        log("error", "failed", exit_code=int(error.failure), reason=error.failure.name, message=str(error))
        return int(error.failure)
    log(
        "info",
        "configured",
        k6_version=k6_version,
        run_id=settings.run_id,
        region=settings.region,
        task_index=settings.task_index,
        load_model=settings.load_model,
        execution_segment=settings.execution_segment,
    )
    generator = LoadGenerator(settings, orchestrator)
    signal.signal(signal.SIGTERM, generator.handle_signal)
    signal.signal(signal.SIGINT, generator.handle_signal)
    exit_code = generator.run()
    # The exit code is decided: a SIGTERM from here on must not turn it into 143 while Python shuts down.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_IGN)
    log("info" if exit_code == 0 else "error", "exit", exit_code=exit_code, meaning=describe_exit_code(exit_code))
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
