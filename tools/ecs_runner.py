"""The emulated ECS's task runner: every task that RunTask starts really runs, as a podman pod.

moto records a RunTask and runs nothing. Here each Fargate task of the emulator becomes a pod with
one container per container definition of its registered task definition (image, entry point,
command, environment, secrets, essential, stopTimeout, linuxParameters.initProcessEnabled), with the task's
container overrides applied as ECS applies them, started in the task definition's order. The task's state in the emulator follows
its containers, as on Fargate:

    PROVISIONING -> PENDING (images pulled from their registry) -> RUNNING (every container started)
    -> STOPPING (an essential container exited, or StopTask) -> STOPPED (every container exited)

with each container's exit code, the task's stop code and reason (``EssentialContainerExited``,
``UserInitiated``, ``TaskFailedToStart`` with ``CannotPullContainerError``...). StopTask sends each
container SIGTERM and, after its stopTimeout (30 s unless the definition says otherwise), SIGKILL.

What differs from Fargate, and why it does not matter for what runs here:

* Networking. Fargate gives each task its own network namespace (``awsvpc``): the containers of a
  task share 127.0.0.1 and tasks never collide. Here every container uses the host's network, so
  that a target on the host's loopback is reached at the very URL a script names (for example
  ``http://127.0.0.1:8080``), and the emulated AWS endpoint too. Tasks then share one loopback, so
  the runner gives each task ports of its own for the two ports its containers talk over
  (``CONSTELLATION_AGGREGATOR_PORT`` and ``CONSTELLATION_K6_API_PORT``, set in both containers,
  from below the ephemeral range so that no outgoing connection takes them first); the two
  containers of a task still talk over 127.0.0.1 as they do on Fargate.
* Resources. The task's CPU and memory and the containers' reservations are not applied: a task
  here may use more than its Fargate size would let it (tests here are small; sizing is not tested).
* Credentials. Fargate serves the task role's credentials at a link-local address named by
  ``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI``; here the emulator serves them on its own endpoint,
  named by ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (with a per-task authorization token), which
  boto3 reads the same way. ``AWS_REGION`` and ``AWS_DEFAULT_REGION`` are set as Fargate sets them.
* Logs. The ``awslogs`` driver is not emulated: each container's output is in a file under the
  runner's log directory (``tasks/<region>/<task id>/<container>.log``), and is copied to the
  CloudWatch Logs group of the definition's ``logConfiguration`` when the container has exited.

A host's clock that is off (for the start-skew benchmark): ``CONSTELLATION_EMULATOR_CLOCK_OFFSETS``,
JSON ``{"<region>/<task index>": seconds}`` in the emulator's environment, runs that task's load
generator with libfaketime (Debian's ``faketime``, mounted from the host) shifting its wall clock
by that many seconds. k6 is a static Go binary that libfaketime cannot shift; the load generator
is what reads the clock to wait for the start, so it is what a wrong host clock would mislead.

Pods and containers carry the labels ``constellation.emulator=<session>`` and
``constellation.emulator-pid=<the emulator's pid>``: :meth:`TaskRunner.shutdown` stops and removes
every one of them, and a new emulator removes those of emulators that were killed (:func:`remove_orphans`).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from dataclasses import field
from datetime import datetime
from datetime import timezone
from pathlib import Path
from typing import Any
from typing import Callable
from typing import NamedTuple

import podman

LOG = logging.getLogger("emulator.ecs")
SESSION_LABEL = "constellation.emulator"
TASK_LABEL = "constellation.task"
PID_LABEL = "constellation.emulator-pid"  # the emulator process that runs it
DEFAULT_STOP_TIMEOUT_SECONDS = 30  # ECS's default for Fargate containers
POLL_SECONDS = 1.0
# Ports each task's containers talk over on 127.0.0.1 (see "Networking" above).
TASK_PORT_VARIABLES = ("CONSTELLATION_AGGREGATOR_PORT", "CONSTELLATION_K6_API_PORT")


@dataclass
class ContainerState:
    """One container of a task as DescribeTasks shows it (moto serializes these attributes)."""

    container_arn: str
    task_arn: str
    name: str
    image: str
    last_status: str = "PENDING"
    exit_code: int | None = None
    reason: str | None = None
    runtime_id: str | None = None


@dataclass
class ContainerRun:
    """A container definition as this task runs it: the definition with the task's overrides applied."""

    name: str
    image: str
    essential: bool
    environment: dict[str, str]
    entry_point: list[str] | None
    command: list[str] | None
    stop_timeout: int
    init_process: bool  # linuxParameters.initProcessEnabled: an init as PID 1 passes signals on
    log_group: str | None
    log_stream: str | None
    secrets: list[dict[str, str]] = field(default_factory=list)  # the definition's: name and valueFrom
    podman_name: str = ""
    exited: bool = False


@dataclass
class TaskRun:
    """One task from RunTask to STOPPED."""

    task: Any  # moto's Task: its status and containers are what DescribeTasks answers
    region: str
    account_id: str
    containers: list[ContainerRun]
    credentials_token: str
    pod: str
    log_dir: Path
    task_role_arn: str | None  # the task's role (RunTask's override, else the definition's)
    stop_reason: str | None = None
    stop_code: str | None = None
    ports: dict[str, str] = field(default_factory=dict)  # TASK_PORT_VARIABLES: the task's own ports
    started: bool = False  # every container was started
    stopping: bool = False  # its containers were (or are to be) told to stop
    stop_grace: float | None = None  # at most this long before SIGKILL (None: each container's stopTimeout)
    starter: threading.Thread | None = None  # pulls, creates and starts its containers
    stoppers: list[threading.Thread] = field(default_factory=list)  # `podman stop` of its containers
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def task_id(self) -> str:
        return self.task.task_arn.rsplit("/", 1)[-1]

    def state(self, name: str) -> ContainerState:
        return next(state for state in self.task.containers if state.name == name)


CLOCK_OFFSETS_VARIABLE = "CONSTELLATION_EMULATOR_CLOCK_OFFSETS"
FAKETIME_LIBRARY = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"
LOAD_GENERATOR_CONTAINER = "load-generator"


def clock_offset(region: str, task_index: str | None) -> int | None:
    """The seconds this task's load generator's clock is off by (CLOCK_OFFSETS_VARIABLE), None if not set."""
    offsets = json.loads(os.environ.get(CLOCK_OFFSETS_VARIABLE) or "{}")
    offset = offsets.get(f"{region}/{task_index}")
    return None if offset is None else int(offset)


def now() -> datetime:
    return datetime.now(timezone.utc)


# Ports for tasks come from below Linux's ephemeral range (32768 and up by default), where the
# kernel picks the source ports of outgoing connections: a port reserved for a task's aggregator is
# never taken by k6 or boto3 connecting out before the aggregator binds it.
TASK_PORT_RANGE = (20000, 32000)


def free_ports(count: int, taken: set[int] = frozenset()) -> list[int]:
    """``count`` distinct TCP ports of TASK_PORT_RANGE free on 127.0.0.1 right now, none of them in ``taken``."""
    chosen: list[int] = []
    for port in random.sample(range(*TASK_PORT_RANGE), k=TASK_PORT_RANGE[1] - TASK_PORT_RANGE[0]):
        if len(chosen) == count:
            break
        if port in taken:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        chosen.append(port)
    if len(chosen) < count:
        raise OSError(f"no {count} free ports in {TASK_PORT_RANGE[0]}-{TASK_PORT_RANGE[1] - 1} on 127.0.0.1")
    return chosen


class TaskRunner:
    """Runs the emulator's ECS tasks as podman pods; the emulator calls it from moto's RunTask and StopTask."""

    def __init__(
        self,
        session: str,
        endpoint_url: str,
        log_dir: Path,
        podman_env: dict[str, str],
        write_logs: Callable[[str, str, str, str, list["LogLine"]], None] | None = None,
    ) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self.log_dir = log_dir
        self.podman_env = podman_env
        self.write_logs = write_logs
        self.runs: dict[str, TaskRun] = {}  # by task ARN
        self.lock = threading.Lock()
        self.accepting = True  # False once the emulator stops: a RunTask then starts nothing
        self.closing = threading.Event()  # the monitor's end
        remove_orphans(podman_env)
        self.monitor = threading.Thread(target=self._monitor, name="ecs-monitor", daemon=True)
        self.monitor.start()

    # --- what the emulator calls ----------------------------------------------------------------

    def take(self, backend: Any, task: Any) -> None:
        """Take over a task moto just created: its status is ours from now on, and it starts in the background."""
        task._transitions = []  # moto's state manager no longer moves it; its containers decide
        task.last_status = "PROVISIONING"
        definition = backend.describe_task_definition(task.task_definition_arn)
        containers = self._container_runs(task, definition)
        task.containers = [
            ContainerState(f"{task.task_arn.replace(':task/', ':container/')}/{c.name}", task.task_arn, c.name, c.image)
            for c in containers
        ]
        task_id = task.task_arn.rsplit("/", 1)[-1]
        run = TaskRun(
            task=task,
            region=task.region_name,
            account_id=backend.account_id,
            containers=containers,
            credentials_token=secrets.token_urlsafe(24),
            pod=f"ecs-{task.region_name}-{task_id}",
            task_role_arn=(task.overrides or {}).get("taskRoleArn") or getattr(definition, "task_role_arn", None),
            log_dir=self.log_dir / "tasks" / task.region_name / task_id,
        )
        for container in containers:
            container.podman_name = f"{run.pod}-{container.name}"
        with self.lock:
            accepting = self.accepting
            self.runs[task.task_arn] = run
        if not accepting:
            self._fail_to_start(run, "TaskFailedToStart: the emulator is stopping")
            return
        run.starter = threading.Thread(target=self._start, args=(run,), name=f"ecs-task-{task_id[:8]}", daemon=True)
        run.starter.start()

    def stop(self, task: Any, reason: str | None) -> None:
        """StopTask: SIGTERM every container, SIGKILL after its stopTimeout; STOPPED once all have exited."""
        run = self.runs.get(task.task_arn)
        if run is None:
            return
        self._request_stop(run, "UserInitiated", reason or "Task stopped by user")

    def credentials(self, task_id: str, token: str) -> dict[str, str] | None:
        """The task role's credentials for the task ``task_id``, if ``token`` is that task's."""
        run = next((r for r in list(self.runs.values()) if r.task_id == task_id), None)
        if run is None or not secrets.compare_digest(run.credentials_token, token or ""):
            return None
        role = run.task_role_arn or ""
        expiration = datetime.fromtimestamp(time.time() + 3600, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "AccessKeyId": f"ASIA{task_id.replace('-', '')[:16].upper()}",
            "SecretAccessKey": secrets.token_urlsafe(30),
            "Token": secrets.token_urlsafe(60),
            "Expiration": expiration,
            "RoleArn": role,
        }

    def shutdown(self, grace_seconds: float = 10.0) -> None:
        """Start nothing more; stop every task (SIGTERM, SIGKILL after at most ``grace_seconds``); remove every pod."""
        with self.lock:
            self.accepting = False
        self._stop_all("The emulator stopped", grace_seconds)
        self.closing.set()  # the monitor saw them stop; nothing else will start
        remove_session(self.session, self.podman_env)

    def reset(self) -> None:
        """moto's reset forgets every task: stop and remove ours first."""
        self._stop_all("The emulator was reset", grace_seconds=5)
        with self.lock:
            self.runs.clear()
        remove_session(self.session, self.podman_env)

    def _stop_all(self, reason: str, grace_seconds: float) -> None:
        """Stop every task and wait until each has stopped (its pod removed) or was killed."""
        with self.lock:
            runs = list(self.runs.values())
        for run in runs:
            if not run.done.is_set():
                self._request_stop(run, "ServiceSchedulerInitiated", reason, grace_seconds)
        deadline = time.monotonic() + grace_seconds + 20
        for run in runs:
            run.done.wait(max(0.0, deadline - time.monotonic()))
            if run.starter is not None:  # one still pulling must not create its pod after we removed them
                run.starter.join(max(0.0, deadline - time.monotonic()))

    # --- a task's life --------------------------------------------------------------------------

    def _container_runs(self, task: Any, definition: Any) -> list[ContainerRun]:
        overrides = {o.get("name"): o for o in (task.overrides or {}).get("containerOverrides", [])}
        runs = []
        for container in definition.container_definitions:
            override = overrides.get(container["name"], {})
            environment = {item["name"]: item["value"] for item in container.get("environment") or []}
            environment.update({item["name"]: item["value"] for item in override.get("environment") or []})
            log_options = (container.get("logConfiguration") or {}).get("options") or {}
            prefix = log_options.get("awslogs-stream-prefix")
            runs.append(
                ContainerRun(
                    name=container["name"],
                    image=container["image"],
                    essential=container.get("essential", True),
                    environment=environment,
                    entry_point=container.get("entryPoint"),
                    command=override.get("command") or container.get("command"),
                    stop_timeout=int(container.get("stopTimeout") or DEFAULT_STOP_TIMEOUT_SECONDS),
                    init_process=bool((container.get("linuxParameters") or {}).get("initProcessEnabled")),
                    log_group=log_options.get("awslogs-group"),
                    log_stream=f"{prefix}/{container['name']}/{task.task_arn.rsplit('/', 1)[-1]}" if prefix else None,
                    secrets=list(container.get("secrets") or []),
                )
            )
        return runs

    def _start(self, run: TaskRun) -> None:
        try:
            run.log_dir.mkdir(parents=True, exist_ok=True)
            run.task.last_status = "PENDING"
            for image in dict.fromkeys(c.image for c in run.containers):
                pulled = podman.run(["pull", "--quiet", image], self.podman_env, timeout=600, check=False)
                if pulled.returncode != 0:
                    self._fail_to_start(run, f"CannotPullContainerError: pull image {image}: {pulled.stderr.strip()[-300:]}")
                    return
            # As ECS does before it starts the containers: each secret's value into its container's environment.
            for container in run.containers:
                for secret in container.secrets:
                    try:
                        container.environment[secret["name"]] = self._secret_value(secret["valueFrom"])
                    except Exception as error:  # noqa: BLE001 - any failure is the task's, as on ECS
                        self._fail_to_start(
                            run, f"ResourceInitializationError: unable to pull secrets: {secret['name']} ({secret['valueFrom']}): {error}"
                        )
                        return
            with self.lock:
                stopped_while_pulling = run.stopping
            if stopped_while_pulling:  # StopTask, reset or shutdown: nothing to start
                self._finish(run)
                return
            self._create(run)
            for container in run.containers:
                podman.run(["start", container.podman_name], self.podman_env)
                run.state(container.name).last_status = "RUNNING"
                run.state(container.name).runtime_id = container.podman_name
            with self.lock:
                run.started = True
                stop_now = run.stopping
                run.task.started_at = now()
                run.task.last_status = "STOPPING" if stop_now else "RUNNING"
            LOG.info("task %s started: %s", run.task_id, ", ".join(c.podman_name for c in run.containers))
            if stop_now:  # a stop arrived while the containers were being started
                self._stop_containers(run, run.stop_grace)
        except Exception as error:  # any failure to start is the task's, as ECS reports it
            LOG.exception("task %s failed to start", run.task_id)
            self._fail_to_start(run, f"TaskFailedToStart: {error}")

    def _secret_value(self, value_from: str) -> str:
        """A secret's value as ECS reads it: an SSM parameter (decrypted), or a Secrets Manager secret or one key of it."""
        import boto3  # the emulator's own process has it; the images do not need it for this

        parts = value_from.split(":")
        service, region = parts[2], parts[3]
        client = boto3.client(
            service, region_name=region, endpoint_url=self.endpoint_url,
            aws_access_key_id="emulator", aws_secret_access_key="emulator",
        )
        if service == "ssm":
            path = value_from.split(":parameter/", 1)[1]
            name = "/" + path if "/" in path else path
            return client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
        secret_id, (json_key, stage, version) = ":".join(parts[:7]), (parts[7:] + ["", "", ""])[:3]
        request = {"SecretId": secret_id, **({"VersionStage": stage} if stage else {}), **({"VersionId": version} if version else {})}
        value = client.get_secret_value(**request)["SecretString"]
        return str(json.loads(value)[json_key]) if json_key else value

    def _create(self, run: TaskRun) -> None:
        # Ports stay the task's until it stopped: another task starting meanwhile never gets them,
        # although nothing listens on them yet.
        with self.lock:
            taken = {int(port) for other in self.runs.values() if not other.done.is_set() for port in other.ports.values()}
            run.ports = dict(zip(TASK_PORT_VARIABLES, map(str, free_ports(len(TASK_PORT_VARIABLES), taken))))
        ports = run.ports
        podman.run(
            ["pod", "create", "--infra=false", "--name", run.pod, "--label", f"{SESSION_LABEL}={self.session}",
             "--label", f"{PID_LABEL}={os.getpid()}", "--label", f"{TASK_LABEL}={run.task.task_arn}"],
            self.podman_env,
        )
        ecs_environment = {
            "AWS_REGION": run.region,
            "AWS_DEFAULT_REGION": run.region,
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": f"{self.endpoint_url}/_emulator/ecs-credentials/{run.task_id}",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": run.credentials_token,
        }
        for container in run.containers:
            environment = {**container.environment, **ports, **ecs_environment}
            offset = clock_offset(run.region, container.environment.get("CONSTELLATION_TASK_INDEX"))
            shifted = offset is not None and container.name == LOAD_GENERATOR_CONTAINER
            if shifted:
                # The monotonic clock is shifted too, by the same constant, so intervals stay right:
                # with FAKETIME_DONT_FAKE_MONOTONIC, libfaketime 0.9.10 hands Python 3.11's
                # time.sleep (clock_nanosleep, TIMER_ABSTIME) a negative time (wolfcw/libfaketime#426).
                environment.update(LD_PRELOAD=FAKETIME_LIBRARY, FAKETIME=f"{offset:+d}")
            env_file = run.log_dir / f".{container.name}.env"
            env_file.touch(mode=0o600)
            env_file.write_text("".join(f"{name}={value}\n" for name, value in sorted(environment.items())))
            arguments = [
                "create", "--pod", run.pod, "--name", container.podman_name, "--network", "host",
                "--label", f"{SESSION_LABEL}={self.session}", "--label", f"{PID_LABEL}={os.getpid()}",
                "--label", f"{TASK_LABEL}={run.task.task_arn}",
                "--env-file", str(env_file), "--stop-timeout", str(container.stop_timeout),
                "--log-driver", "k8s-file", "--log-opt", f"path={run.log_dir / (container.name + '.log')}",
            ]
            if shifted:
                arguments += ["--volume", f"{FAKETIME_LIBRARY}:{FAKETIME_LIBRARY}:ro"]
            if container.entry_point:
                arguments += ["--entrypoint", json.dumps(container.entry_point)]
            if container.init_process:
                arguments.append("--init")
            try:
                podman.run([*arguments, container.image, *(container.command or [])], self.podman_env)
            finally:
                env_file.unlink(missing_ok=True)

    def _fail_to_start(self, run: TaskRun, reason: str) -> None:
        LOG.warning("task %s failed to start: %s", run.task_id, reason)
        with self.lock:
            if run.stop_code is None:  # a StopTask before the failure is what stopped it
                run.stop_code, run.stop_reason = "TaskFailedToStart", reason
        for state in run.task.containers:
            state.last_status, state.reason = "STOPPED", reason
        self._finish(run)

    def _request_stop(self, run: TaskRun, code: str, reason: str, grace_seconds: float | None = None) -> None:
        """Ask the task to stop: its containers get SIGTERM now if they run, or as soon as they do."""
        with self.lock:
            first = not run.stopping
            shorter = grace_seconds is not None and (run.stop_grace is None or grace_seconds < run.stop_grace)
            run.stopping = True
            if shorter:
                run.stop_grace = grace_seconds
            if run.stop_code is None:
                run.stop_code, run.stop_reason = code, reason
            started = run.started
            task = run.task
            task.desired_status = "STOPPED"
            task.stop_code, task.stopped_reason = run.stop_code, run.stop_reason
            if started and task.last_status == "RUNNING":
                task.last_status = "STOPPING"
        if started and (first or shorter):  # again when the emulator stops with less time than the task asked
            self._stop_containers(run, run.stop_grace)

    def _stop_containers(self, run: TaskRun, grace_seconds: float | None) -> None:
        for container in run.containers:
            if not container.exited:
                timeout = container.stop_timeout if grace_seconds is None else min(container.stop_timeout, grace_seconds)
                stopper = threading.Thread(target=self._stop_container, args=(container, timeout), daemon=True)
                run.stoppers.append(stopper)
                stopper.start()

    def _stop_container(self, container: ContainerRun, timeout: float) -> None:
        podman.run(["stop", "--time", str(int(timeout)), container.podman_name], self.podman_env, timeout=timeout + 60, check=False)

    def _monitor(self) -> None:
        """Follow every running task's containers: exits, essential exits, the end of the task."""
        while not self.closing.wait(POLL_SECONDS):
            with self.lock:
                running = [run for run in self.runs.values() if run.started and not run.done.is_set()]
            if not running:
                continue
            try:
                self._observe(running)
            except Exception:  # keep following; the next poll tries again
                LOG.exception("following the tasks' containers failed")

    def _observe(self, running: list[TaskRun]) -> None:
        listed = podman.run(
            ["ps", "--all", "--format", "json", "--filter", f"label={SESSION_LABEL}={self.session}"], self.podman_env, timeout=60
        )
        containers = {item["Names"][0]: item for item in json.loads(listed.stdout or "[]")}
        for run in running:
            for container in run.containers:
                item = containers.get(container.podman_name)
                if container.exited or (item is not None and item.get("State") not in ("exited", "stopped")):
                    continue
                container.exited = True
                state = run.state(container.name)
                state.last_status = "STOPPED"
                if item is None:  # removed by someone else: its exit code is lost
                    state.reason = "the container was removed outside the emulator"
                else:
                    state.exit_code = int(item.get("ExitCode", 0))
                LOG.info("task %s: container %s exited with %s", run.task_id, container.name, state.exit_code)
                self._copy_logs(run, container)
                if container.essential:
                    self._request_stop(run, "EssentialContainerExited", "Essential container in task exited")
            if all(container.exited for container in run.containers):
                self._finish(run)

    def _finish(self, run: TaskRun) -> None:
        """The pod removed, then the task STOPPED: whoever sees STOPPED finds nothing of it left."""
        for stopper in run.stoppers:  # a `podman stop` still finishing would leave its container "stopping"
            stopper.join(timeout=60)
        podman.run(["pod", "rm", "--force", run.pod], self.podman_env, check=False)
        with self.lock:
            task = run.task
            task.desired_status = "STOPPED"
            task.stop_code, task.stopped_reason = run.stop_code, run.stop_reason
            task.stopped_at = now()
            task.last_status = "STOPPED"
        LOG.info("task %s stopped (%s: %s)", run.task_id, run.stop_code, run.stop_reason)
        run.done.set()

    def _copy_logs(self, run: TaskRun, container: ContainerRun) -> None:
        """Copy the container's output to its awslogs group and stream, as the awslogs driver would have."""
        log_file = run.log_dir / f"{container.name}.log"
        if not (self.write_logs and container.log_group and container.log_stream and log_file.is_file()):
            return
        try:
            self.write_logs(run.account_id, run.region, container.log_group, container.log_stream, read_container_log(log_file))
        except Exception as error:  # the log group may be gone (torn down); the file stays
            LOG.info("task %s: logs of %s not copied to %s: %s", run.task_id, container.name, container.log_group, error)


class LogLine(NamedTuple):
    """A line a container wrote, and when (epoch ms)."""

    millis: int
    text: str


def read_container_log(path: Path) -> list[LogLine]:
    """The lines a container wrote, from podman's k8s-file log.

    Each record is ``<RFC 3339 time> <stdout|stderr> <P|F> <text>``; a long line comes as partial
    (``P``) records ending with a full (``F``) one, joined here.
    """
    lines, partial, first_millis = [], [], 0
    for record in path.read_text(errors="replace").splitlines():
        stamp, stream, tag, text = (record.split(" ", 3) + ["", "", ""])[:4]
        if not partial:
            first_millis = _epoch_millis(stamp)
        partial.append(text if stream else record)
        if tag != "P":
            lines.append(LogLine(first_millis, "".join(partial)))
            partial = []
    if partial:
        lines.append(LogLine(first_millis, "".join(partial)))
    return lines


_STAMP = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)")


def _epoch_millis(stamp: str) -> int:
    """Epoch ms of an RFC 3339 time with up to nanoseconds (podman's), now if it is not one."""
    match = _STAMP.fullmatch(stamp)
    if not match:
        return int(time.time() * 1000)
    seconds, fraction, zone = match.groups()
    moment = datetime.fromisoformat(seconds + ("+00:00" if zone == "Z" else zone))
    return int(moment.timestamp() * 1000) + int((fraction or "0")[:3].ljust(3, "0"))


def remove_orphans(podman_env: dict[str, str]) -> None:
    """Remove the pods and containers of emulators that are gone (killed before they could clean up)."""
    listed = podman.run(["ps", "--all", "--format", "json", "--filter", f"label={SESSION_LABEL}"], podman_env, check=False)
    sessions = {}
    for item in json.loads(listed.stdout or "[]") if listed.returncode == 0 else []:
        labels = item.get("Labels") or {}
        sessions[labels.get(SESSION_LABEL)] = labels.get(PID_LABEL, "")
    for session, pid in sessions.items():
        if not (pid.isdigit() and _is_emulator(int(pid))):
            LOG.info("removing the pods of emulator session %s, whose process %s is gone", session, pid or "(unknown)")
            remove_session(session, podman_env)


def _is_emulator(pid: int) -> bool:
    try:
        return b"aws_emulator" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def remove_session(session: str, podman_env: dict[str, str]) -> None:
    """Remove every pod and container labelled with ``session`` (those still running are killed)."""
    label = f"label={SESSION_LABEL}={session}"
    pods = podman.run(["pod", "ps", "--quiet", "--filter", label], podman_env, check=False).stdout.split()
    if pods:
        podman.run(["pod", "rm", "--force", "--time", "0", *pods], podman_env, timeout=120, check=False)
    containers = podman.run(["ps", "--all", "--quiet", "--filter", label], podman_env, check=False).stdout.split()
    if containers:
        podman.run(["rm", "--force", "--time", "0", *containers], podman_env, timeout=120, check=False)
