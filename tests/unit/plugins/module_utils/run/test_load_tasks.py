"""Unit tests for plugins/module_utils/run/load_tasks.py: which tasks start, with what, and the launch retries."""

from __future__ import annotations


import pytest


from ansible_collections.constellation.loadtest.plugins.module_utils.run import load_tasks


def task(index: int | None, last_status: str = "RUNNING", desired: str = "RUNNING", exit_codes: dict | None = None) -> dict:
    tags = [] if index is None else [{"key": load_tasks.TASK_INDEX_TAG, "value": str(index)}]
    containers = [{"name": name, "exitCode": code} for name, code in (exit_codes or {}).items()]
    return {"taskArn": f"arn:task/{index}", "tags": tags, "lastStatus": last_status, "desiredStatus": desired, "containers": containers}


def request(index: int, subnets: list[str]) -> dict:
    return load_tasks.run_task_request(
        cluster="c", task_definition="f", run_id="r1", index=index, environment={"gen": {"A": 1}},
        subnets=subnets, security_groups=["sg"], assign_public_ip=True, tags={"constellation:deployment": "d"},
    )


@pytest.mark.parametrize("run_id", ["", "run 1", "run/1", "-run", "x" * 65])
def test_a_run_id_that_cannot_be_a_started_by_is_refused(run_id):
    with pytest.raises(load_tasks.EcsLoadTaskError, match="is not a run id"):
        load_tasks.validate_run_id(run_id)


def test_only_indexes_that_never_had_a_task_are_missing_stopped_ones_included():
    existing = [task(0, "STOPPED", "STOPPED"), task(2), task(None)]
    assert load_tasks.missing_indexes(existing, 4) == [1, 3]


def test_indexes_the_orchestrator_registered_are_not_missing_even_when_ecs_forgot_them():
    assert load_tasks.missing_indexes([task(0)], 4, registered=[1, 3, 9]) == [2]
    assert load_tasks.missing_indexes([], 2, registered=[]) == [0, 1]


def test_each_task_gets_its_environment_its_index_tag_and_rotated_subnets():
    first, second = request(0, ["a", "b"]), request(1, ["a", "b"])
    assert first["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["a", "b"]
    assert second["networkConfiguration"]["awsvpcConfiguration"]["subnets"] == ["b", "a"]
    assert first["startedBy"] == "r1" and first["count"] == 1 and first["launchType"] == "FARGATE"
    assert first["overrides"]["containerOverrides"] == [{"name": "gen", "environment": [{"name": "A", "value": "1"}]}]
    assert {t["key"]: t["value"] for t in second["tags"]} == {
        "constellation:deployment": "d", load_tasks.RUN_ID_TAG: "r1", load_tasks.TASK_INDEX_TAG: "1"
    }
    assert load_tasks.request_index(second) == 1


def test_capacity_shortages_are_retried_other_failures_are_not(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda seconds: None)

    class Client:
        def __init__(self, answers):
            self.answers = list(answers)

        def run_task(self, aws_retry, **request):
            return self.answers.pop(0)

    shortage = {"tasks": [], "failures": [{"reason": "Capacity is unavailable at this time."}]}
    started = {"tasks": [task(0)], "failures": []}
    assert load_tasks.launch_task(Client([shortage, shortage, started]), request(0, ["a"])) == task(0)

    refused = {"tasks": [], "failures": [{"reason": "You've reached the limit on the number of vCPUs"}]}
    with pytest.raises(load_tasks.TaskNotPlaced, match="limit on the number of vCPUs"):
        load_tasks.launch_task(Client([refused, started]), request(0, ["a"]))


def test_a_task_role_iam_has_not_propagated_yet_is_retried_other_client_errors_are_not(monkeypatch):
    monkeypatch.setattr("time.sleep", lambda seconds: None)
    from botocore.exceptions import ClientError

    def client_error(message: str) -> ClientError:
        return ClientError({"Error": {"Code": "ClientException", "Message": message}}, "RunTask")

    class Client:
        def __init__(self, answers):
            self.answers = list(answers)

        def run_task(self, aws_retry, **request):
            answer = self.answers.pop(0)
            if isinstance(answer, Exception):
                raise answer
            return answer

    not_yet = client_error("ECS was unable to assume the role 'arn:aws:iam::123456789012:role/d-task-us-east-2' that was provided for this task.")
    started = {"tasks": [task(0)], "failures": []}
    assert load_tasks.launch_task(Client([not_yet, not_yet, started]), request(0, ["a"])) == task(0)

    with pytest.raises(ClientError, match="TaskDefinition is inactive"):
        load_tasks.launch_task(Client([client_error("TaskDefinition is inactive"), started]), request(0, ["a"]))


def test_a_failed_launch_does_not_hide_the_tasks_that_started():
    def launch(req):
        if load_tasks.request_index(req) == 1:
            raise RuntimeError("no")
        return task(load_tasks.request_index(req))

    launched, failed = load_tasks.launch_tasks(launch, [request(i, ["a"]) for i in range(3)], concurrency=2)
    assert [load_tasks.task_index(t) for t in launched] == [0, 2]
    assert [(load_tasks.request_index(r), str(e)) for r, e in failed] == [(1, "no")]


def test_summary_counts_phases_and_keeps_exit_codes_by_index():
    tasks = [task(0, "PROVISIONING"), task(1), task(2, "STOPPED", "STOPPED", {"gen": 0, "side": None}), task(3, "DEPROVISIONING")]
    assert load_tasks.summarize(tasks) == {
        "counts": {"pending": 1, "running": 1, "stopped": 2, "total": 4},
        "exit_codes": {"2": {"gen": 0}},
    }
    assert load_tasks.not_yet_stopping(tasks) == tasks[:2] + tasks[3:]
