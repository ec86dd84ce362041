# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Running a test: from the user's configuration to tasks started at one instant.

The configuration and the plan (regions, VUs split over tasks), the region rules, the task
contract (what each task is told), the load tasks on ECS, and the orchestrator: its run state
machine, which ships inside the orchestrator Lambda as the package ``run``, and the client the
load generator's image ships to call it. It may import ``results`` (the S3 keys of a run, the
run-id rule) and the standard library; never ``aws``, whose resources it runs on but does not
manage. ``orchestrator_state`` and ``orchestrator_client`` import nothing of ours: they are
shipped alone.
"""
