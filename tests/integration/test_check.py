"""check.yml against a moto server: reports every region and the plan, and changes nothing."""

from __future__ import annotations

import json

from conftest import run_playbook

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
    assert "Plan: 984 VUs in 7 tasks (7.0 vCPUs) over 3 regions" in report
    assert "Timestream for LiveAnalytics can be used" in report
    assert "Estimated cost of one run: $" in report
    assert "<html" not in report, "an HTTP error page leaked into the report"
    moto.assert_empty(REGIONS)
