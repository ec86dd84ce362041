"""The load generator's estimate of its clock's offset to the orchestrator's.

A fake orchestrator answers test-init with its own clock (ours plus a known offset), after a
delay before it reads its clock and another after: an answer whose two delays differ by D is
off by D/2, so the answer with the shortest round trip must win.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parents[5]
sys.path.insert(0, str(REPO / "tests"))

from containers import load_entrypoint  # noqa: E402

entrypoint = load_entrypoint("load_generator")

TRUE_OFFSET_MS = 2_500.0


class SlowOrchestrator:
    """Answers test-init after ``(before, after)`` seconds of delay, one pair per call."""

    def __init__(self, delays: list[tuple[float, float]]) -> None:
        self.delays = list(delays)
        self.calls = 0

    def start_state(self) -> dict:
        before, after = self.delays[min(self.calls, len(self.delays) - 1)]
        self.calls += 1
        if before is None:
            raise entrypoint.OrchestratorUnavailable("throttled")
        time.sleep(before)
        server_time = time.time() * 1000 + TRUE_OFFSET_MS
        time.sleep(after)
        return {"state": True, "start_at": server_time + 30_000, "server_time": server_time}


def first_answer(before: float, after: float) -> tuple[dict, float]:
    sent_ms = time.time() * 1000
    return SlowOrchestrator([(before, after)]).start_state(), sent_ms


def test_the_answer_with_the_shortest_round_trip_sets_the_offset() -> None:
    answer, sent_ms = first_answer(0.0, 0.4)  # alone it would be 200 ms off
    orchestrator = SlowOrchestrator([(0.1, 0.0), (0.0, 0.0), (0.2, 0.1), (None, None), (0.05, 0.0)])
    offset_ms, round_trip_ms = entrypoint.LoadGenerator.estimate_offset(SimpleNamespace(orchestrator=orchestrator), answer, sent_ms)
    assert orchestrator.calls == entrypoint.CLOCK_SAMPLES - 1
    assert round_trip_ms < 50
    assert abs(offset_ms - TRUE_OFFSET_MS) < 25


def test_no_more_answers_are_asked_when_the_start_is_near() -> None:
    answer, sent_ms = first_answer(0.0, 0.0)
    answer["start_at"] = answer["server_time"] + 100  # a quarter of the lead is shorter than one more round trip could be
    orchestrator = SlowOrchestrator([(0.05, 0.05)])
    entrypoint.LoadGenerator.estimate_offset(SimpleNamespace(orchestrator=orchestrator), answer, sent_ms)
    assert orchestrator.calls < 2
