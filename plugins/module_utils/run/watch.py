# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Watching a run: one poll of every region, the lines a person reads, and when the run has ended.

A poll joins three readings: the run's tasks in each region (ECS), which tasks registered and
completed (the orchestrator) and the requests so far (the results store). The action
``constellation.loadtest.wait_for_run`` polls until every region has ended or the wait runs out;
this module decides what a poll means, so that it can be tested without waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from typing import Mapping

from ..results.accounting import describe_losses
from ..results.accounting import interrupted
from ..results.accounting import task_losses
from .exit_codes import describe_exit_code
from .exit_codes import load_ran


@dataclass(frozen=True)
class RegionPoll:
    """One region at one poll."""

    region: str
    planned: int
    tasks: Mapping[str, Any]  # ecs_load_tasks_info's result: counts and tasks
    run: Mapping[str, Any]  # orchestrator_state_info's run (empty before the run is planned)
    requests: Mapping[str, Any] | None  # run_progress_info's figures of the region, None if unknown
    requests_unknown: str = ""  # why the requests are unknown

    @property
    def ended(self) -> bool:
        """Every planned task of the region has stopped (completed or not: the judge tells which)."""
        return self.tasks["counts"]["stopped"] >= self.planned

    def unfinished(self) -> list[int]:
        """The planned tasks that have not reported the end of the test to the orchestrator."""
        completed = {int(task) for task in self.run.get("completed_tasks", {}).get(self.region, [])}
        return [task for task in range(self.planned) if task not in completed]

    def unregistered(self) -> list[int]:
        """The planned tasks that never registered, while the run has no start: what it waits for, or waited for in vain."""
        if self.run.get("start_at") is not None:
            return []
        registered = {int(task) for task in self.run.get("registered_tasks", {}).get(self.region, [])}
        return [task for task in range(self.planned) if task not in registered]

    def failed(self) -> list[str]:
        """The tasks that reported an end whose load did not run to the end, with their exit code named.

        0 and 99 (thresholds crossed) ran the load; the merged verdict judges thresholds, not this.
        In a stopped run, so did a task the stop ended. An interrupted task (SIGTERM outside a stop: a
        Spot interruption) ran part of it: :meth:`incomplete` names it.
        """
        codes = self.run.get("exit_codes", {}).get(self.region, {})
        stopped = bool(self.run.get("stop"))
        return [
            f"task {task}: exit {code} ({describe_exit_code(int(code))})"
            for task, code in sorted(codes.items(), key=lambda item: int(item[0]))
            if not load_ran(int(code), stopped) and not interrupted(int(code), stopped)
        ]

    def incomplete(self) -> list[str]:
        """The tasks whose results are missing by their own accounting (results/accounting.py), each named with what."""
        codes = self.run.get("exit_codes", {}).get(self.region, {})
        accounting = self.run.get("accounting", {}).get(self.region, {})
        losses = []
        for task in sorted(set(codes) | set(accounting), key=int):
            reasons = task_losses(accounting.get(task), codes.get(task), stopped=bool(self.run.get("stop")))
            if reasons:
                losses.append(describe_losses(self.region, task, reasons))
        return losses

    def summary(self) -> dict[str, Any]:
        """What the wait returns of the region."""
        return {
            "ended": self.ended,
            "counts": self.tasks["counts"],
            "tasks": self.tasks["tasks"],
            "unfinished": self.unfinished(),
            "unregistered": self.unregistered(),
            "failed": self.failed(),
            "incomplete": self.incomplete(),
        }

    def line(self) -> str:
        counts = self.tasks["counts"]
        registered = len(self.run.get("registered_tasks", {}).get(self.region, []))
        completed = len(self.run.get("completed_tasks", {}).get(self.region, []))
        if self.requests is None:
            requests = f"requests: unknown ({self.requests_unknown or 'no answer'})"
        else:
            requests = f"{self.requests['requests']:,} requests, {self.requests['error_rate'] * 100:.1f} % errors"
        start = f"; start at {self.run['start_at_iso8601']}" if self.run.get("start_at_iso8601") else ""
        return (
            f"{self.region}: {registered} of {self.planned} tasks registered, {counts['pending']} pending, "
            f"{counts['running']} running, {counts['stopped']} stopped, {completed} completed; {requests}{start}"
        )


def poll(
    planned: Mapping[str, int],
    tasks: Mapping[str, Mapping[str, Any]],
    run: Mapping[str, Any],
    progress: Mapping[str, Any],
) -> list[RegionPoll]:
    """The regions of one poll, in the plan's order; ``progress`` is run_progress_info's result, failed or not."""
    known = not progress.get("failed") and "regions" in progress
    return [
        RegionPoll(
            region=region,
            planned=int(count),
            tasks=tasks[region],
            run=run,
            requests=progress["regions"].get(region, {"requests": 0, "error_rate": 0.0}) if known else None,
            requests_unknown="" if known else str(progress.get("msg") or ""),
        )
        for region, count in planned.items()
    ]
