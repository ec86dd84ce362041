# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The dedicated network of one region's tasks, read once, compared, then changed where it differs.

The network is a VPC with public subnets in distinct availability zones, an internet gateway, a
route table with a default route to it, and a security group without inbound rules: nothing that
costs money while idle. The VPC is found by its ``Name`` tag, the route table by its ``Name`` tag
and the security group by its name inside the VPC, so a second run finds what the first created.
One EC2 client does all of it, in one module run instead of one per piece.

The client passed in is an amazon.aws client wrapped with ``AWSRetry.jittered_backoff`` (calls
carry ``aws_retry=True``). Deletions also wait out ``DependencyViolation``: Fargate releases the
network interfaces of stopped tasks, which hold on to the subnets, the security group and public
addresses (which keep the internet gateway attached), minutes after the tasks stopped.
"""

from __future__ import annotations

from typing import Any

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.botocore import paginated_query_with_retries
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_specifications
from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags
from ansible_collections.amazon.aws.plugins.module_utils.waiters import get_waiter

from .changes import Changes

ANYWHERE = "0.0.0.0/0"
# The one rule of the security group: all outbound traffic (EC2 gives a new group this rule).
ALL_OUTBOUND = {"IpProtocol": "-1", "IpRanges": [{"CidrIp": ANYWHERE}]}
_RULE_TARGETS = (("IpRanges", "CidrIp"), ("Ipv6Ranges", "CidrIpv6"), ("PrefixListIds", "PrefixListId"), ("UserIdGroupPairs", "GroupId"))
_ROUTE_DESTINATIONS = ("DestinationCidrBlock", "DestinationIpv6CidrBlock", "DestinationPrefixListId")
# About five minutes of DependencyViolation before a deletion fails (5 s, 7.5 s, ... then 30 s).
_dependency_retry = AWSRetry.exponential_backoff(
    retries=13, delay=5, backoff=1.5, max_delay=30, catch_extra_error_codes=["DependencyViolation"]
)
# A new VPC or subnet is usually ready at the waiter's first look, and nearly always by the second.
_WAITER_CONFIG = {"Delay": 2, "MaxAttempts": 60}


def network_options() -> dict[str, Any]:
    """The argument spec of a network (region_network's options, fargate_region's ``network``)."""
    return dict(
        name=dict(type="str", required=True),
        cidr_block=dict(type="str"),
        subnet_cidrs=dict(type="list", elements="str"),
        security_group_name=dict(type="str"),
        security_group_description=dict(type="str"),
    )


class RegionNetworkError(Exception):
    """A failure the user can act on; the message says what and where."""


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return boto3_tag_list_to_ansible_dict(resource.get("Tags", []))


def find_vpcs(client, name: str, cidr_block: str | None = None, tags: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The VPCs tagged ``Name`` = ``name``, and with primary CIDR ``cidr_block`` and ``tags`` when given."""
    filters = [{"Name": "tag:Name", "Values": [name]}]
    if cidr_block:
        filters.append({"Name": "cidr-block", "Values": [cidr_block]})
    filters.extend({"Name": f"tag:{key}", "Values": [value]} for key, value in (tags or {}).items() if key != "Name")
    return _describe(client, "describe_vpcs", "Vpcs", filters)


def _describe(client, operation: str, key: str, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return paginated_query_with_retries(client, operation, Filters=filters)[key]


def _in_vpc(vpc_id: str, **more: str) -> list[dict[str, Any]]:
    return [{"Name": "vpc-id", "Values": [vpc_id]}] + [{"Name": key, "Values": [value]} for key, value in more.items()]


def _attached_to(vpc_id: str) -> list[dict[str, Any]]:
    return [{"Name": "attachment.vpc-id", "Values": [vpc_id]}]


def _wait(client, waiter: str, **params: Any) -> None:
    get_waiter(client, waiter).wait(WaiterConfig=_WAITER_CONFIG, **params)


class RegionNetwork(Changes):
    """Brings the network named ``name`` to the requested state; ``changed`` tells whether it had to."""

    def __init__(self, client, name: str, tags: dict[str, str] | None, purge_tags: bool, check_mode: bool) -> None:
        self.client = client
        self.name = name
        self.tags = tags
        # Without tags asked for, only the Name tags are managed.
        self.purge_tags = purge_tags and tags is not None
        super().__init__(check_mode)

    def tags_named(self, name: str) -> dict[str, str]:
        return dict(self.tags or {}, Name=name)

    def ensure_tags(self, resource_id: str, resource: dict[str, Any], name: str) -> None:
        to_set, to_unset = compare_aws_tags(tags_of(resource), self.tags_named(name), self.purge_tags)
        if (to_set or to_unset) and self.act():
            if to_unset:
                self.client.delete_tags(Resources=[resource_id], Tags=[{"Key": key} for key in to_unset], aws_retry=True)
            if to_set:
                self.client.create_tags(Resources=[resource_id], Tags=ansible_dict_to_boto3_tag_list(to_set), aws_retry=True)

    # Present

    def ensure_present(self, cidr_block: str, subnet_cidrs: list[str], group_name: str, group_description: str) -> dict[str, Any]:
        """Create or update the network; return it in snake_case (``vpc``, ``subnets``, ...) and a ``diff``.

        In check mode the network is returned as it is, or as it would be created.
        """
        vpcs = find_vpcs(self.client, self.name, cidr_block)
        if len(vpcs) > 1:
            raise RegionNetworkError(
                f"{len(vpcs)} VPCs in {self.client.meta.region_name} are named {self.name} with CIDR {cidr_block} "
                f"({', '.join(vpc['VpcId'] for vpc in vpcs)}): delete the extra ones, or use another name"
            )
        before = self.read(vpcs[0], subnet_cidrs, group_name) if vpcs else None
        current = before or {"subnets": [], "internet_gateway": {}, "route_table": {}, "security_group": {}}
        # Before any change: a region with too few zones fails with nothing created.
        zones = self.free_zones(current["subnets"], len(subnet_cidrs)) if len(current["subnets"]) < len(subnet_cidrs) else []
        vpc = self.ensure_vpc(vpcs[0] if vpcs else None, cidr_block)
        if "VpcId" not in vpc:
            after = self.planned(vpc, subnet_cidrs, group_name)
        else:
            subnets = self.ensure_subnets(vpc["VpcId"], current["subnets"], subnet_cidrs, zones)
            gateway = self.ensure_internet_gateway(vpc["VpcId"], current["internet_gateway"])
            subnet_ids = [subnet["SubnetId"] for subnet in subnets if "SubnetId" in subnet]
            self.ensure_route_table(vpc["VpcId"], current["route_table"], subnet_ids, gateway.get("InternetGatewayId"))
            self.ensure_security_group(vpc["VpcId"], current["security_group"], group_name, group_description)
            after = self.read(vpc, subnet_cidrs, group_name, again=True) if self.changed and not self.check_mode else dict(current, vpc=vpc)
        result = snake_network(after)
        result["diff"] = {"before": summary(before), "after": summary(after)}
        return result

    def read(self, vpc: dict[str, Any], subnet_cidrs: list[str], group_name: str, again: bool = False) -> dict[str, Any]:
        """The network in ``vpc`` as it is, in the shapes EC2 describes it (``again``: the VPC too).

        The subnets are those of ``subnet_cidrs`` that exist, in that order.
        """
        vpc_id = vpc["VpcId"]
        tables = _describe(self.client, "describe_route_tables", "RouteTables", _in_vpc(vpc_id, **{"tag:Name": f"{self.name}-public"}))
        if len(tables) > 1:
            raise RegionNetworkError(f"{len(tables)} route tables in {vpc_id} are named {self.name}-public: delete the extra ones")
        gateways = _describe(self.client, "describe_internet_gateways", "InternetGateways", _attached_to(vpc_id))
        groups = _describe(self.client, "describe_security_groups", "SecurityGroups", _in_vpc(vpc_id, **{"group-name": group_name}))
        subnets = {subnet["CidrBlock"]: subnet for subnet in _describe(self.client, "describe_subnets", "Subnets", _in_vpc(vpc_id))}
        return {
            "vpc": _describe(self.client, "describe_vpcs", "Vpcs", [{"Name": "vpc-id", "Values": [vpc_id]}])[0] if again else vpc,
            "subnets": [subnets[cidr] for cidr in subnet_cidrs if cidr in subnets],
            "internet_gateway": gateways[0] if gateways else {},
            "route_table": tables[0] if tables else {},
            "security_group": groups[0] if groups else {},
        }

    def planned(self, vpc: dict[str, Any], subnet_cidrs: list[str], group_name: str) -> dict[str, Any]:
        """What check mode would create in a new VPC, without the IDs AWS has not given yet."""
        return {
            "vpc": vpc,
            "subnets": [{"CidrBlock": cidr, "MapPublicIpOnLaunch": True} for cidr in subnet_cidrs],
            "internet_gateway": {"Tags": ansible_dict_to_boto3_tag_list(self.tags_named(self.name))},
            "route_table": {"Tags": ansible_dict_to_boto3_tag_list(self.tags_named(f"{self.name}-public"))},
            "security_group": {
                "GroupName": group_name,
                "IpPermissions": [],
                "IpPermissionsEgress": [ALL_OUTBOUND],
                "Tags": ansible_dict_to_boto3_tag_list(self.tags_named(group_name)),
            },
        }

    def ensure_vpc(self, vpc: dict[str, Any] | None, cidr_block: str) -> dict[str, Any]:
        if vpc is None:
            if not self.act():
                return {"CidrBlock": cidr_block, "Tags": ansible_dict_to_boto3_tag_list(self.tags_named(self.name))}
            vpc = self.client.create_vpc(
                CidrBlock=cidr_block, TagSpecifications=boto3_tag_specifications(self.tags_named(self.name), ["vpc"]), aws_retry=True
            )["Vpc"]
            _wait(self.client, "vpc_available", VpcIds=[vpc["VpcId"]])
        else:
            self.ensure_tags(vpc["VpcId"], vpc, self.name)
        # The tasks find ECR, S3 and the other services through the VPC's DNS.
        for attribute, key in (("enableDnsSupport", "EnableDnsSupport"), ("enableDnsHostnames", "EnableDnsHostnames")):
            if not self.client.describe_vpc_attribute(VpcId=vpc["VpcId"], Attribute=attribute, aws_retry=True)[key]["Value"] and self.act():
                self.client.modify_vpc_attribute(VpcId=vpc["VpcId"], **{key: {"Value": True}}, aws_retry=True)
        return vpc

    def ensure_subnets(self, vpc_id: str, current: list[dict[str, Any]], cidrs: list[str], zones: list[str]) -> list[dict[str, Any]]:
        """One public subnet per CIDR, the missing ones created in ``zones``, in order."""
        existing = {subnet["CidrBlock"]: subnet for subnet in current}
        zones = list(zones)
        subnets = []
        for cidr in cidrs:
            if cidr in existing:
                subnet = existing[cidr]
                self.ensure_tags(subnet["SubnetId"], subnet, f"{self.name}-{subnet['AvailabilityZone']}")
            else:
                subnet = self.create_subnet(vpc_id, cidr, zones.pop(0))
            if not subnet["MapPublicIpOnLaunch"] and self.act():
                self.client.modify_subnet_attribute(SubnetId=subnet["SubnetId"], MapPublicIpOnLaunch={"Value": True}, aws_retry=True)
            subnets.append(subnet)
        return subnets

    def free_zones(self, subnets: list[dict[str, Any]], wanted: int) -> list[str]:
        """The available zones none of ``subnets`` uses, in name order; fails if the region has too few."""
        zones = self.client.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}], aws_retry=True)
        # Local and Wavelength zones (when opted in) are no place for the region's tasks.
        names = sorted(z["ZoneName"] for z in zones["AvailabilityZones"] if z.get("ZoneType", "availability-zone") == "availability-zone")
        if len(names) < wanted:
            raise RegionNetworkError(
                f"{self.client.meta.region_name} has {len(names)} available availability zones, fewer than the "
                f"{wanted} subnets asked for (one per zone): ask for {len(names)} subnets or fewer"
            )
        return [name for name in names if name not in {subnet["AvailabilityZone"] for subnet in subnets}]

    def create_subnet(self, vpc_id: str, cidr: str, zone: str) -> dict[str, Any]:
        tags = self.tags_named(f"{self.name}-{zone}")
        if not self.act():
            return {"CidrBlock": cidr, "AvailabilityZone": zone, "MapPublicIpOnLaunch": True, "Tags": ansible_dict_to_boto3_tag_list(tags)}
        subnet = self.client.create_subnet(
            VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone, TagSpecifications=boto3_tag_specifications(tags, ["subnet"]), aws_retry=True
        )["Subnet"]
        _wait(self.client, "subnet_available", SubnetIds=[subnet["SubnetId"]])
        return subnet

    def ensure_internet_gateway(self, vpc_id: str, gateway: dict[str, Any]) -> dict[str, Any]:
        if gateway:
            self.ensure_tags(gateway["InternetGatewayId"], gateway, self.name)
            return gateway
        if not self.act():
            return {}
        gateway = self.client.create_internet_gateway(
            TagSpecifications=boto3_tag_specifications(self.tags_named(self.name), ["internet-gateway"]), aws_retry=True
        )["InternetGateway"]
        _wait(self.client, "internet_gateway_exists", InternetGatewayIds=[gateway["InternetGatewayId"]])
        self.client.attach_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], VpcId=vpc_id, aws_retry=True)
        return gateway

    def ensure_route_table(self, vpc_id: str, table: dict[str, Any], subnet_ids: list[str], gateway_id: str | None) -> None:
        """The subnets' route table: a default route to the gateway, and these subnets, no other."""
        name = f"{self.name}-public"
        if table:
            self.ensure_tags(table["RouteTableId"], table, name)
        elif self.act():
            table = self.client.create_route_table(
                VpcId=vpc_id, TagSpecifications=boto3_tag_specifications(self.tags_named(name), ["route-table"]), aws_retry=True
            )["RouteTable"]
            _wait(self.client, "route_table_exists", RouteTableIds=[table["RouteTableId"]])
        else:
            return
        if gateway_id:
            self.ensure_default_route(table, gateway_id)
        self.ensure_associations(table, subnet_ids)

    def ensure_default_route(self, table: dict[str, Any], gateway_id: str) -> None:
        """The default route to the gateway; no route besides it but the VPC's local ones."""
        table_id, default = table["RouteTableId"], None
        for route in table.get("Routes", []):
            if route.get("GatewayId") == "local":
                continue
            destination = {key: route[key] for key in _ROUTE_DESTINATIONS if key in route}
            if destination == {"DestinationCidrBlock": ANYWHERE}:
                default = route
            elif self.act():
                self.client.delete_route(RouteTableId=table_id, **destination, aws_retry=True)
        if default is None:
            if self.act():
                self.client.create_route(RouteTableId=table_id, DestinationCidrBlock=ANYWHERE, GatewayId=gateway_id, aws_retry=True)
        elif (default.get("GatewayId") != gateway_id or default.get("State") == "blackhole") and self.act():
            self.client.replace_route(RouteTableId=table_id, DestinationCidrBlock=ANYWHERE, GatewayId=gateway_id, aws_retry=True)

    def ensure_associations(self, table: dict[str, Any], subnet_ids: list[str]) -> None:
        table_id = table["RouteTableId"]
        associated = {a["SubnetId"]: a["RouteTableAssociationId"] for a in table.get("Associations", []) if a.get("SubnetId")}
        for subnet_id, association_id in associated.items():
            if subnet_id not in subnet_ids and self.act():
                self.client.disassociate_route_table(AssociationId=association_id, aws_retry=True)
        missing = [subnet_id for subnet_id in subnet_ids if subnet_id not in associated]
        if not missing:
            return
        # A subnet has one route table at most: take over its association with another one.
        elsewhere = {
            association["SubnetId"]: association["RouteTableAssociationId"]
            for other in _describe(self.client, "describe_route_tables", "RouteTables", [{"Name": "association.subnet-id", "Values": missing}])
            for association in other.get("Associations", [])
            if association.get("SubnetId") in missing
        }
        for subnet_id in missing:
            if not self.act():
                continue
            if subnet_id in elsewhere:
                self.client.replace_route_table_association(AssociationId=elsewhere[subnet_id], RouteTableId=table_id, aws_retry=True)
            else:
                self.client.associate_route_table(RouteTableId=table_id, SubnetId=subnet_id, aws_retry=True)

    def ensure_security_group(self, vpc_id: str, group: dict[str, Any], group_name: str, description: str) -> None:
        """A group without inbound rules, whose one outbound rule allows all traffic.

        EC2 cannot change the description of a group: an existing group keeps its own.
        """
        if group:
            self.ensure_tags(group["GroupId"], group, group_name)
        elif self.act():
            group_id = self.client.create_security_group(
                GroupName=group_name,
                Description=description,
                VpcId=vpc_id,
                TagSpecifications=boto3_tag_specifications(self.tags_named(group_name), ["security-group"]),
                aws_retry=True,
            )["GroupId"]
            _wait(self.client, "security_group_exists", GroupIds=[group_id])
            group = self.client.describe_security_groups(GroupIds=[group_id], aws_retry=True)["SecurityGroups"][0]
        else:
            return
        inbound, outbound = single_rules(group["IpPermissions"]), single_rules(group["IpPermissionsEgress"])
        if inbound and self.act():
            self.client.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=inbound, aws_retry=True)
        extra = [rule for rule in outbound if rule != ALL_OUTBOUND]
        if extra and self.act():
            self.client.revoke_security_group_egress(GroupId=group["GroupId"], IpPermissions=extra, aws_retry=True)
        if ALL_OUTBOUND not in outbound and self.act():
            self.client.authorize_security_group_egress(GroupId=group["GroupId"], IpPermissions=[ALL_OUTBOUND], aws_retry=True)

    # Absent

    def ensure_absent(self, cidr_block: str | None) -> dict[str, Any]:
        """Delete every VPC named ``name`` (with ``cidr_block`` and the tags, when given) and all in it."""
        vpcs = find_vpcs(self.client, self.name, cidr_block, self.tags)
        if vpcs and self.act():
            for vpc in vpcs:
                self.delete_vpc(vpc["VpcId"])
        return {"diff": {"before": {"vpc_ids": [vpc["VpcId"] for vpc in vpcs]}, "after": {"vpc_ids": []}}}

    def delete_vpc(self, vpc_id: str) -> None:
        """Delete in dependency order: security groups, route tables, gateway, subnets, the VPC."""
        client = self.client
        for group in _describe(client, "describe_security_groups", "SecurityGroups", _in_vpc(vpc_id)):
            if group["GroupName"] != "default":
                _dependency_retry(client.delete_security_group)(GroupId=group["GroupId"])
        for table in _describe(client, "describe_route_tables", "RouteTables", _in_vpc(vpc_id)):
            if any(association.get("Main") for association in table.get("Associations", [])):
                continue
            for association in table.get("Associations", []):
                client.disassociate_route_table(AssociationId=association["RouteTableAssociationId"], aws_retry=True)
            client.delete_route_table(RouteTableId=table["RouteTableId"], aws_retry=True)
        for gateway in _describe(client, "describe_internet_gateways", "InternetGateways", _attached_to(vpc_id)):
            _dependency_retry(client.detach_internet_gateway)(InternetGatewayId=gateway["InternetGatewayId"], VpcId=vpc_id)
            client.delete_internet_gateway(InternetGatewayId=gateway["InternetGatewayId"], aws_retry=True)
        for subnet in _describe(client, "describe_subnets", "Subnets", _in_vpc(vpc_id)):
            _dependency_retry(client.delete_subnet)(SubnetId=subnet["SubnetId"])
        _dependency_retry(client.delete_vpc)(VpcId=vpc_id)


def single_rules(permissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Security group permissions split into one permission per target (CIDR, prefix list or group)."""
    rules = []
    for permission in permissions:
        # All traffic (-1) has no ports, though some describe it with FromPort/ToPort -1.
        keys = ("IpProtocol",) if permission["IpProtocol"] == "-1" else ("IpProtocol", "FromPort", "ToPort")
        ports = {key: permission[key] for key in keys if key in permission}
        for targets, key in _RULE_TARGETS:
            rules.extend(dict(ports, **{targets: [{key: target[key]}]}) for target in permission.get(targets) or [])
    return rules


def summary(network: dict[str, Any] | None) -> dict[str, Any]:
    """What a diff shows of the network: its parts by ID and CIDR, the VPC's tags."""
    if not network:
        return {}
    return {
        "vpc": {"vpc_id": network["vpc"].get("VpcId"), "cidr_block": network["vpc"]["CidrBlock"], "tags": tags_of(network["vpc"])},
        "subnets": {subnet["CidrBlock"]: subnet.get("SubnetId") for subnet in network["subnets"]},
        "internet_gateway_id": network["internet_gateway"].get("InternetGatewayId"),
        "route_table_id": network["route_table"].get("RouteTableId"),
        "security_group_id": network["security_group"].get("GroupId"),
    }


def snake_network(network: dict[str, Any]) -> dict[str, Any]:
    """The network in snake_case, the tags of every part as a dict."""

    def snake(resource: dict[str, Any]) -> dict[str, Any]:
        result = camel_dict_to_snake_dict({key: value for key, value in resource.items() if key != "Tags"})
        result["tags"] = tags_of(resource)
        return result

    return {
        "vpc": snake(network["vpc"]),
        "subnets": [snake(subnet) for subnet in network["subnets"]],
        "internet_gateway": snake(network["internet_gateway"]),
        "route_table": snake(network["route_table"]),
        "security_group": snake(network["security_group"]),
    }
