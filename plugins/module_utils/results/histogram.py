# -*- coding: utf-8 -*-
# Copyright: constellation.loadtest contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

"""The one mergeable latency histogram: the aggregator builds it, the report merges and reads it.

It uses the bucket scheme of Prometheus native histograms, which is what k6's
``experimental-prometheus-rw`` output sends (with ``K6_PROMETHEUS_RW_TREND_AS_NATIVE_HISTOGRAM``):

* schema ``s`` (-4..8): bucket ``i`` covers ``(base**(i-1), base**i]`` with ``base = 2**(2**-s)``,
  so every bucket is ``base`` times wider than the one before and a bucket's relative width is
  ``base - 1`` (9.05 % at schema 3, the schema k6 1.1 sends);
* a zero bucket counting the observations in ``[0, zero_threshold]``;
* ``count`` and ``sum`` of all observations.

Only positive buckets exist: latencies are never negative, and a histogram with negative buckets
is refused rather than half read.

Merging two histograms of the same schema adds bucket counts and is exact. Histograms of
different schemas are merged at the coarser one: downscaling by ``k`` steps merges ``2**k``
neighbouring buckets into one, which is exact too (no observation changes bucket). So per-task,
per-region and whole-test percentiles all come from one merged histogram, never from averaged
percentiles.

:meth:`Histogram.quantile` interpolates like Prometheus' ``histogram_quantile`` does for native
histograms with exponential buckets: exponentially (linearly in log2 space) inside the bucket
that holds the rank, and linearly inside the zero bucket.

:meth:`Histogram.serialize` gives a short ASCII string (base64 of schema, zero bucket, sum,
count, spans and zigzag-varint bucket deltas) for a Timestream VARCHAR measure or a JSON
record; :func:`deserialize` reads it back exactly.
"""

from __future__ import annotations

import base64
import math
import struct
from bisect import bisect_left
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from functools import cache
from itertools import accumulate
from typing import Optional
from typing import Union

Count = Union[int, float]

MIN_SCHEMA = -4
MAX_SCHEMA = 8
# Prometheus' default zero threshold (2**-128), which k6 sends: in practice only exact zeros.
DEFAULT_ZERO_THRESHOLD = 2.0**-128
# A Timestream VARCHAR measure value holds at most 2 KB.
MAX_SERIALIZED_LENGTH = 2048

_FORMAT_VERSION = 1
_FLAG_FLOAT_COUNTS = 1
_DOUBLE = struct.Struct("<d")


class HistogramError(ValueError):
    """A histogram that cannot be built, combined or read; the message says why."""


@dataclass
class Histogram:
    """A sparse exponential histogram of non-negative observations (see the module docstring).

    ``buckets`` maps a bucket index to its count and holds no zero counts. Counts are ``int``
    for integer histograms and ``float`` for float histograms (Prometheus has both).
    """

    schema: int = 3
    zero_threshold: float = DEFAULT_ZERO_THRESHOLD
    zero_count: Count = 0
    buckets: dict[int, Count] = field(default_factory=dict)
    count: Count = 0
    sum: float = 0.0

    def __post_init__(self) -> None:
        if not MIN_SCHEMA <= self.schema <= MAX_SCHEMA:
            raise HistogramError(f"schema must be between {MIN_SCHEMA} and {MAX_SCHEMA}, got {self.schema}")
        if self.zero_threshold < 0:
            raise HistogramError(f"zero_threshold must not be negative, got {self.zero_threshold}")

    @classmethod
    def from_native(
        cls,
        *,
        schema: int,
        zero_threshold: float,
        zero_count: Count,
        count: Count,
        sum: float,
        spans: Sequence[tuple[int, int]],
        deltas: Sequence[int] = (),
        counts: Sequence[float] = (),
        negative_spans: Sequence[tuple[int, int]] = (),
    ) -> Histogram:
        """A histogram from the fields of a Prometheus native histogram (positive buckets).

        ``spans`` are ``(offset, length)`` pairs: the first offset is the first bucket's index,
        each later one the gap after the previous span. Integer histograms give ``deltas``
        (each bucket's count minus the previous bucket's), float histograms give ``counts``.
        """
        if any(length for _offset, length in negative_spans):
            raise HistogramError("negative buckets are not supported: latencies are never negative")
        # Checked before the indices are made: a few bytes can declare a span of millions of buckets.
        covered = 0
        for _offset, length in spans:
            if length < 0:
                raise HistogramError(f"a span length is negative: {length}")
            covered += length
        given = len(counts) if counts else len(deltas)
        if covered != given:
            raise HistogramError(f"the spans cover {covered} buckets but {given} counts were given")
        indices = _span_indices(spans)
        values = list(counts) if counts else list(accumulate(deltas))
        if any(value < 0 for value in values):
            raise HistogramError("a bucket count is negative")
        buckets = {index: value for index, value in zip(indices, values, strict=True) if value}
        return cls(schema, zero_threshold, zero_count, buckets, count, sum)

    # ---- Observations.

    def record(self, value: float) -> None:
        """Count one observation (for histograms built from raw samples, e.g. to check accuracy)."""
        if value < 0 or math.isnan(value):
            raise HistogramError(f"observations must be non-negative numbers, got {value}")
        if value <= self.zero_threshold:
            self.zero_count += 1
        else:
            index = bucket_index(value, self.schema)
            self.buckets[index] = self.buckets.get(index, 0) + 1
        self.count += 1
        self.sum += value

    # ---- Combining.

    def downscale(self, to_schema: int) -> Histogram:
        """The same observations at a coarser schema: exact, each bucket merges 2**k neighbours."""
        if to_schema > self.schema:
            raise HistogramError(f"cannot downscale schema {self.schema} to the finer schema {to_schema}")
        shift = self.schema - to_schema
        buckets: dict[int, Count] = {}
        for index, value in self.buckets.items():
            # (index - 1) >> shift floors, for negative indices too: bucket i lies in ceil(i / 2**shift).
            target = ((index - 1) >> shift) + 1
            buckets[target] = buckets.get(target, 0) + value
        return Histogram(to_schema, self.zero_threshold, self.zero_count, buckets, self.count, self.sum)

    def merge(self, other: Histogram) -> Histogram:
        """Both histograms' observations in one, at the coarser schema and the wider zero bucket."""
        left, right = _aligned(self, other)
        buckets = dict(left.buckets)
        for index, value in right.buckets.items():
            buckets[index] = buckets.get(index, 0) + value
        return Histogram(
            left.schema,
            left.zero_threshold,
            left.zero_count + right.zero_count,
            buckets,
            left.count + right.count,
            left.sum + right.sum,
        )

    def add(self, other: Histogram) -> None:
        """Add ``other``'s observations to this histogram in place: what :meth:`merge` returns,
        without copying the buckets when both have the same schema and zero bucket (reading a
        run's records adds up thousands of histograms per series)."""
        if other.schema != self.schema or other.zero_threshold != self.zero_threshold:
            merged = self.merge(other)
            self.schema, self.zero_threshold, self.buckets = merged.schema, merged.zero_threshold, merged.buckets
            self.zero_count, self.count, self.sum = merged.zero_count, merged.count, merged.sum
            return
        buckets = self.buckets
        for index, value in other.buckets.items():
            buckets[index] = buckets.get(index, 0) + value
        self.zero_count += other.zero_count
        self.count += other.count
        self.sum += other.sum

    def copy(self) -> Histogram:
        return Histogram(self.schema, self.zero_threshold, self.zero_count, dict(self.buckets), self.count, self.sum)

    def subtract(self, earlier: Histogram) -> Histogram:
        """The observations made since ``earlier``, an earlier snapshot of the same cumulative series.

        k6 sends cumulative histograms; this turns two snapshots into the interval between them.
        Raises :class:`HistogramError` when ``earlier`` has more in any bucket, which means the
        series was reset (k6 restarted) and ``self`` alone is the new data.
        """
        current, previous = _aligned(self, earlier)
        buckets = dict(current.buckets)
        for index, value in previous.buckets.items():
            remaining = buckets.get(index, 0) - value
            if remaining < 0:
                raise HistogramError("the earlier snapshot has more observations in a bucket: the series was reset")
            if remaining:
                buckets[index] = remaining
            else:
                buckets.pop(index, None)
        zero_count = current.zero_count - previous.zero_count
        count = current.count - previous.count
        if zero_count < 0 or count < 0:
            raise HistogramError("the earlier snapshot has more observations: the series was reset")
        return Histogram(current.schema, current.zero_threshold, zero_count, buckets, count, current.sum - previous.sum)

    # ---- Reading.

    def quantile(self, q: float) -> float:
        """The q-quantile (0 <= q <= 1) estimated as Prometheus' ``histogram_quantile`` does.

        Within the bucket that holds the rank ``q * count``, the observations are assumed to be
        spread evenly in log space (exponential interpolation); within the zero bucket, evenly
        between 0 and the threshold. The relative error is at most the bucket's relative width
        (``base - 1``) and usually far smaller. NaN for an empty histogram.
        """
        if not 0 <= q <= 1:
            raise HistogramError(f"the quantile must be between 0 and 1, got {q}")
        if not self.count:
            return math.nan
        rank = q * self.count
        if self.zero_count and rank <= self.zero_count:
            return self.zero_threshold * rank / self.zero_count
        below = self.zero_count
        for index in sorted(self.buckets):
            value = self.buckets[index]
            if below + value >= rank:
                # Linear in log2 space, where the bucket spans (index - 1, index] / 2**schema.
                fraction = (rank - below) / value
                return 2.0 ** math.ldexp(index - 1 + fraction, -self.schema)
            below += value
        # Only reached when count exceeds the bucket total (Prometheus counts NaN observations in
        # count alone): the best answer is the highest bucket's upper bound.
        return self.upper_bound(max(self.buckets)) if self.buckets else self.zero_threshold

    def upper_bound(self, index: int) -> float:
        """The upper bound of bucket ``index`` at this histogram's schema."""
        return 2.0 ** math.ldexp(index, -self.schema)

    def mean(self) -> float:
        return self.sum / self.count if self.count else math.nan

    # ---- Serialization.

    def serialize(self, limit: int = MAX_SERIALIZED_LENGTH) -> str:
        """This histogram as an ASCII string of at most ``limit`` characters (see :func:`deserialize`).

        A histogram whose string would be longer is downscaled one schema at a time until it
        fits: each step halves the resolution (the bucket count roughly halves, the relative
        bucket width about doubles) and stays exact. A realistic latency interval at schema 3
        takes a few hundred characters, far below Timestream's 2 KB.
        """
        histogram = self
        while True:
            text = base64.b64encode(histogram._encode()).decode("ascii")
            if len(text) <= limit:
                return text
            if histogram.schema == MIN_SCHEMA:
                raise HistogramError(f"the histogram does not fit in {limit} characters even at schema {MIN_SCHEMA}")
            histogram = histogram.downscale(histogram.schema - 1)

    def _encode(self) -> bytes:
        float_counts = any(isinstance(value, float) for value in (self.zero_count, self.count, *self.buckets.values()))
        out = bytearray([_FORMAT_VERSION, _FLAG_FLOAT_COUNTS if float_counts else 0])
        _put_varint(out, _zigzag(self.schema))
        out += _DOUBLE.pack(self.zero_threshold)
        out += _DOUBLE.pack(self.sum)
        put_count = _put_double if float_counts else _put_uvarint
        put_count(out, self.zero_count)
        put_count(out, self.count)
        indices = sorted(self.buckets)
        spans = _spans_of(indices)
        _put_varint(out, len(spans))
        for offset, length in spans:
            _put_varint(out, _zigzag(offset))
            _put_varint(out, length)
        previous: Count = 0
        for index in indices:
            value = self.buckets[index]
            if float_counts:
                _put_double(out, value)
            else:
                _put_varint(out, _zigzag(value - previous))
                previous = value
        return bytes(out)


def deserialize(text: str) -> Histogram:
    """The histogram :meth:`Histogram.serialize` wrote, exactly."""
    try:
        reader = _Reader(base64.b64decode(text.encode("ascii"), validate=True))
        version, flags = reader.byte(), reader.byte()
        if version != _FORMAT_VERSION:
            raise HistogramError(f"unknown histogram format version {version}")
        float_counts = bool(flags & _FLAG_FLOAT_COUNTS)
        read_count = reader.double if float_counts else reader.varint
        schema = _unzigzag(reader.varint())
        zero_threshold, total = reader.double(), reader.double()
        zero_count, count = read_count(), read_count()
        spans = [(_unzigzag(reader.varint()), reader.varint()) for _span in range(reader.varint())]
        indices = _span_indices(spans)
        if float_counts:
            values: list[Count] = [reader.double() for _index in indices]
        else:
            values = reader.delta_counts(len(indices))
        reader.expect_end()
    except (ValueError, IndexError, struct.error) as error:
        raise HistogramError(f"not a serialized histogram: {error}") from None
    return Histogram(schema, zero_threshold, zero_count, dict(zip(indices, values, strict=True)), count, total)


def merge_all(histograms: Iterable[Histogram]) -> Optional[Histogram]:
    """All the histograms merged into one, or None when there are none."""
    merged: Optional[Histogram] = None
    for histogram in histograms:
        merged = histogram if merged is None else merged.merge(histogram)
    return merged


def bucket_index(value: float, schema: int) -> int:
    """The index of the bucket holding ``value`` (> 0): the smallest i with value <= base**i.

    Computed from the float's exact mantissa and exponent, as Prometheus does, so values right at
    a bucket boundary land in the same bucket as in k6.
    """
    mantissa, exponent = math.frexp(value)  # value = mantissa * 2**exponent, 0.5 <= mantissa < 1
    if schema > 0:
        bounds = _mantissa_bounds(schema)
        return bisect_left(bounds, mantissa) + (exponent - 1) * len(bounds)
    if mantissa == 0.5:
        exponent -= 1  # an exact power of two is the upper bound of its bucket
    return (exponent + (1 << -schema) - 1) >> -schema


@cache
def _mantissa_bounds(schema: int) -> list[float]:
    """The bucket upper bounds inside one power of two, scaled into [0.5, 1) like frexp's mantissa."""
    steps = 1 << schema
    return [2.0 ** (step / steps) / 2 for step in range(steps)]


def _aligned(left: Histogram, right: Histogram) -> tuple[Histogram, Histogram]:
    """Both histograms at the coarser schema and the wider zero bucket, ready to add or subtract."""
    schema = min(left.schema, right.schema)
    threshold = max(left.zero_threshold, right.zero_threshold)
    return tuple(  # type: ignore[return-value]
        _widen_zero_bucket(histogram if histogram.schema == schema else histogram.downscale(schema), threshold)
        for histogram in (left, right)
    )


def _widen_zero_bucket(histogram: Histogram, threshold: float) -> Histogram:
    """Move every bucket that lies entirely at or below ``threshold`` into the zero bucket."""
    if threshold == histogram.zero_threshold:
        return histogram
    zero_count = histogram.zero_count
    buckets: dict[int, Count] = {}
    for index, value in histogram.buckets.items():
        if histogram.upper_bound(index) <= threshold:
            zero_count += value
        else:
            buckets[index] = value
    return Histogram(histogram.schema, threshold, zero_count, buckets, histogram.count, histogram.sum)


def _span_indices(spans: Iterable[tuple[int, int]]) -> list[int]:
    indices: list[int] = []
    index = 0
    for offset, length in spans:
        if length < 0:
            raise HistogramError(f"a span length is negative: {length}")
        index += offset
        indices.extend(range(index, index + length))
        index += length
    return indices


def _spans_of(indices: list[int]) -> list[tuple[int, int]]:
    """Prometheus-style (offset, length) spans covering runs of consecutive sorted indices."""
    spans: list[tuple[int, int]] = []
    after_previous = 0  # the index right after the previous span; the first offset is absolute
    for index in indices:
        if spans and index == after_previous:
            offset, length = spans[-1]
            spans[-1] = (offset, length + 1)
        else:
            spans.append((index - after_previous, 1))
        after_previous = index + 1
    return spans


def _zigzag(value: int) -> int:
    """Small magnitudes, positive or negative, as small unsigned numbers (as protobuf's sint)."""
    return value * 2 if value >= 0 else -value * 2 - 1


def _unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _put_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def _put_uvarint(out: bytearray, value: Count) -> None:
    _put_varint(out, int(value))


def _put_double(out: bytearray, value: Count) -> None:
    out += _DOUBLE.pack(float(value))


# A zigzag varint of one byte (below 0x80) decoded, by the byte.
_UNZIGZAG_BYTE = [(byte >> 1) ^ -(byte & 1) for byte in range(0x80)]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._position = 0

    def byte(self) -> int:
        value = self._data[self._position]
        self._position += 1
        return value

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7

    def delta_counts(self, count: int) -> list[int]:
        """The next ``count`` bucket counts, written as zigzag varints of each count minus the one
        before: one loop without calls, for the buckets are most of a histogram."""
        data, position = self._data, self._position
        deltas = data[position : position + count]
        if len(deltas) == count and (not deltas or max(deltas) < 0x80):
            # Each delta in one byte (|delta| < 64), as in most latency histograms: at C speed.
            self._position = position + count
            return list(accumulate(map(_UNZIGZAG_BYTE.__getitem__, deltas)))
        counts, previous = [], 0
        for _index in range(count):
            value = shift = 0
            while True:
                byte = data[position]
                position += 1
                value |= (byte & 0x7F) << shift
                if byte < 0x80:
                    break
                shift += 7
            previous += (value >> 1) ^ -(value & 1)
            counts.append(previous)
        self._position = position
        return counts

    def double(self) -> float:
        (value,) = _DOUBLE.unpack_from(self._data, self._position)
        self._position += _DOUBLE.size
        return value

    def expect_end(self) -> None:
        if self._position != len(self._data):
            raise ValueError(f"{len(self._data) - self._position} bytes left over")
