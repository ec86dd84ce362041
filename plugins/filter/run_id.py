# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The filter run_id: a run id checked by the one rule (module_utils/results/progress.validate_run_id)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.constellation.loadtest.plugins.module_utils.results.progress import ProgressError
from ansible_collections.constellation.loadtest.plugins.module_utils.results.progress import validate_run_id

DOCUMENTATION = r"""
name: run_id
short_description: A run id, checked
version_added: 0.1.0
description:
  - Returns the run id as it is when it is one (1 to 64 letters, digits, hyphens and underscores,
    starting with a letter or digit); fails with a message naming C(constellation_run_id) and the
    value otherwise. The same rule as every module that takes a run id.
positional: _input
options:
  _input:
    description: The run id.
    type: str
    required: true
author:
  - Constellation maintainers (@constellation-loadtest)
"""

EXAMPLES = r"""
- name: Choose the run id before anything is uploaded
  ansible.builtin.set_fact:
    chosen: "{{ constellation_run_id | constellation.loadtest.run_id }}"
"""

RETURN = r"""
_value:
  description: The run id.
  type: str
"""


def run_id(value):
    try:
        return validate_run_id(value, "constellation_run_id")
    except ProgressError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"run_id": run_id}
