"""Interval records: status classes and the round trips through Timestream and JSON lines."""

from __future__ import annotations

import json

import pytest

from results.histogram import Histogram
from results.records import RequestRecord
from results.records import TaskRecord
from results.records import from_json
from results.records import from_timestream_row
from results.records import status_class
from results.records import to_json
from results.records import to_timestream


def latency() -> Histogram:
    histogram = Histogram()
    for value in (0.0, 0.012, 0.013, 0.250):
        histogram.record(value)
    return histogram


REQUEST = RequestRecord("run-1", "eu-west-1", "2", "login", "POST", "5xx", 1750000005000, 5000, 4, 3, latency())
TASK = TaskRecord("run-1", "eu-west-1", "2", 1750000005000, 5000, 17, 123456, 7890, 40)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("200", "2xx"),
        ("204", "2xx"),
        ("302", "3xx"),
        ("404", "4xx"),
        ("503", "5xx"),
        ("101", "1xx"),
        ("0", "error"),
        ("", "error"),
        ("999", "error"),
        ("abc", "error"),
    ],
)
def test_status_class(status, expected):
    assert status_class(status) == expected


@pytest.mark.parametrize("record", [REQUEST, TASK], ids=["requests", "task"])
def test_json_lines_round_trip(record):
    line = to_json(record)
    assert "\n" not in line
    assert json.loads(line)["kind"] == record.KIND
    assert from_json(line) == record


def test_a_request_record_is_a_timestream_multi_measure_record():
    record = to_timestream(REQUEST)
    assert record["MeasureName"] == "requests"
    assert record["MeasureValueType"] == "MULTI"
    assert (record["Time"], record["TimeUnit"]) == ("1750000005000", "MILLISECONDS")
    assert {d["Name"]: d["Value"] for d in record["Dimensions"]} == {
        "run_id": "run-1",
        "region": "eu-west-1",
        "task": "2",
        "request": "login",
        "method": "POST",
        "status_class": "5xx",
    }
    values = {m["Name"]: (m["Value"], m["Type"]) for m in record["MeasureValues"]}
    assert values["requests"] == ("4", "BIGINT")
    assert values["failures"] == ("3", "BIGINT")
    assert values["length_ms"] == ("5000", "BIGINT")
    assert values["latency"][1] == "VARCHAR" and len(values["latency"][0]) <= 2048


@pytest.mark.parametrize("record", [REQUEST, TASK], ids=["requests", "task"])
def test_a_timestream_query_row_gives_the_record_back(record):
    written = to_timestream(record)
    # What a Query of measure_name, time and every column returns: all scalar values as text.
    row = {d["Name"]: d["Value"] for d in written["Dimensions"]}
    row.update({m["Name"]: m["Value"] for m in written["MeasureValues"]})
    row.update(measure_name=written["MeasureName"], time="2025-06-15 15:06:45.000000000")
    assert from_timestream_row(row) == record


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"kind": "nope"}', "unknown interval record kind"),
        ('{"kind": "task", "run_id": "r"}', "no region"),
        ("[1]", "JSON object"),
    ],
)
def test_bad_json_records_are_refused_with_a_reason(line, message):
    with pytest.raises(ValueError, match=message):
        from_json(line)
