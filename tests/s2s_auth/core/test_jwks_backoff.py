"""A cache without keys retries a failed fetch after a short backoff, not a blackout.

Issue 14: a resource server that started while its issuer was slow refused every token
with 503 ``jwks_unavailable`` for ``JWKS_MIN_REFETCH_SECONDS`` (30 s), although the
issuer was back after a second. The cache's clock seam stands in for waiting.
"""

from __future__ import annotations

import pytest

from s2s_auth.core import jwks as jwks_module
from s2s_auth.core.jwks import JWKSCache, JWKSUnavailable
from tests.s2s_auth.mechanisms.test_access_token import JWKSServer, Keys


@pytest.fixture
def server():
    keys = Keys()
    keys.new("k1")
    server = JWKSServer()
    server.jwks = {"keys": [keys.jwk("k1")]}
    yield server
    server.stop()


def cache_with_clock(url: str) -> tuple[JWKSCache, list[float]]:
    now = [1000.0]
    cache = JWKSCache(url, min_refetch_seconds=30, timeout=2.0)
    cache._clock = lambda: now[0]
    return cache, now


def test_a_failed_first_fetch_is_retried_after_a_short_backoff(server):
    cache, now = cache_with_clock(server.url)
    server.status = 503
    with pytest.raises(JWKSUnavailable) as info:
        cache.key_for("k1")
    assert server.hits == 1
    assert info.value.retry_after == 1  # the backoff, not the 30 s interval
    for _ in range(20):  # requests between attempts: answered at once, no fetch
        with pytest.raises(JWKSUnavailable):
            cache.key_for("k1")
    assert server.hits == 1
    now[0] += jwks_module.FIRST_RETRY_SECONDS
    with pytest.raises(JWKSUnavailable):
        cache.key_for("k1")
    assert server.hits == 2  # retried after 0.25 s
    now[0] += jwks_module.FIRST_RETRY_SECONDS  # the backoff doubled: not yet
    with pytest.raises(JWKSUnavailable):
        cache.key_for("k1")
    assert server.hits == 2
    server.status = 200  # the issuer is back
    now[0] += jwks_module.FIRST_RETRY_SECONDS
    assert cache.key_for("k1") is not None
    assert server.hits == 3


def test_the_backoff_stops_doubling_at_the_minimum_interval(server):
    cache, now = cache_with_clock(server.url)
    server.status = 500
    for attempt in range(12):  # 0.25, 0.5, 1, ... capped at 30 s
        if attempt:
            now[0] += 31
        with pytest.raises(JWKSUnavailable):
            cache.keys()
    assert server.hits == 12
    with pytest.raises(JWKSUnavailable) as info:
        cache.keys()
    assert server.hits == 12
    assert info.value.retry_after == 30


def test_once_keys_are_held_refetches_keep_the_minimum_interval(server):
    cache, now = cache_with_clock(server.url)
    assert cache.key_for("k1") is not None
    server.status = 500
    now[0] += 31
    with pytest.raises(Exception):  # noqa: B017 - unknown kid after a failed re-fetch
        cache.key_for("other")
    assert server.hits == 2
    now[0] += 1  # no short backoff here: stale keys serve, floods stay bounded
    with pytest.raises(Exception):  # noqa: B017
        cache.key_for("other")
    assert server.hits == 2
    assert cache.key_for("k1") is not None


def test_a_request_waits_only_briefly_for_a_fetch_in_flight(server, monkeypatch):
    monkeypatch.setattr(jwks_module, "FIRST_FETCH_WAIT_SECONDS", 0.05)
    cache = JWKSCache(server.url)
    cache._lock.acquire()  # another thread is fetching (a slow issuer)
    try:
        with pytest.raises(JWKSUnavailable) as info:
            cache.keys()
        assert "being fetched" in str(info.value.detail)
    finally:
        cache._lock.release()
    assert server.hits == 0
    assert cache.key_for("k1") is not None
