"""Every code snippet of the docs, run for real.

View snippets are mounted in tests/docs/urls.py and called in-process with a real
certificate in ``SSL_CLIENT_CERT`` (the ``ca`` fixture), or over real TLS on the live
gunicorn server of ``conftest.live``; client snippets call that live server.
"""

from __future__ import annotations

import base64
import json
import time

import pytest
import requests
from django.utils.module_loading import import_string

from s2s_auth.client import ServiceClient
from s2s_auth.client.exchange import UserContextUnavailable
from s2s_auth.client.token_manager import TokenEndpointError
from s2s_auth.conf import DEFAULTS, S2SSettings
from s2s_auth.credentials.principals import ensure_principal
from tests.docs.conftest import USER_PASSWORD
from tests.docs.snippets import fresh, load, source

pytestmark = pytest.mark.django_db


def error_of(response) -> str:
    return response.json()["error"]


# ---------------------------------------------------------------- quickstart


def test_quickstart_settings_snippet_is_a_valid_configuration():
    """Appended to the settings.py of a fresh startproject (no REST_FRAMEWORK there)."""
    namespace = {
        "INSTALLED_APPS": ["django.contrib.contenttypes", "django.contrib.auth"],
        "MIDDLEWARE": ["django.contrib.sessions.middleware.SessionMiddleware"],
        "DATABASES": {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "db"}},
    }
    code = source("quickstart_settings")
    exec(compile(code, "quickstart_settings.py", "exec"), namespace)  # noqa: S102
    conf = S2SSettings(namespace["S2S_AUTH"])  # an unknown key raises
    assert conf.own_spiffe_id == "spiffe://example.org/service/users"
    assert {"rest_framework", "s2s_auth"} <= set(namespace["INSTALLED_APPS"])
    assert namespace["DATABASES"]["default"]["CONN_MAX_AGE"] == 60
    for dotted in [*namespace["MIDDLEWARE"], namespace["REST_FRAMEWORK"]["EXCEPTION_HANDLER"]]:
        import_string(dotted)
    # The replay store: shared by every worker process (not Django's LocMem default).
    store = import_string(namespace["CACHES"]["default"]["BACKEND"])
    assert store.__name__ == "ReplayDatabaseCache"
    from s2s_auth.views import MECHANISM_CLASSES

    assert set(conf.MECHANISMS) <= set(MECHANISM_CLASSES)


def test_quickstart_caller_settings_snippet_is_a_valid_configuration():
    namespace = {}
    exec(compile(source("quickstart_caller_settings"), "caller.py", "exec"), namespace)  # noqa: S102
    conf = S2SSettings(namespace["S2S_AUTH"])
    assert conf.own_spiffe_id == "spiffe://example.org/service/ads"
    assert namespace["USERS_SERVICE_URL"].startswith("https://")


def test_quickstart_view_in_process(client, pki):
    caller = pki.issue("docs-ads").cert_path.read_text()
    ensure_principal("docs-ads", ["users:read"])
    response = client.get("/api/v1/users/previews?ids=1,2", SSL_CLIENT_CERT=caller)
    assert response.status_code == 200, response.content
    assert response.json() == {
        "caller": "spiffe://fleamarket.local/service/docs-ads",
        "mechanism": "mtls",
        "previews": [{"id": 1, "name": "seller 1"}, {"id": 2, "name": "seller 2"}],
    }
    response = client.get("/api/v1/users/previews?ids=1")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"
    assert "WWW-Authenticate" in response
    noscope = pki.issue("docs-noscope").cert_path.read_text()
    ensure_principal("docs-noscope")
    response = client.get("/api/v1/users/previews?ids=1", SSL_CLIENT_CERT=noscope)
    assert response.status_code == 403
    assert error_of(response) == "insufficient_scope"


def test_quickstart_client_against_the_live_server(live, as_service, settings, tmp_path):
    settings.USERS_SERVICE_URL = live.url
    as_service("ads")
    snippet = fresh("quickstart_client")
    try:
        assert snippet.seller_previews([2, 1]) == [
            {"id": 2, "name": "seller 2"},
            {"id": 1, "name": "seller 1"},
        ]
    finally:
        snippet.users_client.cache_clear()
    # The JWT client finds the CA at BASE_DIR / "var/pki/ca.pem", as in a startproject.
    settings.BASE_DIR = tmp_path
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "pki").symlink_to(live.pki)
    with snippet.users_jwt_client() as jwt_client:
        assert jwt_client.cert is None  # no client certificate: the JWT alone
        response = jwt_client.get("api/v1/users/previews", params={"ids": "3"})
        assert response.json()["mechanism"] == "service_jwt", response.content
        assert snippet.seller_previews([3], jwt_client) == [{"id": 3, "name": "seller 3"}]
    as_service("stranger")  # registered, no scope
    snippet = fresh("quickstart_client")
    with pytest.raises(requests.HTTPError) as excinfo:
        snippet.seller_previews([1])
    assert excinfo.value.response.status_code == 403
    assert error_of(excinfo.value.response) == "insufficient_scope"


# ---------------------------------------------------------------- mTLS


def test_mtls_views_in_process(client, pki, rogue_ca):
    worker = pki.issue("docs-worker").cert_path.read_text()
    ensure_principal("docs-worker", ["users:notify"])
    response = client.post("/api/v1/users/notify", SSL_CLIENT_CERT=worker)
    assert response.status_code == 202, response.content
    assert response.json()["from"] == "docs-worker"
    assert len(response.json()["fingerprint"]) == 64
    assert client.get("/api/v1/ping", SSL_CLIENT_CERT=worker).json() == {
        "pong": "spiffe://fleamarket.local/service/docs-worker"
    }
    forged = rogue_ca.issue("docs-worker").cert_path.read_text()
    response = client.post("/api/v1/users/notify", SSL_CLIENT_CERT=forged)
    assert response.status_code == 403
    assert error_of(response) == "untrusted_chain"
    response = client.post("/api/v1/users/notify")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Mutual-TLS")


def test_mtls_client_against_the_live_server(live):
    users = load("mtls_client").users_client(live.url, live.pki)
    response = users.get("api/v1/ping")
    assert response.status_code == 200, response.text
    assert response.json() == {"pong": "spiffe://fleamarket.local/service/ads"}
    response = users.post("api/v1/users/notify")
    assert response.status_code == 403
    assert error_of(response) == "insufficient_scope"
    anonymous = ServiceClient(live.url, ca_bundle=live.ca)
    response = anonymous.get("api/v1/ping")
    assert response.status_code == 401
    assert error_of(response) == "not_authenticated"
    with pytest.raises(ValueError, match="refuses"):
        users.get("https://example.com/api/v1/ping")


# ---------------------------------------------------------------- service JWTs


def test_service_jwt_client_against_the_live_server(live, as_service):
    as_service("ads")
    snippet = load("service_jwt_client")
    users = snippet.users_client(live.url, live.ca)  # no client certificate: x5c
    assert users.cert is None
    response = users.get("api/v1/users/signed-previews")
    assert response.status_code == 200, response.text
    assert response.json()["caller"] == "spiffe://fleamarket.local/service/ads"
    over_mtls = snippet.users_client_over_mtls(live.url)
    assert over_mtls.get("api/v1/users/signed-previews").status_code == 200
    # A token is single-use: a replay (a token read off the wire) is refused.
    token = users.auth.token()
    raw = ServiceClient(live.url, ca_bundle=live.ca)
    headers = {"Authorization": f"ServiceJWT {token}"}
    assert raw.get("api/v1/users/signed-previews", headers=headers).status_code == 200
    replay = raw.get("api/v1/users/signed-previews", headers=headers)
    assert replay.status_code == 403
    assert error_of(replay) == "replayed_jti"
    # A token for another audience is refused.
    users.auth.audience = "spiffe://fleamarket.local/service/ads"
    response = users.get("api/v1/users/signed-previews")
    assert response.status_code == 403
    assert error_of(response) == "wrong_audience"


# ---------------------------------------------------------------- HTTP signatures


def test_http_signature_client_against_the_live_server(live, as_service):
    as_service("worker")
    signer = load("http_signature_client").signing_client(live.url)
    response = signer.post("api/v1/users/notifications", json={"ad": 1})
    assert response.status_code == 202, response.text
    assert response.json()["from"] == "worker"
    assert {"@method", "@target-uri", "content-digest"} <= set(response.json()["covered"])
    # The body is covered: change it after signing and the signature no longer holds.
    prepared = signer.prepare_request(
        requests.Request("POST", f"{live.url}/api/v1/users/notifications", json={"ad": 1})
    )
    tampered = prepared.copy()
    tampered.body = b'{"ad": 2}'
    response = signer.send(tampered, verify=str(live.ca))
    assert response.status_code == 403
    assert error_of(response) == "digest_mismatch"
    # And a signed request cannot be sent twice.
    assert signer.send(prepared.copy(), verify=str(live.ca)).status_code == 202
    response = signer.send(prepared.copy(), verify=str(live.ca))
    assert response.status_code == 403
    assert error_of(response) == "replayed_nonce"


# ---------------------------------------------------------------- access tokens


def _close(*clients):
    for c in clients:
        c.auth.manager.close()
        c.close()


def test_access_token_clients_against_the_live_issuer(live):
    snippet = load("access_token_client")
    secret = snippet.secret_client(live.url, live.url, live.secret, live.ca)
    bound = snippet.bound_client(live.url, live.url, live.pki)
    assertion = snippet.assertion_client(live.url, live.url, live.pki)
    try:
        response = secret.get("api/v1/users/token-previews")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "caller": "spiffe://fleamarket.local/service/ads",
            "scopes": ["users:read"],
            "bound": False,
        }
        response = bound.get("api/v1/users/token-previews")
        assert response.status_code == 200, response.text
        assert response.json()["bound"] is True
        response = assertion.get("api/v1/users/token-previews")
        assert response.status_code == 200, response.text
        assert response.json()["bound"] is False
        # One token serves many calls.
        assert secret.get("api/v1/users/token-previews").status_code == 200
        assert secret.auth.manager.fetch_count == 1

        # A stolen plain bearer token works for the thief; a bound one does not.
        stolen = secret.auth.manager.token()
        thief = ServiceClient(live.url, ca_bundle=live.ca)
        response = thief.get(
            "api/v1/users/token-previews", headers={"Authorization": f"Bearer {stolen}"}
        )
        assert response.status_code == 200
        stolen = bound.auth.manager.token()
        claims = json.loads(base64.urlsafe_b64decode(stolen.split(".")[1] + "=="))
        assert "x5t#S256" in claims["cnf"]
        response = thief.get(
            "api/v1/users/token-previews", headers={"Authorization": f"Bearer {stolen}"}
        )
        assert response.status_code == 401
        assert error_of(response) == "certificate_required"
        other = load("mtls_client").users_client(live.url, live.pki)
        other.cert = (str(live.pki / "worker.pem"), str(live.pki / "worker.key"))
        response = other.get(
            "api/v1/users/token-previews", headers={"Authorization": f"Bearer {stolen}"}
        )
        assert response.status_code == 403
        assert error_of(response) == "certificate_binding_mismatch"
    finally:
        _close(secret, bound, assertion)

    wrong = snippet.secret_client(live.url, live.url, live.secret + "x", live.ca)
    try:
        with pytest.raises(TokenEndpointError) as excinfo:
            wrong.get("api/v1/users/token-previews")
        assert excinfo.value.error == "invalid_client"
    finally:
        _close(wrong)


# ---------------------------------------------------------------- API keys


def test_api_key_client_against_the_live_server(live, monkeypatch):
    monkeypatch.setenv("USERS_API_KEY", live.api_key)
    users = load("api_key_client").users_client(live.url, live.ca)
    response = users.get("api/v1/users/keyed-previews")
    assert response.status_code == 200, response.text
    key_id = response.json()["key_id"]
    assert response.json()["caller"] == "ads"
    assert key_id in live.api_key
    monkeypatch.setenv("USERS_API_KEY", live.api_key[:-4] + "AAAA")
    response = (
        load("api_key_client").users_client(live.url, live.ca).get("api/v1/users/keyed-previews")
    )
    assert response.status_code == 401
    assert error_of(response) == "unknown_api_key"
    live.manage("s2s_service", "revoke-key", key_id)
    # Every process drops its cached key within PRINCIPAL_CACHE_CHECK_SECONDS of the
    # revocation (docs/operations.md); manage.py may return sooner than that.
    deadline = time.monotonic() + DEFAULTS["PRINCIPAL_CACHE_CHECK_SECONDS"] + 1.0
    response = users.get("api/v1/users/keyed-previews")
    while response.status_code == 200 and time.monotonic() < deadline:
        time.sleep(0.1)
        response = users.get("api/v1/users/keyed-previews")
    assert response.status_code == 403
    assert error_of(response) == "api_key_revoked"


# ---------------------------------------------------------------- user context


def login(live) -> str:
    response = ServiceClient(live.url, ca_bundle=live.ca).post(
        "api/v1/auth/login", json={"username": "alice", "password": USER_PASSWORD}
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def test_user_context_against_the_live_server(live, as_service):
    user_token = login(live)
    me = ServiceClient(live.url, ca_bundle=live.ca).get(
        "api/v1/me", headers={"Authorization": f"Bearer {user_token}"}
    )
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "alice"

    as_service("ads")
    users = load("user_context_exchange").users_client_with_user_context(live.url, live.ca)
    response = load("user_context_client").previews_on_behalf(users, user_token)
    assert response.status_code == 200, response.text
    assert response.json() == {"service": "ads", "user": me.json()["id"], "username": "alice"}
    # Outside the block no user context is sent.
    response = users.get("api/v1/users/on-behalf")
    assert response.status_code == 400
    assert error_of(response) == "end_user_required"
    # A user token the identity service did not sign is not exchanged: no call is made.
    header, claims, signature = user_token.split(".")
    forged = ".".join([header, claims, signature[::-1]])
    with pytest.raises(UserContextUnavailable) as refused:
        load("user_context_client").previews_on_behalf(users, forged)
    assert refused.value.error == "invalid_grant"
    # The user's own token forwarded as it is (no exchanger) fails the whole request.
    forwarding = load("service_jwt_client").users_client(live.url, live.ca)
    response = load("user_context_client").previews_on_behalf(forwarding, user_token)
    assert (response.status_code, error_of(response)) == (403, "end_user_not_exchanged")


# ---------------------------------------------------------------- identity service


def test_self_registration_starts_without_scopes(live):
    session = ServiceClient(live.url, ca_bundle=live.ca)
    password = "correct-horse-" + str(time.time_ns())
    response = session.post(
        "api/v1/account/register/service",
        json={"serviceName": "billing", "password": password},
    )
    assert response.status_code == 201, response.text
    assert response.json()["spiffeId"] == "spiffe://fleamarket.local/service/billing"
    assert response.json()["scopes"] == []
    token = session.post(
        "oauth/token", data={"grant_type": "client_credentials"}, auth=("billing", password)
    )
    assert token.status_code == 400
    assert token.json()["error"] == "invalid_scope"
    live.manage("s2s_service", "grant", "billing", "users:read", "--approve-self-registered")
    token = session.post(
        "oauth/token", data={"grant_type": "client_credentials"}, auth=("billing", password)
    )
    assert token.status_code == 200, token.text
    assert token.json()["scope"] == "users:read"
    again = session.post(
        "api/v1/account/register/service",
        json={"serviceName": "billing", "password": password},
    )
    assert again.status_code == 409
