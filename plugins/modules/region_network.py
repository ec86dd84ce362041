#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: region_network
version_added: 0.1.0
short_description: A dedicated VPC for Fargate tasks with public IPs, in one module run
description:
  - Creates, updates or deletes a network that costs nothing while idle, for tasks that get a public
    IP (no NAT gateway) and accept no inbound traffic. It is a VPC with DNS support and DNS hostnames,
    one public subnet per CIDR of O(subnet_cidrs), each in its own availability zone, an internet
    gateway, a route table with a default route to the gateway for those subnets, and a security
    group without inbound rules whose one outbound rule allows all traffic.
  - What M(amazon.aws.ec2_vpc_net), M(amazon.aws.ec2_vpc_subnet), M(amazon.aws.ec2_vpc_igw),
    M(amazon.aws.ec2_vpc_route_table) and M(amazon.aws.ec2_security_group) would do in seven module
    runs, this module does in one, reading the network once and changing only what differs. When many
    regions deploy in parallel on one controller, module runs are what they compete for.
  - The VPC is the one tagged C(Name) O(name) with the primary CIDR O(cidr_block). Its subnets are found
    by CIDR (subnets with other CIDRs are left alone), the internet gateway by its attachment, the route
    table by its C(Name) tag O(name)C(-public) and the security group by its name O(security_group_name).
  - A new subnet goes to the first available zone, in name order, that no other subnet of
    O(subnet_cidrs) uses. Local and Wavelength zones are not used.
  - Every part is tagged with O(tags) and a C(Name) tag; the subnets are named O(name)C(-)I(zone).
  - With O(state=absent), every VPC tagged C(Name) O(name) (with the primary CIDR O(cidr_block) and the
    tags O(tags), when given) is deleted with everything in it, in dependency order. Fargate releases the
    network interfaces of stopped tasks minutes after they stop; until then AWS refuses with
    C(DependencyViolation), which is retried for about five minutes per part.
author:
  - Constellation maintainers (@constellation-loadtest)
options:
  name:
    description:
      - The C(Name) tag of the VPC, and the start of the C(Name) tags of its subnets and route table.
    required: true
    type: str
  state:
    description:
      - Whether the network exists.
    choices: [present, absent]
    default: present
    type: str
  cidr_block:
    description:
      - The primary CIDR block of the VPC.
      - Required with O(state=present). With O(state=absent), only the VPC with this CIDR is deleted.
    type: str
  subnet_cidrs:
    description:
      - The CIDR blocks of the public subnets, inside O(cidr_block), one per availability zone.
      - The region must have at least as many available availability zones.
      - Required with O(state=present).
    type: list
    elements: str
  security_group_name:
    description:
      - The name of the security group of the tasks.
      - Required with O(state=present). O(state=absent) deletes every security group of the VPC but its default one.
    type: str
  security_group_description:
    description:
      - The description of a new security group. EC2 cannot change the description of an existing group.
      - "Defaults to C(Outbound only: <name>)."
    type: str
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
notes:
  - In check mode nothing is created or changed; the network is returned as it is, or, when the VPC does
    not exist, as it would be created, without IDs.
  - With O(tags) unset, only the C(Name) tags are managed, whatever O(purge_tags) says.
"""

EXAMPLES = r"""
- name: The network of the load generators in us-east-2
  constellation.loadtest.region_network:
    region: us-east-2
    name: constellation
    cidr_block: 10.64.0.0/16
    subnet_cidrs: [10.64.0.0/20, 10.64.16.0/20]
    security_group_name: constellation-tasks
    tags:
      "constellation:deployment": constellation
  register: network

- name: Start a task in it
  constellation.loadtest.ecs_load_tasks:
    region: us-east-2
    cluster: constellation
    task_definition: constellation-load
    run_id: "20250601T120000"
    subnets: "{{ network.subnets | map(attribute='subnet_id') | list }}"
    security_groups: ["{{ network.security_group.group_id }}"]
    assign_public_ip: true
    tasks:
      - load-generator: {CONSTELLATION_TASK_INDEX: 0, CONSTELLATION_EXECUTION_SEGMENT: "0:1"}

- name: Delete it, once the tasks have stopped
  constellation.loadtest.region_network:
    region: us-east-2
    name: constellation
    tags:
      "constellation:deployment": constellation
    state: absent
"""

RETURN = r"""
vpc:
  description: The VPC, as DescribeVpcs returns it in snake_case, tags as a dict.
  returned: when O(state=present)
  type: dict
  contains:
    vpc_id:
      description: The ID of the VPC (not in check mode before creation).
      type: str
      sample: vpc-0a1b2c3d4e5f67890
    cidr_block:
      description: The primary CIDR block.
      type: str
      sample: 10.64.0.0/16
    state:
      description: C(available).
      type: str
      sample: available
    tags:
      description: The tags of the VPC.
      type: dict
      sample: {"Name": "constellation", "constellation:deployment": "constellation"}
subnets:
  description:
    - The subnets of O(subnet_cidrs), in that order, as DescribeSubnets returns them in snake_case, tags as a dict.
    - In check mode before creation, without IDs or zones.
  returned: when O(state=present)
  type: list
  elements: dict
  contains:
    subnet_id:
      description: The ID of the subnet.
      type: str
      sample: subnet-0a1b2c3d4e5f67890
    cidr_block:
      description: The CIDR block of the subnet.
      type: str
      sample: 10.64.0.0/20
    availability_zone:
      description: The zone of the subnet.
      type: str
      sample: us-east-2a
    map_public_ip_on_launch:
      description: Always true for the subnets of O(subnet_cidrs).
      type: bool
      sample: true
    tags:
      description: The tags of the subnet.
      type: dict
      sample: {"Name": "constellation-us-east-2a", "constellation:deployment": "constellation"}
internet_gateway:
  description: The internet gateway, as DescribeInternetGateways returns it in snake_case, tags as a dict.
  returned: when O(state=present)
  type: dict
  contains:
    internet_gateway_id:
      description: The ID of the gateway.
      type: str
      sample: igw-0a1b2c3d4e5f67890
    attachments:
      description: Its attachment to the VPC.
      type: list
      elements: dict
      sample: [{"state": "available", "vpc_id": "vpc-0a1b2c3d4e5f67890"}]
    tags:
      description: The tags of the gateway.
      type: dict
      sample: {"Name": "constellation", "constellation:deployment": "constellation"}
route_table:
  description: The route table of the subnets, as DescribeRouteTables returns it in snake_case, tags as a dict.
  returned: when O(state=present)
  type: dict
  contains:
    route_table_id:
      description: The ID of the route table.
      type: str
      sample: rtb-0a1b2c3d4e5f67890
    routes:
      description: The local route of the VPC and the default route to the internet gateway.
      type: list
      elements: dict
      sample: [{"destination_cidr_block": "0.0.0.0/0", "gateway_id": "igw-0a1b2c3d4e5f67890", "state": "active"}]
    associations:
      description: The associations with the subnets.
      type: list
      elements: dict
      sample: [{"route_table_association_id": "rtbassoc-0a1b2c3d4e5f67890", "subnet_id": "subnet-0a1b2c3d4e5f67890"}]
    tags:
      description: The tags of the route table.
      type: dict
      sample: {"Name": "constellation-public", "constellation:deployment": "constellation"}
security_group:
  description: The security group, as DescribeSecurityGroups returns it in snake_case, tags as a dict.
  returned: when O(state=present)
  type: dict
  contains:
    group_id:
      description: The ID of the group.
      type: str
      sample: sg-0a1b2c3d4e5f67890
    group_name:
      description: O(security_group_name).
      type: str
      sample: constellation-tasks
    ip_permissions:
      description: The inbound rules, none.
      type: list
      elements: dict
      sample: []
    ip_permissions_egress:
      description: The outbound rules, all traffic to anywhere.
      type: list
      elements: dict
      sample: [{"ip_protocol": "-1", "ip_ranges": [{"cidr_ip": "0.0.0.0/0"}]}]
    tags:
      description: The tags of the group.
      type: dict
      sample: {"Name": "constellation-tasks", "constellation:deployment": "constellation"}
"""

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry

from ansible_collections.constellation.loadtest.plugins.module_utils.aws.modules import ConstellationAWSModule
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.region_network import RegionNetwork
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.region_network import RegionNetworkError
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.region_network import network_options


def main():
    argument_spec = dict(
        network_options(),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        tags=dict(type="dict", aliases=["resource_tags"]),
        purge_tags=dict(type="bool", default=True),
    )
    module = ConstellationAWSModule(
        argument_spec=argument_spec,
        required_if=[("state", "present", ["cidr_block", "subnet_cidrs", "security_group_name"])],
        supports_check_mode=True,
    )
    params = module.params
    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff(retries=10))
    network = RegionNetwork(client, params["name"], params["tags"], params["purge_tags"], module.check_mode)
    try:
        if params["state"] == "present":
            description = params["security_group_description"] or f"Outbound only: {params['name']}"
            result = network.ensure_present(params["cidr_block"], params["subnet_cidrs"], params["security_group_name"], description)
        else:
            result = network.ensure_absent(params["cidr_block"])
    except RegionNetworkError as e:
        module.fail_json(msg=str(e))
    except (ClientError, BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"{module.region}: failed to manage the network {params['name']}")
    module.exit_json(changed=network.changed, **result)


if __name__ == "__main__":
    main()
