"""The latency percentiles, checked against a brute-force reading of the sorted data."""

import math
import random

import pytest

from bench.stats import latency_figures, percentiles


def brute_force(values: list[float], percent: int) -> float:
    """Sort, stand at rank p/100·(n-1), and go linearly to the next value."""
    ordered = sorted(values)
    rank = percent * (len(ordered) - 1) / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@pytest.mark.parametrize("size", [2, 3, 17, 100, 101, 4099])
def test_every_percentile_is_the_brute_force_one(size):
    rng = random.Random(size)
    values = [rng.expovariate(1 / 0.004) for _ in range(size)]
    assert len(set(values)) == size  # distinct latencies: every rank tells
    cuts = percentiles(values)
    assert len(cuts) == 99
    for percent, cut in enumerate(cuts, start=1):
        assert cut == pytest.approx(brute_force(values, percent), rel=1e-12, abs=1e-15)


def test_known_data():
    # 0..100 shuffled: the p-th percentile is p itself.
    values = list(range(101))
    random.Random(7).shuffle(values)
    assert percentiles(values) == [float(p) for p in range(1, 100)]
    # 1..10: rank 0.99·9 = 8.91 between 9 and 10; the median between 5 and 6.
    figures = latency_figures([x / 1000 for x in range(10, 0, -1)])
    assert figures["p50_ms"] == pytest.approx(5.5)
    assert figures["p99_ms"] == pytest.approx(9.91)
    assert figures["mean_ms"] == pytest.approx(5.5)


def test_between_the_neighbours_of_the_rank_rounded_before():
    """The old figure was the value at the rounded rank; the new one lies between it
    and its neighbour on the other side of the exact rank."""
    values = sorted(random.Random(8).lognormvariate(-6, 0.5) for _ in range(999))
    cuts = percentiles(values)
    for percent in (50, 90, 99):
        rank = percent * (len(values) - 1) / 100
        low, high = values[math.floor(rank)], values[math.ceil(rank)]
        assert low <= cuts[percent - 1] <= high


def test_no_or_one_latency():
    assert latency_figures([]) == {"p50_ms": 0.0, "p99_ms": 0.0, "mean_ms": 0.0}
    assert latency_figures([0.002]) == pytest.approx({"p50_ms": 2.0, "p99_ms": 2.0, "mean_ms": 2.0})
