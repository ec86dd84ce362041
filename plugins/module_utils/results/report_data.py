# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The numbers of the report: a run's interval records read back from the results store, and summary.json.

:func:`read_records_s3` and :func:`read_records_timestream` read every record of a run; they take
plain boto3 clients (``s3``, ``timestream-query``). They stream: each record is added to the
records of its region, interval and series as it is read (:class:`TaskFold`), so what they hold
grows with regions, intervals and request names, not with tasks (2,000 tasks of 10 minutes with
5 request names are 1.2 million records, folded into some 12,000). :func:`build_summary` turns the records, the
run's state (:func:`orchestrator_state.describe_run`) and the thresholds into summary.json as
``docs/summary.md`` defines it. It is a pure function: the same inputs give the same summary,
whatever order the records come in.

Definitions the summary relies on:

* Percentiles come from the histograms of every task and region merged bucket by bucket
  (merging is exact, so the order does not matter); latencies are milliseconds.
* ``measured_seconds``, the span every throughput (``rps``, counter ``rate``) divides by, is the
  time the load ran: from the earliest task's k6 start (``started_at``) to the latest task's k6
  end (``accounting.ended_at``: k6's own run time after its start), both on the orchestrator's
  clock, when every task that started reported its end; so it is right for either load model.
  Otherwise (a partial run, tasks of an earlier image) it runs from that start (else the planned
  ``start_at``, but never before the first interval read) to the end of the last interval read, or
  to the start plus the planned duration when that falls inside the last interval: the span of
  aligned intervals, up to one interval longer than the load.
* Each time series point covers one interval: its ``rps`` divides by the interval's length, and
  its ``vus`` is the sum of the VUs the tasks reported for it (null if none did). Every series has
  a point for every interval start found in the run's records.
* Totals of regions and requests divide by the same ``measured_seconds`` as the overall totals,
  so the regions' ``rps`` add up to the overall ``rps``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any
from typing import Callable
from typing import Optional
from urllib.parse import urlencode

try:
    from botocore.exceptions import ClientError
except ImportError:
    pass  # Handled by the modules (AnsibleAWSModule) and the tests

from .accounting import AGGREGATOR_UNCONFIRMED
from .accounting import describe_losses
from .accounting import missing_share
from .accounting import task_losses
from .histogram import Histogram
from .histogram import merge_all
from .progress import READ_THREADS
from .progress import is_record_key
from .progress import records_prefix
from .progress import sql_identifier
from .progress import time_condition
from .progress import timestream_rows
from .progress import validate_run_id
from .records import Record
from .records import RequestRecord
from .records import TaskRecord
from .records import from_json
from .records import from_timestream_row
from .thresholds import FRACTION_DIGITS
from .thresholds import LATENCY_DIGITS
from .thresholds import PER_SECOND_DIGITS
from .thresholds import Threshold
from .thresholds import evaluate
from .thresholds import rounded
from .thresholds import trend_ms

SCHEMA = 1
_TIMESTREAM_NAME = re.compile(r"[A-Za-z0-9_.-]{3,256}")
SECONDS_DIGITS = 3
K6_THRESHOLDS_CROSSED = 99  # k6's exit code when one of the task's own thresholds was crossed
# What the tasks of a stopped run exit with (run/exit_codes: EXTERNAL_ABORT, Failure.RUN_STOPPED).
STOPPED_RUN_EXIT_CODES = (105, 90)
# The latency statistics of <Totals> and of time series points, as k6 trend aggregations.
LATENCY_STATISTICS = {
    "min": "min",
    "avg": "avg",
    "med": "med",
    "p90": "p(90)",
    "p95": "p(95)",
    "p99": "p(99)",
    "max": "max",
}
POINT_PERCENTILES = {"p50": "p(50)", "p90": "p(90)", "p95": "p(95)", "p99": "p(99)"}
# The baseline comparison: name -> (how to read it from <Totals>, digits).
BASELINE_FIGURES = {
    "rps": (lambda totals: totals["rps"], PER_SECOND_DIGITS),
    "p95": (lambda totals: totals["latency"]["p95"], LATENCY_DIGITS),
    "error_rate": (lambda totals: totals["error_rate"], FRACTION_DIGITS),
}


class RecordsError(ValueError):
    """The results store holds something that is not an interval record of the run; the message says where."""


# ---- Reading the results store.

# The task every folded record stands for: all of them.
ALL_TASKS = "*"
# Objects being read at once, beyond those being parsed: enough to hide S3's latency, few
# enough that the bodies waiting to be parsed stay small.
READ_AHEAD = 4 * READ_THREADS


class TaskFold:
    """The records of every task of a run, added up as they are read, per region, interval and series.

    The report never needs one task's records: its totals, percentiles, series and thresholds are
    over regions and request names. A request record is kept per region, request name, method,
    status class and interval, and whether its requests all failed, none did or some did (so that
    an ``expected_response`` threshold sees what it would in the tasks' records); a task record per
    region and interval. Counts add up and histograms merge exactly, in the order read.
    """

    def __init__(self) -> None:
        self.read = 0
        self.requests_by_task: dict[tuple[str, str], int] = {}  # (region, task) -> its requests read
        self._requests: dict[tuple, list] = {}
        self._tasks: dict[tuple, list[int]] = {}

    def add(self, record: Record) -> None:
        self.read += 1
        if isinstance(record, RequestRecord):
            task = (record.region, record.task)
            self.requests_by_task[task] = self.requests_by_task.get(task, 0) + record.requests
            mix = 0 if record.failures == 0 else 1 if record.failures == record.requests else 2
            key = (record.run_id, record.region, record.request, record.method, record.status_class, record.start_ms, record.length_ms, mix)
            held = self._requests.get(key)
            if held is None:
                self._requests[key] = [record.requests, record.failures, record.latency.copy()]
            else:
                held[0] += record.requests
                held[1] += record.failures
                held[2].add(record.latency)
            return
        key = (record.run_id, record.region, record.start_ms, record.length_ms)
        values = (record.iterations, record.data_received, record.data_sent, record.vus)
        held_values = self._tasks.get(key)
        if held_values is None:
            self._tasks[key] = list(values)
        else:
            for index, value in enumerate(values):
                held_values[index] += value

    def records(self) -> list[Record]:
        """The folded records, each standing for every task (``task`` is :data:`ALL_TASKS`)."""
        folded: list[Record] = [
            RequestRecord(run_id, region, ALL_TASKS, request, method, status, start, length, requests, failures, latency)
            for (run_id, region, request, method, status, start, length, _mix), (requests, failures, latency) in self._requests.items()
        ]
        folded.extend(
            TaskRecord(run_id, region, ALL_TASKS, start, length, *values)
            for (run_id, region, start, length), values in self._tasks.items()
        )
        return folded


def read_records_s3(client, bucket: str, run_id: str, fold: Optional[TaskFold] = None) -> list[Record]:
    """Every record in the run's ``*.jsonl`` objects of ``bucket``, folded over the tasks
    (:class:`TaskFold`, ``fold`` if given: it keeps each task's requests); RecordsError names a bad line.

    The objects are read ``READ_THREADS`` at a time and parsed in key order, one after the other.
    """
    prefix = records_prefix(run_id)
    paginator = client.get_paginator("list_objects_v2")
    keys = sorted(
        item["Key"]
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix)
        for item in page.get("Contents", [])
        if is_record_key(item["Key"])
    )
    fold = TaskFold() if fold is None else fold

    def body(key: str) -> bytes:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def parse(key: str, data: bytes) -> None:
        for record in _json_lines(f"s3://{bucket}/{key}", data, run_id):
            fold.add(record)

    with ThreadPoolExecutor(max_workers=READ_THREADS) as pool:
        reading: deque = deque()
        for key in keys:
            reading.append((key, pool.submit(body, key)))
            if len(reading) >= READ_AHEAD:
                key_read, future = reading.popleft()
                parse(key_read, future.result())
        while reading:
            key_read, future = reading.popleft()
            parse(key_read, future.result())
    return fold.records()


def timestream_query(database: str, table: str, run_id: str, start_at_ms: Optional[int] = None) -> str:
    """The SQL selecting every interval record of the run (both kinds) from the table.

    ``start_at_ms``, the run's decided start, keeps the scan to the run's time.
    """
    for what, name in (("database", database), ("table", table)):
        if not isinstance(name, str) or not _TIMESTREAM_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a Timestream {what} name: 3 to 256 of a-z, A-Z, 0-9, '_', '.' and '-'")
    # The run id is validated (letters, digits, '_' and '-' only), so it cannot end the SQL string.
    return (
        f"SELECT * FROM {sql_identifier(database)}.{sql_identifier(table)}"
        f" WHERE {sql_identifier('run_id')} = '{validate_run_id(run_id)}'"
        f" AND {sql_identifier('measure_name')} IN ('{RequestRecord.KIND}', '{TaskRecord.KIND}')"
        f" AND {time_condition(start_at_ms)}"
    )


def read_records_timestream(
    client, database: str, table: str, run_id: str, start_at_ms: Optional[int] = None, fold: Optional[TaskFold] = None
) -> list[Record]:
    """Every record of the run in a Timestream table, read through every page of the query, folded
    over the tasks (:class:`TaskFold`, ``fold`` if given).

    Timestream answers a long query with pages of no rows and a NextToken until it has results;
    :func:`progress.timestream_rows` follows them. One table holds both kinds, so each row has NULLs in the other
    kind's columns, which :func:`records.from_timestream_row` does not read.
    """
    query = timestream_query(database, table, run_id, start_at_ms)
    fold = TaskFold() if fold is None else fold
    try:
        for names, data in timestream_rows(client, query):
            where = f"row {fold.read + 1} of the Timestream query on {database}.{table}"
            values = [_scalar(datum, where) for datum in data]
            if len(values) != len(names):
                raise RecordsError(f"{where} has {len(values)} values for {len(names)} columns")
            fold.add(_record(where, from_timestream_row, dict(zip(names, values, strict=True)), run_id))
    except ClientError as error:
        # A table no record was ever written to has no columns yet: the run has no records.
        details = error.response.get("Error", {})
        if details.get("Code") == "ValidationException" and "does not exist" in details.get("Message", ""):
            return []
        raise
    return fold.records()


# ---- summary.json.


def build_summary(
    records: Iterable[Record],
    *,
    run: Mapping[str, Any],
    plan: Mapping[str, Mapping[str, int]],
    run_id: str,
    deployment: Optional[str],
    results_store: str,
    thresholds: Iterable[Threshold] = (),
    baseline_records: Optional[Iterable[Record]] = None,
    baseline_run_id: Optional[str] = None,
    baseline_run: Optional[Mapping[str, Any]] = None,
    duration_ms: Optional[int] = None,
    stored_requests: Optional[Mapping[tuple[str, str], int]] = None,
) -> dict[str, Any]:
    """summary.json (docs/summary.md) of the run's records, its state ``run`` (describe_run) and ``plan``.

    ``plan`` is ``{region: {"vus": ..., "tasks": ...}}``. ``thresholds`` are parsed
    (:func:`thresholds.parse_all`). ``baseline_run`` (describe_run of the baseline) is optional:
    it gives the baseline's start, without which its span starts at its first interval.
    ``duration_ms``, the planned length of the load when known, ends the span before the end of the
    last interval when the load ended earlier. ``stored_requests`` is each task's requests in the
    store, ``{(region, task): requests}`` (:attr:`TaskFold.requests_by_task`); without it they are
    counted from ``records``, which must then be the tasks' own.
    """
    ordered = _ordered(records)
    if stored_requests is None:
        stored_requests = _requests_by_task(ordered)
    measured = measured_seconds(ordered, run, duration_ms)
    interval = interval_ms(ordered)
    starts = sorted({record.start_ms for record in ordered})
    regions = sorted(set(run.get("regions") or {}) | set(plan) | {record.region for record in ordered})
    data = _Data(ordered)
    evaluated = evaluate(
        thresholds, ordered, measured_seconds=measured, task_thresholds=run.get("task_thresholds") or {}
    )
    complete = is_complete(run)
    exit_codes = _sorted_mapping(run.get("exit_codes") or {})
    accounting = _accounting(run, stored_requests, plan)
    stop = run.get("stop")
    overall = data.totals(None, measured)
    by_region = {region: data.totals(region, measured) for region in regions}
    return {
        "schema": SCHEMA,
        "run_id": run_id,
        "deployment": deployment,
        "results_store": results_store,
        "complete": complete,
        "stop": dict(stop) if stop else None,
        "progress": _progress(run),
        "start_at_ms": run.get("start_at"),
        "start_at": run.get("start_at_iso8601"),
        "start_skew_ms": _start_skew_ms(run),
        "data_from_ms": min(record.start_ms for record in ordered) if ordered else None,
        "data_to_ms": max(record.start_ms + record.length_ms for record in ordered) if ordered else None,
        "measured_seconds": rounded(measured, SECONDS_DIGITS),
        "interval_ms": interval,
        "plan": {region: _region_plan(plan[region]) for region in sorted(plan)},
        "overall": overall,
        "regions": by_region,
        "requests": data.request_rows(measured),
        "status_classes": data.status_classes(regions),
        "timeseries": data.timeseries(regions, starts, interval),
        "thresholds": evaluated,
        "task_thresholds": _sorted_mapping(run.get("task_thresholds") or {}),
        "exit_codes": exit_codes,
        "baseline": _baseline(overall, by_region, data.regions, baseline_records, baseline_run_id, baseline_run),
        "accounting": accounting,
        "verdict": verdict(complete, evaluated, exit_codes, stopped=bool(stop), incomplete=bool(accounting["incomplete"])),
    }


# The Grafana dashboard the collection ships (files/grafana/constellation-loadtest.json: its uid).
GRAFANA_DASHBOARD_PATH = "d/constellation-loadtest/constellation-loadtest-run"
DASHBOARD_MARGIN_MS = 60_000


def dashboard_link(grafana_url: Optional[str], summary: Mapping[str, Any]) -> Optional[str]:
    """The shipped Grafana dashboard at ``grafana_url`` showing the run of ``summary``: its run, its time (a minute
    either side; until now while it runs) and its overall p95 and error-rate thresholds as the dashboard's lines."""
    if not grafana_url:
        return None
    parameters: dict[str, Any] = {"var-run_id": summary["run_id"]}
    start = summary.get("start_at_ms") or summary.get("data_from_ms")
    if start is not None:
        parameters["from"] = start - DASHBOARD_MARGIN_MS
        end = summary.get("data_to_ms")
        parameters["to"] = end + DASHBOARD_MARGIN_MS if summary.get("complete") and end is not None else "now"
    for threshold in summary.get("thresholds") or []:
        if threshold.get("tags") or threshold.get("operator") not in ("<", "<="):
            continue
        if (threshold.get("metric"), threshold.get("aggregation")) == ("http_req_duration", "p(95)"):
            parameters.setdefault("var-p95_threshold_ms", f"{threshold['limit']:g}")
        if (threshold.get("metric"), threshold.get("aggregation")) == ("http_req_failed", "rate"):
            parameters.setdefault("var-error_rate_threshold", f"{threshold['limit']:g}")
    return f"{grafana_url.rstrip('/')}/{GRAFANA_DASHBOARD_PATH}?{urlencode(parameters)}"


def _region_plan(planned: Mapping[str, Any]) -> dict[str, Any]:
    """A region's plan as the report shows it: VUs (its peak) and tasks, and when the run planned them, how long it runs
    and its planned VUs over time (``[ms from the start, VUs]`` points joined by straight lines)."""
    shown = {"vus": planned.get("vus"), "tasks": planned.get("tasks")}
    for key in ("duration_ms", "planned_vus"):
        if planned.get(key) is not None:
            shown[key] = planned[key]
    return shown


def planned_vus_at(points: Sequence[Sequence[int]], at_ms: float) -> float:
    """The planned VUs ``at_ms`` after the start, on the straight lines between ``points`` (0 before and after them; at a
    jump, the value after it)."""
    if not points or at_ms < points[0][0] or at_ms > points[-1][0]:
        return 0.0
    value = float(points[0][1])
    for (start, start_vus), (end, end_vus) in zip(points, points[1:]):
        if start <= at_ms <= end:
            value = float(end_vus) if end == start else start_vus + (end_vus - start_vus) * (at_ms - start) / (end - start)
    return value


def _requests_by_task(records: Iterable[Record]) -> dict[tuple[str, str], int]:
    counted: dict[tuple[str, str], int] = defaultdict(int)
    for record in records:
        if isinstance(record, RequestRecord):
            counted[(record.region, record.task)] += record.requests
    return dict(counted)


def _accounting(
    run: Mapping[str, Any], stored_requests: Mapping[tuple[str, str], int], plan: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    """Each ended task's requests as k6 counted them against the store's, and what is missing (docs/summary.md)."""
    reported = run.get("accounting") or {}
    exit_codes = run.get("exit_codes") or {}
    stopped = bool(run.get("stop"))
    ended_at = {
        (region, task): counts.get("ended_at") for region, by_task in reported.items() for task, counts in (by_task or {}).items()
    }
    tasks: dict[str, dict[str, dict[str, Any]]] = {}
    incomplete = []
    for region in sorted(set(reported) | set(exit_codes)):
        ended = set(reported.get(region) or {}) | set(exit_codes.get(region) or {})
        for task in sorted(ended, key=int):
            counts = dict((reported.get(region) or {}).get(task) or {})
            counts.pop("ended_at", None)
            stored = stored_requests.get((region, task), 0)
            code = (exit_codes.get(region) or {}).get(task)
            reasons = task_losses(counts, code, stored, stopped, _interruption(run, plan.get(region), ended_at.get((region, task))))
            tasks.setdefault(region, {})[task] = {**counts, "stored_requests": stored, "missing": reasons}
            if reasons:
                incomplete.append(describe_losses(region, task, reasons))
    counted = [entry["k6_requests"] for by_task in tasks.values() for entry in by_task.values() if "k6_requests" in entry]
    accounting = {
        "k6_requests": sum(counted) if counted else None,
        "stored_requests": sum(stored_requests.values()),
        "store_retries": sum(entry.get("store_retries", 0) for by_task in tasks.values() for entry in by_task.values()),
        "incomplete": incomplete,
        "tasks": tasks,
    }
    live_metrics = _live_metrics(tasks)
    return accounting | ({"live_metrics": live_metrics} if live_metrics else {})


def _interruption(run: Mapping[str, Any], planned: Optional[Mapping[str, Any]], ended_at: Optional[int]) -> str:
    """When an interrupted task's load ended and the share of its planned load that did not run, as a phrase."""
    start = run.get("start_at")
    if start is None or ended_at is None:
        return ""
    ran_ms = ended_at - start
    share = missing_share((planned or {}).get("planned_vus") or [], ran_ms)
    when = f" ({ran_ms / 1000:.1f} s after the start"
    return when + (f": {share * 100:.0f} % of its planned load did not run)" if share is not None else ")")


def _live_metrics(tasks: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> Optional[dict[str, Any]]:
    """What the tasks forwarded to the user's Prometheus, and which of them it did not all take; None without forwarding.

    Live metrics are a view, not the results: a push Prometheus missed costs its charts a point,
    never a request of the report, so it is reported but judges nothing.
    """
    reported = [
        (region, task, entry) for region, by_task in tasks.items() for task, entry in by_task.items() if "live_metrics_sent" in entry
    ]
    if not reported:
        return None
    gaps = [
        f"{region} task {task}: {entry.get('live_metrics_lost', 0):,} of"
        f" {entry['live_metrics_sent'] + entry.get('live_metrics_lost', 0):,} pushes not taken"
        for region, task, entry in reported
        if entry.get("live_metrics_lost")
    ]
    entries = [entry for _region, _task, entry in reported]
    return {
        "sent": sum(entry["live_metrics_sent"] for entry in entries),
        "lost": sum(entry.get("live_metrics_lost", 0) for entry in entries),
        "gaps": gaps,
    }


def measured_seconds(
    records: Sequence[Record], run: Mapping[str, Any], duration_ms: Optional[int] = None
) -> Optional[float]:
    """The span throughput divides by (see the module docstring); None without records.

    From the first k6 start to the last k6 end when every task that started reported its end.
    Else from the start of the load to the end of the last interval read, or to the start plus
    ``duration_ms`` if that is earlier but still inside the last interval (the intervals are
    aligned, so the last one usually runs past the end of the load).
    """
    if not records:
        return None
    started = [ms for tasks in (run.get("started_at") or {}).values() for ms in tasks.values()]
    ended = [
        counts["ended_at"]
        for tasks in (run.get("accounting") or {}).values()
        for counts in tasks.values()
        if "ended_at" in counts
    ]
    if started and len(ended) >= len(started) and max(ended) > min(started):
        return (max(ended) - min(started)) / 1000
    first = min(record.start_ms for record in records)
    end = max(record.start_ms + record.length_ms for record in records)
    last_start = max(record.start_ms for record in records)
    began = min(started) if started else run.get("start_at")
    start = began if began is not None and first <= began < end else first
    if duration_ms and began is not None and last_start < began + duration_ms < end:
        end = began + duration_ms
    return (end - start) / 1000


def interval_ms(records: Sequence[Record]) -> Optional[int]:
    """The length of the records' intervals; ValueError if they differ (aggregators set up differently)."""
    lengths = sorted({record.length_ms for record in records})
    if len(lengths) > 1:
        raise ValueError(
            f"the run's records have intervals of {', '.join(map(str, lengths))} ms; one run's aggregators"
            " must all use the same interval"
        )
    return lengths[0] if lengths else None


def is_complete(run: Mapping[str, Any]) -> bool:
    """Whether every planned task of every region has ended."""
    completed = run.get("completed_tasks") or {}
    return all(len(completed.get(region, ())) >= planned for region, planned in (run.get("regions") or {}).items())


def verdict(
    complete: bool,
    thresholds: Sequence[Mapping[str, Any]],
    exit_codes: Mapping[str, Mapping[str, int]],
    stopped: bool = False,
    incomplete: bool = False,
) -> str:
    """``partial`` while tasks run; ``incomplete`` when results of a task are missing (the
    accounting); ``fail`` on a breached threshold or a task that failed; else ``pass``.

    Missing results come first: the thresholds were judged on part of the data. A task that only
    crossed one of its own thresholds (k6's exit code 99) does not fail the run by itself: it
    judged its slice of the load, and the merged data decides. In a ``stopped`` run the verdict is
    that of what ran: a task ended by the stop did not fail.
    """
    if not complete:
        return "partial"
    if incomplete:
        return "incomplete"
    if any(not threshold["ok"] for threshold in thresholds):
        return "fail"
    if any(not ran_its_load(code, stopped) for codes in exit_codes.values() for code in codes.values()):
        return "fail"
    return "pass"


def ran_its_load(exit_code: int, stopped: bool = False) -> bool:
    """Whether a task that ended with ``exit_code`` ran its share of the load (thresholds aside).

    0, and 99 (its own thresholds crossed); in a ``stopped`` run also a task the stop ended. A task
    whose aggregator did not confirm its flush ran its load and lost results: the accounting says
    so (``incomplete``), not this. The same rule as run/exit_codes.load_ran, which the data plane's
    side uses.
    """
    return exit_code in (0, K6_THRESHOLDS_CROSSED, AGGREGATOR_UNCONFIRMED) or (stopped and exit_code in STOPPED_RUN_EXIT_CODES)


class _Data:
    """The records grouped once, for the totals, rows, status classes and series of the summary."""

    def __init__(self, records: Sequence[Record]) -> None:
        self.requests = [record for record in records if isinstance(record, RequestRecord)]
        self.tasks = [record for record in records if isinstance(record, TaskRecord)]
        self.regions = {record.region for record in records}
        # Histograms merged per region and interval, then upwards: each record is merged once.
        by_point: dict[tuple[str, int], list[Histogram]] = defaultdict(list)
        for record in self.requests:
            by_point[(record.region, record.start_ms)].append(record.latency)
        self.point_latency = {point: merge_all(histograms) for point, histograms in by_point.items()}
        self.region_latency = {
            region: merge_all(latency for (of, _start), latency in sorted(self.point_latency.items()) if of == region)
            for region in sorted({region for region, _start in self.point_latency})
        }

    def latency(self, region: Optional[str]) -> Optional[Histogram]:
        if region is not None:
            return self.region_latency.get(region)
        return merge_all(latency for _region, latency in sorted(self.region_latency.items()))

    def totals(self, region: Optional[str], measured: Optional[float]) -> dict[str, Any]:
        """<Totals> of the run (``region`` None) or of one region."""
        requests = [record for record in self.requests if region in (None, record.region)]
        tasks = [record for record in self.tasks if region in (None, record.region)]
        totals = _request_totals(requests, self.latency(region), measured)
        totals["iterations"] = sum(record.iterations for record in tasks)
        totals["data_received"] = sum(record.data_received for record in tasks)
        totals["data_sent"] = sum(record.data_sent for record in tasks)
        return dict(sorted(totals.items()))

    def request_rows(self, measured: Optional[float]) -> list[dict[str, Any]]:
        """One <Totals> per request name and method, with both."""
        grouped: dict[tuple[str, str], list[RequestRecord]] = defaultdict(list)
        for record in self.requests:
            grouped[(record.request, record.method)].append(record)
        return [
            dict(
                sorted(
                    {
                        "request": request,
                        "method": method,
                        **_request_totals(records, merge_all(record.latency for record in records), measured),
                    }.items()
                )
            )
            for (request, method), records in sorted(grouped.items())
        ]

    def status_classes(self, regions: Sequence[str]) -> dict[str, dict[str, int]]:
        """Requests per status class, overall and per region; every class seen in the run is listed."""
        classes = sorted({record.status_class for record in self.requests})
        counts: dict[str, dict[str, int]] = {series: dict.fromkeys(classes, 0) for series in ("overall", *regions)}
        for record in self.requests:
            counts["overall"][record.status_class] += record.requests
            counts[record.region][record.status_class] += record.requests
        return counts

    def timeseries(self, regions: Sequence[str], starts: Sequence[int], interval: Optional[int]) -> dict[str, list]:
        """One point per interval start, overall and per region."""
        requests: dict[tuple[Optional[str], int], list[int]] = defaultdict(lambda: [0, 0])
        vus: dict[tuple[Optional[str], int], int] = defaultdict(int)
        for record in self.requests:
            for series in (None, record.region):
                requests[(series, record.start_ms)][0] += record.requests
                requests[(series, record.start_ms)][1] += record.failures
        for record in self.tasks:
            for series in (None, record.region):
                vus[(series, record.start_ms)] += record.vus
        by_start: dict[int, list[Histogram]] = defaultdict(list)
        for (_region, start), latency in sorted(self.point_latency.items()):
            by_start[start].append(latency)
        overall_latency = {start: merge_all(histograms) for start, histograms in by_start.items()}

        def point(series: Optional[str], start: int) -> dict[str, Any]:
            count, failures = requests.get((series, start), (0, 0))
            latency = overall_latency.get(start) if series is None else self.point_latency.get((series, start))
            values: dict[str, Any] = {
                "t_ms": start,
                "requests": count,
                "rps": rounded(count / (interval / 1000), PER_SECOND_DIGITS) if interval else None,
                "error_rate": rounded(failures / count, FRACTION_DIGITS) if count else None,
                "vus": vus.get((series, start)),
            }
            for name, aggregation in POINT_PERCENTILES.items():
                values[name] = rounded(trend_ms(latency, aggregation), LATENCY_DIGITS)
            return dict(sorted(values.items()))

        return {
            series: [point(None if series == "overall" else series, start) for start in starts]
            for series in ("overall", *regions)
        }


def _request_totals(records: Sequence[RequestRecord], latency: Optional[Histogram], measured: Optional[float]) -> dict:
    requests = sum(record.requests for record in records)
    failures = sum(record.failures for record in records)
    return {
        "requests": requests,
        "failures": failures,
        "error_rate": rounded(failures / requests, FRACTION_DIGITS) if requests else None,
        "rps": rounded(requests / measured, PER_SECOND_DIGITS) if measured else None,
        "latency": {
            name: rounded(trend_ms(latency, aggregation), LATENCY_DIGITS)
            for name, aggregation in LATENCY_STATISTICS.items()
        },
    }


def _baseline(
    overall: Mapping[str, Any],
    regions: Mapping[str, Mapping[str, Any]],
    regions_with_records: set[str],
    records: Optional[Iterable[Record]],
    run_id: Optional[str],
    run: Optional[Mapping[str, Any]],
) -> Optional[dict[str, Any]]:
    """<Baseline>: the deltas overall and of each region with records in both runs."""
    if records is None:
        return None
    ordered = _ordered(records)
    measured = measured_seconds(ordered, run or {})
    baseline = _Data(ordered)
    deltas = {"overall": _deltas(overall, baseline.totals(None, measured))}
    for region in sorted(regions_with_records & baseline.regions):
        deltas[region] = _deltas(regions[region], baseline.totals(region, measured))
    if run_id is None:
        run_ids = {record.run_id for record in ordered}
        run_id = run_ids.pop() if len(run_ids) == 1 else None
    return {"run_id": run_id, "deltas": deltas}


def _deltas(current: Mapping[str, Any], baseline: Mapping[str, Any]) -> dict[str, dict[str, Optional[float]]]:
    deltas = {}
    for name, (figure, digits) in BASELINE_FIGURES.items():
        now, before = figure(current), figure(baseline)
        delta = None if now is None or before is None else now - before
        deltas[name] = {
            "baseline": before,
            "current": now,
            "delta": rounded(delta, digits),
            "relative": rounded(delta / before, FRACTION_DIGITS) if delta is not None and before else None,
        }
    return deltas


def _progress(run: Mapping[str, Any]) -> dict[str, int]:
    return {
        "planned_tasks": sum((run.get("regions") or {}).values()),
        "registered_tasks": sum(len(tasks) for tasks in (run.get("registered_tasks") or {}).values()),
        "completed_tasks": sum(len(tasks) for tasks in (run.get("completed_tasks") or {}).values()),
    }


def _start_skew_ms(run: Mapping[str, Any]) -> Optional[float]:
    """Latest minus earliest actual k6 start over the tasks, from the run state."""
    if run.get("start_skew_ms") is not None:
        return rounded(run["start_skew_ms"], SECONDS_DIGITS)
    started = [ms for tasks in (run.get("started_at") or {}).values() for ms in tasks.values()]
    return rounded(max(started) - min(started), SECONDS_DIGITS) if started else None


def _ordered(records: Iterable[Record]) -> list[Record]:
    """The records in one order whatever the store's, so float sums come out the same every time."""
    return sorted(
        records,
        key=lambda record: (
            record.KIND,
            record.region,
            record.task,
            record.start_ms,
            getattr(record, "request", ""),
            getattr(record, "method", ""),
            getattr(record, "status_class", ""),
        ),
    )


def _sorted_mapping(value: Any) -> Any:
    """Nested mappings with their keys sorted (task ids numerically), for a stable summary."""
    if not isinstance(value, Mapping):
        return value
    keys = sorted(value, key=lambda key: (0, int(key), "") if str(key).isdigit() else (1, 0, str(key)))
    return {key: _sorted_mapping(value[key]) for key in keys}


def _json_lines(where: str, body: bytes, run_id: str) -> list[Record]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise RecordsError(f"{where} is not UTF-8 text: {error}") from None
    return [
        _record(f"{where} line {number}", from_json, line, run_id)
        for number, line in enumerate(text.splitlines(), start=1)
        if line.strip()
    ]


def _record(where: str, parse: Callable[[Any], Record], stored: Any, run_id: str) -> Record:
    """The record ``parse(stored)`` makes, or RecordsError saying where the bad one is."""
    try:
        record = parse(stored)
    except (ValueError, TypeError, AttributeError) as error:
        raise RecordsError(f"{where}: not an interval record: {error}") from None
    if record.run_id != run_id:
        raise RecordsError(f"{where}: the record is of run {record.run_id!r}, not {run_id!r}")
    return record


def _scalar(datum: Mapping[str, Any], where: str) -> Optional[str]:
    """A Timestream Query datum as text, None for NULL."""
    if "ScalarValue" in datum:
        return datum["ScalarValue"]
    if datum.get("NullValue"):
        return None
    raise RecordsError(f"{where} has a value that is neither a scalar nor NULL: {datum!r}")
