"""Bad input through init.yml: refused before anything exists, naming the field, never a traceback."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, run_playbook

VALID = {"DURATION": 20000, "HOME_REGION": "eu-central-1", "REMOTE_REGIONS": {"us-east-2": 202}}


def with_(**changes):
    config = dict(VALID)
    config.update(changes)
    return json.dumps(config)


def without(key):
    return json.dumps({k: v for k, v in VALID.items() if k != key})


# (id, config file text or None, extra variables, words the error must contain)
CASES = [
    ("invalid-json", '{"DURATION": 20000,', {}, ["JSON"]),
    ("trailing-garbage", json.dumps(VALID) + " x", {}, ["JSON"]),
    ("top-level-list", "[1, 2]", {}, ["object"]),
    ("empty-file", "", {}, ["JSON"]),
    ("duplicate-key", '{"DURATION": 1000, "DURATION": 2000, "HOME_REGION": "eu-central-1", '
     '"REMOTE_REGIONS": {"us-east-2": 1}}', {}, ["DURATION"]),
    ("misspelled-key", json.dumps({"DURATON": 20000, "HOME_REGION": "eu-central-1",
                                   "REMOTE_REGIONS": {"us-east-2": 1}}), {}, ["DURATON"]),
    ("unknown-key", with_(COLOR="blue"), {}, ["COLOR"]),
    ("missing-duration", without("DURATION"), {}, ["DURATION"]),
    ("missing-home", without("HOME_REGION"), {}, ["HOME_REGION"]),
    ("missing-remotes", without("REMOTE_REGIONS"), {}, ["REMOTE_REGIONS"]),
    ("duration-string", with_(DURATION="20000"), {}, ["DURATION", "20000"]),
    ("duration-float", with_(DURATION=20000.5), {}, ["DURATION", "20000.5"]),
    ("duration-zero", with_(DURATION=0), {}, ["DURATION", "0"]),
    ("duration-negative", with_(DURATION=-5), {}, ["DURATION", "-5"]),
    ("duration-bool", with_(DURATION=True), {}, ["DURATION", "true"]),
    ("duration-absurd", with_(DURATION=10**12), {}, ["DURATION", str(10**12)]),
    ("home-unknown", with_(HOME_REGION="eu-central-9"), {}, ["HOME_REGION", "eu-central-9"]),
    ("home-not-string", with_(HOME_REGION=7), {}, ["HOME_REGION", "7"]),
    ("home-china", with_(HOME_REGION="cn-north-1"), {}, ["HOME_REGION", "cn-north-1"]),
    ("home-no-timestream", with_(HOME_REGION="ca-central-1"), {}, ["HOME_REGION", "ca-central-1"]),
    ("remotes-empty", with_(REMOTE_REGIONS={}), {}, ["REMOTE_REGIONS"]),
    ("remotes-list", with_(REMOTE_REGIONS=["us-east-2"]), {}, ["REMOTE_REGIONS"]),
    ("remote-misspelled", with_(REMOTE_REGIONS={"us-esat-2": 5}), {}, ["REMOTE_REGIONS", "us-esat-2"]),
    ("remote-govcloud", with_(REMOTE_REGIONS={"us-gov-west-1": 5}), {}, ["REMOTE_REGIONS", "us-gov-west-1"]),
    ("vus-zero", with_(REMOTE_REGIONS={"us-east-2": 0}), {}, ["us-east-2", "0"]),
    ("vus-negative", with_(REMOTE_REGIONS={"us-east-2": -3}), {}, ["us-east-2", "-3"]),
    ("vus-float", with_(REMOTE_REGIONS={"us-east-2": 2.5}), {}, ["us-east-2", "2.5"]),
    ("vus-string", with_(REMOTE_REGIONS={"us-east-2": "5"}), {}, ["us-east-2", "5"]),
    ("vus-absurd", with_(REMOTE_REGIONS={"us-east-2": 10**9}), {}, ["us-east-2", str(10**9)]),
    ("missing-file", None, {"config": "/nonexistent/config.json"}, ["/nonexistent/config.json"]),
    ("results-store-unknown", json.dumps(VALID), {"constellation_results_store": "dynamo"},
     ["constellation_results_store", "dynamo"]),
    ("deployment-uppercase", json.dumps(VALID), {"constellation_deployment": "Prod_Test"}, ["Prod_Test"]),
    ("both-file-and-variable", json.dumps(VALID), {"constellation_home_region": "us-east-1"}, ["HOME_REGION"]),
    ("max-vus-per-task-zero", json.dumps(VALID), {"constellation_max_vus_per_task": 0}, ["max_vus_per_task", "0"]),
    ("native-no-settings", None, {}, ["home_region"]),
    ("stage-bad-duration", with_(REMOTE_REGIONS={"us-east-2": {"stages": [{"duration": "2x", "target": 5}]}}), {},
     ["REMOTE_REGIONS['us-east-2'].stages[0].duration", "2x"]),
    ("stage-target-too-high", with_(REMOTE_REGIONS={"us-east-2": {"stages": [{"duration": "1m", "target": 60000}]}}), {},
     ["REMOTE_REGIONS['us-east-2'].stages[0].target", "60000"]),
    ("start-after-typed-as-text", None, {"constellation_home_region": "eu-central-1", "constellation_duration_seconds": "60",
     "constellation_remote_regions": '{"us-east-2": {"vus": 5, "start_after": "later"}}'},
     ["constellation_remote_regions['us-east-2'].start_after", "later"]),
    ("prometheus-not-a-url", json.dumps(VALID), {"constellation_prometheus_remote_write_url": "prometheus:9090"},
     ["constellation_prometheus_remote_write_url", "prometheus:9090"]),
    ("prometheus-secret-a-value", json.dumps(VALID),
     {"constellation_prometheus_remote_write_url": "https://prometheus.example.com/api/v1/write", "constellation_prometheus_secret": "s3cr3t"},
     ["constellation_prometheus_secret", "must be the ARN"]),
    ("prometheus-secret-without-url", json.dumps(VALID),
     {"constellation_prometheus_remote_write_url": "", "constellation_prometheus_secret": "arn:aws:ssm:eu-central-1:123456789012:parameter/t"},
     ["constellation_prometheus_secret is set", "constellation_prometheus_remote_write_url"]),
]


@pytest.mark.parametrize(("config_text", "extra", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_invalid_input_is_refused_before_anything_is_created(moto, tmp_path, config_text, extra, words):
    variables = {"constellation_aws_endpoint_url": moto.url, "constellation_build_dir": str(tmp_path / "build")}
    if config_text is not None:
        path = tmp_path / "config.json"
        path.write_text(config_text)
        variables["config"] = str(path)
    variables.update(extra)

    result = run_playbook(REPO / "playbooks" / "init.yml", variables)

    assert result.rc != 0, result.output
    assert "Traceback" not in result.output
    failure = result.stdout[result.stdout.index("FAILED!"):] if "FAILED!" in result.stdout else result.output
    for word in words:
        assert word in failure, f"{word!r} not in the error:\n{failure}"
    moto.assert_empty(["eu-central-1", "us-east-2", "ca-central-1"])
    assert not (tmp_path / "build").exists()
