# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The two programs of each task as local processes, with the environment the task contract gives them.

For tests and benchmarks of the programs themselves (what the load generator does on a script
exception, on SIGTERM, with k6 missing; the start skew of many generators), without images or
containers. Each planned task runs the load generator and aggregator entrypoints as processes
with exactly the environment ECS gives its two containers (``task_contract.task_environment``
of the task definition's containers and the task's overrides), except the two ports the task's
programs talk over (free ports per task, as the emulated ECS gives them) and what a test adds.
The tasks invoke the orchestrator function deployed in the emulator (:func:`deploy_orchestrator`),
as the containers do.

The path users run, and the demo and end-to-end tests run, is the emulated ECS (tools/ecs_runner.py):
the same contract, sent by ``ecs_load_tasks``, run as containers of our images.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO
from typing import Mapping

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / ".build" / "collections"))

from ansible_collections.constellation.loadtest.plugins.module_utils.run import load_tasks  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run import task_contract  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import Config  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import AGGREGATOR  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import LOAD_GENERATOR  # noqa: E402

from ecs_runner import TASK_PORT_VARIABLES, free_ports  # noqa: E402

_POLL_SECONDS = 0.1
# Processes run no image: the contract's image names are not used.
NO_IMAGE = "(run as a local process)"


@dataclass(frozen=True)
class ProcessTask:
    """One planned task: its region, its index there and the environment of each of its two programs."""

    region: str
    index: int
    load_generator_env: Mapping[str, str]
    aggregator_env: Mapping[str, str]

    @property
    def name(self) -> str:
        return f"{self.region}-{self.index}"


def contract_tasks(
    config: Config,
    home: task_contract.Home,
    run: task_contract.Run,
    endpoint_url: str | None,
    interval_seconds: int = 5,
    extra_env: Mapping[str, str] | None = None,
    token_key: bytes | None = None,
) -> list[ProcessTask]:
    """Every planned task of every region of ``config``, with the contract's environment (plus ``extra_env``).

    With the run's ``token_key`` each task gets its orchestrator token, as ``ecs_load_tasks`` gives it.
    """
    deployment = task_contract.Deployment(
        home=home,
        load_generator_image=NO_IMAGE,
        aggregator_image=NO_IMAGE,
        task_cpu=config.task_cpu,
        task_memory=config.task_memory,
        log_group=f"/ecs/{config.deployment}",
        interval_seconds=interval_seconds,
        endpoint_url=endpoint_url,
    )
    tasks = []
    for region, region_contract in task_contract.contract(config, deployment, run).items():
        containers = region_contract["containers"]
        for index, overrides in enumerate(region_contract["tasks"]):
            if token_key is not None:
                overrides = load_tasks.with_task_token(overrides, token_key, run.run_id, region, index)
            tasks.append(
                ProcessTask(
                    region=region,
                    index=index,
                    load_generator_env=task_contract.task_environment(containers, overrides, LOAD_GENERATOR) | dict(extra_env or {}),
                    aggregator_env=task_contract.task_environment(containers, overrides, AGGREGATOR) | dict(extra_env or {}),
                )
            )
    return tasks


@dataclass(frozen=True)
class Entrypoints:
    """The programs a task runs, and the PYTHONPATH they import the shared code from."""

    load_generator: Path
    aggregator: Path
    python_path: tuple[Path, ...]

    @classmethod
    def of_collection(cls, root: Path = REPO) -> "Entrypoints":
        """The entrypoints of the collection checked out (or installed) at ``root``."""
        root = Path(root)
        return cls(
            load_generator=root / "files" / "containers" / "load_generator" / "entrypoint.py",
            aggregator=root / "files" / "containers" / "aggregator" / "entrypoint.py",
            python_path=(root / "plugins" / "module_utils",),
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
class ProcessRun:
    tasks: list[TaskResult]
    timed_out: bool  # the run was stopped because it outlived its timeout


def deploy_orchestrator(endpoint_url: str, region: str, function: str, table: str) -> None:
    """The orchestrator function as init deploys it (its code, handler and environment), in the emulator."""
    import boto3
    from ansible_collections.constellation.loadtest.plugins.modules.lambda_package import build_package

    # The files roles/home/tasks/present.yml packages.
    state = REPO / "plugins" / "module_utils" / "run"
    sources = {
        "orchestrator.py": REPO / "files" / "lambda" / "orchestrator.py",
        "run/__init__.py": state / "__init__.py",
        "run/orchestrator_state.py": state / "orchestrator_state.py",
    }
    iam = boto3.client("iam", region_name=region, endpoint_url=endpoint_url)
    trust = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}'
    role = iam.create_role(RoleName=f"{function}-role", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    boto3.client("lambda", region_name=region, endpoint_url=endpoint_url).create_function(
        FunctionName=function,
        Runtime="python3.12",
        Handler="orchestrator.handler",
        Role=role,
        Code={"ZipFile": build_package([(name, source.read_bytes()) for name, source in sources.items()])},
        Timeout=30,
        Environment={"Variables": {"STATE_TABLE": table}},
    )


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
    task: ProcessTask
    aggregator: _Process
    load_generator: _Process
    generator_exited_at: float | None = None

    @property
    def processes(self) -> tuple[_Process, _Process]:
        return self.load_generator, self.aggregator


def run_tasks(
    tasks: list[ProcessTask],
    entrypoints: Entrypoints,
    log_dir: Path,
    timeout_seconds: float,
    grace_seconds: float = 10.0,
    python: str = sys.executable,
) -> ProcessRun:
    """Run ``tasks`` to completion, or until ``timeout_seconds``; return how each ended.

    An aggregator normally exits when its load generator asks it to finish; one still running
    ``grace_seconds`` after its generator exited is stopped. On timeout every process is
    stopped: SIGTERM, then SIGKILL after ``grace_seconds``. On any exception (Ctrl-C
    included) everything is stopped the same way before the exception goes on.
    """
    for program in (entrypoints.load_generator, entrypoints.aggregator):
        if not Path(program).is_file():
            raise FileNotFoundError(f"a task runs {program}, which does not exist")
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    started: list[_TaskProcesses] = []
    try:
        for task in tasks:
            ports = dict(zip(TASK_PORT_VARIABLES, map(str, free_ports(len(TASK_PORT_VARIABLES)))))
            started.append(_start_task(task, entrypoints, log_dir, python, ports))
        timed_out = not _wait_for_tasks(started, time.monotonic() + timeout_seconds, grace_seconds)
    finally:
        _stop(started, grace_seconds)
    return ProcessRun(tasks=[_result(task) for task in started], timed_out=timed_out)


def _start_task(task: ProcessTask, entrypoints: Entrypoints, log_dir: Path, python: str, ports: dict[str, str]) -> _TaskProcesses:
    shared = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, entrypoints.python_path)), "PYTHONUNBUFFERED": "1"}
    aggregator_env = {**shared, **task.aggregator_env, **ports}
    generator_env = {**shared, **task.load_generator_env, **ports}
    aggregator = _start([python, str(entrypoints.aggregator)], aggregator_env, log_dir / f"{task.name}-aggregator.log")
    try:
        generator = _start([python, str(entrypoints.load_generator)], generator_env, log_dir / f"{task.name}-load-generator.log")
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
