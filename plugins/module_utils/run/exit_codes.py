# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""What a task's exit code means: k6's own codes, the load generator's, a signal.

The load generator passes k6's exit code on as its own and to the orchestrator's test-end, and
uses codes of its own (80-89) for what failed before or around k6; 128 + N is a task stopped by
signal N. The load generator's image ships this file (as ``run.exit_codes``); run_test's judge
names the codes with it. It imports nothing.
"""

from __future__ import annotations

import enum

# k6's exit codes (go.k6.io/k6/errext/exitcodes; 110 is what k6 1.1 returns after exec.test.fail()).
K6_EXIT_CODES = {
    97: "CloudTestRunFailed",
    98: "CloudFailedToGetProgress",
    99: "ThresholdsHaveFailed",
    100: "SetupTimeout",
    101: "TeardownTimeout",
    102: "GenericTimeout",
    103: "ScriptStoppedFromRESTAPI",
    104: "InvalidConfig",
    105: "ExternalAbort",
    106: "CannotStartRESTAPI",
    107: "ScriptException",
    108: "ScriptAborted",
    109: "GoPanic",
    110: "MarkedAsFailed",
}
THRESHOLDS_CROSSED = 99  # the load ran; whether the run passes is the merged verdict's to say


class Failure(enum.IntEnum):
    """Why the load generator failed on its own account; k6's exit codes are never reused."""

    CONFIG = 80  # an environment variable is missing or invalid
    K6_UNUSABLE = 81  # the k6 binary is missing, does not run, or is older than 1.0
    SCRIPT_FETCH = 82  # the script could not be read from the home bucket
    AGGREGATOR_NOT_READY = 83  # the aggregator did not answer /ready before the start timeout
    ORCHESTRATOR = 84  # the orchestrator rejected this task or could not be reached
    START_TIMEOUT = 85  # the start was not decided before the start timeout
    K6_NOT_READY = 86  # k6 did not bring up its REST API (paused) in time
    AGGREGATOR_FINISH = 87  # the aggregator did not confirm its flush: results may be missing
    TEST_END = 88  # test-end could not be reported to the orchestrator
    SCRIPT_MISMATCH = 89  # the test in the bucket is not the one run_test checked (its SHA-256 differs)
    RUN_STOPPED = 90  # the run was stopped (stop_test, a global abort) before it started: k6 never ran


def describe_exit_code(code: int) -> str:
    """The name of a task's exit code: ``k6 ScriptException``, ``load generator START_TIMEOUT``, ..."""
    if code == 0:
        return "success"
    if code in K6_EXIT_CODES:
        return f"k6 {K6_EXIT_CODES[code]}"
    if code in {failure.value for failure in Failure}:
        return f"load generator {Failure(code).name}"
    if code > 128:
        return f"stopped by signal {code - 128}"
    return "unknown"


EXTERNAL_ABORT = 105  # k6 ended early on a signal: what a stopped run's tasks exit with


def load_ran(code: int, stopped: bool = False) -> bool:
    """Whether a task with this exit code ran its share of the load to the end (thresholds aside).

    In a ``stopped`` run (stop_test, a global abort), ending early is running to the end: a task
    whose k6 was stopped (105) or that was stopped before the start (RUN_STOPPED) ran what it had to.
    A task whose aggregator did not confirm its flush (AGGREGATOR_FINISH, which the load generator
    reports only when the load ran) ran its load and lost results: results/accounting.py judges
    that, as incomplete.
    """
    return code in (0, THRESHOLDS_CROSSED, Failure.AGGREGATOR_FINISH) or (
        stopped and code in (EXTERNAL_ABORT, Failure.RUN_STOPPED)
    )
