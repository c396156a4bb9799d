"""The replay store on a real Redis that the test stops mid-run: single use while it
runs, and afterwards a 503 with a reason code from every mechanism and throttle that
needs it — never a 500, never an acceptance."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest
import requests

from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth, signature_auth
from s2s_auth.credentials.certificates import register_certificate
from s2s_auth.credentials.principals import ensure_principal

from .redis_support import redis_cache, redis_server  # noqa: F401 - a fixture

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def store(redis_server, settings, ca):  # noqa: F811 - the fixture imported above
    """The default cache (the replay store by default) on the test's own Redis."""
    settings.CACHES = {"default": redis_cache(redis_server.url)}
    settings.S2S_AUTH = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": "fleamarket.local",
        "PKI_DIR": str(ca.directory),
        "HTTPSIG_ORIGIN": "http://testserver",
    }
    return redis_server


@pytest.fixture
def creds(store, ca, db):
    issued = ca.issue("replaycaller")
    principal, _ = ensure_principal("replaycaller", ["test:read"])
    register_certificate(principal, issued.cert_path.read_text())
    return ServiceCredentials.from_files(issued.cert_path, issued.key_path)


def test_remember_once_is_single_use_then_unavailable(store, db):
    from s2s_auth.credentials.replay import ReplayStoreUnavailable, remember_once

    assert remember_once("t", "a", "b", ttl=30)
    assert not remember_once("t", "a", "b", ttl=30)
    assert remember_once("t", "a", "c", ttl=30)
    store.stop()
    with pytest.raises(ReplayStoreUnavailable) as exc:
        remember_once("t", "a", "d", ttl=30)
    assert exc.value.code == "replay_store_unavailable"


def _jwt(client, token):
    return client.get("/jwt/scoped", HTTP_AUTHORIZATION=f"ServiceJWT {token}")


def assert_unavailable(response):
    assert response.status_code == 503, response.content
    assert response.json()["error"] == "replay_store_unavailable"
    assert int(response["Retry-After"]) >= 1


def test_service_jwt_is_503_when_the_store_stops(client, creds, store):
    auth = ServiceJWTAuth(creds, "users")
    first = auth.token()
    assert _jwt(client, first).status_code == 200
    assert _jwt(client, first).json()["error"] == "replayed_jti"
    store.stop()
    assert_unavailable(_jwt(client, auth.token()))  # a fresh token: not accepted unchecked


def _signed_post(client, creds):
    prepared = requests.Request(
        "POST",
        "http://testserver/sig/scoped",
        data=b"{}",
        headers={"Content-Type": "application/json"},
    ).prepare()
    prepared = signature_auth(creds)(prepared)
    headers = {
        "HTTP_" + k.upper().replace("-", "_"): v
        for k, v in prepared.headers.items()
        if k.lower() not in ("content-type", "content-length")
    }
    return lambda: client.generic(
        "POST", prepared.path_url, data=prepared.body, content_type="application/json", **headers
    )


def test_signed_request_is_503_when_the_store_stops(client, creds, store):
    send = _signed_post(client, creds)
    assert send().status_code == 200
    assert send().json()["error"] == "replayed_nonce"
    fresh = _signed_post(client, creds)
    store.stop()
    assert_unavailable(fresh())


def test_client_assertion_is_503_when_the_store_stops(client, creds, store, settings):
    from s2s_auth.core.jose import new_jti, sign

    settings.S2S_AUTH = {**settings.S2S_AUTH, "ISSUER": "https://issuer.test"}

    def assertion():
        now = int(time.time())
        claims = {"iss": "replaycaller", "sub": "replaycaller", "aud": "https://issuer.test"}
        claims.update(iat=now, exp=now + 60, jti=new_jti())
        return sign(claims, creds.private_key, headers={"x5c": creds.x5c})

    def exchange(token):
        form = {
            "grant_type": "client_credentials",
            "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            "client_assertion": token,
        }
        return client.post("/oauth/token", urlencode(form), content_type=FORM)

    token = assertion()
    assert exchange(token).status_code == 200
    assert exchange(token).status_code == 401  # the jti was used
    store.stop()
    response = exchange(assertion())
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["error"] == "temporarily_unavailable"
    assert body["reason"] == "replay_store_unavailable"


def test_throttled_endpoints_are_503_not_500_when_the_store_stops(client, store, db):
    store.stop()
    login = client.post(
        "/api/v1/auth/login", {"username": "a", "password": "b"}, content_type="application/json"
    )
    assert login.status_code == 503, login.content
    assert login.json()["reason"] == "replay_store_unavailable"
    form = urlencode({"grant_type": "client_credentials"})
    token = client.post("/oauth/token", form, content_type=FORM, HTTP_AUTHORIZATION="Basic eDp5")
    assert token.status_code == 503, token.content


def test_admin_login_is_refused_not_500_when_the_store_stops(client, store, settings, db):
    from django.contrib.auth import get_user_model

    settings.AUTHENTICATION_BACKENDS = [
        "s2s_auth.credentials.throttles.LoginThrottleBackend",
        "django.contrib.auth.backends.ModelBackend",
    ]
    get_user_model().objects.create_superuser("root", password="root-password-1")
    store.stop()
    response = client.post("/admin/login/", {"username": "root", "password": "root-password-1"})
    assert response.status_code == 200  # the form again: not logged in, no 500
    assert "_auth_user_id" not in client.session
