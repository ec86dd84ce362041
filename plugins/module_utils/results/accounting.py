# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What became of each task's requests: nothing is lost silently.

Every task reports in its ``test-end`` what k6 counted (``k6_requests``, from k6's own summary)
and what its aggregator did with it: the requests it took in from k6's pushes, the requests in the
records it wrote, the records it lost and the store calls it tried again (the orchestrator keeps
it: ``orchestrator_state.ACCOUNTING_FIELDS``). A task's results are **incomplete** when

* its aggregator did not confirm the final flush (the task's exit code
  :data:`AGGREGATOR_UNCONFIRMED`: killed, out of memory, or the store refused to the end),
* its aggregator lost records (rejected, failed, dropped from a full queue, not flushed in time),
* or fewer requests are in the results store (or, before the report reads the store, in what the
  aggregator wrote) than k6 counted;

and part of the planned load is missing when a task was **interrupted**: stopped with SIGTERM
while the run was not (a Fargate Spot interruption, a StopTask of ours or anyone's). Its k6 ended
gracefully and its records up to then are kept (exit code :data:`INTERRUPTED`); the report says how
much of its planned load did not run (:func:`missing_share`).

run_test judges the aggregators' counts as soon as the tasks ended (``run/watch.py``); the report
judges the store itself and makes the verdict ``incomplete``. Either fails the play unless the user
sets ``constellation_allow_incomplete``.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Optional

# The load generator's exit code when the aggregator did not confirm its flush: run/exit_codes's
# Failure.AGGREGATOR_FINISH (this layer imports nothing of run/; a unit test keeps them equal).
AGGREGATOR_UNCONFIRMED = 87
# k6's exit code when a signal ended it early (run/exit_codes's EXTERNAL_ABORT): in a run that was not
# stopped, the task was interrupted.
INTERRUPTED = 105


def interrupted(exit_code: Optional[int], stopped: bool) -> bool:
    """Whether a task that ended with ``exit_code`` was interrupted: its load is partly missing, not failed."""
    return exit_code == INTERRUPTED and not stopped


def task_losses(
    accounting: Optional[Mapping[str, Any]],
    exit_code: Optional[int],
    stored_requests: Optional[int] = None,
    stopped: bool = False,
    interruption: str = "",
) -> list[str]:
    """Why one task's results are incomplete, each reason a phrase; empty when nothing is missing.

    ``accounting`` is what the task reported (None or empty for a task that reported none);
    ``stored_requests`` what the results store holds of it, when read. The store is the truth when
    k6's count is known: an aggregator that did not confirm its flush in time may still have written
    everything before its container was stopped, and then nothing is missing. Without the store the
    aggregator's own counts judge: its unconfirmed flush, its lost records, the requests it wrote.
    """
    accounting = accounting or {}
    cut_short = [] if not interrupted(exit_code, stopped) else [
        "it was interrupted (SIGTERM: a Spot interruption or a StopTask) before the end of its load" + interruption
    ]
    k6_requests = accounting.get("k6_requests")
    held = stored_requests if stored_requests is not None else accounting.get("requests_written")
    short = k6_requests is not None and held is not None and held < k6_requests
    if stored_requests is not None and k6_requests is not None and not short:
        return cut_short
    reasons = []
    if exit_code == AGGREGATOR_UNCONFIRMED:
        reasons.append("its aggregator did not confirm the final flush (it died, or the results store refused its records)")
    lost = accounting.get("records_lost") or 0
    if lost:
        reasons.append(f"its aggregator could not write {lost:,} records to the results store")
    if short:
        where = "in the results store" if stored_requests is not None else "in the records its aggregator wrote"
        reasons.append(f"{k6_requests - held:,} of the {k6_requests:,} requests k6 counted are not {where}")
    return cut_short + reasons


def missing_share(planned_vus: Sequence[Sequence[int]], ran_ms: float) -> Optional[float]:
    """The share of a task's planned load (VU-time, under the region's planned VUs from the start, ``[ms, VUs]`` points
    joined by straight lines) after ``ran_ms``: what an interruption then cost; None without a plan."""
    total = _vu_time(planned_vus, float("inf"))
    if not total:
        return None
    return max(0.0, min(1.0, 1 - _vu_time(planned_vus, ran_ms) / total))


def _vu_time(points: Sequence[Sequence[int]], until_ms: float) -> float:
    area = 0.0
    for (start, start_vus), (end, end_vus) in zip(points, points[1:]):
        if until_ms <= start:
            break
        stop = min(end, until_ms)
        if stop > start:
            at_stop = start_vus + (end_vus - start_vus) * (stop - start) / (end - start)
            area += (start_vus + at_stop) / 2 * (stop - start)
    return area


def describe_losses(region: str, task: str, reasons: list[str]) -> str:
    """One line naming the task and what it lost."""
    return f"{region} task {task}: " + "; ".join(reasons)
