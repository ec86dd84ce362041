# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The options of the modules that read a run's interval records (the progress, the report)."""


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  results_store:
    description:
      - Where the run's interval records are.
    required: true
    type: str
    choices: [s3, timestream]
  database:
    description:
      - The Timestream database. Required when O(results_store=timestream).
    type: str
  table:
    description:
      - The Timestream table. Required when O(results_store=timestream).
    type: str
"""
