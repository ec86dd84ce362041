# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Tag names shared by every resource this collection creates, and how tags are changed."""

from __future__ import annotations

from typing import Optional

from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

DEPLOYMENT_TAG = "constellation:deployment"


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
