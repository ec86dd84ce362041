"""A load shape per region, on the path users run (tasks as containers from our images).

us-east-2 ramps 0 -> 4 VUs over 5 s, holds 4 for 10 s and ramps back to 0 over 5 s, split over
two tasks (one on demand, one on Fargate Spot: capacity mixed at 50 %); ca-central-1 joins 10 s
after the common start with a constant 2 VUs for the 10 s duration. The run lasts as long as its longest region (20 s). The VUs each interval measured in
summary.json follow each region's plan: within one task's rounding of the planned values across
the interval, and while a stage holds, the tasks add up to its target exactly.
"""

from __future__ import annotations

import json

from conftest import PRODUCTION
from results.report_data import planned_vus_at
from results.records import TaskRecord
from targets import api_like_target
from test_production_path import HOME, STEADY_SCRIPT, overrides, playbook, playbook_state, script, settings, stored, task_index

pytestmark = PRODUCTION

REMOTE = {
    "us-east-2": {"stages": [{"duration": "5s", "target": 4}, {"duration": "10s", "target": 4}, {"duration": "5s", "target": 0}]},
    "ca-central-1": {"vus": 2, "start_after": "10s"},
}
TASKS = {"us-east-2": 2, "ca-central-1": 1}


def planned_range(points: list, start_ms: int, end_ms: int) -> tuple[float, float]:
    """The least and the most VUs the plan has between two instants (its points in between included)."""
    instants = [start_ms, end_ms, *(at for at, _vus in points if start_ms < at < end_ms)]
    values = [planned_vus_at(points, at) for at in instants]
    return min(values), max(values)


def test_one_region_ramps_another_joins_later_and_each_follows_its_plan(production, tmp_path):
    deployment, run_id = "prodshape", "prod-shape-1"
    with api_like_target(median_ms=1.0) as target:
        variables = settings(
            production, tmp_path, deployment, run_id, REMOTE, 10,
            script=script(tmp_path, STEADY_SCRIPT),
            constellation_max_vus_per_task=2,
            constellation_script_env={"TARGET": target},
            # Half of each region's tasks, rounded down, on Fargate Spot: us-east-2's task 1.
            constellation_capacity="mixed",
            constellation_spot_percent="50",
        )
        assert playbook("init", variables).rc == 0
        result = playbook("run_test", variables)
        assert result.rc == 0, result.output[-6000:]
        report_dir = tmp_path / "report"
        report = playbook("visualize", variables | {"constellation_report_dir": str(report_dir)})
    assert report.rc == 0, report.output[-4000:]
    summary = json.loads((report_dir / "summary.json").read_text())
    plan = summary["plan"]
    assert {region: plan[region]["tasks"] for region in plan} == TASKS
    assert plan["us-east-2"]["planned_vus"] == [[0, 0], [5_000, 4], [15_000, 4], [20_000, 0]]
    assert plan["ca-central-1"]["planned_vus"] == [[0, 0], [10_000, 0], [10_000, 2], [20_000, 2]]
    assert summary["duration_ms"] == 20_000 and summary["verdict"] == "pass"

    # The tasks ran their region's stages, k6 splitting each target over them, on the capacity planned.
    capacity = {}
    for region, stages in (("us-east-2", "5000:4,10000:4,5000:0"), ("ca-central-1", "10000:0,0:2,10000:2")):
        for task in production.run_tasks(region, deployment, run_id):
            assert overrides(task)["load-generator"]["CONSTELLATION_STAGES"] == stages, task_index(task)
            capacity[(region, task_index(task))] = task.get("capacityProviderName") or task.get("launchType")
    assert capacity == {("us-east-2", 0): "FARGATE", ("us-east-2", 1): "FARGATE_SPOT", ("ca-central-1", 0): "FARGATE"}

    # Each interval's VUs against the plan, from the decided start.
    start = playbook_state(production, deployment, run_id)["start_at"]
    records, _progress = stored(production, f"{deployment}-123456789012-{HOME}", run_id)
    by_task: dict = {}
    for record in records:
        if isinstance(record, TaskRecord):
            by_task.setdefault((record.region, record.start_ms), {})[record.task] = record.vus
    held = {region: 0 for region in REMOTE}
    compared = []
    for region in REMOTE:
        points = plan[region]["planned_vus"]
        for point in summary["timeseries"][region]:
            if point["vus"] is None:
                continue
            offset = point["t_ms"] - start
            low, high = planned_range(points, offset, offset + summary["interval_ms"])
            compared.append((region, offset, point["vus"], low, high))
            assert low - TASKS[region] <= point["vus"] <= high + TASKS[region], (region, offset, point["vus"], low, high)
            if low == high and 0 <= offset and offset + summary["interval_ms"] <= points[-1][0]:
                tasks = by_task[(region, point["t_ms"])]
                assert sum(tasks.values()) == low == point["vus"], (region, offset, tasks, low)
                held[region] += 1
    print(f"shapes: (region, ms from the start, measured VUs, planned min, planned max) {compared}")
    assert held["us-east-2"] >= 1 and held["ca-central-1"] >= 1, compared
    # The later region ran nothing before it joined.
    early = [vus for region, offset, vus, _low, high in compared if region == "ca-central-1" and high == 0]
    assert early and set(early) == {0}, compared
    page = (report_dir / "index.html").read_text()
    assert '"name":"us-east-2 planned"' in page and '"name":"ca-central-1 planned"' in page

    assert playbook("teardown_all", variables).rc == 0
    production.assert_empty([HOME, *REMOTE])
