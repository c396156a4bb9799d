"""The token-exchange grant (RFC 8693, s2s_auth.issuer.exchange): a user's token
exchanged by a service for one hop's token, and every way the request can be wrong."""

from __future__ import annotations

import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from s2s_auth.core.jose import new_jti, sign, unverified_header
from s2s_auth.credentials import principals as services
from s2s_auth.credentials.cache import invalidate
from s2s_auth.models import AuditRecord, ServicePrincipal

from .support import ISSUER, assert_error, check_token, login, pem, post_token, spiffe

GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
AT = "urn:ietf:params:oauth:token-type:access_token"


@pytest.fixture
def user_token(client, alice):
    response = login(client, {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


@pytest.fixture
def hop(issuer_conf, db):
    """A second service "search" that ads may call on the users' behalf, and that
    may call "users" in turn (a chain): (name, secret)."""
    services.ensure_principal("search", ["ads:read", "users:read"])
    services.ensure_principal("ads", ["users:read", "users:notify", "search:read", "ads:read"])
    return "search", services.create_client_secret("search")


def exchange(client, subject, *, auth, audience="users", **extra):
    data = {
        "grant_type": GRANT,
        "subject_token": subject,
        "subject_token_type": AT,
        **({"audience": audience} if audience is not None else {}),
        **extra,
    }
    return post_token(client, data, auth=auth)


def test_a_user_token_is_exchanged_for_one_hop(client, ads, user_token, alice):
    response = exchange(client, user_token, auth=ads)
    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert body["issued_token_type"] == AT
    assert body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 120
    claims = check_token(client, body["access_token"], spiffe("users"))
    assert claims["aud"] == spiffe("users")
    assert claims["sub"] == str(alice.pk)
    assert claims["act"] == {"sub": spiffe("ads")}
    assert claims["client_id"] == "ads"
    assert claims["username"] == "alice"
    assert claims["exp"] - claims["iat"] <= 120
    # user: ads:read ads:write; ads is granted users:*: nothing in common.
    assert claims["scope"] == ""
    assert unverified_header(body["access_token"])["typ"] == "at+jwt"


def test_the_lifetime_is_a_setting_and_never_beyond_the_subject(client, ads, user_token, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "TOKEN_EXCHANGE_LIFETIME": 30}
    claims = check_token(
        client, exchange(client, user_token, auth=ads).json()["access_token"], spiffe("users")
    )
    assert claims["exp"] - claims["iat"] == 30
    settings.S2S_AUTH = {**settings.S2S_AUTH, "TOKEN_EXCHANGE_LIFETIME": 10**6}
    claims = check_token(
        client, exchange(client, user_token, auth=ads).json()["access_token"], spiffe("users")
    )
    subject = check_token(client, user_token, "fleamarket")
    assert claims["exp"] == subject["exp"]


def test_scopes_are_within_the_users_and_the_callers(client, ads, hop, user_token):
    claims = check_token(
        client,
        exchange(client, user_token, auth=ads, audience="search").json()["access_token"],
        spiffe("search"),
    )
    assert claims["scope"] == "ads:read"  # user: ads:read ads:write; ads: ads:read
    response = exchange(client, user_token, auth=ads, audience="search", scope="ads:write")
    assert_error(response, 400, "invalid_scope")
    response = exchange(client, user_token, auth=ads, audience="search", scope="users:notify")
    assert_error(response, 400, "invalid_scope")


def test_a_chain_nests_act_and_needs_the_token_issued_to_the_caller(client, ads, hop, user_token):
    first = exchange(client, user_token, auth=ads, audience="search").json()["access_token"]
    second = exchange(client, first, auth=hop)
    assert second.status_code == 200, second.content
    claims = check_token(client, second.json()["access_token"], spiffe("users"))
    assert claims["act"] == {"sub": spiffe("search"), "act": {"sub": spiffe("ads")}}
    assert claims["client_id"] == "search"
    # ads cannot exchange a token that was issued for search (lifted there).
    lifted = exchange(client, first, auth=ads)
    assert_error(lifted, 400, "invalid_grant")


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"subject_token_type": None}, 400, "invalid_request"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:jwt"}, 400, "invalid_request"),
        ({"subject_token": None}, 400, "invalid_request"),
        ({"actor_token": "x", "actor_token_type": AT}, 400, "invalid_request"),
        (
            {"requested_token_type": "urn:ietf:params:oauth:token-type:id_token"},
            400,
            "invalid_request",
        ),
        ({"audience": None}, 400, "invalid_target"),
        ({"audience": "users ads"}, 400, "invalid_target"),
        ({"audience": "users", "resource": spiffe("users")}, 400, "invalid_target"),
        ({"audience": "nosuchservice"}, 400, "invalid_target"),
        ({"audience": "https://evil.example"}, 400, "invalid_target"),
    ],
)
def test_malformed_requests(client, ads, user_token, change, status, error):
    data = {
        "grant_type": GRANT,
        "subject_token": user_token,
        "subject_token_type": AT,
        "audience": "users",
    }
    data.update(change)
    data = {k: v for k, v in data.items() if v is not None}
    assert_error(post_token(client, data, auth=ads), status, error)


def test_only_to_a_service_the_caller_is_granted_a_scope_of(client, ads, hop, user_token):
    services.ensure_principal("payments", [])
    response = exchange(client, user_token, auth=ads, audience="payments")
    assert_error(response, 400, "invalid_target")


def forged_user_token(**claims):
    now = int(time.time())
    base = {
        "iss": ISSUER,
        "sub": "1",
        "aud": "fleamarket",
        "iat": now,
        "exp": now + 300,
        "jti": new_jti(),
        "scope": "ads:read",
    }
    base.update(claims)
    return sign(base, ec.generate_private_key(ec.SECP256R1()), typ="at+jwt", kid="forged")


def test_subject_tokens_that_are_not_our_users_are_invalid_grant(client, ads, user_token):
    service_token = post_token(client, {"grant_type": "client_credentials"}, auth=ads).json()[
        "access_token"
    ]
    for subject in (forged_user_token(), service_token, "not-a-jwt", user_token + "x"):
        assert_error(exchange(client, subject, auth=ads), 400, "invalid_grant")


def test_an_expired_subject_token_is_invalid_grant(client, ads, alice, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "USER_TOKEN_LIFETIME": 1, "CLOCK_SKEW": 0}
    response = login(client, {"username": "alice", "password": "alice-password-1"})
    time.sleep(2.1)
    body = assert_error(
        exchange(client, response.json()["access_token"], auth=ads), 400, "invalid_grant"
    )
    assert "expired" in body["error_description"]


def test_the_client_must_authenticate_and_be_enabled(client, ads, user_token):
    name, secret = ads
    assert_error(exchange(client, user_token, auth=(name, secret + "x")), 401, "invalid_client")
    ServicePrincipal.objects.filter(name="ads").update(enabled=False)
    invalidate()  # an UPDATE sends no signal: the principal cache is told
    assert_error(exchange(client, user_token, auth=ads), 400, "unauthorized_client")


def test_any_client_authentication_method(client, tls_client, user_token):
    response = post_token(
        client,
        {
            "grant_type": GRANT,
            "subject_token": user_token,
            "subject_token_type": AT,
            "resource": spiffe("users"),
        },
        SSL_CLIENT_CERT=pem(tls_client),
    )
    assert response.status_code == 200, response.content
    claims = check_token(client, response.json()["access_token"], spiffe("users"))
    assert claims["act"] == {"sub": spiffe("mtlsclient")}
    assert "cnf" not in claims


def test_the_exchange_is_audited_without_the_tokens(client, ads, user_token, alice):
    body = exchange(client, user_token, auth=ads).json()
    record = AuditRecord.objects.filter(
        reason="user_token_issued", mechanism="client_secret_basic"
    ).get()
    assert record.end_user == str(alice.pk)
    assert record.claims["act"] == {"sub": spiffe("ads")}
    assert record.claims["aud"] == spiffe("users")
    assert body["access_token"] not in str(record.claims)
    assert user_token not in str(record.claims)


def test_metadata_lists_the_grant(client, issuer_conf):
    metadata = client.get("/.well-known/oauth-authorization-server").json()
    assert GRANT in metadata["grant_types_supported"]
