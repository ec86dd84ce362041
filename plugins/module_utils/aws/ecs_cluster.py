# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A region's ECS cluster: describe, create, tag, set Container Insights and delete it, as the
``fargate_cluster`` and ``fargate_region`` modules manage it (its tasks are ``ecs``).

The client passed in is an amazon.aws client wrapped with ``AWSRetry.jittered_backoff`` (calls
carry ``aws_retry=True``).
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

# What tasks may run on: on demand, and Fargate Spot (constellation_capacity); associating them costs nothing.
CAPACITY_PROVIDERS = ("FARGATE", "FARGATE_SPOT")


def describe_cluster(client, name: str) -> dict[str, Any] | None:
    """The ACTIVE cluster with its tags as a dict under ``tags``, or None (missing or INACTIVE)."""
    clusters = client.describe_clusters(clusters=[name], include=["TAGS", "SETTINGS"], aws_retry=True)["clusters"]
    active = [cluster for cluster in clusters if cluster["status"] == "ACTIVE"]
    if not active:
        return None
    cluster = dict(active[0])
    cluster["tags"] = {tag["key"]: tag["value"] for tag in cluster.get("tags") or []}
    return cluster


def create_cluster(client, name: str, tags: dict[str, str], container_insights: bool) -> None:
    client.create_cluster(
        clusterName=name,
        tags=[{"key": key, "value": value} for key, value in sorted(tags.items())],
        settings=[{"name": "containerInsights", "value": "enabled" if container_insights else "disabled"}],
        capacityProviders=list(CAPACITY_PROVIDERS),
        aws_retry=True,
    )


def missing_capacity_providers(cluster: dict[str, Any]) -> list[str]:
    return [provider for provider in CAPACITY_PROVIDERS if provider not in (cluster.get("capacityProviders") or [])]


def add_capacity_providers(client, cluster: dict[str, Any]) -> None:
    """Associate Fargate and Fargate Spot with the cluster, keeping what else it has and its default strategy."""
    client.put_cluster_capacity_providers(
        cluster=cluster["clusterName"],
        capacityProviders=list(cluster.get("capacityProviders") or []) + missing_capacity_providers(cluster),
        defaultCapacityProviderStrategy=cluster.get("defaultCapacityProviderStrategy") or [],
        aws_retry=True,
    )


def container_insights_enabled(cluster: dict[str, Any]) -> bool:
    return any(s["name"] == "containerInsights" and s["value"] == "enabled" for s in cluster.get("settings") or [])


def set_container_insights(client, name: str, enabled: bool) -> None:
    client.update_cluster_settings(
        cluster=name, settings=[{"name": "containerInsights", "value": "enabled" if enabled else "disabled"}], aws_retry=True
    )


def tag_resource(client, arn: str, tags: dict[str, str]) -> None:
    client.tag_resource(resourceArn=arn, tags=[{"key": k, "value": v} for k, v in sorted(tags.items())], aws_retry=True)


def untag_resource(client, arn: str, keys: list[str]) -> None:
    client.untag_resource(resourceArn=arn, tagKeys=keys, aws_retry=True)


def delete_cluster(client, name: str) -> None:
    client.delete_cluster(cluster=name, aws_retry=True)


def cluster_options() -> dict[str, Any]:
    """The argument spec of a cluster (fargate_cluster's options, fargate_region's ``cluster``)."""
    return dict(name=dict(type="str", required=True), container_insights=dict(type="bool"))


def ensure_cluster(client, name: str, tags: dict[str, str] | None, purge_tags: bool, insights: bool | None, check_mode: bool) -> dict[str, Any]:
    """Create the cluster, or bring its tags, Container Insights and capacity providers (Fargate and Fargate Spot)
    in line; ``changed``, ``cluster`` (snake_case).

    Tags unset are left as they are; so is Container Insights when ``insights`` is None.
    """
    cluster = describe_cluster(client, name)
    if cluster is None:
        if not check_mode:
            create_cluster(client, name, tags or {}, bool(insights))
        after = describe_cluster(client, name) if not check_mode else {"clusterName": name, "tags": tags or {}}
        diff = {"before": {}, "after": {"cluster_name": name, "tags": tags or {}}}
        return {"changed": True, "cluster": snake_cluster(after), "diff": diff}
    to_add, to_remove = compare_aws_tags(cluster["tags"], tags, purge_tags) if tags is not None else ({}, [])
    insights_differ = insights is not None and insights != container_insights_enabled(cluster)
    providers_missing = missing_capacity_providers(cluster)
    changed = bool(to_add or to_remove or insights_differ or providers_missing)
    if changed and not check_mode:
        if to_remove:
            untag_resource(client, cluster["clusterArn"], to_remove)
        if to_add:
            tag_resource(client, cluster["clusterArn"], to_add)
        if insights_differ:
            set_container_insights(client, name, insights)
        if providers_missing:
            add_capacity_providers(client, cluster)
        cluster = describe_cluster(client, name)
    return {"changed": changed, "cluster": snake_cluster(cluster)}


def remove_cluster(client, name: str, check_mode: bool) -> dict[str, Any]:
    """Delete the cluster if it is there (its tasks stopped first); ``changed`` and a ``diff``."""
    if describe_cluster(client, name) is None:
        return {"changed": False}
    if not check_mode:
        delete_cluster(client, name)
    return {"changed": True, "diff": {"before": {"cluster_name": name}, "after": {}}}


def snake_cluster(cluster: dict[str, Any]) -> dict[str, Any]:
    return camel_dict_to_snake_dict(cluster, ignore_list=["tags"])
