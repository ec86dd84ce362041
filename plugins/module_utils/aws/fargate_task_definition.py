# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""A Fargate task definition family kept to one ACTIVE revision, registered only when it differs.

The family's latest ACTIVE revision is compared with what is asked: the task size, roles, network
mode, compatibilities and runtime platform, and every key given for each container (ECS adds
defaults such as ``portMappings: []`` or ``cpu: 0`` to what it describes; keys not given are not
compared, at any depth). A revision that matches is kept and only its tags are brought in line;
otherwise a new revision is registered. Either way every other ACTIVE revision of the family is
deregistered. Deleting the family deregisters its ACTIVE revisions and deletes the INACTIVE ones,
which AWS otherwise keeps, tagged, indefinitely.

The client passed in is an amazon.aws client wrapped with ``AWSRetry.jittered_backoff`` (calls
carry ``aws_retry=True``).
"""

from __future__ import annotations

import json
import re
from typing import Any

try:
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_message
from ansible_collections.amazon.aws.plugins.module_utils.botocore import paginated_query_with_retries
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from .changes import Changes
from .log_group import LogGroup
from .log_group import LogGroupError
from .parts import attempt
from .tagging import plan_tags

FAMILY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
# Container keys the ECS API takes as integers; YAML and templates easily make strings of them.
INTEGER_CONTAINER_KEYS = ("cpu", "memory", "memoryReservation", "startTimeout", "stopTimeout")
# DeleteTaskDefinitions takes at most 10 revisions per call.
_DELETE_BATCH = 10
# How endpoints without DeleteTaskDefinitions (older emulators) refuse it.
_UNSUPPORTED_ERROR_CODES = ("InvalidAction", "NotImplemented", "NotImplementedException", "UnknownOperationException")


def task_definition_options() -> dict[str, Any]:
    """The argument spec of a family (fargate_task_definition's options, fargate_region's ``task_definition``)."""
    return dict(
        family=dict(type="str", required=True),
        cpu=dict(type="str"),
        memory=dict(type="str"),
        execution_role_arn=dict(type="str"),
        task_role_arn=dict(type="str"),
        containers=dict(type="list", elements="dict"),
        cpu_architecture=dict(type="str", default="X86_64", choices=["X86_64", "ARM64"]),
        log_group=dict(type="dict", options=dict(name=dict(type="str", required=True), retention_days=dict(type="int"))),
    )


class TaskDefinitionError(Exception):
    """A failure the user can act on; the message says what and where."""


# Validation: the RegisterTaskDefinition request


def validate_family(family: str) -> str:
    if not FAMILY_PATTERN.match(family):
        raise TaskDefinitionError(
            f"family {family!r} is not a task definition family: up to 255 letters, digits, hyphens and underscores"
        )
    return family


def registration(
    *,
    family: str,
    cpu: str | int,
    memory: str | int,
    containers: list[dict[str, Any]],
    execution_role_arn: str | None = None,
    task_role_arn: str | None = None,
    cpu_architecture: str = "X86_64",
) -> dict[str, Any]:
    """The RegisterTaskDefinition parameters (without tags) of a Fargate task, validated and normalized.

    Raises TaskDefinitionError naming the field and the value at fault.
    """
    request = {
        "family": validate_family(family),
        "cpu": task_size("cpu", cpu),
        "memory": task_size("memory", memory),
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "runtimePlatform": {"cpuArchitecture": cpu_architecture, "operatingSystemFamily": "LINUX"},
        "containerDefinitions": container_definitions(containers),
    }
    if execution_role_arn:
        request["executionRoleArn"] = execution_role_arn
    if task_role_arn:
        request["taskRoleArn"] = task_role_arn
    return request


def requested(options: dict[str, Any]) -> dict[str, Any]:
    """The registration that the values of :func:`task_definition_options` ask for (see :func:`registration`)."""
    keys = ("family", "cpu", "memory", "containers", "execution_role_arn", "task_role_arn", "cpu_architecture")
    return registration(**{key: options[key] for key in keys})


def task_size(field: str, value: str | int) -> str:
    """The task's ``cpu`` (CPU units) or ``memory`` (MiB) as ECS describes it: a string of digits."""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) == 0:
        unit = "CPU units, for example 1024" if field == "cpu" else "MiB, for example 2048"
        raise TaskDefinitionError(f"{field} {value!r} is not a number of {unit}")
    return str(int(text))


def container_definitions(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not containers:
        raise TaskDefinitionError("containers is empty: a task definition needs at least one container")
    definitions = [container_definition(index, container) for index, container in enumerate(containers)]
    first_with: dict[str, int] = {}
    for index, definition in enumerate(definitions):
        name = definition["name"]
        if name in first_with:
            raise TaskDefinitionError(
                f"containers[{index}] has the name {name!r} of containers[{first_with[name]}]: "
                "container names must be unique"
            )
        first_with[name] = index
    return definitions


def container_definition(index: int, container: dict[str, Any]) -> dict[str, Any]:
    """One container definition, its integers as integers and its environment values as strings."""
    where = f"containers[{index}]"
    for key in ("name", "image"):
        if not isinstance(container.get(key), str) or not container[key]:
            raise TaskDefinitionError(f"{where} has no {key}")
    definition = dict(container)
    for key in INTEGER_CONTAINER_KEYS:
        if definition.get(key) is not None:
            definition[key] = whole_number(f"{where}.{key}", definition[key])
    if "environment" in definition:
        definition["environment"] = environment(where, definition["environment"])
    return definition


def whole_number(field: str, value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise TaskDefinitionError(f"{field} {value!r} is not a whole number")


def environment(where: str, variables: Any) -> list[dict[str, str]]:
    """The variables as ECS takes them; a value that is not a string is sent as JSON (10 -> "10", true -> "true")."""
    if not isinstance(variables, list):
        raise TaskDefinitionError(f"{where}.environment is not a list of {{name, value}} dicts")
    result = []
    for position, variable in enumerate(variables):
        if not isinstance(variable, dict) or not isinstance(variable.get("name"), str) or not variable["name"]:
            raise TaskDefinitionError(f"{where}.environment[{position}] has no name")
        value = variable.get("value")
        entry = {"name": variable["name"]}
        if value is not None:
            entry["value"] = value if isinstance(value, str) else json.dumps(value)
        result.append(entry)
    return result


# Comparison: does the described revision already have what is asked?


def matches(request: dict[str, Any], described: dict[str, Any]) -> bool:
    """Whether the described revision is what ``request`` (from :func:`registration`) would register."""
    return (
        str(described.get("cpu")) == request["cpu"]
        and str(described.get("memory")) == request["memory"]
        and described.get("networkMode") == request["networkMode"]
        and sorted(described.get("requiresCompatibilities") or []) == sorted(request["requiresCompatibilities"])
        and (described.get("runtimePlatform") or {}) == request["runtimePlatform"]
        and same_role(request.get("executionRoleArn"), described.get("executionRoleArn"))
        and same_role(request.get("taskRoleArn"), described.get("taskRoleArn"))
        and same_containers(request["containerDefinitions"], described.get("containerDefinitions") or [])
    )


def same_role(asked: str | None, described: str | None) -> bool:
    """Equal ARNs, or a role name (which ECS also takes) and the ARN of that role."""
    if not asked or not described:
        return not asked and not described
    return asked == described or (not asked.startswith("arn:") and described.endswith(f"/{asked}"))


def same_containers(asked: list[dict[str, Any]], described: list[dict[str, Any]]) -> bool:
    """The same names in the same order, and every key given equal to the described value."""
    if [container["name"] for container in asked] != [container.get("name") for container in described]:
        return False
    return all(same_container(mine, theirs) for mine, theirs in zip(asked, described))


def same_container(asked: dict[str, Any], described: dict[str, Any]) -> bool:
    for key, value in asked.items():
        if key == "environment":
            if not same_environment(value, described.get(key) or []):
                return False
        elif not same_value(value, described.get(key)):
            return False
    return True


def same_environment(asked: list[dict[str, str]], described: list[dict[str, str]]) -> bool:
    """Environment variables in any order (ECS does not keep the order they were given in)."""

    def pairs(variables: list[dict[str, str]]) -> set[tuple[str, str | None]]:
        return {(variable["name"], variable.get("value")) for variable in variables}

    return pairs(asked) == pairs(described)


def same_value(asked: Any, described: Any) -> bool:
    """``asked`` equals ``described``, keys of described dicts that were not asked for aside.

    An empty value matches a key ECS leaves out; numbers and strings compare by their text
    (256 matches "256"), booleans only with booleans.
    """
    if described is None:
        return asked is None or asked in ("", [], {})
    if isinstance(asked, dict):
        return isinstance(described, dict) and all(same_value(mine, described.get(key)) for key, mine in asked.items())
    if isinstance(asked, list):
        return (
            isinstance(described, list)
            and len(asked) == len(described)
            and all(same_value(mine, theirs) for mine, theirs in zip(asked, described))
        )
    if isinstance(asked, bool) or isinstance(described, bool):
        return isinstance(asked, bool) and isinstance(described, bool) and asked == described
    if isinstance(described, (dict, list)):
        return False
    return str(asked) == str(described)


# The family in ECS


def family_and_revision(arn: str) -> tuple[str, int]:
    """``(family, revision)`` of ``arn:aws:ecs:<region>:<account>:task-definition/<family>:<revision>``."""
    family, revision = arn.rsplit("/", 1)[1].rsplit(":", 1)
    return family, int(revision)


def ecs_tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return ansible_dict_to_boto3_tag_list(tags, tag_name_key_name="key", tag_value_key_name="value")


class TaskDefinitionFamily(Changes):
    """Brings the family ``family`` to the requested state; ``changed`` tells whether it had to."""

    def __init__(self, client, family: str, check_mode: bool) -> None:
        self.client = client
        self.family = family
        super().__init__(check_mode)
        self.warnings: list[str] = []

    def revisions(self, status: str) -> list[str]:
        """The ARNs of the family's revisions in ``status``, oldest first."""
        arns = paginated_query_with_retries(
            self.client, "list_task_definitions", familyPrefix=self.family, status=status
        )["taskDefinitionArns"]
        # familyPrefix is documented as the family name, but do not trust it to exclude longer names.
        ours = [arn for arn in arns if family_and_revision(arn)[0] == self.family]
        return sorted(ours, key=lambda arn: family_and_revision(arn)[1])

    def describe(self, arn: str) -> dict[str, Any] | None:
        """The revision with its tags as a dict under ``tags``; None when it is gone."""
        try:
            response = self.client.describe_task_definition(taskDefinition=arn, include=["TAGS"], aws_retry=True)
        except is_boto3_error_message("Unable to describe task definition"):
            return None
        return dict(response["taskDefinition"], tags=boto3_tag_list_to_ansible_dict(response.get("tags") or []))

    # Present

    def ensure_present(self, request: dict[str, Any], tags: dict[str, str] | None, purge_tags: bool) -> dict[str, Any]:
        """Keep or register the revision ``request`` asks for, the only ACTIVE one; return it and a ``diff``."""
        active = self.revisions("ACTIVE")
        current = self.describe(active[-1]) if active else None
        wanted_tags, to_set, to_unset = plan_tags(current["tags"] if current else {}, tags, purge_tags)
        if current is not None and matches(request, current):
            after = dict(current, tags=wanted_tags)
            kept_arn = current["taskDefinitionArn"]
            if (to_set or to_unset) and self.act():
                if to_unset:
                    self.client.untag_resource(resourceArn=kept_arn, tagKeys=to_unset, aws_retry=True)
                if to_set:
                    self.client.tag_resource(resourceArn=kept_arn, tags=ecs_tags(to_set), aws_retry=True)
        else:
            after = self.register(request, wanted_tags)
        for arn in active:
            if arn != after.get("taskDefinitionArn") and self.act():
                self.client.deregister_task_definition(taskDefinition=arn, aws_retry=True)
        # A revision check mode would register has no number yet.
        kept = [after["revision"]] if "revision" in after else None
        return {
            "task_definition": task_definition_result(after),
            "diff": {
                "before": summary(current, request, [family_and_revision(arn)[1] for arn in active]) if current else {},
                "after": summary(after, request, kept),
            },
        }

    def register(self, request: dict[str, Any], tags: dict[str, str]) -> dict[str, Any]:
        """Register a revision; in check mode return what would be registered, without ARN and revision."""
        if not self.act():
            return dict(request, tags=tags)
        more = {"tags": ecs_tags(tags)} if tags else {}
        response = self.client.register_task_definition(**request, **more, aws_retry=True)
        return dict(response["taskDefinition"], tags=tags)

    # Absent

    def ensure_absent(self) -> dict[str, Any]:
        """Deregister the ACTIVE revisions, then delete the INACTIVE ones (those just deregistered included)."""
        active = self.revisions("ACTIVE")
        inactive = self.revisions("INACTIVE")
        for arn in active:
            if self.act():
                self.client.deregister_task_definition(taskDefinition=arn, aws_retry=True)
        to_delete = sorted(set(active) | set(inactive), key=lambda arn: family_and_revision(arn)[1])
        if to_delete:
            if self.check_mode:
                self.changed = True
            else:
                self.delete(to_delete)
        return {
            "diff": {
                "before": {
                    "active_revisions": [family_and_revision(arn)[1] for arn in active],
                    "inactive_revisions": [family_and_revision(arn)[1] for arn in inactive],
                },
                "after": {"active_revisions": [], "inactive_revisions": []},
            }
        }

    def delete(self, arns: list[str]) -> None:
        """Delete INACTIVE revisions; an endpoint without DeleteTaskDefinitions leaves them, with a warning."""
        try:
            for start in range(0, len(arns), _DELETE_BATCH):
                batch = arns[start:start + _DELETE_BATCH]
                response = self.client.delete_task_definitions(taskDefinitions=batch, aws_retry=True)
                self.changed = True
                failures = response.get("failures") or []
                if failures:
                    reasons = "; ".join(f"{failure.get('arn')}: {failure.get('reason')}" for failure in failures)
                    raise TaskDefinitionError(f"ECS did not delete revisions of {self.family}: {reasons}")
        except ClientError as error:
            if not unsupported(error):
                raise
            self.warnings.append(
                f"the ECS endpoint does not support DeleteTaskDefinitions: the {len(arns)} INACTIVE revisions "
                f"of {self.family} are left as they are"
            )


def manage_family(
    family: TaskDefinitionFamily,
    log_group: LogGroup | None,
    request: dict[str, Any] | None,
    retention_days: int | None,
    tags: dict[str, str] | None,
    purge_tags: bool,
) -> dict[str, Any]:
    """The family as ``request`` asks (None: no revision at all), with the log group its containers log to.

    Containers log from their first second: the group is there before a revision is registered and
    goes after the last one. Returns ``changed``, the family's result and ``log_group``, with one
    ``diff``; an error comes as a :class:`PartError` naming the family or the group.
    """
    family_subject = f"the task definition family {family.family}"
    group_subject = f"the log group {log_group.name}" if log_group else ""
    logged = None
    if request is not None:
        if log_group:
            logged = attempt(group_subject, (LogGroupError,), log_group.ensure_present, retention_days, tags, purge_tags)
        result = attempt(family_subject, (TaskDefinitionError,), family.ensure_present, request, tags, purge_tags)
    else:
        result = attempt(family_subject, (TaskDefinitionError,), family.ensure_absent)
        if log_group:
            logged = attempt(group_subject, (LogGroupError,), log_group.ensure_absent)
    if logged:
        if "log_group" in logged:
            result["log_group"] = logged["log_group"]
        for side in ("before", "after"):
            result["diff"][side]["log_group"] = logged["diff"][side]
    result["changed"] = family.changed or bool(log_group and log_group.changed)
    return result


def unsupported(error: ClientError) -> bool:
    """Whether the endpoint refused the operation as one it does not implement."""
    response = error.response
    return (
        response.get("Error", {}).get("Code") in _UNSUPPORTED_ERROR_CODES
        or response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 501
    )


# Results


def task_definition_result(definition: dict[str, Any]) -> dict[str, Any]:
    """The revision in snake_case, but its container definitions as ECS describes them, tags as a dict.

    The container definitions keep ECS's camelCase, the shape they are given in, so that
    environment variable names and log options come back untouched.
    """
    rest = {key: value for key, value in definition.items() if key not in ("containerDefinitions", "tags")}
    result = camel_dict_to_snake_dict(rest)
    result["container_definitions"] = definition.get("containerDefinitions", [])
    result["tags"] = definition.get("tags", {})
    return result


def summary(definition: dict[str, Any], request: dict[str, Any], active_revisions: list[int] | None) -> dict[str, Any]:
    """What a diff shows of a revision: what is compared, the containers cut to the keys asked for.

    ``active_revisions``, the family's ACTIVE revision numbers, is left out when None.
    """
    asked = {container["name"]: container for container in request["containerDefinitions"]}
    containers = [
        {key: container.get(key) for key in asked[container["name"]]} if container.get("name") in asked else container
        for container in definition.get("containerDefinitions", [])
    ]
    shown = {} if active_revisions is None else {"active_revisions": active_revisions}
    return {
        **shown,
        "cpu": definition.get("cpu"),
        "memory": definition.get("memory"),
        "execution_role_arn": definition.get("executionRoleArn"),
        "task_role_arn": definition.get("taskRoleArn"),
        "runtime_platform": camel_dict_to_snake_dict(definition.get("runtimePlatform") or {}),
        "container_definitions": containers,
        "tags": definition.get("tags", {}),
    }
