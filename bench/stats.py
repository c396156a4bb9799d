"""Latency figures of a run, by the standard library's ``statistics``."""

from __future__ import annotations

import statistics


def percentiles(values: list[float]) -> list[float]:
    """The 1st to 99th percentiles: ``statistics.quantiles``' inclusive method, which
    puts the q-quantile at rank q·(n-1) of the sorted values and interpolates between
    the two nearest (the rank the hand-written version rounded to)."""
    if len(values) < 2:  # quantiles() needs two points on Python 3.11
        return [float(values[0]) if values else 0.0] * 99
    return statistics.quantiles(values, n=100, method="inclusive")


def latency_figures(latencies: list[float]) -> dict[str, float]:
    """Median, 99th percentile and mean of latencies in seconds, as milliseconds."""
    cuts = percentiles(latencies)
    return {
        "p50_ms": cuts[49] * 1000,
        "p99_ms": cuts[98] * 1000,
        "mean_ms": statistics.fmean(latencies) * 1000 if latencies else 0.0,
    }
