"""preflight_info's checks on responses moto cannot give: quota values and a closed Timestream."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

REPO = Path(__file__).resolve().parents[4]

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.retries import RetryingBotoClientWrapper
from ansible_collections.constellation.loadtest.plugins.modules import preflight_info

QUOTA = {"ServiceCode": "fargate", "QuotaCode": "L-3032A538"}


def stubbed(service: str):
    client = boto3.client(service, region_name="eu-central-1", aws_access_key_id="a", aws_secret_access_key="b")
    stubber = Stubber(client)
    stubber.activate()
    return RetryingBotoClientWrapper(client, AWSRetry.jittered_backoff(retries=1)), stubber


def quota_response(value: float) -> dict:
    return {"Quota": {**QUOTA, "Value": value}}


def test_applied_quota_is_reported_with_its_source():
    quotas, stubber = stubbed("service-quotas")
    stubber.add_response("get_service_quota", quota_response(256.0), QUOTA)
    result = preflight_info.check_fargate_vcpu_quota(quotas, 40.0)
    assert result == {
        "status": "ok",
        "value": 256.0,
        "source": "applied",
        "required_vcpus": 40.0,
        "msg": "Fargate On-Demand vCPU quota is 256.0 (applied quota)",
    }
    stubber.assert_no_pending_responses()


def test_default_quota_when_none_is_applied():
    quotas, stubber = stubbed("service-quotas")
    stubber.add_client_error("get_service_quota", "NoSuchResourceException", expected_params=QUOTA)
    stubber.add_response("get_aws_default_service_quota", quota_response(6.0), QUOTA)
    result = preflight_info.check_fargate_vcpu_quota(quotas, None)
    assert (result["status"], result["value"], result["source"]) == ("ok", 6.0, "default")
    assert "required_vcpus" not in result


def test_quota_smaller_than_the_plan_fails_the_check():
    quotas, stubber = stubbed("service-quotas")
    stubber.add_response("get_service_quota", quota_response(6.0), QUOTA)
    result = preflight_info.check_fargate_vcpu_quota(quotas, 8.0)
    assert result["status"] == "failed"
    assert "needs 8.0 vCPUs" in result["msg"] and "L-3032A538" in result["msg"]


def test_quota_read_error_is_reported_not_raised():
    quotas, stubber = stubbed("service-quotas")
    stubber.add_client_error("get_service_quota", "AccessDeniedException", "not allowed", expected_params=QUOTA)
    result = preflight_info.check_fargate_vcpu_quota(quotas, None)
    assert (result["status"], result["value"], result["source"]) == ("error", None, None)
    assert "not allowed" in result["msg"]


@pytest.mark.parametrize(
    ("status", "check_status", "usable"),
    [("opt-in-not-required", "ok", True), ("opted-in", "ok", True), ("not-opted-in", "failed", False)],
)
def test_opt_in(status, check_status, usable):
    ec2, stubber = stubbed("ec2")
    stubber.add_response(
        "describe_regions",
        {"Regions": [{"RegionName": "ap-east-1", "OptInStatus": status}]},
        {"AllRegions": True, "RegionNames": ["ap-east-1"]},
    )
    result = preflight_info.check_opt_in(ec2, "ap-east-1")
    assert (result["status"], result["opt_in_status"], result["usable"]) == (check_status, status, usable)


def test_timestream_closed_to_this_account_recommends_s3():
    timestream, stubber = stubbed("timestream-write")
    stubber.add_client_error("list_databases", "AccessDeniedException", "Only existing customers", expected_params={"MaxResults": 1})
    result = preflight_info.check_timestream(timestream)
    assert (result["status"], result["available"]) == ("failed", False)
    assert "2025-06-20" in result["msg"] and "constellation_results_store: s3" in result["msg"]


def test_timestream_other_errors_leave_availability_unknown():
    timestream, stubber = stubbed("timestream-write")
    stubber.add_client_error("list_databases", "ValidationException", "odd", expected_params={"MaxResults": 1})
    result = preflight_info.check_timestream(timestream)
    assert (result["status"], result["available"]) == ("error", None)
