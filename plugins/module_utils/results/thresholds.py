# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""k6 thresholds: parsed as k6 parses them, evaluated on the merged interval records of a run.

The syntax is k6's ``options.thresholds``: a metric selector, optionally with a tag filter
(``http_req_duration{region:us-east-2,name:GET /api}``), to a list of threshold expressions, each a
string (``p(95)<500``) or an object ``{"threshold": "p(95)<500", "abortOnFail": true,
"delayAbortEval": "10s"}``; a single string or object is taken as a list of one (for the
``thresholds`` option: k6 itself wants a list). An expression
is ``<aggregation> <operator> <number>`` and passes when the comparison holds:

* aggregations: ``count`` and ``rate`` (counters), ``value`` (gauges), ``rate`` (rates),
  ``avg``, ``min``, ``med``, ``max`` and ``p(N)`` with 0 <= N <= 100 (trends);
* operators: ``>``, ``>=``, ``<``, ``<=``, ``==``, ``===`` (the same as ``==``), ``!=``.

Metrics the results store holds are evaluated on the records of every task and region merged
(``evaluated_on: "merged"``):

``http_req_duration`` (trend, milliseconds)
    from the merged latency histograms: ``avg`` is exact; ``min`` and ``max`` are the bounds of
    the lowest and highest non-empty buckets; ``med`` and ``p(N)`` are interpolated inside a
    bucket, within its relative width (about 9 %) of k6's exact value computed from every sample.
``http_req_failed`` (rate)
    failed requests / requests.
``http_reqs`` (counter)
    ``count`` is the requests; ``rate`` is the requests per second of the measured span.
``iterations``, ``data_received``, ``data_sent`` (counters, bytes for the data)
    ``count`` and ``rate`` as for ``http_reqs``, from the task records.

Tag filters on them: ``region`` for all; ``name`` (the request name), ``method`` and
``expected_response`` for the three request metrics. ``expected_response`` is answered from each
record's ``failures`` (k6 counts exactly the unexpected responses in ``http_req_failed``), so a
record mixing expected and unexpected responses (a custom ``responseCallback`` that splits a status
class) cannot be split and is an error. ``status`` cannot be answered: the store keeps status
classes (``2xx``, ``5xx``, ``error``), and no status code is a whole class.

A threshold whose trend or rate has no data (no request matched the filter) has ``value: null``
and passes, as k6 does not evaluate thresholds of metrics without samples; a count of nothing is
0, a measurement.

Every other metric (``checks``, ``group_duration``, custom metrics, ...) is judged from k6's own
verdicts, which each task reported at its end (``evaluated_on: "tasks"``): the threshold passes
when every task that reported it passed it, and its value is null.
"""

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import Callable
from typing import Optional

from .histogram import Histogram
from .histogram import merge_all
from .records import Record
from .records import RequestRecord
from .records import TaskRecord

SOURCES = ("script", "constellation_thresholds")
MERGED = "merged"
TASKS = "tasks"

COUNTER, GAUGE, RATE, TREND = "counter", "gauge", "rate", "trend"
AGGREGATIONS = {
    COUNTER: ("count", "rate"),
    GAUGE: ("value",),
    RATE: ("rate",),
    TREND: ("avg", "min", "med", "max", "p(N)"),
}
# k6's built-in metrics, so an aggregation their type lacks is refused as k6 refuses it. Any
# aggregation is accepted for other (custom) metrics: k6 checked them against their type.
K6_METRIC_TYPES = {
    **dict.fromkeys(
        ("data_received", "data_sent", "dropped_iterations", "http_reqs", "iterations", "ws_msgs_received")
        + ("ws_msgs_sent", "ws_sessions", "grpc_streams", "grpc_streams_msgs_received", "grpc_streams_msgs_sent"),
        COUNTER,
    ),
    **dict.fromkeys(("vus", "vus_max"), GAUGE),
    **dict.fromkeys(("checks", "http_req_failed"), RATE),
    **dict.fromkeys(
        ("http_req_blocked", "http_req_connecting", "http_req_duration", "http_req_receiving", "http_req_sending")
        + ("http_req_tls_handshaking", "http_req_waiting", "iteration_duration", "group_duration")
        + ("grpc_req_duration", "ws_connecting", "ws_ping", "ws_session_duration"),
        TREND,
    ),
}
_REQUEST_TAGS = ("expected_response", "method", "name", "region")
# The metrics the results store holds, with the tags a filter on them may use.
STORE_METRICS = {
    "http_req_duration": _REQUEST_TAGS,
    "http_req_failed": _REQUEST_TAGS,
    "http_reqs": _REQUEST_TAGS,
    "iterations": ("region",),
    "data_received": ("region",),
    "data_sent": ("region",),
}
# TaskRecord fields of the task counters.
_TASK_COUNTERS = {"iterations": "iterations", "data_received": "data_received", "data_sent": "data_sent"}
# The record field a tag filter compares with.
_TAG_FIELDS = {"region": "region", "name": "request", "method": "method"}
_ENTRY_KEYS = ("threshold", "abortOnFail", "delayAbortEval")

_METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# k6 tries the operators in this order, so "<=" wins over "<" and "===" over "==".
_EXPRESSION = re.compile(r"\s*(?P<aggregation>.*?)\s*(?P<operator><=|>=|===|==|!=|<|>)\s*(?P<limit>.*?)\s*")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PERCENTILE = re.compile(r"p\((?P<percent>[0-9]+(?:\.[0-9]+)?)\)")
_COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "==": operator.eq,
    "===": operator.eq,
    "!=": operator.ne,
}
# Digits kept in summary.json: microseconds for latencies, ppm for rates of failure.
LATENCY_DIGITS = 3
FRACTION_DIGITS = 6
PER_SECOND_DIGITS = 3


@dataclass(frozen=True)
class Threshold:
    """One threshold expression of one metric selector, parsed."""

    name: str  # the selector as written
    metric: str
    tags: tuple[tuple[str, str], ...]  # sorted by tag name
    expression: str  # as written
    aggregation: str  # "count", "avg", "p(95)", ...
    operator: str
    limit: float
    source: str
    abort_on_fail: bool = False
    delay_abort_eval: Optional[str] = None
    # Why a script's threshold on a stored metric is left to k6's verdicts of the tasks.
    not_merged_because: Optional[str] = None

    @property
    def evaluated_on(self) -> str:
        return MERGED if self.metric in STORE_METRICS and self.not_merged_because is None else TASKS


def parse_all(thresholds: Any, source: str) -> list[Threshold]:
    """Every threshold of k6's ``{selector: [expression or object, ...]}``; ValueError names a bad one."""
    if source not in SOURCES:
        raise ValueError(f"the source of thresholds must be one of {', '.join(SOURCES)}, got {source!r}")
    if thresholds is None:
        return []
    if not isinstance(thresholds, Mapping):
        raise ValueError(
            "thresholds must be a mapping of metric selector to a list of threshold expressions,"
            f" got {type(thresholds).__name__}"
        )
    parsed = []
    for selector, entries in thresholds.items():
        if not isinstance(selector, str):
            raise ValueError(f"a threshold's metric selector must be a string, got {selector!r}")
        metric, tags = parse_selector(selector)
        if isinstance(entries, (str, Mapping)):
            entries = [entries]
        if not isinstance(entries, Sequence) or not entries:
            raise ValueError(f'threshold {selector}: give a list of expressions such as ["p(95)<500"], got {entries!r}')
        parsed.extend(_threshold(selector, metric, tags, entry, source) for entry in entries)
    return parsed


def parse_selector(selector: str) -> tuple[str, dict[str, str]]:
    """The metric name and tag filter of ``metric{tag:value,...}``, as k6 reads them."""
    metric, brace, rest = selector.partition("{")
    if not brace:
        if "}" in selector:
            raise ValueError(f"threshold {selector}: the metric selector has a '}}' but no '{{'")
        return _metric_name(selector, selector), {}
    if not rest.endswith("}") or "}" in rest[:-1] or "{" in rest:
        raise ValueError(f"threshold {selector}: a tag filter is one {{tag:value,...}} at the end of the selector")
    tags: dict[str, str] = {}
    for item in rest[:-1].split(","):
        key, colon, value = item.partition(":")
        key, value = key.strip().strip("\"'"), value.strip().strip("\"'")
        if not colon or not key or not value:
            raise ValueError(f"threshold {selector}: the tag filter {item.strip()!r} is not tag:value")
        if key in tags:
            raise ValueError(f"threshold {selector}: the tag {key!r} is filtered on twice")
        tags[key] = value
    return _metric_name(selector, metric), tags


def parse_expression(expression: str) -> tuple[str, str, float]:
    """``(aggregation, operator, limit)`` of an expression such as ``p(95) < 500``."""
    match = _EXPRESSION.fullmatch(expression)
    if not match:
        raise ValueError("it is not '<aggregation> <operator> <number>' (operators: > >= < <= == === !=)")
    aggregation, limit = match["aggregation"], match["limit"]
    percentile = _PERCENTILE.fullmatch(aggregation)
    if percentile:
        percent = float(percentile["percent"])
        if percent > 100:
            raise ValueError(f"the percentile of {aggregation} is above 100")
        aggregation = f"p({_number_text(percent)})"
    elif aggregation not in ("count", "rate", "value", "avg", "min", "med", "max"):
        raise ValueError(f"{aggregation!r} is not an aggregation: count, rate, value, avg, min, med, max or p(N)")
    if not _NUMBER.fullmatch(limit):
        raise ValueError(f"the limit {limit!r} is not a number")
    return aggregation, match["operator"], float(limit)


def from_k6_inspect(text: str) -> dict[str, Any]:
    """The ``thresholds`` of the options that ``k6 inspect <script>`` prints ({} if the script has none).

    k6 prints the options as a JSON object starting on a line of its own; anything printed before
    it (a console.log of the script's init context) is skipped.
    """
    options = _first_json_object(text)
    thresholds = options.get("thresholds") or {}
    if not isinstance(thresholds, dict):
        raise ValueError(f"the thresholds k6 inspect printed are not a mapping: {thresholds!r}")
    return thresholds


def _first_json_object(text: str) -> dict[str, Any]:
    decoder = json.JSONDecoder()
    offset = 0
    for line in text.splitlines(keepends=True):
        if line.startswith("{"):
            try:
                value, _end = decoder.raw_decode(text, offset)
            except ValueError:
                pass
            else:
                if isinstance(value, dict):
                    return value
        offset += len(line)
    raise ValueError(f"the output of k6 inspect holds no JSON object of options: {text[:200]!r}")


def evaluate(
    thresholds: Iterable[Threshold],
    records: Sequence[Record],
    *,
    measured_seconds: Optional[float],
    task_thresholds: Mapping[str, Mapping[str, Mapping[str, Mapping[str, bool]]]],
) -> list[dict[str, Any]]:
    """Each threshold as summary.json's ``<Threshold>``, ordered by selector, expression and source.

    ``task_thresholds`` is k6's verdict per task, ``{region: {task: {selector: {expression: passed}}}}``.
    """
    results = []
    for threshold in thresholds:
        if threshold.evaluated_on == MERGED:
            value = merged_value(threshold, records, measured_seconds)
            ok = value is None or _COMPARISONS[threshold.operator](value, threshold.limit)
            shown = _shown_value(threshold, value)
        else:
            shown, ok = None, _tasks_passed(threshold, task_thresholds)
        results.append(
            {
                "metric": threshold.metric,
                "tags": dict(threshold.tags),
                "name": threshold.name,
                "expression": threshold.expression,
                "source": threshold.source,
                "aggregation": threshold.aggregation,
                "operator": threshold.operator,
                "limit": threshold.limit,
                "value": shown,
                "ok": ok,
                "evaluated_on": threshold.evaluated_on,
                "abort_on_fail": threshold.abort_on_fail,
                "note": threshold.not_merged_because,
            }
        )
    return sorted(results, key=lambda result: (result["name"], result["expression"], result["source"]))


_K6_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)(ms|s|m|h))+")
_K6_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_DURATION_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


def duration_ms(text: Optional[str]) -> int:
    """A k6 duration (``10s``, ``1m30s``, ``500ms``) in milliseconds; None or blank is 0."""
    if text is None or not str(text).strip():
        return 0
    text = str(text).strip()
    if not _K6_DURATION.fullmatch(text):
        raise ValueError(f"{text!r} is not a k6 duration such as 10s, 1m30s or 500ms")
    return round(sum(float(number) * _DURATION_UNIT_MS[unit] for number, unit in _K6_DURATION_PART.findall(text)))


def abort_breaches(
    thresholds: Iterable[Threshold],
    records: Sequence[Record],
    *,
    elapsed_ms: int,
    measured_seconds: Optional[float],
) -> list[dict[str, Any]]:
    """The ``abortOnFail`` thresholds that the merged records of every region breach now.

    A threshold is judged once ``elapsed_ms`` since the start has passed its ``delayAbortEval``,
    as k6 does for one instance; only thresholds judged on the merged data can be (k6's own
    verdicts per task arrive at the end, too late to abort anything).
    """
    due = [
        threshold
        for threshold in thresholds
        if threshold.abort_on_fail
        and threshold.evaluated_on == MERGED
        and elapsed_ms >= duration_ms(threshold.delay_abort_eval)
    ]
    return [
        result
        for result in evaluate(due, records, measured_seconds=measured_seconds, task_thresholds={})
        if not result["ok"]
    ]


def merged_value(threshold: Threshold, records: Sequence[Record], measured_seconds: Optional[float]) -> Optional[float]:
    """The threshold's aggregation of its metric over the matching records of every task; None if no data."""
    if threshold.metric in _TASK_COUNTERS:
        field = _TASK_COUNTERS[threshold.metric]
        matched = [record for record in records if isinstance(record, TaskRecord) and _matches(threshold, record)]
        return _counter(threshold, sum(getattr(record, field) for record in matched), measured_seconds)
    matched = [record for record in records if isinstance(record, RequestRecord) and _matches(threshold, record)]
    if threshold.metric == "http_reqs":
        return _counter(threshold, sum(record.requests for record in matched), measured_seconds)
    if threshold.metric == "http_req_failed":
        requests = sum(record.requests for record in matched)
        return sum(record.failures for record in matched) / requests if requests else None
    return trend_ms(merge_all(record.latency for record in matched), threshold.aggregation)


def trend_ms(histogram: Optional[Histogram], aggregation: str) -> Optional[float]:
    """k6's trend ``aggregation`` (avg, min, med, max, p(N)) of a latency histogram in seconds, in ms."""
    if histogram is None or not histogram.count:
        return None
    percentile = _PERCENTILE.fullmatch(aggregation)
    if percentile:
        seconds = histogram.quantile(float(percentile["percent"]) / 100)
    elif aggregation == "avg":
        seconds = histogram.mean()
    else:
        # quantile(0) and quantile(1) are the lower bound of the lowest and the upper bound of the
        # highest non-empty bucket: the true minimum and maximum lie within them.
        seconds = histogram.quantile({"min": 0.0, "med": 0.5, "max": 1.0}[aggregation])
    return None if math.isnan(seconds) else seconds * 1000


def rounded(value: Optional[float], digits: int) -> Optional[float]:
    """``value`` rounded for summary.json; None (JSON null) for no value or NaN."""
    if value is None or math.isnan(value):
        return None
    return round(float(value), digits) + 0.0  # + 0.0 turns -0.0 into 0.0


def breach_message(judged: Mapping[str, Any]) -> str:
    """What a breached threshold of summary.json's ``thresholds`` says: expression, measured value, limit."""

    def shown(value: Any) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    return (
        f"{judged['name']} {judged['expression']} breached: measured {shown(judged.get('value'))}, limit {shown(judged.get('limit'))}"
        + (" (k6's verdicts of the tasks)" if judged.get("evaluated_on") == "tasks" else "")
    )


def _threshold(selector: str, metric: str, tags: dict[str, str], entry: Any, source: str) -> Threshold:
    options: dict[str, Any] = {}
    if isinstance(entry, Mapping):
        unknown = sorted(set(entry) - set(_ENTRY_KEYS))
        if unknown:
            raise ValueError(
                f"threshold {selector}: {entry!r} has unknown keys {', '.join(map(str, unknown))}"
                f" (k6 knows {', '.join(_ENTRY_KEYS)})"
            )
        expression = entry.get("threshold")
        options["abort_on_fail"] = entry.get("abortOnFail", False)
        options["delay_abort_eval"] = entry.get("delayAbortEval")
        if not isinstance(options["abort_on_fail"], bool):
            raise ValueError(f"threshold {selector} {expression!r}: abortOnFail must be true or false")
        if options["delay_abort_eval"] is not None and isinstance(options["delay_abort_eval"], str):
            duration_ms(options["delay_abort_eval"])  # raises naming the value
        if options["delay_abort_eval"] is not None and not isinstance(options["delay_abort_eval"], str):
            raise ValueError(f"threshold {selector} {expression!r}: delayAbortEval must be a duration such as '10s'")
    else:
        expression = entry
    if not isinstance(expression, str):
        raise ValueError(
            f'threshold {selector}: an expression must be a string such as "p(95)<500", got {expression!r}'
        )
    try:
        aggregation, comparison, limit = parse_expression(expression)
        _check_aggregation(metric, aggregation)
    except ValueError as error:
        raise ValueError(f"threshold {selector} {expression!r}: {error}") from None
    try:
        _check_tags(metric, tags)
    except ValueError as error:
        if source != "script":
            raise ValueError(f"threshold {selector} {expression!r}: {error}") from None
        # k6 judged it in every task: the script's threshold is not lost, only not merged.
        options["not_merged_because"] = str(error)
    return Threshold(
        name=selector,
        metric=metric,
        tags=tuple(sorted(tags.items())),
        expression=expression,
        aggregation=aggregation,
        operator=comparison,
        limit=limit,
        source=source,
        **options,
    )


def _number_text(number: float) -> str:
    """The shortest text of ``number``, as k6 names a percentile: 95.0 is "95", 99.9 is "99.9"."""
    text = repr(number)
    return text.removesuffix(".0")


def _metric_name(selector: str, metric: str) -> str:
    if not _METRIC_NAME.fullmatch(metric):
        raise ValueError(
            f"threshold {selector}: {metric!r} is not a k6 metric name"
            " (up to 128 letters, digits and underscores, not starting with a digit)"
        )
    return metric


def _check_aggregation(metric: str, aggregation: str) -> None:
    kind = K6_METRIC_TYPES.get(metric)
    if kind is None:
        return
    allowed = AGGREGATIONS[kind]
    if aggregation not in allowed and not (kind == TREND and _PERCENTILE.fullmatch(aggregation)):
        raise ValueError(f"{metric} is a {kind}: its aggregations are {', '.join(allowed)}, not {aggregation}")


def _check_tags(metric: str, tags: Mapping[str, str]) -> None:
    if metric not in STORE_METRICS:
        return  # k6 evaluated it per task, with any tags
    allowed = STORE_METRICS[metric]
    for tag, value in tags.items():
        if tag == "status":
            raise ValueError(
                "the results store keeps status classes (2xx, 4xx, 5xx, error), not status codes, so a filter on"
                f" status:{value} cannot be evaluated exactly; filter on expected_response, or leave the threshold"
                " to the script alone"
            )
        if tag not in allowed:
            raise ValueError(
                f"the results store cannot filter {metric} on the tag {tag!r}; it can on {', '.join(allowed)}"
            )
        if tag == "expected_response" and value not in ("true", "false"):
            raise ValueError(f"expected_response is true or false, got {value!r}")


def _matches(threshold: Threshold, record: Record) -> bool:
    for tag, value in threshold.tags:
        if tag == "expected_response":
            if not _expected_response_is(record, value == "true", threshold):
                return False
        elif getattr(record, _TAG_FIELDS[tag]) != value:
            return False
    return True


def _expected_response_is(record: RequestRecord, expected: bool, threshold: Threshold) -> bool:
    """Whether the record's requests all had (``expected``) or all lacked an expected response."""
    if 0 < record.failures < record.requests:
        raise ValueError(
            f"threshold {threshold.name} {threshold.expression!r}: the {record.status_class} requests"
            f" {record.request!r} of {record.region} task {record.task} at {record.start_ms} mix expected and"
            " unexpected responses, which the records cannot tell apart; drop the expected_response filter"
        )
    return (record.failures == 0) == expected


def _counter(threshold: Threshold, count: int, measured_seconds: Optional[float]) -> Optional[float]:
    if threshold.aggregation == "count":
        return count
    return count / measured_seconds if measured_seconds else None


def _shown_value(threshold: Threshold, value: Optional[float]) -> Optional[float]:
    if value is None or threshold.aggregation == "count":
        return value
    if threshold.metric == "http_req_duration":
        return rounded(value, LATENCY_DIGITS)
    if threshold.metric == "http_req_failed":
        return rounded(value, FRACTION_DIGITS)
    return rounded(value, PER_SECOND_DIGITS)


def _tasks_passed(threshold: Threshold, task_thresholds: Mapping[str, Any]) -> bool:
    """Whether every task that reported a verdict on the threshold passed it."""
    for region, tasks in task_thresholds.items():
        for task, selectors in tasks.items():
            for selector, expressions in selectors.items():
                if not _same_selector(selector, threshold):
                    continue
                for expression, passed in expressions.items():
                    if not _same_expression(expression, threshold):
                        continue
                    if not isinstance(passed, bool):
                        raise ValueError(
                            f"k6's verdict of {region} task {task} on {selector} {expression!r} is not true or"
                            f" false: {passed!r}"
                        )
                    if not passed:
                        return False
    return True


def _same_selector(selector: str, threshold: Threshold) -> bool:
    if selector == threshold.name:
        return True
    try:
        metric, tags = parse_selector(selector)
    except ValueError:
        return False
    return (metric, tuple(sorted(tags.items()))) == (threshold.metric, threshold.tags)


def _same_expression(expression: str, threshold: Threshold) -> bool:
    if expression == threshold.expression:
        return True
    try:
        aggregation, comparison, limit = parse_expression(expression)
    except ValueError:
        return False
    return (aggregation, _COMPARISONS[comparison], limit) == (
        threshold.aggregation,
        _COMPARISONS[threshold.operator],
        threshold.limit,
    )
