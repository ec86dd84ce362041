# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The ``local`` executor: every task of a test run as processes on this machine.

Each planned task of each (simulated) region gets what an ECS task gets: an aggregator
process and a load generator process, the same entrypoints as the containers, sharing
127.0.0.1 on ports allocated for the task. Each process logs to its own file.

Nothing here imports Ansible: a module, the demo and the benchmarks call :func:`local_tasks`
then :func:`run_tasks`. Resetting the run in the orchestrator (``test-reset`` with the plan)
and uploading the script are the caller's job, as they are for the ``fargate`` executor.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import IO
from typing import Mapping

from .config import Config
from .config import plan
from .config import script_load_segments

LOAD_MODELS = ("vus", "script")
_POLL_SECONDS = 0.1


@dataclass(frozen=True)
class RunSettings:
    """What every task of a run shares, besides the plan."""

    run_id: str
    orchestrator: str  # "lambda:<function>" or "local:<state table>"
    bucket: str
    script_key: str
    endpoint_url: str | None = None
    load_model: str = "vus"
    # Local processes come up in seconds; a task that never registers should fail the run
    # long before the container default of 10 minutes.
    start_timeout_seconds: int = 120
    interval_seconds: int = 5
    k6: str = "k6"
    extra_env: Mapping[str, str] = field(default_factory=dict)  # e.g. the Timestream database and table


@dataclass(frozen=True)
class LocalTask:
    """One task: its region, its index there and its environment (ports are added at start)."""

    region: str
    index: int
    env: Mapping[str, str]

    @property
    def name(self) -> str:
        return f"{self.region}-{self.index}"


@dataclass(frozen=True)
class Entrypoints:
    """The programs a task runs, and the PYTHONPATH they import the shared code from."""

    load_generator: Path
    aggregator: Path
    python_path: tuple[Path, ...]

    @classmethod
    def of_collection(cls, root: Path) -> "Entrypoints":
        """The entrypoints of the collection checked out (or installed) at ``root``."""
        root = Path(root)
        return cls(
            load_generator=root / "files" / "containers" / "load_generator" / "entrypoint.py",
            aggregator=root / "files" / "containers" / "aggregator" / "entrypoint.py",
            python_path=(root / "plugins" / "module_utils", root / "files" / "lambda"),
        )


@dataclass(frozen=True)
class TaskResult:
    """How a task's processes ended; a negative exit code is the signal that ended it."""

    region: str
    index: int
    load_generator_exit_code: int
    aggregator_exit_code: int
    load_generator_log: Path
    aggregator_log: Path


@dataclass(frozen=True)
class LocalRun:
    tasks: list[TaskResult]
    timed_out: bool  # the run was stopped because it outlived its timeout


def local_tasks(config: Config, settings: RunSettings) -> list[LocalTask]:
    """One LocalTask for every planned task of every remote region, with its share of the load."""
    if settings.load_model not in LOAD_MODELS:
        raise ValueError(f"load_model must be one of {', '.join(LOAD_MODELS)}, got {settings.load_model!r}")
    regions = plan(config)["remote_regions"]
    script_load = script_load_segments(config) if settings.load_model == "script" else None
    tasks = []
    for region, region_plan in regions.items():
        if script_load is None:
            segments, sequence = region_plan["execution_segments"], region_plan["execution_segment_sequence"]
        else:
            segments = script_load["regions"][region]["execution_segments"]
            sequence = script_load["execution_segment_sequence"]
        for index, segment in enumerate(segments):
            env = _shared_env(config, settings) | {
                "CONSTELLATION_REGION": region,
                "CONSTELLATION_TASK_INDEX": str(index),
                "CONSTELLATION_VUS": str(region_plan["vus"]),
                "CONSTELLATION_EXECUTION_SEGMENT": segment,
                "CONSTELLATION_EXECUTION_SEGMENT_SEQUENCE": sequence,
            }
            tasks.append(LocalTask(region, index, env))
    return tasks


def _shared_env(config: Config, settings: RunSettings) -> dict[str, str]:
    env = {
        **settings.extra_env,
        "CONSTELLATION_RUN_ID": settings.run_id,
        "CONSTELLATION_HOME_REGION": config.home_region,
        "CONSTELLATION_RESULTS_STORE": config.results_store,
        "CONSTELLATION_ORCHESTRATOR": settings.orchestrator,
        "CONSTELLATION_BUCKET": settings.bucket,
        "CONSTELLATION_SCRIPT_KEY": settings.script_key,
        "CONSTELLATION_LOAD_MODEL": settings.load_model,
        "CONSTELLATION_DURATION_MS": str(config.duration_ms),
        "CONSTELLATION_START_TIMEOUT_SECONDS": str(settings.start_timeout_seconds),
        "CONSTELLATION_INTERVAL_SECONDS": str(settings.interval_seconds),
        "CONSTELLATION_K6": settings.k6,
    }
    if settings.endpoint_url:
        env["CONSTELLATION_AWS_ENDPOINT_URL"] = settings.endpoint_url
    return env


# ---------------------------------------------------------------------------------------------
# Processes
# ---------------------------------------------------------------------------------------------


@dataclass
class _Process:
    """A started process, its log file, and when it was asked to stop."""

    popen: subprocess.Popen
    log: IO[bytes]
    log_path: Path
    terminated_at: float | None = None

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def terminate(self) -> None:
        """SIGTERM: our entrypoints flush and report before they exit."""
        if self.terminated_at is None and self.running:
            self.popen.terminate()
        self.terminated_at = self.terminated_at or time.monotonic()

    def kill(self) -> None:
        """SIGKILL the whole process group, so a load generator's k6 goes with it."""
        if self.running:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # exited since poll()
        self.popen.wait()


@dataclass
class _TaskProcesses:
    task: LocalTask
    aggregator: _Process
    load_generator: _Process
    generator_exited_at: float | None = None

    @property
    def processes(self) -> tuple[_Process, _Process]:
        return self.load_generator, self.aggregator


def run_tasks(
    tasks: list[LocalTask],
    entrypoints: Entrypoints,
    log_dir: Path,
    timeout_seconds: float,
    grace_seconds: float = 10.0,
    python: str = sys.executable,
) -> LocalRun:
    """Run ``tasks`` to completion, or until ``timeout_seconds``; return how each ended.

    An aggregator normally exits when its load generator asks it to finish; one still running
    ``grace_seconds`` after its generator exited is stopped. On timeout every process is
    stopped: SIGTERM, then SIGKILL after ``grace_seconds``. On any exception (Ctrl-C
    included) everything is stopped the same way before the exception goes on.
    """
    for program in (entrypoints.load_generator, entrypoints.aggregator):
        if not Path(program).is_file():
            raise FileNotFoundError(f"the local executor runs {program}, which does not exist")
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    ports = _free_ports(2 * len(tasks))
    started: list[_TaskProcesses] = []
    try:
        for number, task in enumerate(tasks):
            aggregator_port, k6_api_port = ports[2 * number], ports[2 * number + 1]
            started.append(_start_task(task, entrypoints, log_dir, python, aggregator_port, k6_api_port))
        timed_out = not _wait_for_tasks(started, time.monotonic() + timeout_seconds, grace_seconds)
    finally:
        _stop(started, grace_seconds)
    return LocalRun(tasks=[_result(task) for task in started], timed_out=timed_out)


def _start_task(
    task: LocalTask, entrypoints: Entrypoints, log_dir: Path, python: str, aggregator_port: int, k6_api_port: int
) -> _TaskProcesses:
    env = {
        **os.environ,
        **task.env,
        "PYTHONPATH": os.pathsep.join(map(str, entrypoints.python_path)),
        "PYTHONUNBUFFERED": "1",
        "CONSTELLATION_AGGREGATOR_PORT": str(aggregator_port),
        "CONSTELLATION_K6_API_PORT": str(k6_api_port),
    }
    aggregator = _start([python, str(entrypoints.aggregator)], env, log_dir / f"{task.name}-aggregator.log")
    try:
        generator = _start([python, str(entrypoints.load_generator)], env, log_dir / f"{task.name}-load-generator.log")
    except BaseException:
        _stop_processes([aggregator], grace_seconds=0)
        raise
    return _TaskProcesses(task, aggregator, generator)


def _start(command: list[str], env: dict[str, str], log_path: Path) -> _Process:
    log = open(log_path, "wb")
    try:
        # A session of its own: Ctrl-C in a terminal reaches only the caller, which stops the
        # tasks in order, and killpg() can take a load generator's k6 along.
        popen = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    except BaseException:
        log.close()
        raise
    return _Process(popen, log, log_path)


def _wait_for_tasks(started: list[_TaskProcesses], deadline: float, grace_seconds: float) -> bool:
    """Wait until every process exited (True), or the deadline passed (False)."""
    while time.monotonic() < deadline:
        now = time.monotonic()
        for task in started:
            if task.generator_exited_at is None and not task.load_generator.running:
                task.generator_exited_at = now
            if task.generator_exited_at is not None and now - task.generator_exited_at > grace_seconds:
                task.aggregator.terminate()
            if task.aggregator.terminated_at is not None and now - task.aggregator.terminated_at > grace_seconds:
                task.aggregator.kill()
        if not any(process.running for task in started for process in task.processes):
            return True
        time.sleep(_POLL_SECONDS)
    return False


def _stop(started: list[_TaskProcesses], grace_seconds: float) -> None:
    """Stop what still runs (generators first, so they can still finish their aggregators)."""
    try:
        _stop_processes([task.load_generator for task in started], grace_seconds)
        _stop_processes([task.aggregator for task in started], grace_seconds)
    finally:
        for task in started:
            for process in task.processes:
                process.log.close()


def _stop_processes(processes: list[_Process], grace_seconds: float) -> None:
    for process in processes:
        process.terminate()
    deadline = time.monotonic() + grace_seconds
    while any(process.running for process in processes) and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
    for process in processes:
        process.kill()


def _result(task: _TaskProcesses) -> TaskResult:
    return TaskResult(
        region=task.task.region,
        index=task.task.index,
        load_generator_exit_code=task.load_generator.popen.returncode,
        aggregator_exit_code=task.aggregator.popen.returncode,
        load_generator_log=task.load_generator.log_path,
        aggregator_log=task.aggregator.log_path,
    )


def _free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports free on 127.0.0.1 right now."""
    ports: set[int] = set()
    while len(ports) < count:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.add(sock.getsockname()[1])
    return sorted(ports)
