"""Prometheus instruments of s2s_auth: one small function per event the library decides.

The places that decide call these functions (``decision`` from the mechanisms' base
class, ``fetched`` from the JWKS cache, ``token_issued`` from the issuer's audit of an
issuance, ``audit_written`` from the audit chain); :class:`~s2s_auth.metrics.views.MetricsView`
exposes them at ``/metrics``. Request-free (the core calls it), and optional:
without ``prometheus_client`` (the ``metrics`` extra) every function does nothing.

Under gunicorn each worker process counts for itself; with ``PROMETHEUS_MULTIPROC_DIR``
set (a deployment sets it per service) the values are kept in files there and a scrape
of any worker returns the sum over all of them.
"""

from __future__ import annotations

import bisect
import functools
import math
import os
import time
from collections.abc import Callable

try:
    import prometheus_client as _prom
except ImportError:  # the optional `metrics` extra is not installed
    _prom = None

__all__ = [
    "AVAILABLE",
    "audit_queue_depth",
    "audit_written",
    "decision",
    "fetched",
    "multiprocess_dir",
    "token_issued",
]

AVAILABLE = _prom is not None

#: Seconds: from a few hundred microseconds (a cached token) to a slow JWKS fetch.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)


def multiprocess_dir() -> str | None:
    """``PROMETHEUS_MULTIPROC_DIR`` when prometheus_client uses it, else None."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


if _prom is not None:
    if multiprocess_dir():  # prometheus_client writes there from the first metric on
        os.makedirs(multiprocess_dir(), mode=0o700, exist_ok=True)
    REQUESTS = _prom.Counter(
        "s2s_auth_requests",
        "Authentication decisions by mechanism, outcome (accepted/refused) and reason code.",
        ["mechanism", "outcome", "reason"],
    )
    VERIFICATION = _prom.Histogram(
        "s2s_auth_verification_seconds",
        "Time from the start of authentication to the decision.",
        ["mechanism", "outcome"],
        buckets=LATENCY_BUCKETS,
    )
    TOKENS = _prom.Counter(
        "s2s_auth_tokens_issued",
        "Tokens issued by the identity service, by client and grant.",
        ["client", "grant"],
    )
    FETCHES = _prom.Counter(
        "s2s_auth_fetches",
        "Fetches of remote trust material (jwks, crl) by outcome (ok/failed).",
        ["source", "outcome"],
    )
    LAST_FETCH = _prom.Gauge(
        "s2s_auth_fetch_last_success_timestamp_seconds",
        "Unix time of the last successful fetch; its age is time() minus this.",
        ["source"],
        multiprocess_mode="max",
    )
    AUDIT_WRITE = _prom.Histogram(
        "s2s_auth_audit_write_seconds",
        "Time to write audit records: one record in the request, or one batch of the "
        "writer thread (hash and INSERT, commit included).",
        buckets=LATENCY_BUCKETS,
    )
    AUDIT_QUEUE = _prom.Gauge(
        "s2s_auth_audit_queue_depth",
        "Audit records queued for the writer thread and not yet taken into a batch.",
        multiprocess_mode="livesum",
    )


def _counting(counter) -> Callable[[], None]:
    """``counter.inc`` (a labelled child, or one without labels) for every request:
    the value's own ``inc(1)``, without the checks ``inc`` repeats on every call (an
    amount that cannot be negative, no exemplar). Another prometheus_client: ``inc``."""
    value = getattr(counter, "_value", None)
    inc = getattr(value, "inc", None)
    return functools.partial(inc, 1) if callable(inc) else counter.inc


def _observing(histogram) -> Callable[[float], None]:
    """``histogram.observe`` (a labelled child, or one without labels) for every
    request: the same sum and bucket, the bucket found by bisection instead of a
    Python loop over the bounds (the first bound >= the amount either way). Another
    prometheus_client: ``observe``."""
    total = getattr(histogram, "_sum", None)
    buckets = getattr(histogram, "_buckets", None)
    bounds = tuple(getattr(histogram, "_upper_bounds", ()))
    if not (bounds and bounds[-1] == math.inf and buckets and len(buckets) == len(bounds)):
        return histogram.observe

    def observe(amount: float) -> None:
        if not amount <= math.inf:  # NaN: no bucket, as observe does
            histogram.observe(amount)
            return
        total.inc(amount)
        buckets[bisect.bisect_left(bounds, amount)].inc(1)

    return observe


if _prom is not None:
    _observe_audit_write = _observing(AUDIT_WRITE)


#: How REQUESTS and VERIFICATION count one decision, by label values: ``.labels()``
#: validates and looks up its arguments under a lock on every call, and every request
#: counts one decision. A child is the same object prometheus_client would return (it
#: keeps it for the life of the metric), so counting through it counts the same value.
_decision_children: dict[tuple, tuple] = {}


def _decision_child(mechanism: str, outcome: str, reason: str) -> tuple:
    key = (mechanism, outcome, reason)
    children = _decision_children.get(key)
    if children is None:
        children = (
            _counting(REQUESTS.labels(mechanism, outcome, reason)),
            _observing(VERIFICATION.labels(mechanism, outcome)),
        )
        if len(_decision_children) < 4096:  # label values are ours, but stay bounded
            _decision_children[key] = children
    return children


def decision(mechanism: str, outcome: str, reason: str, seconds: float | None) -> None:
    """One authentication decision (``reason`` "" when accepted)."""
    if _prom is None:
        return
    reason = reason or ""
    kept = _decision_children.get((mechanism, outcome, reason))  # (every request but the first)
    count, observe = kept or _decision_child(mechanism, outcome, reason)
    count()
    if seconds is not None:
        observe(max(0.0, seconds))


def token_issued(client: str, grant: str) -> None:
    if _prom is not None:
        TOKENS.labels(client or "-", grant or "-").inc()


def fetched(source: str, *, ok: bool) -> None:
    """One fetch of ``source`` ("jwks", "crl"), successful or not."""
    if _prom is None:
        return
    FETCHES.labels(source, "ok" if ok else "failed").inc()
    if ok:
        LAST_FETCH.labels(source).set(time.time())


def audit_written(seconds: float) -> None:
    """One audit write: a record in the request, or a batch of the writer thread."""
    if _prom is not None:
        _observe_audit_write(max(0.0, seconds))


def audit_queue_depth(rows: int) -> None:
    """Records waiting in this process's audit queue (s2s_auth.audit.writer)."""
    if _prom is not None:
        AUDIT_QUEUE.set(rows)
