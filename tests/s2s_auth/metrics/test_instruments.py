"""The instruments at the places that decide: issuance, JWKS fetches, audit writes;
and the certificate lifetime setting (``CERT_LIFETIME``, ``S2S_CERT_LIFETIME``)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import REGISTRY
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from s2s_auth.audit.issuance import record_issued
from s2s_auth.conf import S2SSettings, parse_duration
from s2s_auth.core.jwks import JWKSCache


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("grant_type", "label"),
    [
        ("client_credentials", "client_credentials"),
        ("urn:ietf:params:oauth:grant-type:token-exchange", "token-exchange"),
    ],
)
def test_an_issued_token_is_counted_by_client_and_grant(grant_type, label):
    post = APIRequestFactory().post("/oauth/token", {"grant_type": grant_type})
    request = Request(post, parsers=[MultiPartParser()])
    claims = {"sub": "spiffe://metrics.test/service/ads", "client_id": "ads", "jti": "x"}
    before = value("s2s_auth_tokens_issued_total", client="ads", grant=label)
    record_issued(request, method="tls_client_auth", claims=claims, token="a.b.c")
    assert value("s2s_auth_tokens_issued_total", client="ads", grant=label) == before + 1


def test_jwks_fetches_count_failures_and_successes():
    cache = JWKSCache("http://127.0.0.1:9/jwks.json", min_refetch_seconds=0, timeout=0.5)
    failed = value("s2s_auth_fetches_total", source="jwks", outcome="failed")
    with pytest.raises(Exception, match="could not be fetched"):
        cache.keys()  # nothing listens on port 9
    assert value("s2s_auth_fetches_total", source="jwks", outcome="failed") == failed + 1


@pytest.mark.django_db
def test_audit_writes_are_timed():
    from s2s_auth.audit.events import record_event

    before = value("s2s_auth_audit_write_seconds_count")
    record_event("operator_test", mechanism="cli", principal="", detail="metrics test")
    assert value("s2s_auth_audit_write_seconds_count") == before + 1


def test_the_audit_queue_depth_follows_the_writer_queue(transactional_db, settings):
    from django.test import RequestFactory

    from s2s_auth.audit import Decision, events, flush, writer

    settings.S2S_AUTH = {
        **settings.S2S_AUTH,
        "AUDIT_WRITE": "background",
        "AUDIT_FLUSH_INTERVAL": 3600,
        "AUDIT_BATCH_SIZE": 1000,
    }
    try:
        for _ in range(3):
            refusal = Decision(mechanism="m", outcome="refused", reason="metrics_test")
            events.record(RequestFactory().get("/q"), refusal)
        assert value("s2s_auth_audit_queue_depth") == 3
        batches = value("s2s_auth_audit_write_seconds_count")
        assert flush(timeout=30)
        assert value("s2s_auth_audit_queue_depth") == 0
        assert value("s2s_auth_audit_write_seconds_count") == batches + 1  # one batch
    finally:
        writer.shutdown()


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90s", 90), ("15m", 900), ("1h", 3600), ("24h", 86400), ("7d", 604800), ("120", 120)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0s", "-1h", "h", "1y", "nan", "inf", "1.5.2h"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_cert_lifetime_wins_over_hours_and_a_bad_one_names_the_setting():
    assert S2SSettings({}).cert_lifetime == dt.timedelta(hours=24)
    assert S2SSettings({"CERT_LIFETIME_HOURS": 5}).cert_lifetime == dt.timedelta(hours=5)
    both = {"CERT_LIFETIME_HOURS": 5, "CERT_LIFETIME": "90s"}
    assert S2SSettings(both).cert_lifetime == dt.timedelta(seconds=90)
    with pytest.raises(ImproperlyConfigured, match="CERT_LIFETIME"):
        S2SSettings({"CERT_LIFETIME": "soon"}).cert_lifetime  # noqa: B018


def test_every_decision_is_counted_through_the_kept_children():
    """decision() keeps the labelled children it used: the second and later decisions
    with the same labels still count, in the registry's own series, and other labels
    get their own series."""
    from s2s_auth import metrics

    labels = {"mechanism": "metrics_test", "outcome": "accepted", "reason": ""}
    refused = {"mechanism": "metrics_test", "outcome": "refused", "reason": "expired"}
    before = value("s2s_auth_requests_total", **labels)
    refused_before = value("s2s_auth_requests_total", **refused)
    timing = {"mechanism": "metrics_test", "outcome": "accepted"}
    timed = value("s2s_auth_verification_seconds_count", **timing)
    for _ in range(3):
        metrics.decision("metrics_test", "accepted", "", 0.001)
    metrics.decision("metrics_test", "refused", "expired", None)
    assert value("s2s_auth_requests_total", **labels) == before + 3
    assert value("s2s_auth_requests_total", **refused) == refused_before + 1
    assert value("s2s_auth_verification_seconds_count", **timing) == timed + 3


@pytest.mark.parametrize(
    "amounts",
    [
        [0.0, 0.0005, 0.0007, 0.001, 0.003, 5, 7.5, 1e9],  # on, between and past the bounds
        [float("inf"), float("nan"), -1.0],
    ],
)
def test_the_quick_count_and_observe_give_what_prometheus_client_gives(amounts):
    """decision() counts through _counting/_observing: the same samples (buckets, sum,
    count) as Counter.inc and Histogram.observe, whatever the amount."""
    from prometheus_client import CollectorRegistry, Counter, Histogram

    from s2s_auth import metrics

    registry = CollectorRegistry()
    counter = Counter("quick", "-", ["kind"], registry=registry)
    buckets = metrics.LATENCY_BUCKETS
    histogram = Histogram("timed", "-", ["kind"], buckets=buckets, registry=registry)
    count = metrics._counting(counter.labels("quick"))
    observe = metrics._observing(histogram.labels("quick"))
    assert observe != histogram.labels("quick").observe  # the quick path, not the fallback
    for amount in amounts:
        count()
        observe(amount)
        counter.labels("own").inc()
        histogram.labels("own").observe(amount)

    def samples(kind):
        return sorted(
            (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "kind")), s.value)
            for metric in registry.collect()
            for s in metric.samples
            if s.labels.get("kind") == kind and not s.name.endswith("_created")
        )

    quick, own = samples("quick"), samples("own")
    assert len(quick) == len(own) > 0
    for (name, labels, got), (name_, labels_, expected) in zip(quick, own, strict=True):
        assert (name, labels) == (name_, labels_)
        assert got == expected or (got != got and expected != expected)  # NaN sums
