# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Which AWS regions constellation.loadtest can use, decided in one place.

Region and endpoint facts come from botocore's own endpoint data (the same data boto3 uses to
build endpoint URLs), so the accepted regions follow the installed botocore, not a list we
would have to keep up to date by hand.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable

try:
    import botocore
    import botocore.loaders
except ImportError:
    HAS_BOTOCORE = False
else:
    HAS_BOTOCORE = True

SUPPORTED_PARTITION = "aws"

# Services the home role deploys (results and script bucket, orchestrator state, orchestrator
# Lambda and its role, logs) and the services every remote region needs (Fargate tasks, their
# logs, their network).
HOME_REGION_SERVICES = ("s3", "dynamodb", "lambda", "iam", "logs")
REMOTE_REGION_SERVICES = ("ecs", "logs", "ec2")

# The regions the seed's development notes list for Timestream for LiveAnalytics
# (/work/shared/seed, "Double check that the home region is a region that has available
# timestream database AWS service"). botocore's endpoint data for timestream-write differs
# (it lists ap-south-1 and not ap-southeast-3); preflight_info's Timestream check is what
# settles whether an account can use the service in a region.
TIMESTREAM_LIVEANALYTICS_REGIONS = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "ap-southeast-3",
    "ap-southeast-2",
    "ap-northeast-1",
    "eu-central-1",
    "eu-west-1",
)


class UnsupportedRegion(ValueError):
    """A region name this collection cannot deploy to; the message says why."""


@functools.lru_cache(maxsize=1)
def _endpoint_partitions() -> tuple[dict, ...]:
    return tuple(botocore.loaders.Loader().load_data("endpoints")["partitions"])


def _partition(name: str) -> dict:
    return next(partition for partition in _endpoint_partitions() if partition["partition"] == name)


def aws_regions() -> list[str]:
    """Every region of the standard aws partition that the installed botocore knows, sorted."""
    return sorted(_partition(SUPPORTED_PARTITION)["regions"])


def _partition_of(region: str) -> str | None:
    for partition in _endpoint_partitions():
        if region in partition["regions"]:
            return partition["partition"]
    return None


def _service_available(service: dict, region: str) -> bool:
    # Global services (IAM) have one partition-wide endpoint and serve every region.
    if service.get("isRegionalized") is False:
        return True
    return region in service.get("endpoints", {})


def _unknown_region_reason(region: str) -> str:
    reason = f"is not a region botocore {botocore.__version__} knows in the {SUPPORTED_PARTITION} partition"
    typed = region.lower()
    # Among equally close names prefer one with the same letters: swapped letters are the usual typo.
    suggestions = sorted(difflib.get_close_matches(typed, aws_regions(), n=5), key=lambda name: sorted(name) != sorted(typed))
    if suggestions:
        return f"{reason}; did you mean {suggestions[0]!r}?"
    return f"{reason}; the regions are: {', '.join(aws_regions())}"


def validate_region(region: str, services: Iterable[str]) -> None:
    """Raise UnsupportedRegion unless every one of services has an endpoint in region.

    The message completes a sentence that starts with the region, for example
    "HOME_REGION 'cn-north-1' " + "is in the aws-cn partition; ...".
    """
    partition = _partition_of(region)
    if partition is None:
        raise UnsupportedRegion(_unknown_region_reason(region))
    if partition != SUPPORTED_PARTITION:
        raise UnsupportedRegion(
            f"is in the {partition} partition; only the standard {SUPPORTED_PARTITION} partition is supported"
        )
    catalogue = _partition(SUPPORTED_PARTITION)["services"]
    missing = [name for name in services if not _service_available(catalogue.get(name, {}), region)]
    if missing:
        raise UnsupportedRegion(
            f"has no endpoint for {', '.join(missing)} in botocore {botocore.__version__}'s data; "
            "choose a region where these services are available"
        )
