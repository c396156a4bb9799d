"""A worker fetches the issuer's keys as it starts, whatever happened to earlier fetches.

Without it, a second gunicorn worker that never served a token before the issuer went
away answered 503 ``jwks_unavailable`` while the first still had the keys.
"""

from __future__ import annotations

import pytest

from s2s_auth.core.jwks import JWKSCache, clear_jwks_caches, jwks_cache, warm_up
from tests.s2s_auth.mechanisms.test_access_token import JWKSServer, Keys


@pytest.fixture
def server():
    keys = Keys()
    keys.new("k1")
    server = JWKSServer()
    server.jwks = {"keys": [keys.jwk("k1")]}
    yield server
    server.stop()


def test_prefetch_ignores_the_refetch_interval_of_a_failed_attempt(server):
    cache = JWKSCache(server.url, min_refetch_seconds=3600)
    server.status = 503
    assert cache.prefetch() is False
    server.status = 200
    assert cache.prefetch() is True  # the hour-long interval does not hold the worker back
    assert cache.key_for("k1") is not None
    hits = server.hits
    assert cache.prefetch() is True and server.hits == hits  # held: no second fetch


def test_warm_up_fetches_in_the_background_with_retries(server, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "JWKS_URL": server.url}
    clear_jwks_caches()
    server.status = 503
    thread = warm_up(first_delay=0.05)
    assert thread is not None
    server.status = 200
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert jwks_cache().key_for("k1") is not None
    server.stop()  # the issuer goes away: the worker keeps what it fetched
    assert jwks_cache().key_for("k1") is not None


def test_nothing_to_warm_up_without_an_issuer(settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "JWKS_URL": None, "ACCESS_TOKEN_ISSUER": None}
    assert warm_up() is None
