"""The config loader and the run plan: every bad input is named, every split is exact."""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[5]

from ansible_collections.constellation.loadtest.plugins.module_utils.run import config as cfg
from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import ConfigError
from ansible_collections.constellation.loadtest.plugins.module_utils.run.regions import TIMESTREAM_LIVEANALYTICS_REGIONS

SEED = {"DURATION": 20000, "HOME_REGION": "eu-central-1", "REMOTE_REGIONS": {"ap-northeast-1": 5, "us-east-2": 202}}
NATIVE = {"home_region": "eu-central-1", "remote_regions": {"us-east-2": 202}, "duration_seconds": 20}


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "config.json"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def seed_with(**changes) -> str:
    return json.dumps({**SEED, **changes})


def seed_without(key: str) -> str:
    return json.dumps({k: v for k, v in SEED.items() if k != key})


def remotes(value) -> str:
    return seed_with(REMOTE_REGIONS=value)


# (id, config file text or None, native settings, expected field, text(s) the message must contain)
INVALID = [
    ("invalid-json", '{"DURATION": 20000,\n "HOME_REGION": }', {}, "config", "line 2 column"),
    ("trailing-garbage", json.dumps(SEED) + " x", {}, "config", "Extra data"),
    ("empty-file", "", {}, "config", "not valid JSON"),
    ("top-level-list", "[1, 2]", {}, "config", "a list"),
    ("top-level-string", '"eu-central-1"', {}, "config", "a string"),
    ("duplicate-key", '{"DURATION": 1000, "DURATION": 2000}', {}, "config", "'DURATION'"),
    ("duplicate-region", '{"REMOTE_REGIONS": {"us-east-2": 1, "us-east-2": 2}}', {}, "config", "'us-east-2'"),
    ("misspelled-key", json.dumps({**SEED, "DURATON": 1}), {}, "config", ("'DURATON'", "did you mean 'DURATION'")),
    ("lowercase-key", json.dumps({"home_region": "eu-central-1"}), {}, "config", ("'home_region'", "did you mean 'HOME_REGION'")),
    ("unknown-key", seed_with(COLOR="blue"), {}, "config", "'COLOR'"),
    ("missing-duration", seed_without("DURATION"), {}, "DURATION", "duration_seconds"),
    ("missing-home", seed_without("HOME_REGION"), {}, "HOME_REGION", "home_region"),
    ("missing-remotes", seed_without("REMOTE_REGIONS"), {}, "REMOTE_REGIONS", "remote_regions"),
    ("duration-string", seed_with(DURATION="20000"), {}, "DURATION", "'20000'"),
    ("duration-fraction", seed_with(DURATION=20000.5), {}, "DURATION", "20000.5"),
    ("duration-float-whole", seed_with(DURATION=20000.0), {}, "DURATION", "20000.0"),
    ("duration-bool", seed_with(DURATION=True), {}, "DURATION", "true"),
    ("duration-null", seed_with(DURATION=None), {}, "DURATION", "null"),
    ("duration-zero", seed_with(DURATION=0), {}, "DURATION", "got 0"),
    ("duration-negative", seed_with(DURATION=-5), {}, "DURATION", "-5"),
    ("duration-below-minimum", seed_with(DURATION=999), {}, "DURATION", "999"),
    ("duration-above-maximum", seed_with(DURATION=86_400_001), {}, "DURATION", "86400001"),
    ("duration-nan", '{"DURATION": NaN, "HOME_REGION": "eu-central-1", "REMOTE_REGIONS": {"us-east-2": 1}}', {}, "DURATION", "nan"),
    ("home-not-string", seed_with(HOME_REGION=7), {}, "HOME_REGION", "7"),
    ("home-unknown", seed_with(HOME_REGION="eu-central-9"), {}, "HOME_REGION", "eu-central-9"),
    ("home-misspelled", seed_with(HOME_REGION="eu-centrl-1"), {}, "HOME_REGION", ("'eu-centrl-1'", "did you mean 'eu-central-1'")),
    ("home-upper-case", seed_with(HOME_REGION="EU-WEST-1"), {}, "HOME_REGION", ("'EU-WEST-1'", "did you mean 'eu-west-1'")),
    ("home-china", seed_with(HOME_REGION="cn-north-1"), {}, "HOME_REGION", "'cn-north-1' is in the aws-cn partition"),
    ("home-govcloud", seed_with(HOME_REGION="us-gov-west-1"), {}, "HOME_REGION", "'us-gov-west-1' is in the aws-us-gov partition"),
    ("home-no-timestream", seed_with(HOME_REGION="ca-central-1"), {}, "HOME_REGION", "'ca-central-1' has no Timestream"),
    ("remotes-empty", remotes({}), {}, "REMOTE_REGIONS", "{}"),
    ("remotes-list", remotes(["us-east-2"]), {}, "REMOTE_REGIONS", "['us-east-2']"),
    ("remotes-number", remotes(5), {}, "REMOTE_REGIONS", "got 5"),
    ("remote-misspelled", remotes({"us-esat-2": 5}), {}, "REMOTE_REGIONS", ("'us-esat-2'", "did you mean 'us-east-2'")),
    ("remote-china", remotes({"cn-northwest-1": 5}), {}, "REMOTE_REGIONS", "'cn-northwest-1' is in the aws-cn partition"),
    ("remote-empty-name", remotes({"": 5}), {}, "REMOTE_REGIONS", "''"),
    ("vus-zero", remotes({"us-east-2": 0}), {}, "REMOTE_REGIONS", "REMOTE_REGIONS['us-east-2'] must be"),
    ("vus-negative", remotes({"us-east-2": -1}), {}, "REMOTE_REGIONS", "got -1"),
    ("vus-string", remotes({"us-east-2": "5"}), {}, "REMOTE_REGIONS", "'5'"),
    ("vus-fraction", remotes({"us-east-2": 5.5}), {}, "REMOTE_REGIONS", "5.5"),
    ("vus-bool", remotes({"us-east-2": True}), {}, "REMOTE_REGIONS", "true"),
    ("vus-null", remotes({"us-east-2": None}), {}, "REMOTE_REGIONS", "null"),
    ("vus-too-many", remotes({"us-east-2": 50_001}), {}, "REMOTE_REGIONS", "50001"),
    ("file-and-home-region", json.dumps(SEED), {"home_region": "eu-west-1"}, "home_region", "HOME_REGION in the config file"),
    ("file-and-duration", json.dumps(SEED), {"duration_seconds": 20}, "duration_seconds", "DURATION in the config file"),
    ("file-and-remotes", json.dumps(SEED), {"remote_regions": {"us-east-1": 1}}, "remote_regions", "both given"),
    ("nothing-given", None, {}, "home_region", "home_region is required"),
    ("native-missing-remotes", None, {"home_region": "eu-central-1", "duration_seconds": 5}, "remote_regions", "required"),
    ("native-duration-words", None, {**NATIVE, "duration_seconds": "twenty"}, "duration_seconds", "'twenty'"),
    ("native-duration-decimal-string", None, {**NATIVE, "duration_seconds": "1.5"}, "duration_seconds", "'1.5'"),
    ("native-duration-negative-string", None, {**NATIVE, "duration_seconds": "-5"}, "duration_seconds", "'-5'"),
    ("native-duration-zero", None, {**NATIVE, "duration_seconds": 0}, "duration_seconds", "got 0"),
    ("native-duration-a-day-and-more", None, {**NATIVE, "duration_seconds": 86401}, "duration_seconds", "86401"),
    ("native-duration-bool", None, {**NATIVE, "duration_seconds": True}, "duration_seconds", "true"),
    ("native-duration-float", None, {**NATIVE, "duration_seconds": 20.0}, "duration_seconds", "20.0"),
    ("native-remotes-string", None, {**NATIVE, "remote_regions": "us-east-2"}, "remote_regions", "'us-east-2'"),
    ("native-remote-key-not-string", None, {**NATIVE, "remote_regions": {1: 5}}, "remote_regions", "got 1"),
    ("native-vus-word", None, {**NATIVE, "remote_regions": {"us-east-2": "five"}}, "remote_regions", "'five'"),
    ("results-store-unknown", None, {**NATIVE, "results_store": "influxdb"}, "results_store", "'influxdb'"),
    ("results-store-case", None, {**NATIVE, "results_store": "S3"}, "results_store", "'S3'"),
    ("max-vus-zero", None, {**NATIVE, "max_vus_per_task": 0}, "max_vus_per_task", "got 0"),
    ("max-vus-too-many", None, {**NATIVE, "max_vus_per_task": "5001"}, "max_vus_per_task", "'5001'"),
    ("deployment-upper-case", None, {**NATIVE, "deployment": "Constellation"}, "deployment", "'Constellation'"),
    ("deployment-digit-first", None, {**NATIVE, "deployment": "1st"}, "deployment", "'1st'"),
    ("deployment-underscore", None, {**NATIVE, "deployment": "load_test"}, "deployment", "'load_test'"),
    ("deployment-trailing-hyphen", None, {**NATIVE, "deployment": "load-"}, "deployment", "'load-'"),
    ("deployment-too-long", None, {**NATIVE, "deployment": "a" * 25}, "deployment", "a" * 25),
    ("deployment-empty", None, {**NATIVE, "deployment": ""}, "deployment", "''"),
    ("task-cpu-not-fargate", None, {**NATIVE, "task_cpu": 300}, "task_cpu", "got 300"),
    ("task-memory-mismatch", None, {**NATIVE, "task_cpu": 1024, "task_memory": 1024}, "task_memory", "with task_cpu 1024"),
    ("task-memory-off-step", None, {**NATIVE, "task_cpu": 8192, "task_memory": "17408"}, "task_memory", "'17408'"),
    ("unknown-setting", None, {**NATIVE, "home_regoin": "eu-west-1"}, "home_regoin", ("'home_regoin'", "did you mean 'home_region'")),
]


@pytest.mark.parametrize(("text", "settings", "field", "expected"), [case[1:] for case in INVALID], ids=[case[0] for case in INVALID])
def test_invalid_config_names_field_and_value(tmp_path, text, settings, field, expected):
    path = write(tmp_path, text) if text is not None else None
    with pytest.raises(ConfigError) as caught:
        cfg.load_config(path, settings)
    assert caught.value.field == field
    for text in (expected,) if isinstance(expected, str) else expected:
        assert text in str(caught.value)


def test_enough_invalid_cases():
    assert len(INVALID) >= 30


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as caught:
        cfg.load_config(missing)
    assert caught.value.field == "config"
    assert str(missing) in str(caught.value) and "does not exist" in str(caught.value)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        cfg.load_config(tmp_path)
    assert caught.value.field == "config"
    assert str(tmp_path) in str(caught.value) and "is a directory" in str(caught.value)


@pytest.mark.parametrize(
    ("error", "expected"),
    [(PermissionError(13, "Permission denied"), "permission denied"), (OSError(5, "Input/output error"), "cannot be read")],
)
def test_unreadable_file(tmp_path, monkeypatch, error, expected):
    def refuse(*args, **kwargs):
        raise error

    # Patched rather than chmod-ed: the tests may run as root, who reads any file.
    monkeypatch.setattr(cfg, "open", refuse, raising=False)
    path = write(tmp_path, json.dumps(SEED))
    with pytest.raises(ConfigError, match=expected) as caught:
        cfg.load_config(path)
    assert caught.value.field == "config" and str(path) in str(caught.value)


def test_not_utf8(tmp_path):
    with pytest.raises(ConfigError, match="not UTF-8") as caught:
        cfg.load_config(write(tmp_path, b'{"HOME_REGION": "\xff"}'))
    assert caught.value.field == "config"


def test_huge_file_is_refused_without_parsing(tmp_path):
    with pytest.raises(ConfigError, match="larger than") as caught:
        cfg.load_config(write(tmp_path, " " * (cfg.CONFIG_FILE_MAX_BYTES + 1)))
    assert caught.value.field == "config"


def test_deeply_nested_json(tmp_path):
    with pytest.raises(ConfigError, match="not valid JSON"):
        cfg.load_config(write(tmp_path, "[" * 100_000 + "]" * 100_000))


def test_unknown_region_without_close_match_lists_regions(tmp_path):
    with pytest.raises(ConfigError) as caught:
        cfg.load_config(write(tmp_path, seed_with(HOME_REGION="mars")))
    assert "'mars'" in str(caught.value) and "us-east-1" in str(caught.value)


def test_seed_example_exactly(tmp_path):
    config = cfg.load_config(write(tmp_path, json.dumps(SEED)))
    assert config == cfg.Config(
        home_region="eu-central-1",
        remote_regions={"ap-northeast-1": 5, "us-east-2": 202},
        duration_ms=20000,
    )
    assert (config.results_store, config.max_vus_per_task, config.deployment) == ("timestream", 200, "constellation")
    assert (config.task_cpu, config.task_memory) == (1024, 2048)


def test_full_seed_notes_example(tmp_path):
    text = """{
      "DURATION": 20000,
      "HOME_REGION": "eu-central-1",
      "REMOTE_REGIONS": {
        "ap-northeast-1": 5, "us-east-2": 202, "ca-central-1": 777, "eu-west-1": 5, "ap-northeast-3": 5
      }
    }"""
    config = cfg.load_config(write(tmp_path, text))
    assert list(config.remote_regions) == ["ap-northeast-1", "ap-northeast-3", "ca-central-1", "eu-west-1", "us-east-2"]


def test_file_with_byte_order_mark(tmp_path):
    config = cfg.load_config(write(tmp_path, b"\xef\xbb\xbf" + json.dumps(SEED).encode()))
    assert config.home_region == "eu-central-1"


def test_config_is_frozen(tmp_path):
    config = cfg.load_config(write(tmp_path, json.dumps(SEED)))
    with pytest.raises(AttributeError):
        config.home_region = "us-east-1"
    with pytest.raises(TypeError):
        config.remote_regions["us-east-2"] = 1


def test_native_settings():
    config = cfg.load_config(
        settings={
            "home_region": "ca-central-1",
            "remote_regions": {"us-west-2": 10, "eu-west-1": 3},
            "duration_seconds": 90,
            "results_store": "s3",
            "max_vus_per_task": 50,
            "deployment": "perf-2",
            "task_cpu": 2048,
            "task_memory": 4096,
            "start_lead_seconds": "0",
            "start_timeout_seconds": 60,
        }
    )
    assert config.to_dict() == {
        "home_region": "ca-central-1",
        "remote_regions": {"eu-west-1": 3, "us-west-2": 10},
        "duration_ms": 90_000,
        "results_store": "s3",
        "max_vus_per_task": 50,
        "deployment": "perf-2",
        "task_cpu": 2048,
        "task_memory": 4096,
        "start_lead_seconds": 0,
        "start_timeout_seconds": 60,
        "capacity": "fargate",
        "spot_percent": 50,
        "shapes": {},
    }


def test_native_numbers_may_be_strings_of_digits():
    config = cfg.load_config(
        settings={
            "home_region": "eu-central-1",
            "remote_regions": {"us-east-2": "202"},
            "duration_seconds": " 20 ",
            "max_vus_per_task": "100",
            "task_cpu": "512",
            "task_memory": "1024",
        }
    )
    assert (config.duration_ms, config.remote_regions["us-east-2"], config.max_vus_per_task) == (20_000, 202, 100)
    assert (config.task_cpu, config.task_memory) == (512, 1024)


def test_none_settings_count_as_not_given(tmp_path):
    settings = dict.fromkeys(cfg.NATIVE_SETTINGS)
    assert cfg.load_config(write(tmp_path, json.dumps(SEED)), settings).duration_ms == 20000


def test_file_and_other_native_settings_combine(tmp_path):
    config = cfg.load_config(write(tmp_path, seed_with(HOME_REGION="ca-central-1")), {"results_store": "s3", "deployment": "team-a"})
    assert (config.home_region, config.results_store, config.deployment) == ("ca-central-1", "s3", "team-a")


def test_file_may_leave_a_field_to_native_settings(tmp_path):
    config = cfg.load_config(write(tmp_path, seed_without("DURATION")), {"duration_seconds": "30"})
    assert config.duration_ms == 30_000


@pytest.mark.parametrize("region", TIMESTREAM_LIVEANALYTICS_REGIONS)
def test_every_timestream_region_is_a_valid_home(region):
    assert cfg.load_config(settings={**NATIVE, "home_region": region}).home_region == region


@pytest.mark.parametrize("cpu", sorted(cfg.FARGATE_MEMORY_BY_CPU))
def test_every_fargate_size_is_accepted(cpu):
    for memory in cfg.FARGATE_MEMORY_BY_CPU[cpu]:
        config = cfg.load_config(settings={**NATIVE, "task_cpu": cpu, "task_memory": memory})
        assert (config.task_cpu, config.task_memory) == (cpu, memory)


ODD_VALUES = [
    None, True, False, 0, -1, 1.5, float("nan"), float("inf"), 10**100, "", " ", "\x00", "\u0663", "9" * 5000,
    [], [1], {}, {"a": 1}, {None: 1}, {("a",): 1}, {"us-east-1": object()}, set(), b"bytes", object(),
]


@pytest.mark.parametrize("name", cfg.NATIVE_SETTINGS)
def test_odd_native_values_raise_only_config_errors(name):
    for value in ODD_VALUES:
        try:
            cfg.load_config(settings={**NATIVE, name: value})
        except ConfigError as error:
            assert error.field == name
            assert str(error)


@pytest.mark.parametrize("key", cfg.CONFIG_FILE_KEYS)
def test_odd_file_values_raise_only_config_errors(tmp_path, key):
    for value in ODD_VALUES:
        try:
            text = seed_with(**{key: value})
        except (TypeError, ValueError):
            continue  # not representable in JSON
        with pytest.raises(ConfigError):
            cfg.load_config(write(tmp_path, text))


@pytest.mark.parametrize("path", [5, b"config.json", ["a"], "", "bad\x00path"])
def test_odd_paths_raise_config_errors(path):
    with pytest.raises(ConfigError) as caught:
        cfg.load_config(path)
    assert caught.value.field == "config"


# --- the plan ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("vus", "per_task", "expected"),
    [
        (777, 200, [195, 194, 194, 194]),
        (450, 200, [150, 150, 150]),
        (1, 200, [1]),
        (400, 200, [200, 200]),
        (200, 200, [200]),
        (201, 200, [101, 100]),
        (5, 1, [1, 1, 1, 1, 1]),
    ],
)
def test_split_vus(vus, per_task, expected):
    assert cfg.split_vus(vus, per_task) == expected


def test_split_is_exact_for_many_values():
    for vus in range(1, 1200):
        for per_task in (1, 2, 3, 7, 50, 199, 200, 201, 1000, 5000):
            split = cfg.split_vus(vus, per_task)
            assert sum(split) == vus
            assert len(split) == math.ceil(vus / per_task)
            assert max(split) <= per_task
            assert max(split) - min(split) <= 1
            assert split == sorted(split, reverse=True)


def test_execution_segments():
    assert cfg.execution_segments(1) == ["0:1"]
    assert cfg.execution_segments(4) == ["0:1/4", "1/4:2/4", "2/4:3/4", "3/4:1"]
    assert cfg.execution_segment_sequence(1) == "0,1"
    assert cfg.execution_segment_sequence(4) == "0,1/4,2/4,3/4,1"


def test_segments_tile_the_whole_test_for_many_task_counts():
    for tasks in range(1, 300):
        points = [Fraction(point) for point in cfg.execution_segment_sequence(tasks).split(",")]
        assert points == [Fraction(index, tasks) for index in range(tasks + 1)]
        segments = [tuple(Fraction(end) for end in segment.split(":")) for segment in cfg.execution_segments(tasks)]
        assert segments == list(zip(points, points[1:]))


def test_plan_of_the_seed_example(tmp_path):
    config = cfg.load_config(write(tmp_path, remotes({"ap-northeast-1": 5, "us-east-2": 777, "eu-central-1": 450})))
    result = cfg.plan(config)
    assert json.loads(json.dumps(result)) == result
    assert result["regions"] == ["ap-northeast-1", "eu-central-1", "us-east-2"]
    assert result["home_region"] == "eu-central-1"
    us_east_2 = result["remote_regions"]["us-east-2"]
    assert us_east_2 == {
        "vus": 777,
        "tasks": 4,
        "vus_per_task": [195, 194, 194, 194],
        "execution_segments": ["0:1/4", "1/4:2/4", "2/4:3/4", "3/4:1"],
        "execution_segment_sequence": "0,1/4,2/4,3/4,1",
        "vcpus": 4.0,
        "memory_gib": 8.0,
        "duration_ms": 20_000,
        "start_after_ms": 0,
        "stages": None,
        "planned_vus": [[0, 777], [20_000, 777]],
        "description": "777 VUs (constant) in 4 tasks, from 0 s to 20 s",
        "spot_tasks": 0,
    }
    assert result["duration_ms"] == 20_000
    assert result["remote_regions"]["eu-central-1"]["vus_per_task"] == [150, 150, 150]
    assert result["totals"] == {"vus": 1232, "tasks": 8, "vcpus": 8.0, "memory_gib": 16.0}


def test_plan_vcpus_follow_task_size():
    config = cfg.load_config(settings={**NATIVE, "task_cpu": 256, "task_memory": 512, "remote_regions": {"us-east-2": 3}, "max_vus_per_task": 1})
    assert cfg.plan(config)["totals"] == {"vus": 3, "tasks": 3, "vcpus": 0.75, "memory_gib": 1.5}


def test_cost_estimate_timestream():
    config = cfg.load_config(settings={**NATIVE, "remote_regions": {"us-east-2": 400}, "duration_seconds": 600})
    cost = cfg.plan(config)["cost_estimate"]
    billed = 600 + cfg.TASK_OVERHEAD_SECONDS
    fargate = 2 * billed / 3600 * (1 * 0.04048 + 2 * 0.004445)
    writes = 2 * (600 // 5) * (5 + 1)  # 5 request names and the task's own record
    assert cost["billed_seconds_per_task"] == billed
    assert cost["results_store_requests"] == writes
    assert cost["fargate_usd"] == round(fargate, 4)
    assert cost["results_store_usd"] == round(writes * 0.5 / 1e6, 4)
    assert cost["total_usd"] == round(fargate + writes * 0.5 / 1e6, 4)
    assert "us-east-1" in cost["assumptions"] and "Timestream" in cost["assumptions"]


def test_cost_estimate_s3_counts_puts():
    config = cfg.load_config(settings={**NATIVE, "results_store": "s3", "remote_regions": {"us-east-2": 1}, "duration_seconds": 12})
    cost = cfg.plan(config)["cost_estimate"]
    assert cost["results_store_requests"] == 3  # one task, ceil(12 s / 5 s) intervals
    assert "S3" in cost["assumptions"]


# --- the script load model: one global execution-segment sequence -----------------------------


def script_config(remote_regions: dict[str, int], max_vus_per_task: int) -> cfg.Config:
    return cfg.load_config(
        settings={
            "home_region": "eu-central-1",
            "remote_regions": remote_regions,
            "duration_seconds": 10,
            "max_vus_per_task": max_vus_per_task,
        }
    )


def test_script_load_segments_weigh_regions_and_split_them_evenly():
    load = cfg.script_load_segments(script_config({"us-east-2": 12, "ca-central-1": 9}, max_vus_per_task=4))
    assert load == {
        "execution_segment_sequence": "0,1/7,2/7,3/7,13/21,17/21,1",
        "regions": {
            "ca-central-1": {"tasks": 3, "share": "3/7", "execution_segments": ["0:1/7", "1/7:2/7", "2/7:3/7"]},
            "us-east-2": {"tasks": 3, "share": "4/7", "execution_segments": ["3/7:13/21", "13/21:17/21", "17/21:1"]},
        },
        "exact_vus_multiple": 21,
    }


def test_script_load_segments_of_one_task_is_the_whole_test():
    load = cfg.script_load_segments(script_config({"us-east-2": 5}, max_vus_per_task=200))
    assert load["execution_segment_sequence"] == "0,1"
    assert load["regions"]["us-east-2"]["execution_segments"] == ["0:1"]
    assert load["exact_vus_multiple"] == 1


@pytest.mark.parametrize(
    "remote_regions, max_vus_per_task",
    [
        ({"ap-northeast-1": 5, "us-east-2": 202, "ca-central-1": 777}, 200),
        ({"us-east-2": 1, "eu-west-1": 3}, 1),
        ({"us-east-2": 7, "eu-west-1": 7, "sa-east-1": 7}, 3),
    ],
)
def test_script_load_segments_tile_the_test_in_proportion_to_the_weights(remote_regions, max_vus_per_task):
    config = script_config(remote_regions, max_vus_per_task)
    load = cfg.script_load_segments(config)
    points = [Fraction(point) for point in load["execution_segment_sequence"].split(",")]
    assert points[0] == 0 and points[-1] == 1 and points == sorted(set(points))
    segments = [
        tuple(Fraction(end) for end in segment.split(":"))
        for region in sorted(remote_regions)
        for segment in load["regions"][region]["execution_segments"]
    ]
    assert segments == list(zip(points, points[1:]))
    total = sum(remote_regions.values())
    planned = cfg.plan(config)["remote_regions"]
    for region, weight in remote_regions.items():
        region_load = load["regions"][region]
        assert region_load["tasks"] == planned[region]["tasks"] == len(region_load["execution_segments"])
        lengths = {end - start for start, end in (map(Fraction, s.split(":")) for s in region_load["execution_segments"])}
        assert lengths == {Fraction(weight, total * region_load["tasks"])}
        assert Fraction(region_load["share"]) == Fraction(weight, total)
    assert load["exact_vus_multiple"] == math.lcm(*(point.denominator for point in points))


# --- what surveys and the command line send ------------------------------------------------------


def test_regions_as_json_text_are_read_with_vu_counts_as_strings():
    config = cfg.load_config(None, dict(NATIVE, remote_regions='{"us-east-2": "202", "ca-central-1": 5}'))

    assert dict(config.remote_regions) == {"ca-central-1": 5, "us-east-2": 202}


@pytest.mark.parametrize(("text", "message"), [
    ('{"us-east-2": 5', "remote_regions must be a JSON object of region names to VU counts"),
    ('{"us-east-2": 5, "us-east-2": 6}', "remote_regions names the region 'us-east-2' twice"),
    ('["us-east-2"]', "remote_regions must map region names to VU counts"),
])
def test_regions_as_bad_json_text_are_refused_by_name(text, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")) as raised:
        cfg.load_config(None, dict(NATIVE, remote_regions=text))
    assert raised.value.field == "remote_regions"


def test_regions_in_the_config_file_stay_strictly_typed(tmp_path):
    path = write(tmp_path, json.dumps(dict(SEED, REMOTE_REGIONS='{"us-east-2": 5}')))

    with pytest.raises(ConfigError, match="REMOTE_REGIONS must map region names to VU counts"):
        cfg.load_config(path)


@pytest.mark.parametrize("blank", ["", "   ", None])
def test_a_blank_answer_is_not_given(blank):
    assert cfg.not_blank(blank) is None
    assert cfg.not_blank(0) == 0 and cfg.not_blank(False) is False and cfg.not_blank("x") == "x"


def test_messages_can_name_the_playbook_variables():
    with pytest.raises(ConfigError) as raised:
        cfg.load_config(None, {"home_region": "us-west-1", "remote_regions": {"us-east-2": 5}, "duration_seconds": 5})

    shown = cfg.named_as_variables(str(raised.value))
    assert shown.startswith("constellation_home_region 'us-west-1' has no Timestream for LiveAnalytics")
    assert shown.endswith("or set constellation_results_store to s3")
    # Values and other words are left as they are, and a name already prefixed is not prefixed again.
    assert cfg.named_as_variables("deployment 'task_cpu' and constellation_task_memory") == (
        "constellation_deployment 'task_cpu' and constellation_task_memory"
    )


@pytest.mark.parametrize(("setting", "value", "message"), [
    ("start_lead_seconds", "soon", "start_lead_seconds must be a whole number of seconds from 0 to 3600; got 'soon'"),
    ("start_lead_seconds", -1, "start_lead_seconds must be a whole number of seconds from 0 to 3600; got -1"),
    ("start_timeout_seconds", 0, "start_timeout_seconds must be a whole number of seconds from 1 to 86400; got 0"),
])
def test_the_synchronized_start_settings_are_checked_by_name(setting, value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        cfg.load_config(None, dict(NATIVE, **{setting: value}))
    assert cfg.load_config(None, NATIVE).start_lead_seconds == 30
    assert cfg.load_config(None, NATIVE).start_timeout_seconds == 900


# ---- A shape per region: stages, start_after.

FOLLOW_THE_SUN = {
    "ap-northeast-1": {"stages": [{"duration": "2m", "target": 300}, {"duration": "5m", "target": 300}, {"duration": "1m", "target": 0}]},
    "eu-west-1": {"vus": 200, "start_after": "90s"},
    "us-east-2": 450,
}


def test_a_region_may_ramp_join_later_or_stay_constant_and_the_plan_lasts_as_long_as_the_longest():
    config = cfg.load_config(settings={"home_region": "eu-central-1", "remote_regions": FOLLOW_THE_SUN, "duration_seconds": 300})
    assert dict(config.remote_regions) == {"ap-northeast-1": 300, "eu-west-1": 200, "us-east-2": 450}
    result = cfg.plan(config)
    assert json.loads(json.dumps(result)) == result
    asia, europe, america = (result["remote_regions"][region] for region in ("ap-northeast-1", "eu-west-1", "us-east-2"))
    assert asia["stages"] == [[120_000, 300], [300_000, 300], [60_000, 0]] and asia["duration_ms"] == 480_000
    assert asia["planned_vus"] == [[0, 0], [120_000, 300], [420_000, 300], [480_000, 0]]
    assert (asia["tasks"], asia["vus_per_task"]) == (2, [150, 150])  # tasks for the peak
    assert europe["stages"] == [[90_000, 0], [0, 200], [300_000, 200]] and europe["duration_ms"] == 390_000
    assert europe["planned_vus"] == [[0, 0], [90_000, 0], [90_000, 200], [390_000, 200]]
    assert (america["stages"], america["duration_ms"], america["planned_vus"]) == (None, 300_000, [[0, 450], [300_000, 450]])
    assert result["duration_ms"] == 480_000
    # Each region bills its own length: 2 x (480 + 180) + 1 x (390 + 180) + 3 x (300 + 180) task-seconds.
    assert result["cost_estimate"]["task_seconds"] == 2 * 660 + 570 + 3 * 480
    # What the plan module hands on rebuilds the same config (task_contract takes it).
    assert cfg.plan(cfg.Config(**config.to_dict())) == result


def test_shapes_typed_as_text_are_the_same_as_given_as_objects():
    text = json.dumps(FOLLOW_THE_SUN)
    typed = cfg.load_config(settings={"home_region": "eu-central-1", "remote_regions": text, "duration_seconds": "300"})
    given = cfg.load_config(settings={"home_region": "eu-central-1", "remote_regions": FOLLOW_THE_SUN, "duration_seconds": 300})
    assert typed == given


@pytest.mark.parametrize(
    ("region", "words"),
    [
        ({"stages": []}, ["remote_regions['us-east-2'].stages must be a list of 1 to 100 stages", "[]"]),
        ({"stages": [{"duration": "2x", "target": 5}]}, ["remote_regions['us-east-2'].stages[0].duration must be a k6 duration", "'2x'"]),
        ({"stages": [{"duration": 30, "target": 5}]}, ["stages[0].duration must be a k6 duration", "30 (an integer)"]),
        ({"stages": [{"duration": "30s", "target": 50001}]}, ["stages[0].target must be a whole number of VUs from 0 to 50000", "50001"]),
        ({"stages": [{"duration": "30s", "target": -1}]}, ["stages[0].target", "-1"]),
        ({"stages": [{"duration": "30s", "target": 0}]}, ["every target is 0"]),
        ({"stages": [{"duration": "30s"}]}, ["stages[0] must be {\"duration\""]),
        ({"stages": [{"duration": "30s", "target": 5, "ramp": "linear"}]}, ["stages[0] must be", "ramp"]),
        ({"stages": [{"duration": "500ms", "target": 5}]}, ["stages must last at least 1000 ms"]),
        ({"vus": 5, "stages": [{"duration": "30s", "target": 5}]}, ["either \"vus\"", "not both"]),
        ({}, ["either \"vus\"", "not neither"]),
        ({"vus": 5, "start_after": "soon"}, ["remote_regions['us-east-2'].start_after must be a k6 duration", "'soon'"]),
        ({"vus": 5, "start_after": "25h"}, ["start_after must be a k6 duration", "at most a day"]),
        ({"vus": 0}, ["remote_regions['us-east-2'].vus must be a whole number of VUs from 1", "0"]),
        ({"vu": 5}, ["remote_regions['us-east-2'] has an unknown field 'vu'", "did you mean 'vus'"]),
        ({"stages": [{"duration": "23h", "target": 5}], "start_after": "2h"}, ["the longest region would run 90000000 ms, over a day"]),
    ],
)
def test_a_bad_shape_is_refused_naming_the_region_and_the_field(region, words):
    with pytest.raises(cfg.ConfigError) as error:
        cfg.load_config(settings={"home_region": "eu-central-1", "remote_regions": {"us-east-2": region}, "duration_seconds": 60})
    for word in words:
        assert word in str(error.value), str(error.value)


def test_a_bad_shape_in_a_config_file_is_named_as_the_file_names_it(tmp_path):
    with pytest.raises(cfg.ConfigError, match=re.escape("REMOTE_REGIONS['eu-west-1'].stages[1].target")):
        cfg.load_config(write(tmp_path, remotes({"eu-west-1": {"stages": [{"duration": "1m", "target": 5}, {"duration": "1m", "target": "x"}]}})))


def test_the_follow_the_sun_example_plans_as_its_readme_section_says():
    config = cfg.load_config(REPO / "examples" / "follow_the_sun.json")
    result = cfg.plan(config)
    regions = result["remote_regions"]
    assert {region: (p["vus"], p["tasks"], p["duration_ms"]) for region, p in regions.items()} == {
        "ap-northeast-1": (300, 2, 600_000), "eu-west-1": (400, 2, 720_000), "us-east-1": (250, 2, 780_000)
    }
    assert result["duration_ms"] == 780_000
    assert regions["us-east-1"]["planned_vus"] == [[0, 0], [480_000, 0], [480_000, 250], [780_000, 250]]
    assert regions["eu-west-1"]["description"] == "400 VUs (in stages, at the peak) in 2 tasks, from 180 s to 720 s"


@pytest.mark.parametrize(
    ("capacity", "percent", "spot"), [("fargate", None, [0, 0]), ("fargate_spot", None, [4, 1]), ("mixed", "50", [2, 0]), ("mixed", 75, [3, 0])]
)
def test_capacity_puts_each_regions_last_tasks_on_spot_and_the_estimate_prices_both(capacity, percent, spot):
    settings = {"home_region": "eu-central-1", "remote_regions": {"us-east-2": 800, "ca-central-1": 10}, "duration_seconds": 600,
                "capacity": capacity, **({"spot_percent": percent} if percent is not None else {})}
    result = cfg.plan(cfg.load_config(settings=settings))
    assert [result["remote_regions"][region]["spot_tasks"] for region in ("us-east-2", "ca-central-1")] == spot
    cost = result["cost_estimate"]
    assert cost["capacity"] == capacity
    assert cost["fargate_spot_usd"] == pytest.approx(cost["fargate_on_demand_usd"] * 0.3, abs=1e-4)
    share = sum(spot) / 5
    assert cost["fargate_usd"] == pytest.approx(cost["fargate_on_demand_usd"] * (1 - share) + cost["fargate_spot_usd"] * share, abs=2e-4)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"capacity": "spot"}, ["capacity must be one of fargate, fargate_spot, mixed", "'spot'"]),
        ({"capacity": "mixed", "spot_percent": "100"}, ["spot_percent", "1 to 99", "'100'"]),
    ],
)
def test_a_bad_capacity_is_named(settings, words):
    with pytest.raises(cfg.ConfigError) as error:
        cfg.load_config(settings={"home_region": "eu-central-1", "remote_regions": {"us-east-2": 8}, "duration_seconds": 60, **settings})
    for word in words:
        assert word in str(error.value)
