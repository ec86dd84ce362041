# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What every resource manager of the modules keeps: whether it changed anything, and whether it may."""

from __future__ import annotations


class Changes:
    """``changed`` tells whether the module run had to change anything; in check mode nothing is changed."""

    def __init__(self, check_mode: bool) -> None:
        self.check_mode = check_mode
        self.changed = False

    def act(self) -> bool:
        """Record a change; True when it is to be made (not in check mode)."""
        self.changed = True
        return not self.check_mode
