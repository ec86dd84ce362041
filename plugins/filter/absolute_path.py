# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The filter absolute_path: a path the user typed, relative to where they ran the command."""

from __future__ import annotations

import os

DOCUMENTATION = r"""
name: absolute_path
short_description: A path as the user meant it, relative to the directory ansible-playbook was started in
version_added: 0.1.0
description:
  - Returns the absolute form of a path given on the command line, in a survey or in a playbook's
    variables, with C(~) expanded. A relative path is taken relative to the directory
    C(ansible-playbook) was started in, as every command-line tool takes it (in AWX, the project
    directory), not to the playbook's directory, where Ansible runs modules.
  - Filters run on the controller, so this is the controller's working directory.
  - Null stays null (no path given).
positional: _input
options:
  _input:
    description: The path.
    type: path
    required: true
author:
  - Constellation maintainers (@constellation-loadtest)
"""

EXAMPLES = r"""
- name: The script the user named, from where they ran the command
  ansible.builtin.set_fact:
    constellation_script_file: "{{ script | constellation.loadtest.absolute_path }}"
"""

RETURN = r"""
_value:
  description: The absolute path, not resolved through symbolic links; null for null.
  type: path
"""


def absolute_path(path: str | None) -> str | None:
    return None if path is None else os.path.abspath(os.path.expanduser(str(path)))


class FilterModule:
    def filters(self):
        return {"absolute_path": absolute_path}
