"""Programs the emulated AWS and `make images` run in the background: started, awaited, always stopped."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path


class ServiceError(RuntimeError):
    """A background program did not come up; the message says which, why, and where its log is."""


def stop(process: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def running(
    command: list[str],
    name: str,
    ready: Callable[[], bool],
    log: Path,
    env: dict[str, str] | None = None,
    timeout: float = 30,
    stop_timeout: float = 10,
) -> Iterator[subprocess.Popen]:
    """Run ``command`` (output to ``log``) for the block, once ``ready()`` says it is up; stop it after."""
    with open(log, "ab") as output:
        process = subprocess.Popen(command, env=env, stdout=output, stderr=output, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            if process.poll() is not None:
                raise ServiceError(f"{name} exited with {process.returncode}; see {log}")
            if time.monotonic() > deadline:
                raise ServiceError(f"{name} was not ready within {timeout:.0f} s; see {log}")
            time.sleep(0.1)
        yield process
    finally:
        stop(process, stop_timeout)
