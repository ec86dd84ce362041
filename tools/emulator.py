"""Start and stop the emulated AWS (tools/aws_emulator.py) on loopback, for tests, demo and benchmarks.

:func:`aws_emulator` runs all of it: moto, ECS tasks as podman containers, Lambda functions run
as deployed. :func:`moto_server` runs it without tasks (RunTask records tasks and runs none), for
tests of single modules, which need no containers.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from services import stop

# The emulator accepts any credentials; these keep boto3 and Ansible from looking for real ones.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "eu-central-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, name: str, timeout: float = 30.0) -> None:
    """Poll ``url`` until it answers; fail early if ``process`` (called ``name``) exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not answer at {url} within {timeout:.0f} s") from None
            time.sleep(0.1)


@contextlib.contextmanager
def aws_emulator(log_dir: Path, with_tasks: bool = True, log: IO | None = None) -> Iterator[str]:
    """Run the emulated AWS on a free port of 127.0.0.1 for the block; yields its endpoint URL.

    Its own log goes to ``log``; the tasks' and functions' logs to ``log_dir``. At the end of the
    block it is stopped with SIGTERM, so it stops every task it runs before it exits.
    """
    # Its standard input is a pipe from this process: if this process is killed, the pipe ends and
    # the emulator stops its tasks and exits rather than outliving it.
    command = [sys.executable, str(Path(__file__).with_name("aws_emulator.py")), "--port", "0", "--log-dir", str(log_dir),
               "--stop-at-end-of-input"]
    if not with_tasks:
        command.append("--without-tasks")
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=log or subprocess.DEVNULL, stdin=subprocess.PIPE, text=True
    )
    try:
        line = process.stdout.readline()  # the one line it prints: "endpoint: http://127.0.0.1:PORT"
        if not line.startswith("endpoint: "):
            process.wait(timeout=30)
            raise RuntimeError(f"the emulated AWS exited with {process.returncode} before it was ready")
        url = line.split(" ", 1)[1].strip()
        wait_until_up(f"{url}/moto-api/", process, "the emulated AWS")
        yield url
    finally:
        stop(process, timeout=120)  # it stops its tasks first: SIGTERM, then SIGKILL after a grace
        process.stdin.close()
        process.stdout.close()


@contextlib.contextmanager
def moto_server(log: IO | None = None) -> Iterator[str]:
    """The emulated AWS without tasks (no podman) for the block; yields its URL."""
    with tempfile.TemporaryDirectory(prefix="constellation-emulator-") as log_dir:
        with aws_emulator(Path(log_dir), with_tasks=False, log=log) as url:
            yield url


# Resource lifecycles a test may change through moto's state manager. moto's reset keeps such
# changes, so the next test on the same server would inherit them.
STATE_MANAGED_MODELS = ("ecs::task",)


def reset(url: str) -> None:
    """Empty the emulator and restore the default lifecycle of every state-managed model.

    The emulated ECS stops the tasks it runs first (SIGTERM, SIGKILL 5 s later), hence the timeout.
    """
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=60).close()
    for model in STATE_MANAGED_MODELS:
        body = json.dumps({"model_name": model}).encode()
        request = urllib.request.Request(f"{url}/moto-api/state-manager/unset-transition", data=body, method="POST")
        urllib.request.urlopen(request, timeout=10).close()
