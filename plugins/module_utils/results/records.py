# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""Interval records: what the aggregator writes to the results store and the report reads back.

Two kinds, both for one interval (``start_ms`` epoch milliseconds, aligned to ``length_ms``) of
one task (``task``, its index as a string) of one region (``region``) of one run (``run_id``):

``requests`` (:class:`RequestRecord`), one per request name / method / status class:
    ``request`` (k6's ``name`` tag), ``method``, ``status_class`` (``1xx``..``5xx``, or ``error``
    when there was no response), ``requests`` (count), ``failures`` (requests k6 counted in
    ``http_req_failed``), ``latency`` (:class:`histogram.Histogram` of ``http_req_duration`` in
    seconds).
``task`` (:class:`TaskRecord`), one per interval:
    ``iterations``, ``data_received`` and ``data_sent`` (bytes), ``vus`` (the last active VU
    count k6 reported in the interval). k6 reports bytes per scenario only, not per request,
    which is why they live here and not on the request records.

An interval's record holds what k6 counted in it, so sums over intervals, tasks and regions are
the test's totals, and merged ``latency`` histograms give the test's percentiles.

Stores: a Timestream multi-measure record per interval record (dimensions ``run_id``, ``region``,
``task`` and, for ``requests``, ``request``, ``method``, ``status_class``; measure name = the
kind; ``Time`` = ``start_ms`` in milliseconds; ``latency`` a VARCHAR of at most 2 KB), or one
JSON object per line in S3 with the same field names plus ``kind``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import fields
from datetime import datetime
from datetime import timezone
from typing import Any
from typing import ClassVar
from typing import Optional
from typing import Union

try:
    from .histogram import Histogram
    from .histogram import deserialize
except ImportError:  # the aggregator ships this file and histogram.py as top-level modules
    from histogram import Histogram  # type: ignore[no-redef]
    from histogram import deserialize  # type: ignore[no-redef]

_STATUS_CLASSES = {"1": "1xx", "2": "2xx", "3": "3xx", "4": "4xx", "5": "5xx"}
# The request name a task's aggregator sums every name past its first ones into (intervals.py).
OTHER_REQUESTS = "(other)"


@dataclass(frozen=True)
class RequestRecord:
    """The requests of one request name / method / status class in one interval of one task."""

    KIND: ClassVar[str] = "requests"
    DIMENSIONS: ClassVar[tuple[str, ...]] = ("run_id", "region", "task", "request", "method", "status_class")

    run_id: str
    region: str
    task: str
    request: str
    method: str
    status_class: str
    start_ms: int
    length_ms: int
    requests: int
    failures: int
    latency: Histogram


@dataclass(frozen=True)
class TaskRecord:
    """What one task did in one interval beyond its requests (k6 reports these per scenario only)."""

    KIND: ClassVar[str] = "task"
    DIMENSIONS: ClassVar[tuple[str, ...]] = ("run_id", "region", "task")

    run_id: str
    region: str
    task: str
    start_ms: int
    length_ms: int
    iterations: int
    data_received: int
    data_sent: int
    vus: int


Record = Union[RequestRecord, TaskRecord]
_KINDS: dict[str, type[Record]] = {RequestRecord.KIND: RequestRecord, TaskRecord.KIND: TaskRecord}


# How each field of a kind is read from JSON or Timestream text: dimensions as text, the latency
# as a histogram, the other measures as integers (computed once: records are read by the million).
_CONVERSIONS: dict[str, tuple[tuple[str, Any], ...]] = {
    kind: tuple(
        (item.name, str if item.name in record_type.DIMENSIONS else deserialize if item.name == "latency" else int)
        for item in fields(record_type)
    )
    for kind, record_type in _KINDS.items()
}


def status_class(status: str) -> str:
    """k6's ``status`` tag as a class: ``"503"`` is ``5xx``; ``"0"`` (no response) is ``error``."""
    if len(status) == 3 and status.isdigit() and status[0] in _STATUS_CLASSES:
        return _STATUS_CLASSES[status[0]]
    return "error"


def measures(record: Record) -> dict[str, Any]:
    """The record's values that are neither dimensions nor its time, by field name."""
    return {
        item.name: getattr(record, item.name)
        for item in fields(record)
        if item.name not in record.DIMENSIONS and item.name != "start_ms"
    }


# ---- Timestream.


def to_timestream(record: Record) -> dict[str, Any]:
    """The record as a Timestream ``WriteRecords`` multi-measure record."""
    return {
        "Dimensions": [{"Name": name, "Value": getattr(record, name)} for name in record.DIMENSIONS],
        "MeasureName": record.KIND,
        "MeasureValueType": "MULTI",
        "MeasureValues": [
            {"Name": name, "Value": _text(value), "Type": "VARCHAR" if isinstance(value, Histogram) else "BIGINT"}
            for name, value in measures(record).items()
        ],
        "Time": str(record.start_ms),
        "TimeUnit": "MILLISECONDS",
    }


def from_timestream_row(row: Mapping[str, Optional[str]]) -> Record:
    """A record from one Timestream Query row given as column name -> scalar value text.

    The query selects ``measure_name``, ``time`` and every dimension and measure column.
    """
    values = dict(row)
    values["start_ms"] = _timestream_time_ms(values.pop("time", None) or "")
    return _record(values.pop("measure_name", None) or "", values)


def _timestream_time_ms(text: str) -> int:
    """Milliseconds since the epoch of a Timestream timestamp like ``2025-06-01 12:00:05.000000000``."""
    try:
        seconds, _dot, fraction = text.partition(".")
        moment = datetime.strptime(seconds, "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        raise ValueError(f"not a Timestream timestamp: {text!r}") from None
    return int(moment.timestamp()) * 1000 + int((fraction + "000")[:3])


# ---- JSON lines (the S3 store).


def to_json(record: Record) -> str:
    """The record as one line of JSON: ``kind`` and every field, ``latency`` serialized."""
    values = {"kind": record.KIND}
    for item in fields(record):
        value = getattr(record, item.name)
        values[item.name] = value.serialize() if isinstance(value, Histogram) else value
    return json.dumps(values, separators=(",", ":"))


def from_json(line: str) -> Record:
    """The record :func:`to_json` wrote."""
    values = json.loads(line)
    if not isinstance(values, dict):
        raise ValueError(f"an interval record is a JSON object, got {type(values).__name__}")
    return _record(values.pop("kind", ""), values)


def _record(kind: str, values: Mapping[str, Any]) -> Record:
    """A record of ``kind`` from field values as JSON or Timestream give them (numbers may be text)."""
    if kind not in _KINDS:
        raise ValueError(f"unknown interval record kind {kind!r}; expected one of {sorted(_KINDS)}")
    record_type = _KINDS[kind]
    arguments: dict[str, Any] = {}
    for name, convert in _CONVERSIONS[kind]:
        value = values.get(name)
        if value is None:
            raise ValueError(f"the {kind} record has no {name}")
        arguments[name] = convert(value)
    return record_type(**arguments)


def _text(value: Any) -> str:
    return value.serialize() if isinstance(value, Histogram) else str(value)
