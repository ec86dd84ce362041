"""Print, as JSON, how many of the target's resources a region holds: VPCs, clusters, task definition revisions, log groups.

    python inventory.py ENDPOINT_URL REGION PREFIX
"""

from __future__ import annotations

import json
import sys

import boto3


def main() -> None:
    endpoint, region, prefix = sys.argv[1:4]

    def client(service):
        return boto3.client(service, region_name=region, endpoint_url=endpoint)

    vpcs = client("ec2").describe_vpcs(Filters=[{"Name": "tag:Name", "Values": [prefix]}])["Vpcs"]
    clusters = [c for c in client("ecs").describe_clusters(clusters=[prefix])["clusters"] if c["status"] == "ACTIVE"]
    revisions = [
        arn
        for status in ("ACTIVE", "INACTIVE")
        for arn in client("ecs").list_task_definitions(familyPrefix=f"{prefix}-load", status=status)["taskDefinitionArns"]
    ]
    groups = [g for g in client("logs").describe_log_groups(logGroupNamePrefix=f"/ecs/{prefix}")["logGroups"] if g["logGroupName"] == f"/ecs/{prefix}"]
    print(json.dumps({"vpcs": len(vpcs), "clusters": len(clusters), "families": len(revisions), "log_groups": len(groups)}))


if __name__ == "__main__":
    main()
