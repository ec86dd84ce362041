"""The one latency histogram: exact merging, downscaling and serialization, bounded quantile error."""

from __future__ import annotations

import math
import random

import pytest

from results.histogram import MAX_SERIALIZED_LENGTH
from results.histogram import Histogram
from results.histogram import HistogramError
from results.histogram import bucket_index
from results.histogram import deserialize
from results.histogram import merge_all


def histogram_of(values: list[float], schema: int = 3) -> Histogram:
    histogram = Histogram(schema=schema)
    for value in values:
        histogram.record(value)
    return histogram


def latencies(seed: int, count: int, sigma: float = 0.8) -> list[float]:
    """Lognormal latencies around 20 ms, the shape of most HTTP latency distributions."""
    rng = random.Random(seed)
    return [rng.lognormvariate(math.log(0.02), sigma) for _sample in range(count)]


def nearest_rank(sorted_values: list[float], q: float) -> float:
    return sorted_values[max(math.ceil(q * len(sorted_values)) - 1, 0)]


def same_observations(left: Histogram, right: Histogram) -> bool:
    """Equal in everything but the float sum, which depends on the order of additions."""
    return (left.schema, left.zero_threshold, left.zero_count, left.buckets, left.count) == (
        right.schema,
        right.zero_threshold,
        right.zero_count,
        right.buckets,
        right.count,
    ) and left.sum == pytest.approx(right.sum, rel=1e-12)


# ---- Buckets.


@pytest.mark.parametrize(
    ("value", "schema", "index"),
    [(1.0, 0, 0), (2.0, 0, 1), (2.5, 0, 2), (0.5, 0, -1), (1.0, 3, 0), (1.0001, 3, 1), (4.0, -1, 1), (4.1, -1, 2)],
)
def test_a_bucket_holds_values_up_to_and_including_its_upper_bound(value, schema, index):
    assert bucket_index(value, schema) == index
    histogram = Histogram(schema=schema)
    assert histogram.upper_bound(index - 1) < value <= histogram.upper_bound(index)


# ---- Merging, downscaling, subtracting.


def test_merge_is_commutative_and_associative_across_schemas():
    a = histogram_of(latencies(1, 2000), schema=5)
    b = histogram_of(latencies(2, 3000, sigma=1.5), schema=3)
    c = histogram_of([*latencies(3, 1000), *[0.0] * 7], schema=4)
    assert same_observations(a.merge(b), b.merge(a))
    assert same_observations(a.merge(b).merge(c), a.merge(b.merge(c)))
    assert same_observations(merge_all([a, b, c]), c.merge(a).merge(b))
    assert merge_all([]) is None


def test_merge_is_exact_the_histogram_of_all_observations():
    first, second = latencies(4, 5000), latencies(5, 5000, sigma=1.2)
    assert same_observations(histogram_of(first).merge(histogram_of(second)), histogram_of(first + second))
    # Different schemas: the merge is what the coarser schema would have recorded.
    merged = histogram_of(first, schema=6).merge(histogram_of(second, schema=2))
    assert same_observations(merged, histogram_of(first + second, schema=2))


@pytest.mark.parametrize("to_schema", [7, 3, 0, -4])
def test_downscaling_is_exact(to_schema):
    values = [*latencies(6, 5000, sigma=2.0), 0.0, 1.0, 2.0, 0.5, 1024.0]
    assert same_observations(histogram_of(values, schema=8).downscale(to_schema), histogram_of(values, to_schema))


def test_downscaling_to_a_finer_schema_is_refused():
    with pytest.raises(HistogramError, match="finer"):
        Histogram(schema=2).downscale(3)


def test_subtracting_an_earlier_snapshot_gives_the_observations_since():
    earlier, later = latencies(7, 3000), latencies(8, 2000)
    since = histogram_of(earlier + later).subtract(histogram_of(earlier))
    assert same_observations(since, histogram_of(later))
    assert not histogram_of(earlier).subtract(histogram_of(earlier)).buckets


def test_subtracting_a_larger_snapshot_reports_a_reset():
    with pytest.raises(HistogramError, match="reset"):
        histogram_of(latencies(9, 10)).subtract(histogram_of(latencies(9, 20)))


# ---- Quantiles.


@pytest.mark.parametrize("schema", [0, 3, 5, 8])
@pytest.mark.parametrize(
    "distribution",
    [
        lambda rng: rng.lognormvariate(math.log(0.02), 0.8),
        lambda rng: rng.uniform(0.001, 0.5),
        lambda rng: rng.expovariate(10.0),
        lambda rng: rng.choice([rng.gauss(0.01, 0.001), rng.gauss(0.2, 0.02)]),  # a fast and a slow path
    ],
    ids=["lognormal", "uniform", "exponential", "bimodal"],
)
def test_quantile_error_is_bounded_by_the_bucket_width(schema, distribution):
    rng = random.Random(schema)
    values = sorted(abs(distribution(rng)) for _sample in range(20000))
    histogram = histogram_of(values, schema)
    width = 2**2.0**-schema - 1  # a bucket's relative width: the worst case, when both ends of it are wrong
    for q in (0.5, 0.9, 0.95, 0.99):
        exact = nearest_rank(values, q)
        assert histogram.quantile(q) == pytest.approx(exact, rel=width)
        if schema <= 5:
            # With many observations in each bucket, interpolation does far better than the worst case.
            assert histogram.quantile(q) == pytest.approx(exact, rel=width / 4)


def test_quantile_of_schema_3_is_within_one_percent_for_realistic_latencies():
    values = sorted(latencies(10, 50000))
    histogram = histogram_of(values, schema=3)
    for q in (0.5, 0.9, 0.95, 0.99):
        assert histogram.quantile(q) == pytest.approx(nearest_rank(values, q), rel=0.01)


def test_quantile_edge_cases():
    assert math.isnan(Histogram().quantile(0.5))
    zeros = histogram_of([0.0] * 10)
    assert 0 <= zeros.quantile(0.99) <= zeros.zero_threshold
    single = histogram_of([0.123])
    for q in (0.0, 0.5, 1.0):
        assert single.quantile(q) == pytest.approx(0.123, rel=2 ** (1 / 8) - 1)
    assert histogram_of([0.1, 0.2]).quantile(1.0) == pytest.approx(0.2, rel=2 ** (1 / 8) - 1)
    with pytest.raises(HistogramError):
        single.quantile(1.5)


# ---- From Prometheus' native histogram fields.


def test_from_native_reads_spans_and_deltas():
    # Buckets -3, -2 (first span), then a gap of 2, then bucket 1: counts 2, 5, 1.
    histogram = Histogram.from_native(
        schema=3, zero_threshold=2.0**-128, zero_count=4, count=12, sum=3.5, spans=[(-3, 2), (2, 1)], deltas=[2, 3, -4]
    )
    assert histogram.buckets == {-3: 2, -2: 5, 1: 1}
    assert (histogram.zero_count, histogram.count) == (4, 12)


def test_from_native_reads_float_counts():
    histogram = Histogram.from_native(
        schema=0, zero_threshold=0.001, zero_count=0.5, count=3.0, sum=2.0, spans=[(0, 2)], counts=[1.5, 1.0]
    )
    assert histogram.buckets == {0: 1.5, 1: 1.0}
    assert deserialize(histogram.serialize()) == histogram


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"spans": [(0, 2)], "deltas": [1]}, "cover 2 buckets but 1"),
        ({"spans": [(0, 2)], "deltas": [3, -4]}, "negative"),
        ({"spans": [], "negative_spans": [(0, 1)]}, "negative buckets"),
    ],
)
def test_from_native_refuses_what_it_cannot_represent(arguments, message):
    with pytest.raises(HistogramError, match=message):
        Histogram.from_native(schema=3, zero_threshold=0.0, zero_count=0, count=1, sum=1.0, **arguments)


# ---- Serialization.


@pytest.mark.parametrize(
    "histogram",
    [
        Histogram(),
        histogram_of([0.0, 0.0]),
        histogram_of([0.25]),
        histogram_of([*latencies(11, 1000), 0.0, 3.0, 4096.0]),
        histogram_of(latencies(12, 1000, sigma=3.0), schema=-2),
        # Bucket counts that differ by 64 or more from the one before: deltas of several bytes.
        Histogram(3, buckets={-40: 1, -39: 500, -38: 70, -37: 7000, -35: 1}, count=7572, sum=1.5),
        Histogram(3, buckets={-40: 5, -39: 63, -38: 1, -37: 64}, count=133, sum=0.1),
    ],
    ids=["empty", "zeros only", "single value", "typical", "coarse and wide", "big steps", "steps at the one-byte edge"],
)
def test_serialization_round_trip_is_exact(histogram):
    text = histogram.serialize()
    assert text.isascii()
    assert deserialize(text) == histogram


def test_a_realistic_interval_serializes_small():
    # A busy 5 s interval: 25,000 requests with a long tail, at k6's schema 3.
    text = histogram_of(latencies(13, 25000, sigma=1.0)).serialize()
    assert len(text) < 400


def test_a_histogram_too_long_for_the_limit_is_downscaled_until_it_fits():
    wide = histogram_of([1.0001**i for i in range(0, 200000, 7)], schema=8)
    assert len(base_text := wide.serialize(limit=10**6)) > MAX_SERIALIZED_LENGTH
    fitted = deserialize(wide.serialize())
    assert len(wide.serialize()) <= MAX_SERIALIZED_LENGTH < len(base_text)
    assert fitted.schema < 8
    assert fitted == wide.downscale(fitted.schema)


@pytest.mark.parametrize("text", ["not base64!", "AAAA", Histogram().serialize() + "AAAA"])
def test_deserialize_refuses_what_serialize_did_not_write(text):
    with pytest.raises(HistogramError):
        deserialize(text)
