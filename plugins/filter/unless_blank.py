# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The filter unless_blank: a setting's default in place of a blank answer (module_utils/config.not_blank)."""

from __future__ import annotations

from ansible_collections.constellation.loadtest.plugins.module_utils.run.config import not_blank

DOCUMENTATION = r"""
name: unless_blank
short_description: A value, or a default in its place when it is null, empty or blank
version_added: 0.1.0
description:
  - An optional AWX survey question left blank reaches the playbook as an empty string, as null
    or not at all; this filter turns the first two into the default, as the plan module does for
    the settings it validates. V(0) and V(false) are values, not blanks.
positional: _input, default
options:
  _input:
    description: The value.
    type: raw
    required: true
  default:
    description: What a blank stands for.
    type: raw
    required: true
author:
  - Constellation maintainers (@constellation-loadtest)
"""

EXAMPLES = r"""
- name: Wait unless told not to; a blank survey answer means the default
  ansible.builtin.debug:
    msg: "{{ constellation_wait | default(none) | constellation.loadtest.unless_blank(true) | bool }}"
"""

RETURN = r"""
_value:
  description: The value, or O(default) for a blank one.
  type: raw
"""


def unless_blank(value, default):
    given = not_blank(value)
    return default if given is None else given


class FilterModule:
    def filters(self):
        return {"unless_blank": unless_blank}
