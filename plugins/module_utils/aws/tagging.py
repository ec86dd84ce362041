# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Tag names shared by every resource this collection creates, and how tags are changed."""

from __future__ import annotations

from typing import Optional

from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

DEPLOYMENT_TAG = "constellation:deployment"


class NotOwnedError(Exception):
    """A resource with the name a deployment uses belongs to something else; the message says what to do."""


def deployment_of(tags: Optional[dict[str, str]]) -> Optional[str]:
    """The deployment ``tags`` (a module's ``tags`` option) claim, None if they claim none."""
    return (tags or {}).get(DEPLOYMENT_TAG)


def check_owned(kind: str, name: str, current_tags: dict[str, str], deployment: Optional[str]) -> None:
    """Raise NotOwnedError unless the existing resource is tagged as ``deployment``'s own.

    Set-up never takes over, and teardown never touches, what another deployment, another team or
    another tool made under the same name. Without a ``deployment`` (a module used on its own,
    without the tag) there is nothing to check against.
    """
    if deployment is None:
        return
    owner = current_tags.get(DEPLOYMENT_TAG)
    if owner == deployment:
        return
    found = f"is tagged {DEPLOYMENT_TAG}={owner}" if owner is not None else f"has no {DEPLOYMENT_TAG} tag"
    raise NotOwnedError(
        f"{kind} {name} exists and {found}: it is not deployment {deployment}'s, so it is left as it is."
        f" Choose another constellation_deployment name; or, if it is this deployment's from before"
        f" the tag existed, tag it {DEPLOYMENT_TAG}={deployment} and run again"
    )


def plan_tags(
    current: dict[str, str], desired: Optional[dict[str, str]], purge: bool
) -> tuple[dict[str, str], dict[str, str], list[str]]:
    """(the tags after the change, tags to set, tag keys to remove).

    ``desired`` None leaves the tags as they are, as amazon.aws modules do with ``tags`` unset.
    """
    if desired is None:
        return dict(current), {}, []
    to_set, to_remove = compare_aws_tags(current, desired, purge)
    after = {key: value for key, value in current.items() if key not in to_remove}
    after.update(to_set)
    return after, to_set, to_remove
