"""Decode the Prometheus remote-write requests k6's ``experimental-prometheus-rw`` output sends.

A request body is a snappy block (not framed) of a ``prometheus.WriteRequest`` protobuf (remote
write 1.0). What k6 1.1 sends, as seen on the wire:

* every push carries every series k6 has seen so far, with cumulative values: counters
  (``k6_http_reqs_total``, ``k6_iterations_total``, ``k6_data_sent_total``, ...) are totals since
  the start of the test, and with ``K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM=true`` trends
  (``k6_http_req_duration_seconds``, ...) are cumulative integer native histograms at schema 3
  with the default zero threshold 2**-128;
* rates are gauges holding the fraction so far (``k6_http_req_failed_rate``), gauges their last
  value (``k6_vus``);
* HTTP series carry k6's tags as labels: ``name``, ``method``, ``status``, ``expected_response``,
  ``scenario``, ``url``, ``proto``, and ``error_code`` for failed requests; ``status`` is ``0``
  when there was no response. Iterations and data counters carry only ``scenario``.

``remote_pb2.py`` is generated from ``remote.proto`` beside it and committed. Regenerate it (the
generated code must match the ``protobuf`` pinned in requirements.txt, 6.x) with::

    python -m venv /tmp/protoc && /tmp/protoc/bin/pip install grpcio-tools==1.76.0 protobuf==6.33.6
    cd files/containers/aggregator && /tmp/protoc/bin/python -m grpc_tools.protoc \\
        --proto_path=. --python_out=. remote.proto
"""

from __future__ import annotations

from dataclasses import dataclass

import cramjam
from google.protobuf.message import DecodeError

import remote_pb2
from results.histogram import Histogram
from results.histogram import HistogramError


class MalformedRequest(ValueError):
    """A body that is not a snappy-compressed remote-write request; the message says what failed."""


@dataclass(frozen=True)
class Series:
    """One time series of a request: its metric name, its other labels and its latest value."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    timestamp_ms: int
    value: float | Histogram

    def label(self, name: str) -> str:
        return next((value for key, value in self.labels if key == name), "")


# What a push may decompress to: snappy expands up to about 21 times, so a body within the
# server's limit could otherwise take gigabytes. k6's pushes are kilobytes to a few megabytes.
MAX_DECOMPRESSED_BYTES = 128 * 1024 * 1024


def decode(body: bytes, metrics: frozenset[str]) -> list[Series]:
    """The latest value of every series of ``metrics`` in a remote-write request body."""
    return series_of(parse(body), metrics)


def parse(body: bytes) -> remote_pb2.WriteRequest:
    """The remote-write request in ``body``."""
    try:
        length = cramjam.snappy.decompress_raw_len(body)
        if length > MAX_DECOMPRESSED_BYTES:
            raise MalformedRequest(f"the body decompresses to {length} bytes, over the limit of {MAX_DECOMPRESSED_BYTES}")
        request = remote_pb2.WriteRequest.FromString(bytes(cramjam.snappy.decompress_raw(body)))
    except cramjam.DecompressionError as error:
        raise MalformedRequest(f"the body is not snappy-compressed: {error}") from None
    except DecodeError as error:
        raise MalformedRequest(f"the body is not a remote-write protobuf: {error}") from None
    return request


def series_of(request: remote_pb2.WriteRequest, metrics: frozenset[str]) -> list[Series]:
    """The latest value of every series of ``metrics`` in ``request``.

    Series of other metrics are skipped before anything is converted: k6 sends a dozen trends
    per request name and the aggregator needs only a few metrics.
    """
    found = []
    for message in request.timeseries:
        metric = next((label.value for label in message.labels if label.name == "__name__"), "")
        if metric in metrics:
            labels = tuple(sorted((label.name, label.value) for label in message.labels if label.name != "__name__"))
            series = _latest(metric, labels, message)
            if series:
                found.append(series)
    return found


def _latest(metric: str, labels: tuple[tuple[str, str], ...], message) -> Series | None:
    """The series' newest sample or histogram (k6 sends one per push; a later one supersedes)."""
    if message.histograms:
        newest = max(message.histograms, key=lambda histogram: histogram.timestamp)
        return Series(metric, labels, newest.timestamp, _histogram(metric, newest))
    if message.samples:
        newest = max(message.samples, key=lambda sample: sample.timestamp)
        return Series(metric, labels, newest.timestamp, newest.value)
    return None


def _histogram(metric: str, message) -> Histogram:
    float_counts = message.WhichOneof("count") == "count_float"
    try:
        return Histogram.from_native(
            schema=message.schema,
            zero_threshold=message.zero_threshold,
            zero_count=message.zero_count_float if float_counts else message.zero_count_int,
            count=message.count_float if float_counts else message.count_int,
            sum=message.sum,
            spans=[(span.offset, span.length) for span in message.positive_spans],
            deltas=message.positive_deltas,
            counts=message.positive_counts,
            negative_spans=[(span.offset, span.length) for span in message.negative_spans],
        )
    except HistogramError as error:
        raise MalformedRequest(f"{metric}: {error}") from None
