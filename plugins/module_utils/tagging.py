# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Tag names shared by every resource this collection creates."""

from __future__ import annotations

DEPLOYMENT_TAG = "constellation:deployment"
