"""ecs_load_tasks: what teardown stops, and what each task started is given."""

from __future__ import annotations

import base64

from ansible_collections.constellation.loadtest.plugins.modules.ecs_load_tasks import of_deployment
from ansible_collections.constellation.loadtest.plugins.module_utils.run import load_tasks
from ansible_collections.constellation.loadtest.plugins.module_utils.run import orchestrator_state


def task(arn: str, **tags: str) -> dict:
    return {"taskArn": arn, "tags": [{"key": key.replace("_", ":"), "value": value} for key, value in tags.items()]}


def test_a_deployment_stops_its_own_tasks_and_never_another_deployments_in_the_same_cluster():
    ours, theirs, untagged = task("a", constellation_deployment="mine"), task("b", constellation_deployment="other"), task("c")

    assert of_deployment([ours, theirs, untagged], {"constellation:deployment": "mine", "team": "x"}) == [ours]
    assert of_deployment([ours, theirs, untagged], None) == [ours, theirs, untagged]  # the module used on its own


def test_only_the_load_generator_gets_the_token_and_it_proves_that_task_alone():
    key = bytes(range(32))
    environment = {"load-generator": {"CONSTELLATION_TASK_INDEX": "2"}, "aggregator": {"CONSTELLATION_TASK_INDEX": "2"}}

    given = load_tasks.with_task_token(environment, key, "run-1", "us-east-2", 2)

    token = given["load-generator"]["CONSTELLATION_TASK_TOKEN"]
    assert token == orchestrator_state.task_token(key, "run-1", "us-east-2", "2")
    assert len(base64.urlsafe_b64decode(token + "=")) == 32
    assert given["aggregator"] == environment["aggregator"] and "CONSTELLATION_TASK_TOKEN" not in environment["load-generator"]
    others = {
        orchestrator_state.task_token(key, "run-1", "us-east-2", 1),
        orchestrator_state.task_token(key, "run-2", "us-east-2", 2),
        orchestrator_state.task_token(key, "run-1", "us-west-2", 2),
        orchestrator_state.task_token(bytes(32), "run-1", "us-east-2", 2),
    }
    assert token not in others and len(others) == 4
