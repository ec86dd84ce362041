"""Podman on this machine, as the emulator's task runner and `make images` use it.

Measured here (Debian's podman 4.3.1, rootful): containers start only with the runc runtime (crun
fails on this kernel's hybrid cgroups) and with explicit ulimits. A build reaches PyPI only with
the host's CA bundle mounted into its RUN steps, because this machine's HTTPS egress uses its own
CA: builds get it as a read-only volume of the build (never a layer of an image), tasks never.
The registry on loopback (tools/registry.py) speaks plain HTTP: podman is told so per address.

Everything podman is told lives in .build/podman/ and reaches it through CONTAINERS_CONF and
CONTAINERS_REGISTRIES_CONF; images and containers are in podman's usual storage, so
`podman ps -a` and `podman pod ls` show what the emulator runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import registry
import services

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".build" / "podman"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")

_ULIMITS = '["nofile=20000:20000", "nproc=32768:32768"]'


class PodmanError(RuntimeError):
    """podman is missing or a podman command failed; the message says which and why."""


def _containers_conf(build: bool) -> str:
    lines = ["[containers]", f"default_ulimits = {_ULIMITS}"]
    if build and HOST_CA_BUNDLE.is_file():
        lines.append(f'volumes = ["{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]')
    return "\n".join([*lines, "", "[engine]", 'runtime = "runc"', ""])


def _registries_conf(insecure_registries: tuple[str, ...]) -> str:
    entries = [f'[[registry]]\nlocation = "{address}"\ninsecure = true\n' for address in insecure_registries]
    return "\n".join(["unqualified-search-registries = []", "", *entries])


def environment(build: bool = False) -> dict[str, str]:
    """os.environ with podman pointed at our settings (written to .build/podman/ first)."""
    STATE.mkdir(parents=True, exist_ok=True)
    name = "containers-build.conf" if build else "containers.conf"
    _write_if_changed(STATE / name, _containers_conf(build))
    registries = STATE / "registries.conf"
    _write_if_changed(registries, _registries_conf((registry.ADDRESS,)))
    return dict(os.environ, CONTAINERS_CONF=str(STATE / name), CONTAINERS_REGISTRIES_CONF=str(registries))


def _write_if_changed(path: Path, text: str) -> None:
    if not path.is_file() or path.read_text() != text:
        temporary = path.with_suffix(".tmp")
        temporary.write_text(text)
        temporary.replace(path)


def binary() -> str:
    found = shutil.which("podman")
    if not found:
        raise PodmanError("podman is not installed: `make podman` installs it (Debian packages podman, runc)")
    return found


def run(args: list[str], env: dict[str, str], timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """One podman command; its output captured. A failure raises PodmanError with podman's message."""
    command = [binary(), *args]
    completed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if check and completed.returncode != 0:
        raise PodmanError(f"{' '.join(command[:3])} ... failed ({completed.returncode}): {completed.stderr.strip()[-1000:]}")
    return completed


@contextlib.contextmanager
def api_service(env: dict[str, str], log: Path) -> Iterator[str]:
    """podman's Docker-compatible API on a socket under .build/podman/, for the block; yields its URL.

    What community.docker talks to in `make images`, as it would talk to a Docker engine.
    """
    socket = STATE / "api.sock"
    socket.unlink(missing_ok=True)
    url = f"unix://{socket}"
    command = [binary(), "system", "service", "--time=0", url]
    try:
        with services.running(command, "podman system service", socket.exists, log, env=env, stop_timeout=20):
            yield url
    finally:
        socket.unlink(missing_ok=True)
