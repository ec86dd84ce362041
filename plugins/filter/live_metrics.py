# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The filter live_metrics: the live-metrics settings checked by the task contract's one rule (LiveMetrics)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import ContractError
from ansible_collections.constellation.loadtest.plugins.module_utils.run.task_contract import LiveMetrics

DOCUMENTATION = r"""
name: live_metrics
short_description: The live-metrics settings, checked
version_added: 0.1.0
description:
  - Checks C(constellation_prometheus_remote_write_url) with its secret and user name by the rule the task
    contract applies, so that a playbook can refuse bad settings before it creates anything; fails with a
    message naming the variable and its value.
  - Returns how the tasks will sign in (C(none), C(sigv4), C(bearer), C(basic)), or an empty string when
    no URL is set (blank is unset).
positional: _input
options:
  _input:
    description: The remote-write URL.
    type: str
    required: true
  secret:
    description: The ARN of the secret holding a bearer token or a password.
    type: str
  username:
    description: The user name for basic authentication.
    type: str
author:
  - Constellation maintainers (@constellation-loadtest)
"""

EXAMPLES = r"""
- name: Refuse bad live-metrics settings before anything is created
  ansible.builtin.debug:
    msg: "{{ constellation_prometheus_remote_write_url | constellation.loadtest.live_metrics(constellation_prometheus_secret) }}"
"""

RETURN = r"""
_value:
  description: C(none), C(sigv4), C(bearer), C(basic), or an empty string without a URL.
  type: str
"""


def live_metrics(url, secret=None, username=None):
    try:
        settings = LiveMetrics.from_settings(url, secret, username)
    except ContractError as error:
        raise AnsibleFilterError(str(error)) from None
    return settings.auth if settings else ""


class FilterModule:
    def filters(self):
        return {"live_metrics": live_metrics}
