"""The emulated Lambda's Invoke: runs the function as deployed, its zip, handler and environment.

moto stores a function and, without Docker, answers Invoke with a canned response. Here an
invocation runs the deployed code: the function's zip (as CreateFunction or UpdateFunctionCode
gave it) is unpacked, and a warm execution environment (a Python process, tools/lambda_worker.py)
imports its handler once and answers invocations one at a time, as a Lambda execution environment
does. Concurrent invocations get environments of their own, up to ``max_environments`` per
function; beyond that they wait for one. An environment belongs to one version of the function
(code digest, handler, environment, timeout, memory): after a new deployment the next invocation
gets a new environment, and the old ones are retired.

The function gets what Lambda gives it: its environment variables, ``AWS_REGION``,
``AWS_LAMBDA_FUNCTION_NAME`` and the rest, and credentials for its role; ``AWS_ENDPOINT_URL`` points
its AWS clients at the emulator. An invocation that outlives the function's timeout is ended and
answered as Lambda answers it (``Task timed out``); an exception in the handler is an ``Unhandled``
function error with the runtime's error object.

What differs from Lambda: the Python of this machine runs the function (3.11, where the function
says python3.12), with the packages of the emulator's venv (boto3 among them, as in Lambda's
runtime). The orchestrator uses nothing that differs between the two.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import selectors
import shutil
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOG = logging.getLogger("emulator.lambda")
WORKER = Path(__file__).with_name("lambda_worker.py")


@dataclass(frozen=True)
class Version:
    """What an execution environment is made for: one deployment of one function."""

    function_arn: str
    function_name: str
    region: str
    code_sha256: str
    handler: str
    environment: tuple[tuple[str, str], ...]
    timeout_seconds: int
    memory_mb: int

    @classmethod
    def of(cls, function: Any) -> "Version":
        """The version of moto's LambdaFunction as it is now."""
        return cls(
            function_arn=function.function_arn,
            function_name=function.function_name,
            region=function.region,
            code_sha256=function.code_sha_256,
            handler=function.handler,
            environment=tuple(sorted((function.environment_vars or {}).items())),
            timeout_seconds=int(function.timeout or 3),
            memory_mb=int(function.memory_size or 128),
        )


# Lambda's init phase (importing the handler) has a limit of its own, apart from the function's timeout.
INIT_TIMEOUT_SECONDS = 10


class Environment:
    """One warm execution environment: a worker process with the function's handler imported."""

    def __init__(self, version: Version, code_dir: Path, process_env: dict[str, str], log: Path) -> None:
        self.version = version
        with open(log, "ab") as stderr:
            self.process = subprocess.Popen(
                [sys.executable, str(WORKER), version.handler, str(code_dir), str(version.timeout_seconds)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=process_env,
                cwd=code_dir,
            )
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        # The init phase: the handler imported (or its import failed, which invocations then report).
        if not self.selector.select(timeout=INIT_TIMEOUT_SECONDS) or not self.process.stdout.readline():
            self.close()
            raise RuntimeError(f"the function's init did not finish within {INIT_TIMEOUT_SECONDS} s; see {log}")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: bytes) -> tuple[dict, bool]:
        """Run one invocation; the answer and whether this environment can take another."""
        try:
            self.process.stdin.write(event.replace(b"\n", b" ") + b"\n")
            self.process.stdin.flush()
        except OSError:  # the runtime died since it was last used
            self.close()
            return {"error": {"errorMessage": "the function's runtime exited", "errorType": "Runtime.ExitError"}}, False
        if not self.selector.select(timeout=self.version.timeout_seconds):
            self.close()
            message = f"Task timed out after {self.version.timeout_seconds:.2f} seconds"
            return {"error": {"errorMessage": message, "errorType": "Sandbox.Timedout"}}, False
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait()
            message = f"RequestId: the function's runtime exited with {code} before answering"
            return {"error": {"errorMessage": message, "errorType": "Runtime.ExitError"}}, False
        return json.loads(line), True

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.selector.close()


class FunctionRunner:
    """Invokes the emulator's Lambda functions in warm execution environments."""

    def __init__(self, endpoint_url: str, work_dir: Path, log_dir: Path, max_environments: int = 8) -> None:
        self.endpoint_url = endpoint_url
        self.work_dir = work_dir
        self.log_dir = log_dir
        self.max_environments = max_environments
        self.idle: dict[Version, list[Environment]] = {}
        self.busy: dict[Version, int] = {}
        self.current: dict[str, Version] = {}  # by function ARN: its latest deployment
        self.condition = threading.Condition()

    def invoke(self, function: Any, payload: bytes) -> tuple[bytes, str | None]:
        """Invoke moto's LambdaFunction with ``payload``; the response payload and the function error, if any."""
        version = Version.of(function)
        environment = self._acquire(version, function)
        reusable = False
        try:
            if not environment.alive:  # an idle environment that died meanwhile: a new one, as Lambda would
                environment.close()
                environment = self._start(version, function)
            answer, reusable = environment.invoke(payload or b"{}")
        finally:
            self._release(environment, reusable)
        if "error" in answer:
            return json.dumps(answer["error"]).encode(), "Unhandled"
        return json.dumps(answer["result"]).encode(), None

    def forget(self, region: str, function_name: str) -> None:
        """End the idle environments of a deleted function (busy ones end after their invocation)."""
        with self.condition:
            for arn, version in list(self.current.items()):
                if (version.region, version.function_name) == (region, function_name):
                    self._retire(version)
                    del self.current[arn]

    def reset(self) -> None:
        """Forget every environment (moto's reset forgets every function)."""
        with self.condition:
            for environments in self.idle.values():
                for environment in environments:
                    environment.close()
            self.idle.clear()
            self.current.clear()

    shutdown = reset

    def _acquire(self, version: Version, function: Any) -> Environment:
        with self.condition:
            if self.current.get(version.function_arn) != version:
                self._retire(self.current.get(version.function_arn))
                self.current[version.function_arn] = version
            while True:
                if self.idle.get(version):
                    environment = self.idle[version].pop()
                    break
                if self.busy.get(version, 0) < self.max_environments:
                    environment = None
                    break
                self.condition.wait()
            self.busy[version] = self.busy.get(version, 0) + 1
        if environment is None:
            try:
                environment = self._start(version, function)
            except Exception:
                with self.condition:
                    self.busy[version] -= 1
                    self.condition.notify_all()
                raise
        return environment

    def _release(self, environment: Environment, reusable: bool) -> None:
        with self.condition:
            version = environment.version
            self.busy[version] -= 1
            if reusable and self.current.get(version.function_arn) == version:
                self.idle.setdefault(version, []).append(environment)
            else:
                environment.close()
            self.condition.notify_all()

    def _retire(self, version: Version | None) -> None:
        for environment in self.idle.pop(version, []) if version else []:
            environment.close()

    def _start(self, version: Version, function: Any) -> Environment:
        code_dir = self._unpack(version, function.code_bytes)
        process_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            **dict(version.environment),
            "AWS_REGION": version.region,
            "AWS_DEFAULT_REGION": version.region,
            "AWS_LAMBDA_FUNCTION_NAME": version.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(version.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{version.function_name}",
            "LAMBDA_TASK_ROOT": str(code_dir),
            "_HANDLER": version.handler,
            "CONSTELLATION_FUNCTION_ARN": version.function_arn,
            # The role's credentials (the emulator accepts any), and the emulator as every service.
            "AWS_ACCESS_KEY_ID": "ASIAEMULATEDLAMBDA",
            "AWS_SECRET_ACCESS_KEY": "emulated",
            "AWS_SESSION_TOKEN": "emulated",
            "AWS_ENDPOINT_URL": self.endpoint_url,
        }
        self.log_dir.mkdir(parents=True, exist_ok=True)
        LOG.info("new execution environment for %s (code %s)", version.function_name, version.code_sha256[:12])
        return Environment(version, code_dir, process_env, self.log_dir / f"{version.function_name}.log")

    def _unpack(self, version: Version, code: bytes) -> Path:
        digest = hashlib.sha256(code).hexdigest()[:16]
        code_dir = self.work_dir / f"{version.function_name}-{digest}"
        if not code_dir.is_dir():
            partial = code_dir.with_name(code_dir.name + f".partial-{os.getpid()}-{threading.get_ident()}")
            with zipfile.ZipFile(io.BytesIO(code)) as archive:
                archive.extractall(partial)
            try:
                partial.rename(code_dir)
            except OSError:  # unpacked by a concurrent first invocation meanwhile
                shutil.rmtree(partial, ignore_errors=True)
        return code_dir
