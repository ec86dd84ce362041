"""check.yml against a moto server: reports every region and the plan, and changes nothing."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import REPO, VENV_BIN, PlaybookResult, run_playbook
from emulator import FAKE_CREDENTIALS

REGIONS = ["ap-northeast-1", "ca-central-1", "eu-central-1", "us-east-2"]


def test_check_reports_every_region_and_the_plan_and_creates_nothing(moto, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({
        "DURATION": 20000, "HOME_REGION": "eu-central-1",
        "REMOTE_REGIONS": {"ap-northeast-1": 5, "us-east-2": 202, "ca-central-1": 777},
    }))

    # By its collection name, as a user with the collection installed runs it.
    result = run_playbook("constellation.loadtest.check",
                          {"config": str(config), "constellation_aws_endpoint_url": moto.url})

    assert result.rc == 0, result.output
    assert result.recap()["changed"] == 0
    report = " ".join(result.stdout.split())
    assert "Caller: arn:aws:sts::123456789012:" in report
    for region in REGIONS:
        assert f"{region} | {region} is enabled for this account" in report
    # 5 + 202 + 777 VUs at 200 per task: 1 + 2 + 4 tasks of 1 vCPU each.
    assert "Plan: 984 VUs in 7 tasks (7.0 vCPUs) over 3 regions, for 20.0 s (its longest region)" in report
    assert "ca-central-1: 777 VUs (constant) in 4 tasks, from 0 s to 20 s" in report
    assert "Timestream for LiveAnalytics can be used" in report
    # An emulator costs nothing: the AWS estimate is given as such, not as this run's cost.
    assert f"Cost: none at the endpoint {moto.url} (on AWS, about $" in report
    assert "Estimated cost of one run" not in report
    assert "a run with capacity fargate; Fargate all on demand $" in report and ", all on Fargate Spot $" in report
    assert "<html" not in report, "an HTTP error page leaked into the report"
    moto.assert_empty(REGIONS)


def test_check_of_the_follow_the_sun_example_shows_each_regions_shape_and_both_prices(moto):
    # From the checkout, as the README's command reads: a relative path, capacity as a -e string.
    result = check_as_typed(moto, REPO, "-e", "config=examples/follow_the_sun.json", "-e", "constellation_capacity=mixed")
    assert result.rc == 0, result.output
    report = " ".join(result.stdout.split())
    assert "over 3 regions, for 780.0 s (its longest region)" in report
    assert "eu-west-1: 400 VUs (in stages, at the peak) in 2 tasks, from 180 s to 720 s" in report
    assert "us-east-1: 250 VUs (constant) in 2 tasks, from 480 s to 780 s" in report
    prices = report.split("a run with capacity mixed; Fargate all on demand $")[1]
    on_demand, spot = float(prices.split(",")[0]), float(prices.split("all on Fargate Spot $")[1].split(")")[0])
    assert 0 < spot < on_demand


# --- what users type: relative paths, -e key=value strings, survey answers ---------------------


def check_as_typed(moto, cwd, *arguments: str) -> PlaybookResult:
    """ansible-playbook constellation.loadtest.check with the arguments as a shell passes them,
    run in ``cwd`` (not the checkout, not the playbook's directory)."""
    env = dict(os.environ, **FAKE_CREDENTIALS, ANSIBLE_CONFIG=str(REPO / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env['PATH']}"
    command = [str(VENV_BIN / "ansible-playbook"), "constellation.loadtest.check",
               "-e", f"constellation_aws_endpoint_url={moto.url}", *arguments]
    completed = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)
    return PlaybookResult(completed.returncode, completed.stdout, completed.stderr)


def failure_message(result: PlaybookResult) -> str:
    assert result.rc != 0, result.output
    return " ".join(result.stdout.split("fatal: [localhost]: FAILED! =>", 1)[-1].split())


def test_check_takes_relative_paths_from_where_the_command_runs(moto, tmp_path):
    (tmp_path / "loadtest").mkdir()
    (tmp_path / "loadtest" / "config.json").write_text(json.dumps({
        "DURATION": 20000, "HOME_REGION": "eu-central-1", "REMOTE_REGIONS": {"us-east-2": 202}}))

    found = check_as_typed(moto, tmp_path, "-e", "config=loadtest/config.json")
    missing = check_as_typed(moto, tmp_path / "loadtest", "-e", "config=loadtest/config.json")

    assert found.rc == 0, found.output
    assert "Plan: 202 VUs in 2 tasks" in " ".join(found.stdout.split())
    # The error shows the absolute path tried, from the directory the command ran in.
    assert f"config file '{tmp_path}/loadtest/loadtest/config.json' does not exist" in failure_message(missing)


def test_check_takes_survey_answers_and_key_value_strings(moto, tmp_path):
    answers = ["-e", "constellation_home_region=eu-central-1", "-e", "constellation_results_store=s3",
               "-e", 'constellation_remote_regions={"us-east-2":"450"}', "-e", "constellation_duration_seconds=30"]

    blank = check_as_typed(moto, tmp_path, *answers, "-e", "constellation_max_vus_per_task=")
    survey = check_as_typed(moto, tmp_path, "-e", json.dumps({
        "constellation_home_region": "eu-central-1", "constellation_results_store": "",
        "constellation_remote_regions": '{"us-east-2": 450}', "constellation_duration_seconds": "30",
        "constellation_max_vus_per_task": "100", "constellation_task_cpu": "", "constellation_deployment": ""}))

    assert blank.rc == 0, blank.output
    assert "Plan: 450 VUs in 3 tasks" in " ".join(blank.stdout.split())  # blank: 200 per task
    assert survey.rc == 0, survey.output
    assert "Plan: 450 VUs in 5 tasks" in " ".join(survey.stdout.split())


@pytest.mark.parametrize(("arguments", "message"), [
    (["-e", "constellation_home_region=eu-central-1", "-e", "constellation_duration_seconds=30"],
     "constellation_remote_regions is required (or give a config file with REMOTE_REGIONS)"),
    (["-e", 'constellation_remote_regions={"us-east-2":5}', "-e", "constellation_home_region=",
      "-e", "constellation_duration_seconds=30"],
     "constellation_home_region is required (or give a config file with HOME_REGION)"),
    (["-e", 'constellation_remote_regions={"us-east-2": 5', "-e", "constellation_home_region=eu-central-1",
      "-e", "constellation_duration_seconds=30"],
     "constellation_remote_regions must be a JSON object of region names to VU counts"),
    (["-e", 'constellation_remote_regions={"us-east-2":5}', "-e", "constellation_home_region=eu-central-1",
      "-e", "constellation_duration_seconds=30", "-e", "constellation_max_vus_per_task=ten"],
     "constellation_max_vus_per_task must be a whole number of VUs from 1 to 5000; got 'ten' (a string)"),
    (["-e", 'constellation_remote_regions={"us-east-2":5}', "-e", "constellation_home_region=eu-central-1",
      "-e", "constellation_duration_seconds=", "-e", "constellation_results_store=s3"],
     "constellation_duration_seconds is required (or give a config file with DURATION)"),
])
def test_check_names_the_variable_the_user_set(moto, tmp_path, arguments, message):
    result = check_as_typed(moto, tmp_path, *arguments)

    shown = failure_message(result)
    assert message in shown
    assert "argument_spec" not in result.output and "Traceback" not in result.output
