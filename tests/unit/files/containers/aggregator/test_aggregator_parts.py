"""The aggregator's parts: remote-write decoding, cumulative series into intervals, the stores.

The fixture ``k6_1.1.0_remote_write.snappy`` is the last body k6 1.1.0 pushed in a 3 s run of
2 VUs, each iteration a GET named ``home`` (200) and an unnamed GET of ``/fail`` (500), with
``-o experimental-prometheus-rw``, ``K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM=true`` and
``K6_PROMETHEUS_RW_PUSH_INTERVAL=1s``. k6's own summary of that run: 2078 requests, half failed,
1039 iterations, 462355 bytes received, 155850 sent.
"""

from __future__ import annotations

import itertools
import json
import logging
import sys
import threading
import tracemalloc
import urllib.request
from pathlib import Path

import cramjam
import pytest
from botocore.awsrequest import AWSResponse

REPO = Path(__file__).resolve().parents[5]
sys.path.insert(0, str(REPO / "files" / "containers" / "aggregator"))
sys.path.insert(0, str(REPO / "tests"))

from containers import load_entrypoint  # noqa: E402

entrypoint = load_entrypoint("aggregator")

import remote_pb2  # noqa: E402
import stores  # noqa: E402
from results.histogram import Histogram  # noqa: E402
from intervals import DURATION  # noqa: E402
from intervals import FAILED_RATE  # noqa: E402
from intervals import METRICS  # noqa: E402
from intervals import REQUESTS  # noqa: E402
from intervals import VUS  # noqa: E402
from intervals import Identity  # noqa: E402
from intervals import IntervalAggregator  # noqa: E402
from results.progress import TaskProgress  # noqa: E402
from results.progress import is_record_key  # noqa: E402
from results.records import RequestRecord  # noqa: E402
from results.records import TaskRecord  # noqa: E402
from results.records import from_json  # noqa: E402
from results.records import to_timestream  # noqa: E402
from remote_write import MalformedRequest  # noqa: E402
from remote_write import Series  # noqa: E402
from remote_write import decode  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "k6_1.1.0_remote_write.snappy"
WHO = Identity("run-1", "eu-west-1", "0")
HOME = (("method", "GET"), ("name", "home"), ("status", "200"))
FAIL = (("method", "GET"), ("name", "/fail"), ("status", "500"))


# ---- Decoding what k6 sends.


def test_the_captured_k6_body_decodes_to_the_series_k6_counted():
    series = decode(FIXTURE.read_bytes(), METRICS)
    by_metric: dict[str, list[Series]] = {}
    for item in series:
        by_metric.setdefault(item.metric, []).append(item)
    assert sorted(item.label("status") for item in by_metric[REQUESTS]) == ["200", "500"]
    assert sum(item.value for item in by_metric[REQUESTS]) == 2078
    durations = by_metric[DURATION]
    assert [h.value.count for h in durations] == [1039, 1039]
    assert {h.value.schema for h in durations} == {3}  # k6 1.1 sends schema 3: 9 % wide buckets
    assert all(sum(h.value.buckets.values()) + h.value.zero_count == h.value.count for h in durations)
    assert {item.label("status"): item.value for item in by_metric[FAILED_RATE]} == {"200": 0.0, "500": 1.0}
    assert {item.metric: item.value for item in series if not item.labels or item.metric == VUS}[VUS] == 2


def test_the_captured_body_aggregates_into_records_with_k6s_totals():
    aggregator = IntervalAggregator(WHO, 5000)
    assert aggregator.add(decode(FIXTURE.read_bytes(), METRICS)) == []  # the interval is still open
    records = aggregator.close_all()
    requests = [r for r in records if isinstance(r, RequestRecord)]
    (task,) = [r for r in records if isinstance(r, TaskRecord)]
    assert sum(r.requests for r in requests) == 2078
    assert {r.status_class: r.failures for r in requests} == {"2xx": 0, "5xx": 1039}
    assert all(r.latency.count == r.requests for r in requests)
    assert (task.iterations, task.data_received, task.data_sent, task.vus) == (1039, 462355, 155850, 2)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not snappy at all", "not snappy-compressed"),
        (bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff")), "not a remote-write protobuf"),
        # A few bytes whose header declares 1.3 GB: refused before anything is decompressed.
        (b"\x80\xa2\xf1\xec\x04\x00abc", "decompresses to 1302089984 bytes, over the limit of 134217728"),
    ],
)
def test_a_malformed_body_is_refused_with_a_reason(body, message):
    with pytest.raises(MalformedRequest, match=message):
        decode(body, METRICS)


def test_a_histogram_with_inconsistent_spans_is_refused():
    request = remote_pb2.WriteRequest()
    series = request.timeseries.add()
    series.labels.add(name="__name__", value=DURATION)
    histogram = series.histograms.add(count_int=1, schema=3, timestamp=1000)
    histogram.positive_spans.add(offset=0, length=2)
    histogram.positive_deltas.append(1)
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    with pytest.raises(MalformedRequest, match=DURATION):
        decode(body, METRICS)


def test_a_huge_span_in_a_tiny_push_is_refused_before_its_buckets_are_made():
    """74 bytes declaring a span of 5 million buckets once took 210 MB."""
    request = remote_pb2.WriteRequest()
    series = request.timeseries.add()
    series.labels.add(name="__name__", value=DURATION)
    histogram = series.histograms.add(count_int=1, schema=3, timestamp=1000)
    histogram.positive_spans.add(offset=0, length=5_000_000)
    histogram.positive_deltas.append(1)
    body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
    assert len(body) < 100
    tracemalloc.start()
    try:
        with pytest.raises(MalformedRequest, match="the spans cover 5000000 buckets but 1 counts were given"):
            decode(body, METRICS)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, peak


# ---- Cumulative series into intervals.


def latency(*values: float) -> Histogram:
    histogram = Histogram()
    for value in values:
        histogram.record(value)
    return histogram


def push(at_ms: int, requests: float, failed_rate: float, durations: Histogram, labels=HOME) -> list[Series]:
    return [
        Series(REQUESTS, labels, at_ms, requests),
        Series(FAILED_RATE, labels, at_ms, failed_rate),
        Series(DURATION, labels, at_ms, durations),
    ]


def test_cumulative_pushes_become_per_interval_deltas():
    aggregator = IntervalAggregator(WHO, 5000)
    assert aggregator.add(push(1_000, 2, 0.5, latency(0.1, 0.2))) == []
    assert aggregator.add(push(4_000, 4, 0.5, latency(0.1, 0.2, 0.3, 0.4))) == []
    (first,) = aggregator.add(push(5_000, 5, 0.4, latency(0.1, 0.2, 0.3, 0.4, 0.5)))
    assert (first.start_ms, first.length_ms, first.requests, first.failures) == (0, 5000, 4, 2)
    assert first.latency == latency(0.1, 0.2, 0.3, 0.4)
    (partial,) = aggregator.close_all()
    assert (partial.start_ms, partial.requests, partial.failures) == (5000, 1, 0)
    assert partial.latency.count == 1


def test_series_of_one_request_name_and_status_class_add_up():
    created = (("method", "POST"), ("name", "login"), ("status", "201"))
    ok = (("method", "POST"), ("name", "login"), ("status", "200"))
    aggregator = IntervalAggregator(WHO, 5000)
    aggregator.add(push(1_000, 3, 0.0, latency(0.1, 0.1, 0.1), created) + push(1_000, 2, 0.0, latency(0.2, 0.2), ok))
    (record,) = aggregator.close_all()
    assert (record.request, record.method, record.status_class, record.requests) == ("login", "POST", "2xx", 5)
    assert record.latency == latency(0.1, 0.1, 0.1).merge(latency(0.2, 0.2))


def test_request_names_past_the_limit_are_summed_into_other_and_counted(caplog):
    """A script that builds URLs makes a request name per URL: a task keeps the first names apart."""
    aggregator = IntervalAggregator(WHO, 5000, max_request_names=2)
    urls = [(("method", "GET"), ("name", f"/users/{user}"), ("status", "200")) for user in range(6)]
    with caplog.at_level(logging.WARNING, logger="aggregator"):
        for at_ms in (1_000, 2_000):  # the same series twice: cumulative totals, counted once
            pushed = [push(at_ms, index + 1, 0.0, latency(*[0.1] * (index + 1)), labels) for index, labels in enumerate(urls)]
            aggregator.add([series for one in pushed for series in one])
    records = aggregator.close_all()
    by_name = {record.request: record for record in records if isinstance(record, RequestRecord)}
    assert sorted(by_name) == ["(other)", "/users/0", "/users/1"]
    assert by_name["(other)"].requests == 3 + 4 + 5 + 6 and by_name["(other)"].latency.count == 18
    assert sum(record.requests for record in by_name.values()) == sum(range(1, 7))
    assert aggregator.folded_request_names == 4
    assert [r.getMessage() for r in caplog.records] == ["request_names_folded"]


def test_a_restarted_k6_starts_its_totals_over():
    aggregator = IntervalAggregator(WHO, 5000)
    aggregator.add(push(1_000, 10, 0.0, latency(*[0.1] * 10)))
    (first,) = aggregator.add(push(6_000, 3, 0.0, latency(0.2, 0.2, 0.2)))
    (second,) = aggregator.close_all()
    assert (first.requests, second.requests) == (10, 3)
    assert second.latency == latency(0.2, 0.2, 0.2)


def test_a_value_stamped_in_a_closed_interval_goes_to_the_oldest_open_one():
    aggregator = IntervalAggregator(WHO, 5000)
    aggregator.add(push(1_000, 1, 0.0, latency(0.1)))
    assert len(aggregator.add(push(6_000, 2, 0.0, latency(0.1, 0.1)))) == 1
    aggregator.add([Series(VUS, (), 4_900, 7.0)])
    (requests, task) = aggregator.close_all()
    assert (requests.start_ms, task.start_ms, task.vus) == (5000, 5000, 7)


def test_no_record_for_a_series_without_new_requests():
    aggregator = IntervalAggregator(WHO, 5000)
    aggregator.add(push(1_000, 2, 0.0, latency(0.1, 0.1)))
    assert len(aggregator.add(push(6_000, 2, 0.0, latency(0.1, 0.1)))) == 1
    assert aggregator.close_all() == []


def test_requests_without_latency_histograms_are_warned_about(caplog):
    aggregator = IntervalAggregator(WHO, 5000)
    with caplog.at_level(logging.WARNING, logger="aggregator"):
        aggregator.add([Series(REQUESTS, HOME, 1_000, 1.0)])
        aggregator.add([Series(REQUESTS, HOME, 2_000, 2.0)])
    assert [r.getMessage() for r in caplog.records] == ["no_latency_histograms"]


# ---- Stores.


def interval_records(count: int) -> list[RequestRecord]:
    return [
        RequestRecord(
            "run-1",
            "eu-west-1",
            "0",
            f"request-{i % 7}",
            "GET",
            "2xx",
            1_750_000_000_000 + 5000 * (i // 7),
            5000,
            10,
            0,
            latency(0.01 * (1 + i % 5)),
        )
        for i in range(count)
    ]


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_kwargs):
        yield self._data


def error_response(request, status: int, code: str, **fields) -> AWSResponse:
    body = json.dumps({"__type": f"com.amazonaws.timestream.v20181101#{code}", "message": code, **fields})
    return AWSResponse(request.url, status, {"x-amzn-RequestId": "injected"}, _Body(body.encode()))


@pytest.fixture
def timestream(moto):
    client = stores.client("timestream-write", "eu-west-1", moto.url)
    client.create_database(DatabaseName="results")
    client.create_table(DatabaseName="results", TableName="intervals")
    return client


def stored_timestream_records(moto) -> list[dict]:
    with urllib.request.urlopen(f"{moto.url}/moto-api/data.json") as response:
        tables = json.load(response)["timestreamwrite"]["TimestreamTable"]
    return [record for table in tables for record in table["records"]]


def test_throttled_timestream_writes_are_retried_until_every_record_is_written_once(moto, timestream):
    calls = itertools.count()
    throttled = []

    def throttle_every_other_call(request, **_kwargs):
        if next(calls) % 2 == 0:
            throttled.append(1)
            return error_response(request, 400, "ThrottlingException")
        return None

    timestream.meta.events.register("before-send.timestream-write.WriteRecords", throttle_every_other_call)
    records = interval_records(250)
    writer = stores.Writer(stores.TimestreamStore(timestream, "results", "intervals"))
    writer.submit(records[:120])
    writer.submit(records[120:])
    writer.drain()
    writer.stop()
    requests = sum(record.requests for record in records if isinstance(record, RequestRecord))
    assert writer.summary() == {
        "produced": 250, "written": 250, "rejected": 0, "failed": 0, "dropped": 0, "unflushed": 0, "lost": 0,
        "requests_written": requests, "retries": len(throttled),
    }
    total_calls = next(calls)
    assert len(throttled) / total_calls >= 0.3
    assert sorted(map(json.dumps, stored_timestream_records(moto))) == sorted(
        json.dumps(to_timestream(record)) for record in records
    )


def test_rejected_records_are_logged_and_counted(timestream, caplog):
    def reject_two(request, **_kwargs):
        rejected = [{"RecordIndex": 3, "Reason": "Duplicate"}, {"RecordIndex": 40, "Reason": "Too old"}]
        return error_response(request, 419, "RejectedRecordsException", RejectedRecords=rejected)

    timestream.meta.events.register("before-send.timestream-write.WriteRecords", reject_two)
    records = interval_records(150)
    with caplog.at_level(logging.ERROR, logger="aggregator"):
        outcome = stores.TimestreamStore(timestream, "results", "intervals").write(records)
    assert (outcome.written, outcome.rejected, outcome.failed) == (146, 4, 0)
    rejections = [r.fields for r in caplog.records if r.getMessage() == "record_rejected"]
    assert [r["reason"] for r in rejections] == ["Duplicate", "Too old"] * 2
    assert rejections[0]["record"]["request"] == records[3].request
    assert rejections[3]["record"]["start_ms"] == records[140].start_ms


def test_a_batch_that_fails_after_every_retry_is_logged_record_by_record(timestream, caplog, monkeypatch):
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_args: 0)
    timestream.meta.events.register(
        "before-send.timestream-write.WriteRecords",
        lambda request, **_kwargs: error_response(request, 500, "InternalServerException"),
    )
    with caplog.at_level(logging.ERROR, logger="aggregator"):
        outcome = stores.TimestreamStore(timestream, "results", "intervals").write(interval_records(3))
    assert (outcome.written, outcome.failed) == (0, 3)
    assert [r.getMessage() for r in caplog.records] == ["record_not_written"] * 3


def test_the_s3_store_writes_one_json_lines_object_per_write_under_the_runs_prefix(moto):
    s3 = stores.client("s3", "eu-central-1", moto.url)
    s3.create_bucket(Bucket="home", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    store = stores.S3Store(s3, "home", "run-1", "eu-west-1", "0")
    store.check()
    records = interval_records(20)
    assert store.write(records[:12]).written == 12
    assert store.write(records[12:]).written == 8
    listed = [item["Key"] for item in s3.list_objects_v2(Bucket="home")["Contents"]]
    keys = [key for key in listed if is_record_key(key)]
    assert len(keys) == 2
    assert all(key.startswith("runs/run-1/records/eu-west-1/0/") and key.endswith(".jsonl") for key in keys)
    assert set(listed) - set(keys) == {"runs/run-1/records/eu-west-1/0/progress.json"}
    stored = [
        from_json(line)
        for key in sorted(keys)
        for line in s3.get_object(Bucket="home", Key=key)["Body"].read().decode().splitlines()
    ]
    assert stored == records


# ---- The S3 store's running totals (progress.json).

PROGRESS_KEY = "runs/run-1/records/eu-west-1/0/progress.json"


@pytest.fixture
def home_bucket(moto):
    s3 = stores.client("s3", "eu-central-1", moto.url)
    s3.create_bucket(Bucket="home", CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    return s3


def stored_progress(s3) -> TaskProgress:
    return TaskProgress.from_json(s3.get_object(Bucket="home", Key=PROGRESS_KEY)["Body"].read())


def stored_totals(s3) -> tuple[int, int, int]:
    """(requests, failures, iterations) of every record in the bucket."""
    records = [
        from_json(line)
        for item in s3.list_objects_v2(Bucket="home")["Contents"]
        if is_record_key(item["Key"])
        for line in s3.get_object(Bucket="home", Key=item["Key"])["Body"].read().decode().splitlines()
    ]
    requests = [r for r in records if isinstance(r, RequestRecord)]
    iterations = sum(r.iterations for r in records if isinstance(r, TaskRecord))
    return sum(r.requests for r in requests), sum(r.failures for r in requests), iterations


def task_record(start_ms: int, iterations: int) -> TaskRecord:
    return TaskRecord("run-1", "eu-west-1", "0", start_ms, 5000, iterations, 1000, 100, 2)


def test_progress_is_written_with_the_first_records_then_at_most_every_period_and_on_drain(home_bucket, monkeypatch):
    monkeypatch.setattr(stores, "PROGRESS_SECONDS", 3600.0)
    first = [*interval_records(7), task_record(1_750_000_000_000, 30)]
    later = [*interval_records(14)[7:], task_record(1_750_000_005_000, 25)]
    store = stores.S3Store(home_bucket, "home", "run-1", "eu-west-1", "0")

    store.write(first)
    assert stored_progress(home_bucket).requests == 70

    store.write(later)
    assert stored_progress(home_bucket).requests == 70, "rewritten within the period"

    writer = stores.Writer(store)
    writer.drain()
    writer.stop()
    saved = stored_progress(home_bucket)
    assert (saved.requests, saved.failures, saved.iterations) == stored_totals(home_bucket) == (140, 0, 55)
    assert saved.updated_ms > 1_750_000_000_000


def test_progress_counts_only_the_records_that_were_written(home_bucket, monkeypatch):
    monkeypatch.setattr(stores, "PROGRESS_SECONDS", 0.0)
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_args: 0)
    store = stores.S3Store(home_bucket, "home", "run-1", "eu-west-1", "0")
    assert store.write(interval_records(5)).written == 5

    def fail_records(request, **_kwargs):
        if request.url.split("?")[0].endswith(".jsonl"):
            return AWSResponse(request.url, 500, {}, _Body(b"<Error><Code>InternalError</Code></Error>"))
        return None

    home_bucket.meta.events.register("before-send.s3.PutObject", fail_records)
    assert store.write(interval_records(3)).failed == 3
    home_bucket.meta.events.unregister("before-send.s3.PutObject", fail_records)
    assert store.write(interval_records(2)).written == 2

    saved = stored_progress(home_bucket)
    assert (saved.requests, saved.failures, saved.iterations) == stored_totals(home_bucket) == (70, 0, 0)


def test_a_flush_that_outlasts_its_time_counts_what_is_not_written_as_unflushed():
    """ECS kills the container at the stopTimeout: a store too slow for the flush's time is reported, not waited for."""
    release = threading.Event()

    class SlowStore:
        def check(self) -> None:
            pass

        def write(self, records):
            release.wait(10)
            return stores.Outcome(written=len(records))

        def save_progress(self) -> None:
            pass

    writer = stores.Writer(SlowStore())
    writer.submit(interval_records(3))
    writer.submit(interval_records(2))
    assert writer.drain(timeout=0.2) is False
    assert writer.summary() == {
        "produced": 5, "written": 0, "rejected": 0, "failed": 0, "dropped": 0, "unflushed": 5, "lost": 5,
        "requests_written": 0, "retries": 0,
    }
    release.set()
    assert writer.drain(timeout=10) is True
    writer.stop(timeout=10)
    assert writer.summary()["unflushed"] == 0 and writer.summary()["written"] == 5


def test_a_store_that_stops_answering_costs_records_counted_as_dropped_not_the_tasks_memory(caplog):
    """The writer holds a bounded number of records: past it a batch is dropped, logged with its requests, and counted lost."""
    release = threading.Event()
    writing = threading.Event()

    class StalledStore:
        def check(self) -> None:
            pass

        def write(self, records):
            writing.set()
            release.wait(10)
            return stores.Outcome(written=len(records), requests_written=stores.requests_in(records))

        def save_progress(self) -> None:
            pass

    writer = stores.Writer(StalledStore(), max_queued_records=10)
    with caplog.at_level(logging.ERROR, logger="aggregator"):
        writer.submit(interval_records(4))  # taken by the writer thread, which then waits on the store
        assert writing.wait(10)
        for _batch in range(5):
            writer.submit(interval_records(4))
    release.set()
    assert writer.drain(timeout=10) is True
    writer.stop(timeout=10)
    summary = writer.summary()
    # 4 in the store's hands; 8 more fit the queue of 10 (the first 4 left it); 12 dropped.
    assert (summary["produced"], summary["written"], summary["dropped"], summary["lost"]) == (24, 12, 12, 12)
    assert summary["requests_written"] == 12 * 10
    drops = [r.fields for r in caplog.records if r.getMessage() == "records_dropped"]
    assert [drop["requests"] for drop in drops] == [40, 40, 40]


def test_the_aggregator_counts_the_requests_k6_pushed_across_intervals_and_names():
    aggregator = IntervalAggregator(Identity("run-1", "eu-west-1", "0"), 1000, max_request_names=1)
    records = aggregator.add(push(500, 3, 0.0, latency(0.1, 0.1, 0.1)))
    records += aggregator.add(push(1500, 7, 0.0, latency(0.1, 0.1, 0.1, 0.2, 0.2, 0.2, 0.2)))
    records += aggregator.add(push(1600, 2, 0.0, latency(0.1, 0.1), labels=(("method", "GET"), ("name", "other"), ("status", "200"))))
    records += aggregator.close_all()
    assert aggregator.requests_received == 9 == sum(r.requests for r in records if isinstance(r, RequestRecord))


def test_rejected_records_leave_their_requests_out_of_the_requests_written(timestream):
    def reject_one(request, **_kwargs):
        return error_response(request, 419, "RejectedRecordsException", RejectedRecords=[{"RecordIndex": 0, "Reason": "Too old"}])

    timestream.meta.events.register("before-send.timestream-write.WriteRecords", reject_one)
    records = interval_records(5)
    outcome = stores.TimestreamStore(timestream, "results", "intervals").write(records)
    assert (outcome.written, outcome.rejected, outcome.requests_written) == (4, 1, 40)


def test_a_denied_write_is_tried_again_while_the_grant_propagates_then_counted_lost(home_bucket, monkeypatch):
    """IAM applies a new grant within seconds (run_grants): a denied write waits for it, for a while."""
    sleeps = []
    monkeypatch.setattr(stores.time, "sleep", sleeps.append)
    denied = {"left": 2}

    def deny_records(request, **_kwargs):
        if request.url.split("?")[0].endswith(".jsonl") and denied["left"]:
            denied["left"] -= 1
            return AWSResponse(request.url, 403, {}, _Body(b"<Error><Code>AccessDenied</Code></Error>"))
        return None

    home_bucket.meta.events.register("before-send.s3.PutObject", deny_records)
    store = stores.S3Store(home_bucket, "home", "run-1", "eu-west-1", "0")
    assert store.write(interval_records(3)).written == 3
    assert sleeps == [stores.GRANT_RETRY_DELAY_SECONDS] * 2
    assert stored_totals(home_bucket)[0] == 30

    # Denied for good: given up after GRANT_PROPAGATION_SECONDS (the clock moves with the sleeps).
    clock = {"now": 0.0}
    monkeypatch.setattr(stores.time, "monotonic", lambda: clock["now"])
    monkeypatch.setattr(stores.time, "sleep", lambda seconds: clock.update(now=clock["now"] + seconds))
    denied["left"] = 10**6
    assert store.write(interval_records(3)).failed == 3
    assert stores.GRANT_PROPAGATION_SECONDS - stores.GRANT_RETRY_DELAY_SECONDS <= clock["now"] <= stores.GRANT_PROPAGATION_SECONDS


def test_a_failed_progress_write_is_logged_and_the_records_still_count(home_bucket, monkeypatch, caplog):
    monkeypatch.setattr("botocore.retries.standard.ExponentialBackoff.delay_amount", lambda *_args: 0)

    def fail_progress(request, **_kwargs):
        if request.url.split("?")[0].endswith("progress.json"):
            return AWSResponse(request.url, 500, {}, _Body(b"<Error><Code>InternalError</Code></Error>"))
        return None

    home_bucket.meta.events.register("before-send.s3.PutObject", fail_progress)
    with caplog.at_level(logging.WARNING, logger="aggregator"):
        outcome = stores.S3Store(home_bucket, "home", "run-1", "eu-west-1", "0").write(interval_records(4))
    assert (outcome.written, outcome.failed) == (4, 0)
    assert [r.getMessage() for r in caplog.records] == ["progress_not_written"]


def test_finish_writes_the_partial_interval_and_progress_with_k6s_totals(home_bucket, monkeypatch):
    monkeypatch.setattr(stores, "PROGRESS_SECONDS", 3600.0)
    writer = stores.Writer(stores.S3Store(home_bucket, "home", "run-1", "eu-west-1", "0"))
    server = entrypoint.AggregatorServer(("127.0.0.1", 0), IntervalAggregator(WHO, 5000), writer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        push = urllib.request.Request(f"{url}/api/v1/write", data=FIXTURE.read_bytes(), method="POST")
        with urllib.request.urlopen(push, timeout=10) as response:
            assert response.status == 204
        with pytest.raises(home_bucket.exceptions.NoSuchKey):
            stored_progress(home_bucket)  # no records yet: the interval is still open
        finish = urllib.request.Request(f"{url}/finish", data=b"", method="POST")
        with urllib.request.urlopen(finish, timeout=30) as response:
            assert json.load(response)["written"] == 3
    finally:
        server.shutdown()
        server.server_close()
        writer.stop()
    saved = stored_progress(home_bucket)
    assert (saved.requests, saved.failures, saved.iterations) == stored_totals(home_bucket) == (2078, 1039, 1039)
