"""The plan module run as Ansible runs it: bad input fails naming the field, never with a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
SEED = {"DURATION": 20000, "HOME_REGION": "eu-central-1", "REMOTE_REGIONS": {"ap-northeast-1": 5, "us-east-2": 777}}


def run_plan(args: dict, *options: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    env["ANSIBLE_STDOUT_CALLBACK"] = "ansible.builtin.json"
    command = [
        str(Path(sys.executable).parent / "ansible"),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        "-m",
        "constellation.loadtest.plan",
        *(["-a", json.dumps(args)] if args else []),
        *options,
    ]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False)


def task_result(completed: subprocess.CompletedProcess) -> dict:
    return json.loads(completed.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]


@pytest.fixture
def seed_file(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(SEED))
    return path


def test_seed_file_gives_the_plan_in_check_mode(seed_file):
    completed = run_plan({"config": str(seed_file)}, "--check")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    result = task_result(completed)
    assert result["changed"] is False
    assert result["config"]["duration_ms"] == 20000
    assert result["plan"]["remote_regions"]["us-east-2"]["vus_per_task"] == [195, 194, 194, 194]
    assert result["plan"]["totals"]["tasks"] == 5


VALID_ARGS = {"home_region": "eu-central-1", "remote_regions": {"us-east-2": 1}, "duration_seconds": 5}
BAD_INPUTS = [
    ("unknown-region", {"home_region": "us-est-1", "remote_regions": {"us-east-2": 1}, "duration_seconds": 5}, ["home_region", "us-est-1"]),
    ("zero-vus", {"home_region": "eu-central-1", "remote_regions": {"us-east-2": 0}, "duration_seconds": 5}, ["remote_regions", "got 0"]),
    ("duration-words", {"home_region": "eu-central-1", "remote_regions": {"us-east-2": 1}, "duration_seconds": "soon"}, ["duration_seconds", "soon"]),
    ("remotes-not-a-map", {"home_region": "eu-central-1", "remote_regions": "us-east-2", "duration_seconds": 5}, ["remote_regions", "us-east-2", "not JSON"]),
    ("store-unknown", {**VALID_ARGS, "results_store": "influx"}, ["results_store", "influx"]),
    ("missing-file", {"config": "/nonexistent/config.json"}, ["config", "/nonexistent/config.json"]),
    ("nothing", {}, ["home_region", "required"]),
]


@pytest.mark.parametrize(("args", "expected"), [case[1:] for case in BAD_INPUTS], ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_fails_cleanly(args, expected):
    completed = run_plan(args)
    assert completed.returncode != 0
    result = task_result(completed)
    assert result["failed"] is True
    for text in expected:
        assert text in result["msg"]
    assert "Traceback" not in completed.stdout + completed.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [('{"DURATION": 20000,', ["not valid JSON", "line 1"]), (json.dumps({**SEED, "DURATION": "20000"}), ["DURATION", "'20000'"])],
    ids=["invalid-json", "duration-string"],
)
def test_bad_file_fails_cleanly(tmp_path, text, expected):
    path = tmp_path / "config.json"
    path.write_text(text)
    completed = run_plan({"config": str(path)})
    assert completed.returncode != 0
    result = task_result(completed)
    for word in expected:
        assert word in result["msg"]
    assert "Traceback" not in completed.stdout + completed.stderr


def test_file_and_setting_for_one_field(seed_file):
    completed = run_plan({"config": str(seed_file), "duration_seconds": 20})
    assert completed.returncode != 0
    result = task_result(completed)
    assert result["field"] == "duration_seconds"
    assert "DURATION in the config file" in result["msg"] and "use one" in result["msg"]


def test_blank_settings_are_not_given_and_messages_can_name_the_variables():
    blanks = {**VALID_ARGS, "max_vus_per_task": "", "results_store": " ", "deployment": "", "task_cpu": None}
    planned = task_result(run_plan(blanks))
    missing = run_plan({"remote_regions": '{"us-east-2": "3"}', "home_region": "", "duration_seconds": "5",
                        "names_of": "variables"})

    assert planned["config"]["max_vus_per_task"] == 200 and planned["config"]["deployment"] == "constellation"
    assert planned["config"]["task_cpu"] == 1024
    result = task_result(missing)
    assert result["field"] == "constellation_home_region"
    assert result["msg"] == "constellation_home_region is required (or give a config file with HOME_REGION)"
