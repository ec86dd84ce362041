# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The task roles' grants on the runs active in a deployment: one inline policy, ``runs``, per role.

A task reads its run's script from the home bucket and, with the S3 results store, writes its
run's records there; nothing else of the bucket. Runs of one deployment may overlap (two
run_test at once), so the task role of a region holds, in its inline policy ``runs``, the script
and records of every run active in that region, and no other: a run is active from its plan
until every task of it stopped (``orchestrator_state.active_runs``), and its grants go with it.
The role's other inline policy, ``task``, has what every run needs (invoke the orchestrator,
write the Timestream table) and never changes with the runs.

Two run_test at once each write the policy from the active runs they read: a write from an
earlier read could drop a run planned in between. So every write is followed by a second read of
the active runs, and when those differ from what was written, the policy is written again (at most
``CONVERGE_ATTEMPTS`` times). The last write to a role's policy is always followed by its writer's
check, which sees every run planned before it: no active run stays without its grants. A task
may still meet the moment between a stale write and its correction, and IAM takes a few seconds
to apply a change everywhere: the load generator and the aggregator retry ``AccessDenied`` for a
while (``GRANT_PROPAGATION_SECONDS`` in their entrypoints).

IAM limits a role's inline policies to 10,240 characters together, whitespace not counted: a grant
takes two ARNs per run, about 170 characters with a timestamp run id, so 50 runs can be active at
once in a region (25 at the longest bucket name and run id). A run past that is refused, naming
the limit, before its tasks start.
"""

from __future__ import annotations

import json
from typing import Any

try:
    from botocore.exceptions import ClientError
except ImportError:
    pass  # The Ansible modules report a missing botocore.

from ..results.progress import records_prefix
from ..results.progress import script_key
from . import orchestrator_state

POLICY_NAME = "runs"
MAX_INLINE_POLICIES_CHARS = 10_240
CONVERGE_ATTEMPTS = 5


class RunGrantsError(Exception):
    """The grants cannot be written; the message says why and what to do."""


def runs_policy(bucket_arn: str, run_ids: list[str], records_in_bucket: bool) -> dict[str, Any] | None:
    """The ``runs`` policy of a task role for the active ``run_ids``; None for no active run.

    ``records_in_bucket``: the results store is S3, so the tasks write their records to the bucket
    (with Timestream they write the results table, which ``task`` grants).
    """
    if not run_ids:
        return None
    statements = [
        {
            "Sid": "ReadTheActiveRunsScripts",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": [f"{bucket_arn}/{script_key(run_id)}" for run_id in run_ids],
        }
    ]
    if records_in_bucket:
        statements.append(
            {
                "Sid": "WriteTheActiveRunsRecords",
                "Effect": "Allow",
                "Action": "s3:PutObject",
                "Resource": [f"{bucket_arn}/{records_prefix(run_id)}*" for run_id in run_ids],
            }
        )
    return {"Version": "2012-10-17", "Statement": statements}


def policy_chars(document: dict[str, Any]) -> int:
    """The size IAM counts of a policy document: its JSON without whitespace."""
    return len(json.dumps(document, separators=(",", ":")))


def runs_by_region(active: dict[str, list[str]], regions: list[str]) -> dict[str, list[str]]:
    """The active runs (run id to planned regions) that run in each of ``regions``, sorted."""
    return {region: sorted(run_id for run_id, planned in active.items() if region in planned) for region in regions}


class RunGrants:
    """Brings the ``runs`` policy of each region's task role to the runs active there.

    ``iam`` and ``dynamodb`` are boto3 clients (with retries); ``roles`` maps each region to its
    task role's name. ``changed`` says whether a policy was (in check mode: would be) written.
    """

    def __init__(
        self, iam, dynamodb, table: str, bucket_arn: str, records_in_bucket: bool, roles: dict[str, str], check_mode: bool
    ) -> None:
        self.iam = iam
        self.dynamodb = dynamodb
        self.table = table
        self.bucket_arn = bucket_arn
        self.records_in_bucket = records_in_bucket
        self.roles = roles
        self.check_mode = check_mode
        self.changed = False

    def ensure(self) -> dict[str, list[str]]:
        """Write each role's grants until they match the active runs read after the write; return
        the runs granted, by region."""
        regions = sorted(self.roles)
        wanted = runs_by_region(orchestrator_state.active_runs(self.dynamodb, self.table), regions)
        for attempt in range(1, CONVERGE_ATTEMPTS + 1):
            for region in regions:
                self.ensure_role(self.roles[region], wanted[region])
            if self.check_mode:
                return wanted
            after = runs_by_region(orchestrator_state.active_runs(self.dynamodb, self.table), regions)
            if after == wanted:
                return wanted
            if attempt == CONVERGE_ATTEMPTS:
                break
            wanted = after
        raise RunGrantsError(
            f"the active runs of table {self.table} kept changing while their grants were written"
            f" ({CONVERGE_ATTEMPTS} times): run again"
        )

    def ensure_role(self, role: str, run_ids: list[str]) -> None:
        """Write (or delete, for no run) the role's ``runs`` policy unless it is the wanted one."""
        document = runs_policy(self.bucket_arn, run_ids, self.records_in_bucket)
        policies = self.inline_policies(role)
        if policies is None:
            if not self.check_mode:
                raise RunGrantsError(f"task role {role} does not exist: deploy its region first (run_test does)")
            self.changed |= document is not None  # created with the region, then granted
            return
        current = policies.pop(POLICY_NAME, None)
        if document == current:
            return
        if document is not None:
            used = sum(policy_chars(other) for other in policies.values()) + policy_chars(document)
            if used > MAX_INLINE_POLICIES_CHARS:
                raise RunGrantsError(
                    f"task role {role} cannot grant {len(run_ids)} active runs at once: its inline policies would take"
                    f" {used:,} characters, and IAM allows {MAX_INLINE_POLICIES_CHARS:,}. Wait for a run to end,"
                    " or stop one (playbooks/stop_test.yml)"
                )
        self.changed = True
        if self.check_mode:
            return
        if document is None:
            self.iam.delete_role_policy(RoleName=role, PolicyName=POLICY_NAME)
        else:
            self.iam.put_role_policy(RoleName=role, PolicyName=POLICY_NAME, PolicyDocument=json.dumps(document))

    def inline_policies(self, role: str) -> dict[str, dict[str, Any]] | None:
        """The role's inline policies by name (IAM returns documents decoded); None without the role."""
        names = []
        try:
            for page in self.iam.get_paginator("list_role_policies").paginate(RoleName=role):
                names.extend(page["PolicyNames"])
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "NoSuchEntity":
                return None
            raise
        return {name: self.iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"] for name in names}
