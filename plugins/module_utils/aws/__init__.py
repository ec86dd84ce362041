# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""AWS resources: what set-up creates and teardown deletes, and the module shape around them.

The shared module class (``modules``), the ``Changes`` base every resource manager builds on,
tags, which part of a multi-resource module failed (``parts``), and one manager per kind of
resource: a region's network, the ECS cluster, the task definition family and its log group, the
task roles, the orchestrator's DynamoDB table, the Timestream database and table. It imports
amazon.aws's module_utils, botocore and itself only: never ``run`` or ``results``, so a resource
never depends on how a test runs or what it measured.
"""
