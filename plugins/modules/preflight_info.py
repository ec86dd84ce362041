#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
module: preflight_info
short_description: Check that a region can run a load test
version_added: 0.1.0
description:
  - Read-only checks of one region (O(region)) before a load test deploys anything there.
  - Whether the account has the region enabled (its opt-in status).
  - The account's Fargate On-Demand vCPU quota in the region (Service Quotas code C(L-3032A538)),
    and, with O(required_vcpus), whether the planned tasks fit in it.
  - With O(check_timestream=true), whether the account can use Timestream for LiveAnalytics in the
    region. AWS closed LiveAnalytics to new customers on 2025-06-20; an account that cannot use it
    should choose the C(s3) results store.
  - Each check reports its own status and message, so one failing check never hides the others.
    The module itself fails only on invalid options or missing credentials.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  required_vcpus:
    description:
      - The vCPUs the load test's tasks need in this region together, for example
        RV(constellation.loadtest.plan#module:plan.remote_regions) C(.vcpus) of the region.
      - When given, the quota check fails if the quota is smaller.
    type: float
  check_timestream:
    description:
      - Also check whether Timestream for LiveAnalytics can be used in the region. Use it for the home
        region when the results store is C(timestream).
    type: bool
    default: false
notes:
  - Supports check mode; the module only reads.
  - >-
    IAM actions used: C(ec2:DescribeRegions), C(servicequotas:GetServiceQuota),
    C(servicequotas:GetAWSDefaultServiceQuota), and with O(check_timestream=true)
    C(timestream:DescribeEndpoints) and C(timestream:ListDatabases).
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Check the home region, including Timestream
  constellation.loadtest.preflight_info:
    region: eu-central-1
    check_timestream: true
  register: home_check

- name: Tell the user to switch results store when Timestream cannot be used
  ansible.builtin.fail:
    msg: "{{ home_check.timestream.msg }}"
  when: not home_check.timestream.available

- name: Check every remote region against the planned vCPUs
  constellation.loadtest.preflight_info:
    region: "{{ item.key }}"
    required_vcpus: "{{ item.value.vcpus }}"
  loop: "{{ constellation_plan.remote_regions | dict2items }}"
  register: remote_checks
"""

RETURN = r"""
region:
  description: The region checked.
  returned: always
  type: str
  sample: eu-central-1
passed:
  description: Whether every check that ran has status V(ok).
  returned: always
  type: bool
  sample: true
opt_in:
  description: Whether the account can use the region.
  returned: always
  type: dict
  contains:
    status:
      description:
        - V(ok) when the region is usable, V(failed) when it is not enabled for the account,
          V(error) when the status could not be read.
      type: str
      sample: ok
    msg:
      description: What the check found, in words a user can act on.
      type: str
      sample: "eu-central-1 is enabled for this account (opt-in-not-required)"
    opt_in_status:
      description: The region's opt-in status as EC2 reports it; null when it could not be read.
      type: str
      sample: opt-in-not-required
    usable:
      description: Whether the opt-in status allows deploying to the region; null when unknown.
      type: bool
      sample: true
fargate_vcpu_quota:
  description: The account's Fargate On-Demand vCPU quota in the region.
  returned: always
  type: dict
  contains:
    status:
      description:
        - V(ok) when the quota was read (and covers O(required_vcpus) if given), V(failed) when it is
          smaller than O(required_vcpus), V(error) when it could not be read.
      type: str
      sample: ok
    msg:
      description: What the check found.
      type: str
      sample: "Fargate On-Demand vCPU quota is 6.0 (applied quota)"
    value:
      description: The quota in vCPUs; null when it could not be read.
      type: float
      sample: 6.0
    source:
      description:
        - V(applied) for the account's quota, V(default) for the AWS default when the account has no
          applied value; null when it could not be read.
      type: str
      sample: applied
    required_vcpus:
      description: O(required_vcpus), when given.
      type: float
      sample: 4.0
timestream:
  description: Whether Timestream for LiveAnalytics can be used in the region.
  returned: when O(check_timestream=true)
  type: dict
  contains:
    status:
      description: V(ok), V(failed) when it cannot be used, V(error) when that could not be determined.
      type: str
      sample: failed
    msg:
      description: What the check found; when unavailable, a recommendation to use the C(s3) results store.
      type: str
    available:
      description: Whether the account can use the service in the region; null when unknown.
      type: bool
      sample: false
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
    from botocore.exceptions import EndpointConnectionError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule

FARGATE_VCPU_QUOTA = {"ServiceCode": "fargate", "QuotaCode": "L-3032A538"}
USABLE_OPT_IN_STATUSES = ("opt-in-not-required", "opted-in")
S3_ADVICE = "Set constellation_results_store: s3 (results_store: s3) to keep the results in S3 instead."


def describe_error(error):
    """One short line for a report: the AWS error code and message, not a whole HTTP error page."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        code = details.get("Code") or "Error"
        message = (details.get("Message") or "").strip()
        if not message or message.startswith("<"):
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return f"{code} (HTTP {status} from the endpoint, no message)"
        return f"{code}: {message.splitlines()[0][:200]}"
    return str(error).splitlines()[0][:200]


def check_opt_in(ec2, region):
    """The region's opt-in status, from the account's point of view."""
    try:
        regions = ec2.describe_regions(AllRegions=True, RegionNames=[region], aws_retry=True)["Regions"]
    except (BotoCoreError, ClientError) as error:
        return dict(status="error", msg=f"Could not read the opt-in status of {region}: {describe_error(error)}", opt_in_status=None, usable=None)
    if not regions:
        return dict(status="failed", msg=f"EC2 does not know the region {region}", opt_in_status=None, usable=False)
    opt_in_status = regions[0]["OptInStatus"]
    if opt_in_status in USABLE_OPT_IN_STATUSES:
        return dict(status="ok", msg=f"{region} is enabled for this account ({opt_in_status})", opt_in_status=opt_in_status, usable=True)
    return dict(
        status="failed",
        msg=(
            f"{region} is not enabled for this account (opt-in status {opt_in_status}); enable it under "
            "Account > AWS Regions in the AWS console, or choose another region"
        ),
        opt_in_status=opt_in_status,
        usable=False,
    )


def _read_fargate_vcpu_quota(quotas):
    """(value, source): the applied quota, or the AWS default when the account has none applied."""
    try:
        return quotas.get_service_quota(aws_retry=True, **FARGATE_VCPU_QUOTA)["Quota"]["Value"], "applied"
    except is_boto3_error_code("NoSuchResourceException"):
        return quotas.get_aws_default_service_quota(aws_retry=True, **FARGATE_VCPU_QUOTA)["Quota"]["Value"], "default"


def check_fargate_vcpu_quota(quotas, required_vcpus):
    """The Fargate On-Demand vCPU quota, compared with required_vcpus when that is not None."""
    result = dict(value=None, source=None)
    if required_vcpus is not None:
        result["required_vcpus"] = required_vcpus
    try:
        value, source = _read_fargate_vcpu_quota(quotas)
    except (BotoCoreError, ClientError) as error:
        return dict(result, status="error", msg=f"Could not read the Fargate On-Demand vCPU quota: {describe_error(error)}")
    found = f"Fargate On-Demand vCPU quota is {value} ({source} quota)"
    result.update(value=value, source=source)
    if required_vcpus is not None and value < required_vcpus:
        return dict(
            result,
            status="failed",
            msg=(
                f"{found}, but the test needs {required_vcpus} vCPUs; request an increase of quota "
                f"{FARGATE_VCPU_QUOTA['QuotaCode']} in Service Quotas, or run fewer or smaller tasks"
            ),
        )
    return dict(result, status="ok", msg=found)


def check_timestream(timestream):
    """Whether this account can call Timestream for LiveAnalytics in the client's region."""
    try:
        timestream.list_databases(MaxResults=1, aws_retry=True)
    except is_boto3_error_code("AccessDeniedException") as error:
        return dict(
            status="failed",
            available=False,
            msg=(
                f"Timestream for LiveAnalytics refused access: {describe_error(error)}. AWS closed it to new customers on "
                "2025-06-20, so accounts that did not use it before cannot; if this account did, allow "
                f"timestream:DescribeEndpoints and timestream:ListDatabases. {S3_ADVICE}"
            ),
        )
    except EndpointConnectionError as error:
        return dict(status="failed", available=False, msg=f"Timestream for LiveAnalytics is not reachable here: {describe_error(error)}. {S3_ADVICE}")
    except (BotoCoreError, ClientError) as error:  # pylint: disable=duplicate-except
        return dict(status="error", available=None, msg=f"Could not determine whether Timestream for LiveAnalytics can be used: {describe_error(error)}")
    return dict(status="ok", available=True, msg="Timestream for LiveAnalytics can be used")


def main():
    module = ConstellationAWSModule(
        argument_spec=dict(
            required_vcpus=dict(type="float"),
            check_timestream=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    retry = AWSRetry.jittered_backoff()
    region = module.region
    checks = dict(
        opt_in=check_opt_in(module.client("ec2", retry_decorator=retry), region),
        fargate_vcpu_quota=check_fargate_vcpu_quota(
            module.client("service-quotas", retry_decorator=retry), module.params["required_vcpus"]
        ),
    )
    if module.params["check_timestream"]:
        checks["timestream"] = check_timestream(module.client("timestream-write", retry_decorator=retry))
    passed = all(check["status"] == "ok" for check in checks.values())
    module.exit_json(changed=False, region=region, passed=passed, **checks)


if __name__ == "__main__":
    main()
