"""Start and stop a moto server (the AWS emulator) on loopback, for tests, demo and benchmarks."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO

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
def moto_server(log: IO | None = None) -> Iterator[str]:
    """Run a moto server on 127.0.0.1 for the duration of the block; yields its URL."""
    port = free_port()
    # moto_server, but serving one DynamoDB request at a time (moto_atomic.py: atomic item updates).
    moto = Path(__file__).with_name("moto_atomic.py")
    process = subprocess.Popen(
        [sys.executable, str(moto), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/moto-api/", process, "the moto server")
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# Resource lifecycles a test may change through moto's state manager. moto's reset keeps such
# changes, so the next test on the same server would inherit them.
STATE_MANAGED_MODELS = ("ecs::task",)


def reset(url: str) -> None:
    """Empty the emulator and restore the default lifecycle of every state-managed model."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    for model in STATE_MANAGED_MODELS:
        body = json.dumps({"model_name": model}).encode()
        request = urllib.request.Request(f"{url}/moto-api/state-manager/unset-transition", data=body, method="POST")
        urllib.request.urlopen(request, timeout=10).close()
