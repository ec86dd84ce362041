"""Unit tests for plugins/module_utils/aws/fargate_task_definition.py: validation, comparison, the calls made."""

from __future__ import annotations

import copy

import pytest
from botocore.exceptions import ClientError


from ansible_collections.constellation.loadtest.plugins.module_utils.aws import fargate_task_definition as ftd

ARN = "arn:aws:ecs:eu-central-1:123456789012:task-definition/load"
EXECUTION_ROLE = "arn:aws:iam::123456789012:role/load-execution"


def containers() -> list[dict]:
    """Two containers as roles/remote/templates/containers.yml.j2 renders them."""
    log = {"logDriver": "awslogs", "options": {"awslogs-group": "/load", "awslogs-region": "eu-central-1"}}
    return [
        {
            "name": "load-generator",
            "image": "example/load-generator:1",
            "essential": True,
            "cpu": 768,
            "memoryReservation": 1536,
            "environment": [{"name": "A", "value": "1"}, {"name": "B", "value": "two"}],
            "logConfiguration": dict(log, options=dict(log["options"], **{"awslogs-stream-prefix": "load-generator"})),
        },
        {
            "name": "aggregator",
            "image": "example/aggregator:1",
            "essential": False,
            "cpu": 256,
            "memoryReservation": 512,
            "environment": [{"name": "C", "value": "3"}],
            "logConfiguration": dict(log, options=dict(log["options"], **{"awslogs-stream-prefix": "aggregator"})),
        },
    ]


def request(**overrides) -> dict:
    params = {
        "family": "load",
        "cpu": "1024",
        "memory": "2048",
        "containers": containers(),
        "execution_role_arn": EXECUTION_ROLE,
    }
    params.update(overrides)
    return ftd.registration(**params)


def described(asked: dict | None = None, revision: int = 1) -> dict:
    """What DescribeTaskDefinition returns for ``asked``: the ECS defaults added to every container."""
    asked = copy.deepcopy(asked or request())
    ecs_defaults = {"portMappings": [], "mountPoints": [], "volumesFrom": [], "systemControls": []}
    definitions = []
    for container in asked.pop("containerDefinitions"):
        definition = dict(ecs_defaults, **container)
        # ECS gives the environment back in its own order and adds secretOptions to the log configuration.
        definition["environment"] = list(reversed(container.get("environment", [])))
        if "logConfiguration" in container:
            definition["logConfiguration"] = dict(container["logConfiguration"], secretOptions=[])
        definitions.append(definition)
    return dict(
        asked,
        containerDefinitions=definitions,
        taskDefinitionArn=f"{ARN}:{revision}",
        revision=revision,
        status="ACTIVE",
        compatibilities=["EC2", "FARGATE"],
        volumes=[],
        placementConstraints=[],
        registeredBy="arn:aws:iam::123456789012:root",
        tags={},
    )


# Validation


def test_the_request_is_a_fargate_task_with_numbers_as_ecs_takes_them():
    mixed = containers()
    mixed[0].update(
        cpu="768", memoryReservation="1536", environment=[{"name": "N", "value": 10}, {"name": "F", "value": True}]
    )
    asked = request(cpu=1024, memory="2048", containers=mixed, cpu_architecture="ARM64", task_role_arn="")
    assert asked["cpu"] == "1024" and asked["memory"] == "2048"
    assert asked["networkMode"] == "awsvpc" and asked["requiresCompatibilities"] == ["FARGATE"]
    assert asked["runtimePlatform"] == {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"}
    assert asked["executionRoleArn"] == EXECUTION_ROLE and "taskRoleArn" not in asked
    first = asked["containerDefinitions"][0]
    assert first["cpu"] == 768 and first["memoryReservation"] == 1536
    assert first["environment"] == [{"name": "N", "value": "10"}, {"name": "F", "value": "true"}]


def test_the_module_options_ask_for_the_same_registration_and_other_options_are_ignored():
    options = {
        "family": "load",
        "cpu": 1024,
        "memory": "2048",
        "containers": containers(),
        "execution_role_arn": EXECUTION_ROLE,
        "task_role_arn": None,
        "cpu_architecture": "ARM64",
        "log_group": {"name": "/ecs/load", "retention_days": 14},
        "state": "present",
    }
    assert ftd.requested(options) == request(cpu_architecture="ARM64")
    with pytest.raises(ftd.TaskDefinitionError, match="^memory 'lots' is not"):
        ftd.requested(dict(options, memory="lots"))


def test_validation_leaves_the_given_containers_unchanged():
    given = containers()
    given[0]["cpu"] = "768"
    request(containers=given)
    assert given[0]["cpu"] == "768"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"family": "load test"}, "family 'load test' is not a task definition family"),
        ({"cpu": "1 vCPU"}, "cpu '1 vCPU' is not a number of CPU units"),
        ({"cpu": "0"}, "cpu '0' is not a number of CPU units"),
        ({"memory": "2 GB"}, "memory '2 GB' is not a number of MiB"),
        ({"containers": []}, "containers is empty"),
        ({"containers": [{"name": "a", "image": "i"}, {"name": "b"}]}, r"^containers\[1\] has no image$"),
        ({"containers": [{"image": "i"}]}, r"^containers\[0\] has no name$"),
        ({"containers": [{"name": "", "image": "i"}]}, r"^containers\[0\] has no name$"),
        (
            {"containers": [{"name": "a", "image": "i"}, {"name": "b", "image": "i"}, {"name": "a", "image": "j"}]},
            r"containers\[2\] has the name 'a' of containers\[0\]: container names must be unique",
        ),
        (
            {"containers": [{"name": "a", "image": "i", "cpu": "half"}]},
            r"containers\[0\]\.cpu 'half' is not a whole number",
        ),
        (
            {"containers": [{"name": "a", "image": "i", "memoryReservation": True}]},
            r"memoryReservation True is not a whole",
        ),
        (
            {"containers": [{"name": "a", "image": "i", "environment": {"A": "1"}}]},
            r"containers\[0\]\.environment is not a list",
        ),
        (
            {"containers": [{"name": "a", "image": "i", "environment": [{"name": "A"}, {"value": "1"}]}]},
            r"containers\[0\]\.environment\[1\] has no name",
        ),
    ],
)
def test_invalid_input_is_refused_naming_the_field_and_value(overrides, message):
    with pytest.raises(ftd.TaskDefinitionError, match=message):
        request(**overrides)


# Comparison


def test_a_revision_ecs_described_with_its_defaults_matches_what_registered_it():
    assert ftd.matches(request(), described())


def test_environment_order_and_numbers_as_strings_do_not_matter():
    reordered = containers()
    reordered[0]["environment"].reverse()
    reordered[0]["cpu"] = "768"
    assert ftd.matches(request(cpu=1024, memory=2048, containers=reordered), described())


@pytest.mark.parametrize(
    "overrides",
    [
        {"memory": "4096"},
        {"cpu": "2048"},
        {"cpu_architecture": "ARM64"},
        {"execution_role_arn": "arn:aws:iam::123456789012:role/other"},
        {"execution_role_arn": None},
        {"task_role_arn": "arn:aws:iam::123456789012:role/task"},
    ],
)
def test_a_different_task_size_role_or_platform_does_not_match(overrides):
    assert not ftd.matches(request(**overrides), described())


def changed_containers(change) -> list[dict]:
    result = containers()
    change(result)
    return result


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c: c[0].update(image="example/load-generator:2"), id="image"),
        pytest.param(lambda c: c[0].update(memoryReservation=1024), id="memoryReservation"),
        pytest.param(lambda c: c[1].update(essential=True), id="essential"),
        pytest.param(lambda c: c[0]["environment"][1].update(value="three"), id="environment value"),
        pytest.param(lambda c: c[0]["environment"].pop(), id="environment variable removed"),
        pytest.param(
            lambda c: c[0]["environment"].append({"name": "D", "value": "4"}), id="environment variable added"
        ),
        pytest.param(
            lambda c: c[0]["logConfiguration"]["options"].update({"awslogs-group": "/other"}), id="log option"
        ),
        pytest.param(lambda c: c[0].update(portMappings=[{"containerPort": 80}]), id="port mapping added"),
        pytest.param(lambda c: c.reverse(), id="container order"),
        pytest.param(lambda c: c.pop(), id="container removed"),
        pytest.param(lambda c: c[1].update(name="collector"), id="container renamed"),
    ],
)
def test_a_different_container_does_not_match(change):
    assert not ftd.matches(request(containers=changed_containers(change)), described())


def test_keys_not_given_are_not_compared_but_keys_given_are():
    lean = [{"name": container["name"], "image": container["image"]} for container in containers()]
    assert ftd.matches(request(containers=lean), described())
    explicit_default = changed_containers(lambda c: c[0].update(essential=True, portMappings=[], cpu=768))
    assert ftd.matches(request(containers=explicit_default), described())


@pytest.mark.parametrize(
    ("asked", "ecs", "same"),
    [
        (256, "256", True),
        ("256", 256, True),
        (True, True, True),
        (True, "true", False),
        (False, 0, False),
        ([], None, True),
        ({}, None, True),
        ("x", None, False),
        ({"a": 1}, {"a": 1, "b": 2}, True),
        ({"a": 1, "b": 2}, {"a": 1}, False),
        ([{"containerPort": 80}], [{"containerPort": 80, "protocol": "tcp"}], True),
        ([{"containerPort": 80}], [{"containerPort": 80}, {"containerPort": 81}], False),
        ("x", ["x"], False),
    ],
)
def test_values_compare_by_text_booleans_apart_described_extras_ignored(asked, ecs, same):
    assert ftd.same_value(asked, ecs) is same


@pytest.mark.parametrize(
    ("asked", "ecs", "same"),
    [
        (EXECUTION_ROLE, EXECUTION_ROLE, True),
        ("load-execution", EXECUTION_ROLE, True),
        ("execution", EXECUTION_ROLE, False),
        (None, None, True),
        (None, EXECUTION_ROLE, False),
        (EXECUTION_ROLE, None, False),
    ],
)
def test_a_role_name_matches_the_arn_of_that_role(asked, ecs, same):
    assert ftd.same_role(asked, ecs) is same


# Tags and ARNs


def test_the_family_and_revision_come_from_the_arn():
    assert ftd.family_and_revision(f"{ARN}-sidecar:12") == ("load-sidecar", 12)


def test_the_result_is_snake_case_but_the_containers_keep_their_names_and_keys():
    result = ftd.task_definition_result(dict(described(), tags={"Owner": "qa"}))
    assert result["task_definition_arn"] == f"{ARN}:1" and result["requires_compatibilities"] == ["FARGATE"]
    assert result["runtime_platform"] == {"cpu_architecture": "X86_64", "operating_system_family": "LINUX"}
    assert result["container_definitions"][0]["memoryReservation"] == 1536
    assert (
        result["container_definitions"][0]["logConfiguration"]["options"]["awslogs-stream-prefix"] == "load-generator"
    )
    assert result["tags"] == {"Owner": "qa"}


# The calls made to ECS


class FakeEcs:
    """Records the calls; answers DescribeTaskDefinition and DeleteTaskDefinitions from what it is given."""

    def __init__(
        self, definitions: dict[str, dict] | None = None, delete_error: ClientError | None = None, failures=()
    ):
        self.definitions = definitions or {}
        self.delete_error = delete_error
        self.failures = list(failures)
        self.calls: list[tuple[str, dict]] = []

    def describe_task_definition(self, taskDefinition, include, aws_retry):
        definition = dict(self.definitions[taskDefinition])
        tags = [{"key": key, "value": value} for key, value in definition.pop("tags").items()]
        return {"taskDefinition": definition, "tags": tags}

    def __getattr__(self, operation):
        def call(aws_retry, **params):
            self.calls.append((operation, params))
            if operation == "delete_task_definitions":
                if self.delete_error:
                    raise self.delete_error
                return {"taskDefinitions": [], "failures": self.failures}
            if operation == "register_task_definition":
                return {"taskDefinition": dict(params, taskDefinitionArn=f"{ARN}:9", revision=9, status="ACTIVE")}
            return {}

        return call


def family(client, monkeypatch, revisions: dict[str, list[int]], check_mode: bool = False) -> ftd.TaskDefinitionFamily:
    """The family ``load`` whose revisions list ECS would give, per status; a longer family name among them."""
    listed = {status: [f"{ARN}:{n}" for n in numbers] + [f"{ARN}-other:1"] for status, numbers in revisions.items()}

    def query(client, operation, familyPrefix, status):
        assert (operation, familyPrefix) == ("list_task_definitions", "load")
        return {"taskDefinitionArns": listed.get(status, [])}

    monkeypatch.setattr(ftd, "paginated_query_with_retries", query)
    return ftd.TaskDefinitionFamily(client, "load", check_mode)


def test_revisions_are_the_familys_own_in_revision_order(monkeypatch):
    tasks = family(FakeEcs(), monkeypatch, {"ACTIVE": [10, 9, 2]})
    assert tasks.revisions("ACTIVE") == [f"{ARN}:2", f"{ARN}:9", f"{ARN}:10"]


def test_a_matching_revision_is_kept_retagged_and_the_older_ones_deregistered(monkeypatch):
    current = dict(described(revision=3), tags={"old": "x", "keep": "1"})
    client = FakeEcs({f"{ARN}:3": current})
    tasks = family(client, monkeypatch, {"ACTIVE": [1, 3]})
    result = tasks.ensure_present(request(), {"keep": "1", "new": "2"}, purge_tags=True)
    assert tasks.changed
    assert client.calls == [
        ("untag_resource", {"resourceArn": f"{ARN}:3", "tagKeys": ["old"]}),
        ("tag_resource", {"resourceArn": f"{ARN}:3", "tags": [{"key": "new", "value": "2"}]}),
        ("deregister_task_definition", {"taskDefinition": f"{ARN}:1"}),
    ]
    assert result["task_definition"]["revision"] == 3 and result["task_definition"]["tags"] == {"keep": "1", "new": "2"}
    assert result["diff"]["before"]["active_revisions"] == [1, 3] and result["diff"]["after"]["active_revisions"] == [3]


def test_a_matching_only_revision_with_its_tags_changes_nothing(monkeypatch):
    client = FakeEcs({f"{ARN}:3": dict(described(revision=3), tags={"keep": "1"})})
    tasks = family(client, monkeypatch, {"ACTIVE": [3]})
    result = tasks.ensure_present(request(), {"keep": "1"}, purge_tags=True)
    assert not tasks.changed and client.calls == []
    assert result["diff"]["before"] == result["diff"]["after"]


def test_a_new_revision_takes_the_tags_and_replaces_the_one_before(monkeypatch):
    client = FakeEcs({f"{ARN}:3": dict(described(revision=3), tags={"keep": "1"})})
    tasks = family(client, monkeypatch, {"ACTIVE": [3]})
    result = tasks.ensure_present(request(memory="4096"), None, purge_tags=True)
    (register, registered), deregistered = client.calls
    assert register == "register_task_definition"
    assert registered["memory"] == "4096" and registered["tags"] == [{"key": "keep", "value": "1"}]
    assert deregistered == ("deregister_task_definition", {"taskDefinition": f"{ARN}:3"})
    assert result["task_definition"]["revision"] == 9 and result["task_definition"]["tags"] == {"keep": "1"}


def test_check_mode_registers_nothing_and_returns_the_revision_without_arn(monkeypatch):
    client = FakeEcs({f"{ARN}:3": dict(described(revision=3), tags={})})
    tasks = family(client, monkeypatch, {"ACTIVE": [3]}, check_mode=True)
    result = tasks.ensure_present(request(memory="4096"), {"new": "2"}, purge_tags=True)
    assert tasks.changed and client.calls == []
    assert "task_definition_arn" not in result["task_definition"] and "revision" not in result["task_definition"]
    assert result["task_definition"]["memory"] == "4096" and result["task_definition"]["tags"] == {"new": "2"}
    assert "active_revisions" not in result["diff"]["after"]


def test_absent_deregisters_the_active_revisions_then_deletes_them_all_ten_at_a_time(monkeypatch):
    client = FakeEcs()
    tasks = family(client, monkeypatch, {"ACTIVE": [21, 22], "INACTIVE": list(range(1, 21))})
    tasks.ensure_absent()
    assert tasks.changed
    operations = [call[0] for call in client.calls]
    assert operations == ["deregister_task_definition"] * 2 + ["delete_task_definitions"] * 3
    batches = [
        params["taskDefinitions"] for operation, params in client.calls if operation == "delete_task_definitions"
    ]
    assert [len(batch) for batch in batches] == [10, 10, 2]
    assert sum(batches, []) == [f"{ARN}:{n}" for n in range(1, 23)]


def test_absent_without_revisions_changes_nothing(monkeypatch):
    client = FakeEcs()
    tasks = family(client, monkeypatch, {})
    tasks.ensure_absent()
    assert not tasks.changed and client.calls == []


def test_absent_in_check_mode_reports_the_change_and_makes_none(monkeypatch):
    client = FakeEcs()
    tasks = family(client, monkeypatch, {"INACTIVE": [1]}, check_mode=True)
    result = tasks.ensure_absent()
    assert tasks.changed and client.calls == []
    assert result["diff"]["before"] == {"active_revisions": [], "inactive_revisions": [1]}


def test_revisions_ecs_would_not_delete_fail_with_its_reasons(monkeypatch):
    client = FakeEcs(
        failures=[{"arn": f"{ARN}:1", "reason": "The specified task definition is still in ACTIVE status."}]
    )
    tasks = family(client, monkeypatch, {"INACTIVE": [1]})
    with pytest.raises(
        ftd.TaskDefinitionError, match=r"load:1: The specified task definition is still in ACTIVE status"
    ):
        tasks.ensure_absent()


def client_error(code: str, status: int) -> ClientError:
    response = {"Error": {"Code": code, "Message": "no"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(response, "DeleteTaskDefinitions")


def test_an_endpoint_without_delete_task_definitions_leaves_the_inactive_revisions_with_a_warning(monkeypatch):
    tasks = family(FakeEcs(delete_error=client_error("InternalFailure", 501)), monkeypatch, {"INACTIVE": [1, 2]})
    tasks.ensure_absent()
    assert not tasks.changed
    assert tasks.warnings == [
        "the ECS endpoint does not support DeleteTaskDefinitions: the 2 INACTIVE revisions of load are left as they are"
    ]


def test_other_delete_errors_are_raised(monkeypatch):
    tasks = family(FakeEcs(delete_error=client_error("AccessDeniedException", 400)), monkeypatch, {"INACTIVE": [1]})
    with pytest.raises(ClientError, match="AccessDeniedException"):
        tasks.ensure_absent()
