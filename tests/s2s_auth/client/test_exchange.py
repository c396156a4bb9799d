"""TokenExchanger and ServiceClient's user context against the real issuer, served
over HTTP on loopback by pytest-django's live server (the test database)."""

from __future__ import annotations

import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from s2s_auth.client import ServiceClient
from s2s_auth.client.auth import end_user_context
from s2s_auth.client.exchange import TokenExchanger, UserContextUnavailable
from s2s_auth.client.token_manager import BearerTokenAuth, TokenManager
from s2s_auth.core.access_tokens import verified_token_cache
from s2s_auth.core.jwks import clear_jwks_caches
from s2s_auth.credentials import principals

USERS = "spiffe://fleamarket.local/service/users"


def unverified_claims(token: str) -> dict:
    """What a token says, unverified: only to look at it in a test."""
    import jwt

    return jwt.decode(token, options={"verify_signature": False})


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer(request, settings, ca, tmp_path, transactional_db):
    # Django's live server wraps the app in static and media handlers that need URLs.
    settings.STATIC_URL, settings.MEDIA_URL = "/static/", "/media/"
    live_server = request.getfixturevalue("live_server")
    settings.S2S_AUTH = {
        **settings.S2S_AUTH,
        "SERVICE_NAME": "users",
        "PKI_DIR": str(ca.directory),
        "SIGNING_KEYS_DIR": str(tmp_path / "keys"),
        "ISSUER": live_server.url,
        "ACCESS_TOKEN_ISSUER": live_server.url,
        "JWKS_URL": f"{live_server.url}/.well-known/jwks.json",
    }
    cache.clear()
    clear_jwks_caches()
    verified_token_cache().clear()
    principals.ensure_principal("ads", ["users:read", "test:read"])
    secret = principals.create_client_secret("ads")
    yield live_server.url, secret
    cache.clear()
    clear_jwks_caches()


def login(client, username: str) -> str:
    get_user_model().objects.create_user(username, password=f"{username}-password-1")
    response = client.post(
        "/api/v1/auth/login",
        {"username": username, "password": f"{username}-password-1"},
        content_type="application/json",
    )
    return response.json()["access_token"]


def exchanger(url, secret, **options) -> TokenExchanger:
    return TokenExchanger(f"{url}/oauth/token", client_id="ads", client_secret=secret, **options)


def test_one_exchange_per_user_and_audience_until_shortly_before_expiry(client, issuer):
    url, secret = issuer
    alice, bob = login(client, "alice"), login(client, "bob")
    clock = Clock()
    ex = exchanger(url, secret, clock=clock)
    first = ex.token_for(alice, "users")
    claims = unverified_claims(first)
    assert (claims["aud"], claims["act"]["sub"]) == (USERS, principal_id("ads"))
    assert ex.token_for(alice, USERS) == first  # name or SPIFFE ID: the same target
    assert ex.exchange_count == 1
    assert ex.token_for(bob, "users") != first
    assert ex.exchange_count == 2
    clock.now += 120 - 6  # the token lives 120 s; kept until 5 s before
    assert ex.token_for(alice, "users") == first
    clock.now += 2
    assert ex.token_for(alice, "users") != first
    assert ex.exchange_count == 3


def principal_id(name: str) -> str:
    return f"spiffe://fleamarket.local/service/{name}"


def test_concurrent_callers_share_one_exchange(client, issuer):
    url, secret = issuer
    alice = login(client, "alice")
    ex = exchanger(url, secret)
    results, start = [], threading.Barrier(8)

    def work():
        start.wait()
        results.append(ex.token_for(alice, "users"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(results) == 8 and len(set(results)) == 1
    assert ex.exchange_count == 1


def test_a_refused_exchange_is_a_requests_error_and_not_retried(client, issuer):
    url, secret = issuer
    ex = exchanger(url, secret)
    with pytest.raises(UserContextUnavailable) as caught:
        ex.token_for("not-a-user-token", "users")
    assert caught.value.error == "invalid_grant"
    assert ex.exchange_count == 1


def test_service_client_sends_the_exchanged_token_never_the_users(client, issuer):
    url, secret = issuer
    alice = login(client, "alice")
    manager = TokenManager(f"{url}/oauth/token", client_id="ads", client_secret=secret)
    session = ServiceClient(
        url,
        auth=BearerTokenAuth(manager),
        user_context=exchanger(url, secret),
        audience="users",
    )
    sent = []
    session.hooks["response"].append(lambda r, **kw: sent.append(dict(r.request.headers)))
    with end_user_context(alice):
        response = session.get("tokens-test/at/any")
    assert response.status_code == 200, response.text
    assert response.json()["end_user"] == str(get_user_model().objects.get(username="alice").pk)
    assert alice not in str(sent)
    assert unverified_claims(sent[0]["S2S-End-User-Token"])["aud"] == USERS
    # Outside the context: no user.
    assert session.get("tokens-test/at/any").json()["end_user"] is None
    manager.close()


def test_a_user_context_needs_an_audience():
    with pytest.raises(ValueError, match="audience"):
        ServiceClient("https://users.test", user_context=object())
