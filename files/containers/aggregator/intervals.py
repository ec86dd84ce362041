"""Turn k6's cumulative series into per-interval records.

Each push holds every series' total since the start of the test. The aggregator remembers the
previous total of every series; the difference is what happened since the previous push, and it
is added to the interval (``start = timestamp - timestamp % length``) that holds the series'
timestamp, under the record key (request name, method, status class). Series that differ only in
other tags (``scenario``, ``url``, ``error_code``, custom tags) add up into one record.

An interval is complete, and its records are handed out, once a push arrives with a timestamp at
or past its end: k6 stamps a push's counters and histograms with the push time, so nothing older
follows. A value stamped before that (a gauge updated earlier) goes to the oldest interval still
open rather than being lost. A total that goes down means k6 restarted: the new total is the delta.
The first push of a series counts everything since the start of the test, which is right for an
aggregator that starts before k6 (the load generator starts it first).

A task keeps at most ``max_request_names`` request names (k6 names a request by its URL unless the
script tags it with ``name``, so a script that builds URLs would make a record per URL and
interval): the names seen after that are summed into the request ``OTHER_REQUESTS``, and how many
names were folded so is counted (``folded_request_names``).

The previous total of every series is kept for the whole test, idle or not: k6's remote-write
output sends a series only when it has new samples, with its total since the start, so a total
forgotten while the series was idle would count everything again when it returns. What a series
costs is a few numbers and one histogram; ``benchmarks/aggregator_cardinality.py`` measures the
memory and CPU at 10,000 URLs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field

from results.histogram import Histogram
from results.histogram import HistogramError
from results.records import OTHER_REQUESTS
from results.records import Record
from results.records import RequestRecord
from results.records import TaskRecord
from results.records import status_class
from remote_write import Series

DURATION = "k6_http_req_duration_seconds"
REQUESTS = "k6_http_reqs_total"
FAILED_RATE = "k6_http_req_failed_rate"
ITERATIONS = "k6_iterations_total"
DATA_RECEIVED = "k6_data_received_total"
DATA_SENT = "k6_data_sent_total"
VUS = "k6_vus"
METRICS = frozenset({DURATION, REQUESTS, FAILED_RATE, ITERATIONS, DATA_RECEIVED, DATA_SENT, VUS})
_TASK_COUNTERS = {ITERATIONS: "iterations", DATA_RECEIVED: "data_received", DATA_SENT: "data_sent"}

DEFAULT_MAX_REQUEST_NAMES = 1000
# Folded names are counted up to this many (a set of them is kept for that, bounded).
MAX_FOLDED_NAMES_COUNTED = 100_000

LOG = logging.getLogger("aggregator")

Labels = tuple[tuple[str, str], ...]
RequestKey = tuple[str, str, str]  # request name, method, status class
SeriesKey = tuple[str, Labels]  # metric, labels


@dataclass
class _Requests:
    requests: int = 0
    failures: int = 0
    latency: Histogram = field(default_factory=Histogram)


@dataclass
class _Interval:
    requests: dict[RequestKey, _Requests] = field(default_factory=dict)
    task: dict[str, int] = field(default_factory=dict)  # TaskRecord field -> value

    def of(self, key: RequestKey) -> _Requests:
        return self.requests.setdefault(key, _Requests())


@dataclass(frozen=True)
class Identity:
    """Whose records these are."""

    run_id: str
    region: str
    task: str


class IntervalAggregator:
    """Accumulates pushes into intervals of ``length_ms`` and hands out the completed ones' records."""

    def __init__(self, identity: Identity, length_ms: int, max_request_names: int = DEFAULT_MAX_REQUEST_NAMES) -> None:
        self.identity = identity
        self.length_ms = length_ms
        self.max_request_names = max_request_names
        self._request_names: set[str] = set()
        self._folded_names: set[str] = set()
        self._totals: dict[SeriesKey, float | Histogram] = {}
        self._intervals: dict[int, _Interval] = {}
        self._open_from = 0  # every interval that starts before this was handed out
        self.requests_received = 0  # the requests k6's pushes counted, all intervals together
        self._warned_no_histograms = False

    def add(self, pushed: list[Series]) -> list[Record]:
        """Account one push; the records of the intervals it completed."""
        requests = {series.labels: series.value for series in pushed if series.metric == REQUESTS}
        for series in pushed:
            self._account(series, requests)
        self._warn_without_histograms(pushed)
        return self._close(until_ms=max((series.timestamp_ms for series in pushed), default=0))

    def close_all(self) -> list[Record]:
        """The records of every interval held, the current partial one included."""
        return self._close(until_ms=math.inf)

    def _account(self, series: Series, requests: dict[Labels, float]) -> None:
        interval = self._interval(series.timestamp_ms)
        if series.metric == VUS:
            interval.task["vus"] = int(series.value)
        elif series.metric in _TASK_COUNTERS:
            name = _TASK_COUNTERS[series.metric]
            interval.task[name] = interval.task.get(name, 0) + round(self._counter_delta(series.metric, series))
        elif series.metric == REQUESTS:
            count = round(self._counter_delta(series.metric, series))
            if count:
                interval.of(self._request_key(series)).requests += count
                self.requests_received += count
        elif series.metric == FAILED_RATE:
            # k6 sends the failed fraction so far; times the same series' request total it is the
            # failure total, a counter like the others.
            failures = round(series.value * requests.get(series.labels, 0))
            count = round(self._counter_delta(series.metric, series, failures))
            if count:
                interval.of(self._request_key(series)).failures += count
        elif series.metric == DURATION:
            latency = self._histogram_delta(series)
            if latency.count:
                entry = interval.of(self._request_key(series))
                entry.latency = entry.latency.merge(latency)

    @property
    def folded_request_names(self) -> int:
        """How many request names were summed into OTHER_REQUESTS (counted up to MAX_FOLDED_NAMES_COUNTED)."""
        return len(self._folded_names)

    def _request_key(self, series: Series) -> RequestKey:
        name = series.label("name")
        if name not in self._request_names:
            if len(self._request_names) < self.max_request_names:
                self._request_names.add(name)
            else:
                if name not in self._folded_names and len(self._folded_names) < MAX_FOLDED_NAMES_COUNTED:
                    if not self._folded_names:
                        LOG.warning(
                            "request_names_folded",
                            extra={"fields": {"limit": self.max_request_names, "into": OTHER_REQUESTS,
                                              "hint": "tag requests with a name (k6's tags: { name: ... })"}},
                        )
                    self._folded_names.add(name)
                name = OTHER_REQUESTS
        return name, series.label("method"), status_class(series.label("status"))

    def _counter_delta(self, metric: str, series: Series, total: float | None = None) -> float:
        total = series.value if total is None else total
        previous = self._totals.get((metric, series.labels), 0.0)
        self._totals[(metric, series.labels)] = total
        return total - previous if total >= previous else total

    def _histogram_delta(self, series: Series) -> Histogram:
        previous = self._totals.get((series.metric, series.labels))
        self._totals[(series.metric, series.labels)] = series.value
        if previous is None:
            return series.value
        try:
            return series.value.subtract(previous)
        except HistogramError:
            return series.value

    def _interval(self, timestamp_ms: int) -> _Interval:
        start = max(timestamp_ms - timestamp_ms % self.length_ms, self._open_from)
        return self._intervals.setdefault(start, _Interval())

    def _close(self, until_ms: float) -> list[Record]:
        """The records of the intervals that end at or before ``until_ms``, which are forgotten."""
        records: list[Record] = []
        for start in sorted(self._intervals):
            if start + self.length_ms > until_ms:
                break
            records.extend(self._records(start, self._intervals.pop(start)))
            self._open_from = max(self._open_from, start + self.length_ms)
        return records

    def _records(self, start: int, interval: _Interval) -> Iterable[Record]:
        who = asdict(self.identity)
        for (request, method, status), entry in sorted(interval.requests.items()):
            yield RequestRecord(
                **who,
                request=request,
                method=method,
                status_class=status,
                start_ms=start,
                length_ms=self.length_ms,
                requests=entry.requests,
                failures=entry.failures,
                latency=entry.latency,
            )
        if interval.task:
            counts = {"iterations": 0, "data_received": 0, "data_sent": 0, "vus": 0, **interval.task}
            yield TaskRecord(**who, start_ms=start, length_ms=self.length_ms, **counts)

    def _warn_without_histograms(self, pushed: list[Series]) -> None:
        if self._warned_no_histograms or not any(series.metric == REQUESTS for series in pushed):
            return
        if not any(series.metric == DURATION for series in pushed):
            self._warned_no_histograms = True
            LOG.warning(
                "no_latency_histograms",
                extra={"fields": {"hint": "run k6 with K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM=true"}},
            )
