"""A service that is its own issuer verifies its tokens from its key store, not over HTTP.

Fetching its own JWKS from itself starves under load (every worker thread busy, the
request to itself times out, tokens refused for JWKS_MIN_REFETCH_SECONDS).
"""

from __future__ import annotations

from s2s_auth.core.jwks import JWKSCache, LocalJWKS, jwks_cache

from .support import ISSUER, post_token

UNREACHABLE_JWKS = "https://127.0.0.1:9/.well-known/jwks.json"  # discard port: nothing answers


def _token(client, ads) -> str:
    response = post_token(
        client,
        {"grant_type": "client_credentials", "scope": "users:read", "resource": "users"},
        auth=ads,
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def test_own_tokens_verify_without_fetching_the_jwks(client, settings, issuer_conf, ads):
    settings.S2S_AUTH = {
        **issuer_conf,
        "ACCESS_TOKEN_ISSUER": ISSUER,
        "JWKS_URL": UNREACHABLE_JWKS,
        "JWKS_MIN_REFETCH_SECONDS": 3600,
    }
    assert isinstance(jwks_cache(), LocalJWKS)
    token = _token(client, ads)
    response = client.get("/tokens-test/at/any", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content


def test_another_issuers_tokens_still_come_from_its_jwks(settings, issuer_conf):
    settings.S2S_AUTH = {
        **issuer_conf,
        "ACCESS_TOKEN_ISSUER": "https://other-issuer.test",
        "JWKS_URL": UNREACHABLE_JWKS,
    }
    cache = jwks_cache()
    assert isinstance(cache, JWKSCache) and cache.url == UNREACHABLE_JWKS
