"""The Galaxy tarball: what a user needs and nothing of the development set-up, and, installed
from it, the collection runs by its FQCN with none of the checkout's files."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import subprocess
import sysconfig
import tarfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest
import yaml
from conftest import REPO, VENV_BIN, PlaybookResult
from emulator import FAKE_CREDENTIALS

GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
TARBALL_NAME = f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
# ansible's own collections (amazon.aws, community.aws, ...) live beside it in site-packages.
BUNDLED_COLLECTIONS = Path(sysconfig.get_paths()["purelib"])

# Everything a user installing from Galaxy gets at the top of the collection; LICENSE may join.
NEEDED_TOP_LEVEL = {
    "MANIFEST.json", "FILES.json", "README.md", "CHANGELOG.rst", "changelogs", "docs", "examples",
    "execution-environment.yml", "files", "meta", "playbooks", "plugins", "requirements.txt", "roles",
}
# .dockerignore keeps the images' build context (the collection root, also installed) to what the Dockerfiles copy.
ALLOWED_TOP_LEVEL = NEEDED_TOP_LEVEL | {"LICENSE", "COPYING", ".dockerignore"}
# These directories ship whole: every file of the checkout's copy is in the tarball.
SHIPPED_WHOLE = ("playbooks", "roles", "plugins", "files", "meta", "docs", "examples")
JUNK = re.compile(
    r"(^|/)(__pycache__|\.pytest_cache|\.ruff_cache|\.mypy_cache|\.git[^/]*)(/|$)|\.pyc$|\.tar\.gz$"
    r"|^(\.venv|\.build|\.ci|\.ansible|tests|tools|benchmarks|context|reports|demo-report|changelogs/fragments)(/|$)"
    r"|^(Makefile|ansible\.cfg|pyproject\.toml|\.ansible-lint|requirements-(dev|k6)\.txt|constellation-images\.yml|changelogs/\.plugin-cache\.yaml)$"
)
# A path a playbook or role builds from its own location, e.g. "{{ role_path }}/../../files/lambda/x.py".
RELATIVE_REFERENCE = re.compile(r"\{\{\s*(playbook_dir|role_path)\s*\}\}((?:/[\w.-]+)+)")


def clean_environment(tmp: Path) -> dict[str, str]:
    """An environment like a Galaxy user's: no repository ansible.cfg, collections from ``tmp``
    first and then the ones the ansible package bundles."""
    config = tmp / "ansible.cfg"
    config.write_text("[defaults]\ninterpreter_python = auto_silent\n")
    env = dict(os.environ, **FAKE_CREDENTIALS)
    env.update(
        ANSIBLE_CONFIG=str(config),
        ANSIBLE_COLLECTIONS_PATH=os.pathsep.join([str(tmp / "collections"), str(BUNDLED_COLLECTIONS)]),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        PATH=f"{VENV_BIN}{os.pathsep}{env['PATH']}",
    )
    return env


def run(command: list[str], env: dict[str, str], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@dataclass
class Installed:
    members: set[str]  # the tarball's paths
    collection: Path  # where it was installed
    env: dict[str, str]  # the Galaxy user's environment
    workdir: Path  # outside the checkout; holds the collections path


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Installed:
    """The tarball built from the checkout and installed from it into a temporary collections path."""
    tmp = tmp_path_factory.mktemp("galaxy")
    env = clean_environment(tmp)
    galaxy = str(VENV_BIN / "ansible-galaxy")
    built = run([galaxy, "collection", "build", "--output-path", str(tmp), str(REPO)], env, tmp)
    assert built.returncode == 0, built.stdout + built.stderr
    tarball = tmp / TARBALL_NAME
    with tarfile.open(tarball) as archive:
        members = {name.rstrip("/") for name in archive.getnames()} - {"."}
    done = run([galaxy, "collection", "install", "--offline", "--no-deps",
                "-p", str(tmp / "collections"), str(tarball)], env, tmp)
    assert done.returncode == 0, done.stdout + done.stderr
    collection = tmp / "collections" / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]
    assert (collection / "MANIFEST.json").is_file(), done.stdout + done.stderr
    return Installed(members, collection, env, tmp)


def test_tarball_holds_what_a_user_needs_and_no_development_files(installed):
    members = installed.members
    top_level = {PurePosixPath(name).parts[0] for name in members}
    assert NEEDED_TOP_LEVEL <= top_level, f"missing from the tarball: {sorted(NEEDED_TOP_LEVEL - top_level)}"
    assert top_level <= ALLOWED_TOP_LEVEL, f"unexpected at the top: {sorted(top_level - ALLOWED_TOP_LEVEL)}"
    junk = sorted(name for name in members if JUNK.search(name))
    assert not junk, f"development files in the tarball: {junk}"
    assert "changelogs/changelog.yaml" in members

    checkout = {
        path.relative_to(REPO).as_posix()
        for directory in SHIPPED_WHOLE
        for path in (REPO / directory).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    assert not checkout - members, f"left out of the tarball: {sorted(checkout - members)}"


def test_tarball_keeps_every_file_the_playbooks_and_roles_reach_by_path(installed):
    references = {}
    for source in [*(REPO / "playbooks").rglob("*.yml"), *(REPO / "roles").rglob("*.yml")]:
        relative = source.relative_to(REPO)
        for anchor, path in RELATIVE_REFERENCE.findall(source.read_text()):
            # playbook_dir is playbooks/ (tasks files included from there too); role_path is roles/<role>.
            base = PurePosixPath("playbooks") if anchor == "playbook_dir" else PurePosixPath(*relative.parts[:2])
            target = os.path.normpath((base / path.lstrip("/")).as_posix())
            if target != ".":
                references[f"{relative}: {anchor}{path}"] = target
    assert references, "no playbook_dir / role_path reference found: has the pattern changed?"
    missing = {where: target for where, target in references.items() if target not in installed.members}
    assert not missing, f"referenced but not in the tarball: {missing}"


def test_installed_collection_declares_its_dependencies_and_python_requirements(installed):
    manifest = json.loads((installed.collection / "MANIFEST.json").read_text())["collection_info"]
    assert manifest["dependencies"] == GALAXY["dependencies"]

    # ansible-builder reads meta/execution-environment.yml of every collection of an execution
    # environment; without it, it would take requirements.txt and its exact pins.
    introspected = run([str(VENV_BIN / "ansible-builder"), "introspect", str(installed.workdir / "collections")],
                       installed.env, installed.workdir)
    assert introspected.returncode == 0, introspected.stdout + introspected.stderr
    python = yaml.safe_load(introspected.stdout)["python"]
    ours = [line.split("#")[0].strip() for line in python if "from collection constellation.loadtest" in line]
    expected = [
        line.strip() for line in (REPO / "meta" / "ee-requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ours == expected


def test_installed_collection_runs_check_by_its_fqcn(moto, installed):
    collection = installed.collection
    extra_vars = {"config": str(collection / "examples" / "config.json"), "constellation_aws_endpoint_url": moto.url}
    command = [str(VENV_BIN / "ansible-playbook"), "constellation.loadtest.check", "-vvv", "-e", json.dumps(extra_vars)]
    completed = run(command, installed.env, installed.workdir, timeout=300)
    result = PlaybookResult(completed.returncode, completed.stdout, completed.stderr)

    assert result.rc == 0, result.output
    assert result.recap()["changed"] == 0
    # examples/config.json: 3 + 2 + 2 VUs, one task per region.
    assert "Plan: 7 VUs in 3 tasks" in result.stdout
    # The play, the role and our modules come from the installed copy, amazon.aws from ansible's bundle.
    assert f"1 plays in {collection}/playbooks/check.yml" in result.stdout
    assert f"task path: {collection}/roles/config/tasks/main.yml" in result.stdout
    assert f"Using module file {collection}/plugins/modules/preflight_info.py" in result.stdout
    amazon_aws = BUNDLED_COLLECTIONS / "ansible_collections" / "amazon" / "aws"
    assert f"Using module file {amazon_aws}/plugins/modules/aws_caller_info.py" in result.stdout
    for checkout_path in (REPO / "playbooks", REPO / "roles", REPO / "plugins", REPO / ".build"):
        assert str(checkout_path) not in result.output, f"the checkout ({checkout_path}) was used"


def test_every_generated_path_git_ignores_is_kept_out_of_the_tarball():
    """What the tools generate in the checkout (.gitignore lists it: reports, demo-report, the image
    names, caches) must not ship, whether or not it exists when the tarball is built."""
    ignored = {line.strip().rstrip("/") for line in (REPO / ".gitignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    # ansible-galaxy leaves these out by itself (its default ignores: *.pyc, and so __pycache__'s files).
    build_ignore = [*GALAXY["build_ignore"], "__pycache__"]
    uncovered = {path for path in ignored
                 if not any(fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path.split("/")[0], pattern)
                            for pattern in build_ignore)}
    assert not uncovered, f"generated but not in galaxy.yml's build_ignore: {sorted(uncovered)}"
