"""A container registry on loopback: where `make images` pushes and the emulated ECS pulls from.

It plays the part of ECR (or the user's registry) for the emulated AWS: Debian's docker-registry
(the CNCF distribution registry), plain HTTP on 127.0.0.1, its storage in .build/registry/. The
address is fixed, because it is part of the image names written to constellation-images.yml
(127.0.0.1:5055 unless CONSTELLATION_REGISTRY_PORT says otherwise). A registry already answering
there is used as it is and left running; one started here is stopped at the end of the block.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import services

REPO = Path(__file__).resolve().parents[1]
STORAGE = REPO / ".build" / "registry"
PORT = int(os.environ.get("CONSTELLATION_REGISTRY_PORT", "5055"))
ADDRESS = f"127.0.0.1:{PORT}"


class RegistryError(RuntimeError):
    """The registry could not be started; the message says why."""


def answers(address: str = ADDRESS) -> bool:
    try:
        with urllib.request.urlopen(f"http://{address}/v2/", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _config(address: str) -> Path:
    STORAGE.mkdir(parents=True, exist_ok=True)
    config = STORAGE / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {STORAGE / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: {address}\n"
    )
    return config


@contextlib.contextmanager
def loopback_registry(address: str = ADDRESS) -> Iterator[str]:
    """The registry at ``address`` for the block (started unless it already answers); yields the address."""
    if answers(address):
        yield address
        return
    binary = shutil.which("docker-registry")
    if not binary:
        raise RegistryError("docker-registry is not installed: `make podman` installs it (Debian package docker-registry)")
    command = [binary, "serve", str(_config(address))]
    try:
        with services.running(command, f"docker-registry at {address}", lambda: answers(address), STORAGE.parent / "registry.log"):
            yield address
    except services.ServiceError as error:
        raise RegistryError(f"{error} (is {address} taken by another program?)") from None
