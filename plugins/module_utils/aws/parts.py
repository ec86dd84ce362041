# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Modules that manage several resources in one run: which one an error came from.

A part of the run (the network, the cluster, the task definition family, ...) runs through
:func:`attempt`, which tags an AWS error or a refused request with the resource it was managing;
:func:`fail` reports it, naming the region and that resource. Parts may run in threads: the error
travels to the thread that reports it.
"""

from __future__ import annotations

from typing import Any
from typing import Callable

try:
    from botocore.exceptions import BotoCoreError
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by AnsibleAWSModule


class PartError(Exception):
    """An AWS error or a refused request of one part of a module run, with the resource it was managing."""

    def __init__(self, subject: str, error: Exception) -> None:
        super().__init__(f"{subject}: {error}")
        self.subject = subject
        self.error = error


def attempt(subject: str, refusals: tuple[type[Exception], ...], action: Callable[..., Any], *args: Any) -> Any:
    """``action(*args)``; an AWS error or one of ``refusals`` raised as a :class:`PartError` about ``subject``."""
    try:
        return action(*args)
    except (ClientError, BotoCoreError) + refusals as e:
        raise PartError(subject, e) from e


def fail(module, error: PartError, others: list[PartError] = (), **result: Any) -> None:
    """Fail the module run: an AWS error with AWS's details, a refused request with its message.

    ``others``: errors of parts that failed too, added to the message; ``result``: what the parts
    that succeeded did (``changed``, ``diff``, ...), returned with the failure.
    """
    msg = message(module.region, error)
    if others:
        msg += "; also " + "; ".join(message(module.region, other) for other in others)
    if isinstance(error.error, (ClientError, BotoCoreError)):
        module.fail_json_aws(error.error, msg=msg, **result)
    else:
        module.fail_json(msg=msg, **result)


def message(region: str, error: PartError) -> str:
    """What went wrong, beginning with the region (refusals that name it already are left as they are)."""
    if isinstance(error.error, (ClientError, BotoCoreError)):
        return f"{region}: failed to manage {error.subject}"
    text = str(error.error)
    return text if region and region in text else f"{region}: {text}"
