"""Unit tests for fargate_region's own logic and module_utils/parts.py: the two parts, their errors, the result."""

from __future__ import annotations


import pytest
from botocore.exceptions import ClientError


from ansible_collections.constellation.loadtest.plugins.module_utils.aws import parts
from ansible_collections.constellation.loadtest.plugins.module_utils.aws.region_network import RegionNetworkError
from ansible_collections.constellation.loadtest.plugins.modules import fargate_region


class Failed(Exception):
    """What the fake module raises instead of exiting."""


class FakeModule:
    region = "us-east-2"

    def __init__(self):
        self.calls = []

    def fail_json(self, **kwargs):
        self.calls.append(("fail_json", None, kwargs))
        raise Failed()

    def fail_json_aws(self, exception, **kwargs):
        self.calls.append(("fail_json_aws", exception, kwargs))
        raise Failed()


def client_error(code="InvalidParameterException"):
    return ClientError({"Error": {"Code": code, "Message": "refused"}}, "CreateCluster")


def network_params(**network):
    base = {"name": "load", "cidr_block": "10.64.0.0/16", "subnet_cidrs": ["10.64.0.0/20", "10.64.16.0/20"]}
    return {"state": "present", "network": dict(base, **network), "task_definition": None}


# parts.attempt and parts.fail


def test_attempt_tags_aws_errors_and_refusals_with_the_resource_and_lets_bugs_through():
    def refuse():
        raise RegionNetworkError("3 VPCs named load")

    def aws():
        raise client_error()

    with pytest.raises(parts.PartError) as refused:
        parts.attempt("the network load", (RegionNetworkError,), refuse)
    assert refused.value.subject == "the network load"
    assert isinstance(refused.value.error, RegionNetworkError)
    with pytest.raises(parts.PartError) as failed:
        parts.attempt("the ECS cluster load", (), aws)
    assert isinstance(failed.value.error, ClientError)
    with pytest.raises(KeyError):
        parts.attempt("the ECS cluster load", (RegionNetworkError,), {}.__getitem__, "missing")
    assert parts.attempt("x", (), lambda a, b: a + b, 2, 3) == 5


def test_fail_reports_an_aws_error_with_its_details_and_the_other_parts_result():
    module = FakeModule()
    error = client_error()
    with pytest.raises(Failed):
        parts.fail(module, parts.PartError("the ECS cluster load", error), changed=True, diff={"before": {}, "after": {}})
    assert len(module.calls) == 1
    kind, exception, kwargs = module.calls[0]
    assert (kind, exception) == ("fail_json_aws", error)
    assert kwargs == {"msg": "us-east-2: failed to manage the ECS cluster load", "changed": True, "diff": {"before": {}, "after": {}}}


def test_fail_names_the_region_once_and_adds_the_errors_of_the_other_parts():
    module = FakeModule()
    first = parts.PartError("the network load", RegionNetworkError("2 VPCs in us-east-2 are named load"))
    second = parts.PartError("the ECS cluster load", client_error())
    with pytest.raises(Failed):
        parts.fail(module, first, [second])
    kind, exception, kwargs = module.calls[0]
    assert kind == "fail_json" and exception is None
    assert kwargs["msg"] == "2 VPCs in us-east-2 are named load; also us-east-2: failed to manage the ECS cluster load"


# FargateRegion.run: both parts to their end


def region_with(network_part, ecs_part):
    region = object.__new__(fargate_region.FargateRegion)
    region.network_part, region.ecs_part = network_part, ecs_part
    return region


def test_a_failing_part_leaves_the_other_to_finish_and_its_result_is_kept():
    def network_fails():
        raise parts.PartError("the network load", RegionNetworkError("too few zones"))

    cluster = {"changed": True, "cluster": {"cluster_name": "load"}, "diff": {"before": {}, "after": {"cluster_name": "load"}}}
    results, errors = region_with(network_fails, lambda: {"cluster_result": cluster}).run()
    assert [error.subject for error in errors] == ["the network load"]
    assert results == {"cluster_result": cluster}
    returned = fargate_region.outcome(results, present=True)
    assert returned["changed"] is True
    assert returned["cluster"] == {"cluster_name": "load"}
    assert returned["diff"] == {"before": {"cluster": {}}, "after": {"cluster": {"cluster_name": "load"}}}
    assert "network" not in returned


def test_both_parts_failing_give_both_errors_network_first():
    def fails(subject):
        def part():
            raise parts.PartError(subject, client_error())

        return part

    results, errors = region_with(fails("the network load"), fails("the ECS cluster load")).run()
    assert results == {}
    assert [error.subject for error in errors] == ["the network load", "the ECS cluster load"]
    assert fargate_region.outcome(results, present=True) == {"changed": False, "diff": {"before": {}, "after": {}}}


def test_a_bug_in_a_part_is_raised_not_reported_as_an_aws_error():
    def broken():
        raise KeyError("subnets")

    with pytest.raises(KeyError):
        region_with(broken, dict).run()


def test_outcome_of_a_removal_returns_no_resources_only_what_changed():
    results = {
        "network": {},
        "network_diff": {"before": {"vpc_ids": ["vpc-1"]}, "after": {"vpc_ids": []}},
        "network_changed": True,
        "cluster_result": {"changed": False},
    }
    returned = fargate_region.outcome(results, present=False)
    assert returned == {"changed": True, "diff": {"before": {"network": {"vpc_ids": ["vpc-1"]}}, "after": {"network": {"vpc_ids": []}}}}


# What is refused before anything is created


@pytest.mark.parametrize(
    ("network", "message"),
    [
        ({"cidr_block": "10.64.0.0/33"}, "network.cidr_block '10.64.0.0/33' is not an IPv4 CIDR block"),
        ({"cidr_block": "10.64.0.1/16"}, "network.cidr_block '10.64.0.1/16' is not an IPv4 CIDR block"),
        ({"subnet_cidrs": ["10.64.0.0/20", "nonsense"]}, "network.subnet_cidrs[1] 'nonsense' is not an IPv4 CIDR block"),
        ({"subnet_cidrs": ["10.65.0.0/20"]}, "network.subnet_cidrs[0] '10.65.0.0/20' is not inside network.cidr_block '10.64.0.0/16'"),
    ],
)
def test_network_options_ec2_would_refuse_are_refused_first_naming_the_option(network, message):
    with pytest.raises(RegionNetworkError) as refused:
        fargate_region.check_network(network_params(**network))
    assert str(refused.value).startswith(message)


def test_a_valid_network_and_a_removal_are_not_refused():
    fargate_region.check_network(network_params())
    fargate_region.check_network(dict(network_params(cidr_block=None), state="absent"))


def test_state_present_names_every_missing_option():
    params = {
        "state": "present",
        "network": {"name": "load", "cidr_block": None, "subnet_cidrs": [], "security_group_name": "tasks"},
        "task_definition": {"family": "load", "cpu": "256", "memory": None, "containers": None},
    }
    assert fargate_region.missing_options(params) == [
        "network.cidr_block",
        "network.subnet_cidrs",
        "task_definition.memory",
        "task_definition.containers",
    ]
    assert fargate_region.missing_options(dict(params, state="absent")) == []
