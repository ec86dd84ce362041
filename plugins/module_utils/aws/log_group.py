# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The CloudWatch Logs group a task definition's containers log to, kept and deleted with it.

The group is created with its tags and retention, brought in line when it differs, and deleted on
request; tags go through TagResource, UntagResource and ListTagsForResource (the operations that
replaced TagLogGroup and its siblings), which take the group's ARN without the trailing ``:*``.

The client passed in is an amazon.aws client wrapped with ``AWSRetry.jittered_backoff`` (calls
carry ``aws_retry=True``).
"""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.botocore import paginated_query_with_retries

from .changes import Changes
from .tagging import plan_tags

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_./#-]{1,512}$")
# The only values PutRetentionPolicy takes.
RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)


class LogGroupError(Exception):
    """A failure the user can act on; the message says what and where."""


def validate(name: str, retention_days: int | None) -> None:
    """Raise LogGroupError naming the field and value CloudWatch Logs would refuse."""
    if not NAME_PATTERN.match(name or ""):
        raise LogGroupError(
            f"log_group.name {name!r} is not a log group name: 1 to 512 letters, digits and the characters _ - / . #"
        )
    if retention_days is not None and retention_days not in RETENTION_DAYS:
        raise LogGroupError(
            f"log_group.retention_days {retention_days!r} is not a retention CloudWatch Logs takes: "
            f"one of {', '.join(map(str, RETENTION_DAYS))}"
        )


class LogGroup(Changes):
    """Brings the log group ``name`` to the requested state; ``changed`` tells whether it had to."""

    def __init__(self, client, name: str, check_mode: bool) -> None:
        self.client = client
        self.name = name
        super().__init__(check_mode)

    def describe(self) -> dict[str, Any] | None:
        """The group as DescribeLogGroups returns it, with ``tags`` as a dict; None when there is none."""
        groups = paginated_query_with_retries(
            self.client, "describe_log_groups", logGroupNamePrefix=self.name
        )["logGroups"]
        group = next((group for group in groups if group["logGroupName"] == self.name), None)
        if group is None:
            return None
        response = self.client.list_tags_for_resource(resourceArn=tagging_arn(group), aws_retry=True)
        return dict(group, tags=response.get("tags") or {})

    def ensure_present(self, retention_days: int | None, tags: dict[str, str] | None, purge_tags: bool) -> dict[str, Any]:
        """Create the group or bring its retention and tags in line; return it and a ``diff``.

        ``retention_days`` None leaves the retention as it is (a new group keeps its events forever).
        """
        current = self.describe()
        after_tags, to_set, to_remove = plan_tags(current["tags"] if current else {}, tags, purge_tags)
        if current is None:
            if self.act():
                more = {"tags": after_tags} if after_tags else {}
                self.client.create_log_group(logGroupName=self.name, **more, aws_retry=True)
        elif (to_set or to_remove) and self.act():
            arn = tagging_arn(current)
            if to_remove:
                self.client.untag_resource(resourceArn=arn, tagKeys=to_remove, aws_retry=True)
            if to_set:
                self.client.tag_resource(resourceArn=arn, tags=to_set, aws_retry=True)
        retention = current.get("retentionInDays") if current else None
        if retention_days is not None and retention_days != retention:
            retention = retention_days
            if self.act():
                self.client.put_retention_policy(logGroupName=self.name, retentionInDays=retention_days, aws_retry=True)
        # A new group's ARN is known once it exists (in check mode, it does not).
        group = self.describe() if current is None and not self.check_mode else current
        after = {
            "log_group_name": self.name,
            "arn": tagging_arn(group) if group else None,
            "retention_in_days": retention,
            "tags": after_tags,
        }
        return {"log_group": after, "diff": {"before": summary(current), "after": after}}

    def ensure_absent(self) -> dict[str, Any]:
        """Delete the group (and the log events in it); return a ``diff``."""
        current = self.describe()
        if current is not None and self.act():
            try:
                self.client.delete_log_group(logGroupName=self.name, aws_retry=True)
            except is_boto3_error_code("ResourceNotFoundException"):
                pass  # deleted in the meantime, which is what was asked
        return {"diff": {"before": summary(current), "after": {}}}


def tagging_arn(group: dict[str, Any]) -> str:
    """The group's ARN as the tagging operations take it: ``logGroupArn``, or ``arn`` without ``:*``."""
    arn = group.get("logGroupArn") or group["arn"]
    return arn[: -len(":*")] if arn.endswith(":*") else arn


def summary(group: dict[str, Any] | None) -> dict[str, Any]:
    """What a diff shows of a group: its name, ARN, retention and tags; {} when there is none."""
    if group is None:
        return {}
    return {
        "log_group_name": group["logGroupName"],
        "arn": tagging_arn(group),
        "retention_in_days": group.get("retentionInDays"),
        "tags": group.get("tags") or {},
    }
