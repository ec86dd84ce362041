# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""IAM roles, read once, compared, then changed where they differ: the one way the collection manages roles.

The orchestrator function has a role; an ECS task has a task execution role (ECS pulls the images
and writes the logs with it) and a task role (the containers' credentials). Each role trusts its
principal and has a description, tags and its inline policies, nothing else: a managed policy
attached to one, by hand or by another tool, is detached, so the inline policies given are all a
role may do. One IAM client does it all, in one module run instead of one per role and per policy.

The client passed in is an amazon.aws client wrapped with ``AWSRetry.jittered_backoff`` (calls
carry ``aws_retry=True``). Every AWS failure is raised as an ``AnsibleIAMError`` whose message
names the role and what failed. IAM is eventually consistent: for a few seconds after
``CreateRole`` other calls may not know the role yet, so the inline policies of a new role are put
with ``NoSuchEntity`` retried, as amazon.aws's iam_role does after creating a role.

The roles are handled a few at a time, each in its own thread (boto3 clients are thread-safe), so
that the roles of many regions, in one module run, take about as long as those of one.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from typing import Any

from ansible_collections.amazon.aws.plugins.module_utils.exceptions import AnsibleAWSError
from ansible_collections.amazon.aws.plugins.module_utils.iam import AnsibleIAMError
from ansible_collections.amazon.aws.plugins.module_utils.iam import IAMErrorHandler
from ansible_collections.amazon.aws.plugins.module_utils.iam import detach_iam_role_policy
from ansible_collections.amazon.aws.plugins.module_utils.iam import get_iam_role
from ansible_collections.amazon.aws.plugins.module_utils.iam import list_iam_instance_profiles
from ansible_collections.amazon.aws.plugins.module_utils.iam import list_iam_role_attached_policies
from ansible_collections.amazon.aws.plugins.module_utils.iam import list_iam_role_policies
from ansible_collections.amazon.aws.plugins.module_utils.iam import remove_role_from_iam_instance_profile
from ansible_collections.amazon.aws.plugins.module_utils.iam import validate_iam_identifiers
from ansible_collections.amazon.aws.plugins.module_utils.policy import compare_policies
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import ansible_dict_to_boto3_tag_list
from ansible_collections.amazon.aws.plugins.module_utils.tagging import boto3_tag_list_to_ansible_dict

from .changes import Changes
from .tagging import check_owned
from .tagging import deployment_of
from .tagging import plan_tags

# A role just created may be unknown to IAM's other endpoints for a few seconds.
_new_role_retry = AWSRetry.jittered_backoff(catch_extra_error_codes=["NoSuchEntity"])
# Roles handled at once: IAM's request rate limits are low and shared by the account.
ROLE_CONCURRENCY = 4


class IamRolesError(Exception):
    """Input the module refuses before calling AWS; the message names the field and the value."""


@dataclass(frozen=True)
class RoleSpec:
    """A role as asked for: its name, description (None: left as it is), inline policies and trust
    policy (None: the one the roles share). Its ``kept_policies`` are inline policies another
    module manages: neither put nor deleted here."""

    name: str
    description: str | None = None
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    trust_policy: dict[str, Any] | None = None
    kept_policies: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RoleState:
    """A role as it is (or will be): ``arn`` and ``role_id`` are None until IAM has created it."""

    name: str
    arn: str | None
    role_id: str | None
    description: str | None
    tags: dict[str, str]
    trust_policy: dict[str, Any]
    policies: dict[str, dict[str, Any]]
    managed_policy_arns: list[str]

    def returned(self) -> dict[str, Any]:
        """The role as the module returns it."""
        role = {"role_name": self.name, "description": self.description, "tags": self.tags}
        role.update((key, value) for key, value in (("arn", self.arn), ("role_id", self.role_id)) if value is not None)
        return dict(role, policies=sorted(self.policies))

    def summary(self) -> dict[str, Any]:
        """What a diff shows of the role: everything this module manages."""
        return {
            "description": self.description,
            "tags": self.tags,
            "assume_role_policy_document": self.trust_policy,
            "policies": self.policies,
            "managed_policy_arns": self.managed_policy_arns,
        }


# Input


def parse_document(value: Any, field_name: str) -> dict[str, Any]:
    """A policy document given as a dict or as JSON text; ``field_name`` says where it came from."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as e:
            raise IamRolesError(f"{field_name} is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise IamRolesError(f"{field_name} is not a policy document (a JSON object) but {json.dumps(value)[:80]}")
    return value


def role_names(roles: list[dict[str, Any]]) -> list[str]:
    """The names of ``roles``, each a valid IAM role name, none twice."""
    names: dict[str, int] = {}
    for index, role in enumerate(roles):
        name = role["name"]
        problem = validate_iam_identifiers("role", name=name)
        if problem:
            raise IamRolesError(f"roles[{index}].name {name!r} is not a valid role name: {problem}")
        if name in names:
            raise IamRolesError(f"roles[{index}].name {name!r} is also roles[{names[name]}].name: list a role once")
        names[name] = index
    return list(names)


def parse_roles(roles: list[dict[str, Any]], shared_trust_policy: dict[str, Any] | None = None) -> list[RoleSpec]:
    """``roles`` as the module's options give them, checked, their policy documents parsed.

    Each role needs a trust policy: its own (``assume_role_policy_document``) or the shared one.
    """
    specs = []
    for index, (name, role) in enumerate(zip(role_names(roles), roles)):
        policies = {}
        for policy_name, document in (role.get("policies") or {}).items():
            problem = validate_iam_identifiers("policy", name=policy_name)
            if problem:
                raise IamRolesError(f"roles[{index}].policies: {policy_name!r} is not a policy name: {problem}")
            policies[policy_name] = parse_document(document, f"roles[{index}].policies.{policy_name}")
        kept_policies = frozenset(role.get("kept_policies") or ())
        for policy_name in sorted(kept_policies):
            problem = validate_iam_identifiers("policy", name=policy_name)
            if problem:
                raise IamRolesError(f"roles[{index}].kept_policies: {policy_name!r} is not a policy name: {problem}")
            if policy_name in policies:
                raise IamRolesError(
                    f"roles[{index}].kept_policies: {policy_name!r} is also in roles[{index}].policies: name it in one"
                )
        trust_policy = None
        if role.get("assume_role_policy_document") is not None:
            trust_policy = parse_document(
                role["assume_role_policy_document"], f"roles[{index}].assume_role_policy_document"
            )
        elif shared_trust_policy is None:
            raise IamRolesError(
                f"roles[{index}] ({name}) has no trust policy: set assume_role_policy_document, "
                f"for every role or in roles[{index}]"
            )
        specs.append(RoleSpec(name, role.get("description"), policies, trust_policy, kept_policies))
    return specs


# AWS


def _call(description: str, method, **params: Any) -> dict[str, Any]:
    """An IAM call with the client's retries; a failure says what failed."""
    return IAMErrorHandler.common_error_handler(description)(method)(aws_retry=True, **params)


@contextlib.contextmanager
def _about_role(name: str) -> Iterator[None]:
    """Put the role's name in front of the message of any AWS failure."""
    try:
        yield
    except AnsibleAWSError as e:
        raise AnsibleIAMError(message=f"role {name}: {e.message}", exception=e.exception) from e


class IamRoles(Changes):
    """Brings task roles to the requested state; ``changed`` tells whether it had to."""

    def __init__(self, client, tags: dict[str, str] | None, purge_tags: bool, check_mode: bool) -> None:
        self.client = client
        self.tags = tags
        self.purge_tags = purge_tags
        super().__init__(check_mode)

    def read(self, name: str) -> RoleState | None:
        """The role named ``name`` with its inline and managed policies, None if there is none."""
        role = get_iam_role(self.client, name)
        if role is None:
            return None
        policies = {
            policy_name: _call(
                f"get inline policy {policy_name}", self.client.get_role_policy, RoleName=name, PolicyName=policy_name
            )["PolicyDocument"]
            for policy_name in list_iam_role_policies(self.client, name)
        }
        return RoleState(
            name=name,
            arn=role["Arn"],
            role_id=role["RoleId"],
            description=role.get("Description"),
            tags=boto3_tag_list_to_ansible_dict(role.get("Tags", [])),
            trust_policy=role["AssumeRolePolicyDocument"],
            policies=policies,
            managed_policy_arns=[policy["PolicyArn"] for policy in list_iam_role_attached_policies(self.client, name)],
        )

    def read_owned(self, names: list[str]) -> dict[str, RoleState | None]:
        """Every role of ``names`` as it is, once each existing one is known to be this deployment's.

        All are read and checked before any is changed: a role of another deployment (``tags`` name
        this one) stops the run with nothing done.
        """

        def one(name: str) -> RoleState | None:
            with _about_role(name):
                return self.read(name)

        currents = dict(zip(names, concurrently(one, names)))
        for name, role in currents.items():
            if role is not None:
                check_owned("IAM role", name, role.tags, deployment_of(self.tags))
        return currents

    # Present

    def ensure_present(self, trust_policy: dict[str, Any] | None, roles: list[RoleSpec]) -> dict[str, Any]:
        """Create or update every role; return them by name (``roles``) and a ``diff``.

        ``trust_policy`` is that of the roles without their own. A role is returned as it is after the
        run: in check mode, as it would be.
        """

        currents = self.read_owned([spec.name for spec in roles])

        def one(spec: RoleSpec) -> tuple[RoleState | None, RoleState]:
            trust = spec.trust_policy if spec.trust_policy is not None else trust_policy
            current = currents[spec.name]
            with _about_role(spec.name):
                if current is None:
                    return None, self.create(spec, trust)
                return current, self.update(spec, trust, current)

        before, after = {}, {}
        for spec, (current, role) in zip(roles, concurrently(one, roles)):
            if current is not None:
                before[spec.name] = current.summary()
            after[spec.name] = role
        return {
            "roles": {name: role.returned() for name, role in after.items()},
            "diff": {"before": before, "after": {name: role.summary() for name, role in after.items()}},
        }

    def create(self, spec: RoleSpec, trust_policy: dict[str, Any]) -> RoleState:
        tags = self.tags or {}
        role = RoleState(spec.name, None, None, spec.description, tags, trust_policy, spec.policies, [])
        if not self.act():
            return role
        params = {"Description": spec.description} if spec.description is not None else {}
        created = _call(
            "create role",
            self.client.create_role,
            RoleName=spec.name,
            AssumeRolePolicyDocument=json.dumps(trust_policy),
            Tags=ansible_dict_to_boto3_tag_list(tags),
            **params,
        )["Role"]
        for policy_name, document in spec.policies.items():
            put = IAMErrorHandler.common_error_handler(f"put inline policy {policy_name}")
            put(_new_role_retry(self.client.put_role_policy))(
                RoleName=spec.name, PolicyName=policy_name, PolicyDocument=json.dumps(document)
            )
        return replace(role, arn=created["Arn"], role_id=created["RoleId"])

    def update(self, spec: RoleSpec, trust_policy: dict[str, Any], role: RoleState) -> RoleState:
        name = spec.name
        if compare_policies(role.trust_policy, trust_policy):
            if self.act():
                update_trust = self.client.update_assume_role_policy
                _call("update the trust policy", update_trust, RoleName=name, PolicyDocument=json.dumps(trust_policy))
            role = replace(role, trust_policy=trust_policy)
        if spec.description is not None and spec.description != role.description:
            if self.act():
                _call("update the description", self.client.update_role, RoleName=name, Description=spec.description)
            role = replace(role, description=spec.description)
        tags = self.ensure_tags(name, role.tags)
        policies = self.ensure_policies(name, role.policies, spec.policies, spec.kept_policies)
        self.detach_managed_policies(role)
        return replace(role, tags=tags, policies=policies, managed_policy_arns=[])

    def ensure_tags(self, name: str, current: dict[str, str]) -> dict[str, str]:
        """Tag the role with ``tags`` (none removed unless ``purge_tags``); return its tags after."""
        after, to_set, to_unset = plan_tags(current, self.tags, self.purge_tags)
        if (to_set or to_unset) and self.act():
            if to_unset:
                _call("untag", self.client.untag_role, RoleName=name, TagKeys=to_unset)
            if to_set:
                _call("tag", self.client.tag_role, RoleName=name, Tags=ansible_dict_to_boto3_tag_list(to_set))
        return after

    def ensure_policies(
        self,
        name: str,
        current: dict[str, dict[str, Any]],
        wanted: dict[str, dict[str, Any]],
        kept: frozenset[str] = frozenset(),
    ) -> dict[str, dict[str, Any]]:
        """Put the inline policies that differ or are missing, delete the others but the ``kept``
        ones; return them after."""
        for policy_name in sorted(current.keys() - wanted.keys() - kept):
            if self.act():
                delete = self.client.delete_role_policy
                _call(f"delete inline policy {policy_name}", delete, RoleName=name, PolicyName=policy_name)
        policies = {policy_name: current[policy_name] for policy_name in sorted(kept & current.keys())}
        for policy_name, document in wanted.items():
            if policy_name in current and not compare_policies(current[policy_name], document):
                policies[policy_name] = current[policy_name]
                continue
            if self.act():
                _call(
                    f"put inline policy {policy_name}",
                    self.client.put_role_policy,
                    RoleName=name,
                    PolicyName=policy_name,
                    PolicyDocument=json.dumps(document),
                )
            policies[policy_name] = document
        return policies

    def detach_managed_policies(self, role: RoleState) -> None:
        """Detach every managed policy: the inline policies are all the role may do."""
        for arn in role.managed_policy_arns:
            if self.act():
                detach_iam_role_policy(self.client, arn, role.name)

    # Absent

    def ensure_absent(self, names: list[str]) -> dict[str, Any]:
        """Delete every role of ``names`` that exists, with its policies; return ``roles`` ({}) and a ``diff``."""

        currents = self.read_owned(names)

        def one(name: str) -> RoleState | None:
            role = currents[name]
            with _about_role(name):
                if role is not None and self.act():
                    self.delete(role)
            return role

        before = {name: role.summary() for name, role in zip(names, concurrently(one, names)) if role is not None}
        return {"roles": {}, "diff": {"before": before, "after": {}}}

    def delete(self, role: RoleState) -> None:
        """IAM deletes a role only without policies and outside every instance profile."""
        self.detach_managed_policies(role)
        for policy_name in role.policies:
            delete = IAMErrorHandler.deletion_error_handler(f"delete inline policy {policy_name}")
            delete(self.client.delete_role_policy)(RoleName=role.name, PolicyName=policy_name, aws_retry=True)
        for profile in list_iam_instance_profiles(self.client, role=role.name):
            remove_role_from_iam_instance_profile(self.client, profile["InstanceProfileName"], role.name)
        delete = IAMErrorHandler.deletion_error_handler("delete the role")
        delete(self.client.delete_role)(RoleName=role.name, aws_retry=True)


def concurrently(function, items: list) -> list:
    """``[function(item) for item in items]``, ROLE_CONCURRENCY at a time; the first failure is raised."""
    if len(items) <= 1:
        return [function(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(ROLE_CONCURRENCY, len(items))) as pool:
        return list(pool.map(function, items))
