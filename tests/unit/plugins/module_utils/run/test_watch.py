"""What one poll of a run means: the line per region, and when the run has ended."""

from __future__ import annotations

from ansible_collections.constellation.loadtest.plugins.module_utils.run.watch import poll


def tasks(pending=0, running=0, stopped=0):
    return {"counts": {"pending": pending, "running": running, "stopped": stopped}, "tasks": []}


RUN = {
    "registered_tasks": {"us-east-2": ["0", "1"], "ap-south-1": ["0"]},
    "completed_tasks": {"us-east-2": ["1"], "ap-south-1": []},
    "start_at_iso8601": "2026-12-05T12:00:30.000Z",
}


def test_a_line_per_region_in_the_plans_order_with_requests_and_the_start():
    regions = poll(
        {"us-east-2": 2, "ap-south-1": 1},
        {"us-east-2": tasks(running=1, stopped=1), "ap-south-1": tasks(running=1)},
        RUN,
        {"regions": {"us-east-2": {"requests": 12345, "error_rate": 0.0125}}},
    )
    assert [region.line() for region in regions] == [
        "us-east-2: 2 of 2 tasks registered, 0 pending, 1 running, 1 stopped, 1 completed; "
        "12,345 requests, 1.2 % errors; start at 2026-12-05T12:00:30.000Z",
        # A region with no records yet has made no requests so far.
        "ap-south-1: 1 of 1 tasks registered, 0 pending, 1 running, 0 stopped, 0 completed; "
        "0 requests, 0.0 % errors; start at 2026-12-05T12:00:30.000Z",
    ]
    assert [region.ended for region in regions] == [False, False]


def test_a_region_has_ended_when_every_planned_task_has_stopped_completed_or_not():
    regions = poll({"us-east-2": 2}, {"us-east-2": tasks(stopped=2)}, RUN, {"regions": {}})
    assert regions[0].ended
    assert "2 stopped, 1 completed" in regions[0].line()
    # Fewer stopped than planned (a task not launched yet) is not the end.
    assert not poll({"us-east-2": 3}, {"us-east-2": tasks(stopped=2)}, RUN, {"regions": {}})[0].ended


def test_unknown_requests_say_why_and_a_run_not_planned_yet_shows_nothing_registered():
    failed = {"failed": True, "msg": "AccessDenied on s3:ListBucket"}
    (region,) = poll({"us-east-2": 1}, {"us-east-2": tasks(pending=1)}, {"exists": False}, failed)
    assert region.line() == (
        "us-east-2: 0 of 1 tasks registered, 1 pending, 0 running, 0 stopped, 0 completed; "
        "requests: unknown (AccessDenied on s3:ListBucket)"
    )


def test_the_judge_names_unfinished_tasks_and_loads_that_did_not_run_but_not_crossed_thresholds():
    run = {
        "completed_tasks": {"us-east-2": ["0", "1", "3"]},
        "exit_codes": {"us-east-2": {"0": 0, "1": 99, "3": 107, "10": 85}},
    }
    (region,) = poll({"us-east-2": 4}, {"us-east-2": tasks(stopped=4)}, run, {"regions": {}})
    assert region.unfinished() == [2]
    # 0 ran, 99 ran (thresholds are the merged verdict's); the others did not, in task order.
    assert region.failed() == ["task 3: exit 107 (k6 ScriptException)", "task 10: exit 85 (load generator START_TIMEOUT)"]
    assert region.summary()["failed"] == region.failed() and region.summary()["unfinished"] == [2]


def test_a_task_stopped_by_a_signal_is_named_so():
    run = {"completed_tasks": {"eu-west-1": ["0"]}, "exit_codes": {"eu-west-1": {"0": 143}}}
    (region,) = poll({"eu-west-1": 1}, {"eu-west-1": tasks(stopped=1)}, run, {"regions": {}})
    assert region.failed() == ["task 0: exit 143 (stopped by signal 15)"]
    assert region.unfinished() == []


def test_in_a_stopped_run_a_task_the_stop_ended_ran_its_load_and_a_crash_still_did_not():
    run = {"completed_tasks": {"us-east-2": ["0", "1", "2"]}, "exit_codes": {"us-east-2": {"0": 105, "1": 90, "2": 107}}}
    (region,) = poll({"us-east-2": 3}, {"us-east-2": tasks(stopped=3)}, run, {"regions": {}})
    # Outside a stop, 105 is an interruption (a Spot interruption): part of its load is missing, not failed.
    assert region.failed() == ["task 1: exit 90 (load generator RUN_STOPPED)", "task 2: exit 107 (k6 ScriptException)"]
    assert region.incomplete() == [
        "us-east-2 task 0: it was interrupted (SIGTERM: a Spot interruption or a StopTask) before the end of its load"
    ]

    (stopped,) = poll({"us-east-2": 3}, {"us-east-2": tasks(stopped=3)}, dict(run, stop={"reason": "stopped"}), {"regions": {}})
    assert stopped.failed() == ["task 2: exit 107 (k6 ScriptException)"]
    assert stopped.incomplete() == []


def test_the_judge_names_tasks_whose_results_are_missing_apart_from_loads_that_did_not_run():
    run = {
        "completed_tasks": {"us-east-2": ["0", "1", "2", "3"]},
        "exit_codes": {"us-east-2": {"0": 0, "1": 87, "2": 0, "3": 0}},
        "accounting": {"us-east-2": {
            "0": {"k6_requests": 500, "requests_received": 500, "requests_written": 500, "records_lost": 0},
            "1": {"k6_requests": 386},  # the aggregator was killed: no counts of its own
            "2": {"k6_requests": 500, "requests_received": 500, "requests_written": 440, "records_lost": 3},
            "3": {"k6_requests": 500, "requests_received": 499, "requests_written": 499, "records_lost": 0},
        }},
    }
    (region,) = poll({"us-east-2": 4}, {"us-east-2": tasks(stopped=4)}, run, {"regions": {}})
    assert region.failed() == [], "a lost flush is missing results, not a load that did not run"
    assert region.summary()["incomplete"] == region.incomplete() == [
        "us-east-2 task 1: its aggregator did not confirm the final flush (it died, or the results store refused its records)",
        "us-east-2 task 2: its aggregator could not write 3 records to the results store; "
        "60 of the 500 requests k6 counted are not in the records its aggregator wrote",
        "us-east-2 task 3: 1 of the 500 requests k6 counted are not in the records its aggregator wrote",
    ]


def test_a_run_that_never_started_names_the_tasks_that_never_registered():
    run = {"registered_tasks": {"us-east-2": ["0", "2"]}, "completed_tasks": {"us-east-2": ["0", "1", "2"]},
           "exit_codes": {"us-east-2": {"0": 85, "1": 84, "2": 85}}}
    (region,) = poll({"us-east-2": 3}, {"us-east-2": tasks(stopped=3)}, run, {"regions": {}})
    assert region.summary()["unregistered"] == [1]
    started = dict(run, start_at=1_764_000_000_000, registered_tasks={"us-east-2": ["0", "1", "2"]})
    assert poll({"us-east-2": 3}, {"us-east-2": tasks(stopped=3)}, started, {"regions": {}})[0].unregistered() == []
