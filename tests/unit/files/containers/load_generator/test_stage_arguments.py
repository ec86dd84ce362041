"""A region's shape reaches k6: the contract's stages become k6's ramping-vus arguments, split by its execution segment.

The contract (task_contract) makes each task's environment; the load generator (entrypoint.py)
reads it and builds k6's command. k6 itself checks that the stages it is given, scaled to each
task's segment, add up to the region's targets (``k6 inspect --execution-requirements``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[5]
sys.path.insert(0, str(REPO / "tests"))

from containers import load_entrypoint  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import load_config  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import LOAD_GENERATOR  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import ContractError  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import Run  # noqa: E402
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import task_overrides  # noqa: E402

entrypoint = load_entrypoint("load_generator")
K6 = str(REPO / ".venv" / "bin" / "k6")
SHAPED = {
    "us-east-2": {"stages": [{"duration": "10s", "target": 7}, {"duration": "20s", "target": 7}, {"duration": "5s", "target": 0}]},
    "eu-west-1": {"vus": 4, "start_after": "10s"},
    "ca-central-1": 3,
}
CONFIG = load_config(settings={"home_region": "eu-central-1", "remote_regions": SHAPED, "duration_seconds": 20, "max_vus_per_task": 3})
BASE_ENV = {
    "CONSTELLATION_RUN_ID": "r1", "CONSTELLATION_REGION": "us-east-2", "CONSTELLATION_TASK_TOKEN": "t",
    "CONSTELLATION_HOME_REGION": "eu-central-1", "CONSTELLATION_ORCHESTRATOR": "lambda:f", "CONSTELLATION_BUCKET": "b",
    "CONSTELLATION_SCRIPT_KEY": "runs/r1/test.tar", "CONSTELLATION_SCRIPT_SHA256": "0" * 64,
}


def commands(region: str) -> list[list[str]]:
    commands = []
    for task in task_overrides(CONFIG, Run("r1"))[region]:
        settings = entrypoint.Settings.from_env(BASE_ENV | {"CONSTELLATION_REGION": region} | task[LOAD_GENERATOR])
        commands.append(entrypoint.k6_command(settings, Path("script.js"), {}, Path("summary.json")))
    return commands


def load_arguments(command: list[str]) -> list[str]:
    return command[command.index("--vus"):command.index("--execution-segment")]


def test_a_ramping_region_runs_its_stages_from_zero_vus_in_every_task():
    tasks = commands("us-east-2")
    assert len(tasks) == 3  # the peak, 7 VUs, over 3 VUs a task
    for command in tasks:
        assert load_arguments(command) == ["--vus", "0", "--stage", "10000ms:7", "--stage", "20000ms:7", "--stage", "5000ms:0"]
    assert [command[command.index("--execution-segment") + 1] for command in tasks] == ["0:1/3", "1/3:2/3", "2/3:1"]


def test_a_region_joining_later_waits_at_zero_vus_then_holds_its_vus_for_the_duration():
    (command,) = {tuple(command) for command in commands("eu-west-1")[:1]}
    assert load_arguments(list(command)) == ["--vus", "0", "--stage", "10000ms:0", "--stage", "0ms:4", "--stage", "20000ms:4"]


def test_a_constant_region_keeps_k6s_constant_vus_for_its_own_duration():
    (command,) = commands("ca-central-1")
    assert load_arguments(command) == ["--vus", "3", "--duration", "20000ms"]


def test_k6_splits_the_stages_so_that_the_tasks_add_up_to_the_regions_peak(tmp_path):
    script = tmp_path / "script.js"
    script.write_text("import { sleep } from 'k6';\nexport default function () { sleep(1); }\n")
    peaks = []
    for index, command in enumerate(commands("us-east-2")):
        options = load_arguments(command) + command[command.index("--execution-segment"):command.index("--execution-segment") + 4]
        archive = tmp_path / f"task-{index}.tar"
        for step in (["archive", *options, "-O", str(archive), str(script)], ["inspect", "--execution-requirements", str(archive)]):
            completed = subprocess.run([K6, *step], capture_output=True, text=True, timeout=60, check=False)
            assert completed.returncode == 0, completed.stderr
        peaks.append(json.loads(completed.stdout)["maxVUs"])
    assert sum(peaks) == 7 and max(peaks) - min(peaks) <= 1, peaks


def test_the_script_load_model_refuses_a_shape_naming_the_regions():
    with pytest.raises(ContractError, match="remote regions eu-west-1, us-east-2 have a shape"):
        task_overrides(CONFIG, Run("r1", load_model="script"))


def test_a_bad_stages_variable_is_refused_naming_it():
    with pytest.raises(entrypoint.LoadGeneratorError, match="CONSTELLATION_STAGES must be stages"):
        entrypoint.Settings.from_env(
            BASE_ENV | {"CONSTELLATION_TASK_INDEX": "0", "CONSTELLATION_VUS": "3", "CONSTELLATION_DURATION_MS": "1000", "CONSTELLATION_STAGES": "10s:3"}
        )
