# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The module base class every constellation.loadtest AWS module is built on."""

from __future__ import annotations

from ansible_collections.amazon.aws.plugins.module_utils.common import set_collection_info
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

COLLECTION_NAME = "constellation.loadtest"
COLLECTION_VERSION = "0.1.0"

# The options of the modules that read a run's interval records (doc fragment results_store).
RESULTS_STORE_OPTIONS = dict(
    results_store=dict(type="str", required=True, choices=["s3", "timestream"]),
    database=dict(type="str"),
    table=dict(type="str"),
)


class ConstellationAWSModule(AnsibleAWSModule):
    """AnsibleAWSModule that identifies this collection in the AWS user agent."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        set_collection_info(collection_name=COLLECTION_NAME, collection_version=COLLECTION_VERSION)
