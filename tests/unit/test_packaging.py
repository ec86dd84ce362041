"""Packaging metadata agrees with itself and with what the collection is tested with: Galaxy
dependencies, the execution environment's requirements, and the changelog."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
BUNDLED_COLLECTIONS = Path(sysconfig.get_paths()["purelib"]) / "ansible_collections"
EE_DEFINITION = yaml.safe_load((REPO / "execution-environment.yml").read_text())


def requirement_lines(path: Path) -> list[str]:
    """The requirement lines of a pip requirements file, without comments and pip options."""
    lines = (line.split("#")[0].strip() for line in path.read_text().splitlines())
    return [line.split(" --")[0].strip() for line in lines if line and not line.startswith("-")]


def pinned_versions() -> dict[str, str]:
    """Package name -> the exact version the venv installs (requirements.txt and requirements-k6.txt)."""
    pins = {}
    for name in ("requirements.txt", "requirements-k6.txt"):
        for line in requirement_lines(REPO / name):
            requirement = Requirement(line)
            (specifier,) = requirement.specifier
            assert specifier.operator == "==", f"{name}: {line} is not an exact pin"
            pins[requirement.name.lower()] = specifier.version
    return pins


def ee_requirements() -> list[Requirement]:
    return [Requirement(line) for line in requirement_lines(REPO / "meta" / "ee-requirements.txt")]


def test_galaxy_dependencies_admit_the_collections_ansible_bundles():
    for name, versions in GALAXY["dependencies"].items():
        manifest = BUNDLED_COLLECTIONS.joinpath(*name.split("."), "MANIFEST.json")
        bundled = json.loads(manifest.read_text())["collection_info"]["version"]
        assert SpecifierSet(versions).contains(bundled), f"galaxy.yml: {name} {versions} excludes the tested {bundled}"


def test_execution_environment_collections_match_galaxy_yml():
    requirements = yaml.safe_load((REPO / "meta" / "ee-requirements.yml").read_text())
    collections = {c["name"]: c.get("version") for c in requirements["collections"]}
    own = f"{GALAXY['namespace']}.{GALAXY['name']}"
    assert SpecifierSet(collections.pop(own)).contains(GALAXY["version"])
    assert collections == GALAXY["dependencies"]


def test_execution_environment_python_requirements_admit_the_tested_versions():
    pins = pinned_versions()
    for requirement in ee_requirements():
        name = requirement.name.lower()
        assert name in pins, f"meta/ee-requirements.txt: {name} is pinned in no requirements*.txt"
        assert requirement.specifier.contains(pins[name]), f"meta/ee-requirements.txt: {requirement} excludes {pins[name]}"
    # Every runtime package of the controller reaches the execution environment; requirements.txt
    # also pins the aggregator image's protobuf and cramjam, which the controller does not run.
    runtime = set(pins) - {"ansible", "ansible-core", "protobuf", "cramjam"}
    assert runtime == {requirement.name.lower() for requirement in ee_requirements()}


def test_execution_environment_pins_the_tested_ansible_core():
    ansible_core = EE_DEFINITION["dependencies"]["ansible_core"]["package_pip"]
    assert ansible_core == f"ansible-core=={pinned_versions()['ansible-core']}"


def test_collection_ee_metadata_names_its_python_requirements():
    # ansible-builder reads this from every collection of an execution environment.
    metadata = yaml.safe_load((REPO / "meta" / "execution-environment.yml").read_text())
    assert metadata["dependencies"]["python"] == "meta/ee-requirements.txt"
    assert EE_DEFINITION["dependencies"]["python"] == "meta/ee-requirements.txt"


def test_ansible_builder_writes_a_build_context_with_our_requirements(tmp_path):
    context = tmp_path / "context"
    completed = subprocess.run(
        [str(VENV_BIN / "ansible-builder"), "create", "-f", str(REPO / "execution-environment.yml"),
         "--context", str(context), "--output-filename", "Containerfile"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr

    containerfile = (context / "Containerfile").read_text()
    assert f'ARG EE_BASE_IMAGE="{EE_DEFINITION["images"]["base_image"]["name"]}"' in containerfile
    assert f"ansible-core=={pinned_versions()['ansible-core']}" in containerfile
    assert "ansible-galaxy collection install" in containerfile
    assert "ENV ANSIBLE_FORKS=20" in containerfile
    python = [Requirement(line) for line in requirement_lines(context / "_build" / "requirements.txt")]
    assert [str(r) for r in python] == [str(r) for r in ee_requirements()]
    assert {"boto3", "botocore", "plotly", "k6"} <= {r.name for r in python}
    assert not {"protobuf", "cramjam"} & {r.name for r in python}  # the aggregator's, in its image only
    galaxy = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert {c["name"] for c in galaxy["collections"]} == {"constellation.loadtest", "amazon.aws", "community.aws"}


def test_changelog_fragments_and_changelog_lint_clean():
    for command in (["lint"], ["lint-changelog-yaml", "--strict", "changelogs/changelog.yaml"]):
        completed = subprocess.run([str(VENV_BIN / "antsibull-changelog"), *command], cwd=REPO,
                                   capture_output=True, text=True, timeout=120, check=False)
        assert completed.returncode == 0 and not completed.stdout.strip(), completed.stdout + completed.stderr


def test_changelog_has_the_release_of_galaxy_yml():
    changelog = yaml.safe_load((REPO / "changelogs" / "changelog.yaml").read_text())
    release = changelog["releases"][GALAXY["version"]]
    assert release["changes"]["release_summary"]
    assert f"v{GALAXY['version']}" in (REPO / "CHANGELOG.rst").read_text()
