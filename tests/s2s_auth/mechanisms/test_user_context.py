"""The end user's context at the receiving side (s2s_auth.mechanisms.user_context): a
token exchanged for this hop (RFC 8693) is accepted from the caller its ``act`` names
and only here; the user's own token forwarded as it is only when opted in."""

# ruff: noqa: F401, F811 - the service JWT tests' fixtures, imported
from __future__ import annotations

import types

import pytest

from s2s_auth.client.auth import ServiceJWTAuth, end_user_context

from .test_access_token import mint as mint_access
from .test_service_jwt import CALLER, END_USERS, call, creds, identity_service, mint, pki

USERS = "spiffe://fleamarket.local/service/users"
OTHER = "spiffe://fleamarket.local/service/search"


def exchanged(keys, *, aud=USERS, actor=CALLER, client_id="jwtcaller", **claims):
    """What the identity service's token exchange gives ``actor`` for ``aud``."""
    base = {
        "sub": "42",
        "aud": aud,
        "client_id": client_id,
        "act": {"sub": actor},
        "scope": "",
        "username": "alice",
    }
    base.update(claims)
    return mint_access(keys, **{k: v for k, v in base.items() if v is not None})


def with_jwt(client, creds, user):
    """The client hook: a service JWT committing to ``user`` by ``ath``, token beside."""
    outgoing = types.SimpleNamespace(headers={})
    with end_user_context(user):
        ServiceJWTAuth(creds, "users")(outgoing)
    _, token = outgoing.headers["Authorization"].split(" ", 1)
    return call(client, token, HTTP_S2S_END_USER_TOKEN=outgoing.headers["S2S-End-User-Token"])


def test_an_exchanged_token_from_its_actor_is_the_end_user(client, creds, identity_service):
    response = with_jwt(client, creds, exchanged(identity_service))
    assert response.status_code == 200, response.json()
    assert response.json()["end_user"] == "42"


def test_a_chain_is_accepted_from_its_last_actor(client, creds, identity_service):
    token = exchanged(identity_service, act={"sub": CALLER, "act": {"sub": OTHER}})
    response = with_jwt(client, creds, token)
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        # lifted from this hop by another service: act names someone else
        ({"actor": OTHER, "client_id": "search"}, "end_user_actor_mismatch"),
        ({"client_id": "search"}, "end_user_actor_mismatch"),
        ({"client_id": None}, "end_user_actor_mismatch"),
        # lifted at another hop: issued for another service
        ({"aud": OTHER}, "end_user_wrong_audience"),
        ({"aud": END_USERS}, "end_user_wrong_audience"),
        ({"act": "ads"}, "end_user_malformed"),
        ({"sub": CALLER}, "end_user_not_a_user"),
    ],
)
def test_a_lifted_or_bad_exchanged_token_fails_the_request(
    client,
    creds,
    identity_service,
    claims,
    code,
):
    actor = claims.pop("actor", CALLER)
    response = with_jwt(client, creds, exchanged(identity_service, actor=actor, **claims))
    assert (response.status_code, response.json()["error"]) == (403, code)


def test_the_users_own_token_is_refused_by_default(client, creds, identity_service, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "ACCEPT_FORWARDED_USER_TOKENS": False}
    user = mint_access(identity_service, sub="42", aud=END_USERS, client_id="users", scope="")
    response = with_jwt(client, creds, user)
    assert (response.status_code, response.json()["error"]) == (403, "end_user_not_exchanged")
    settings.S2S_AUTH = {**settings.S2S_AUTH, "ACCEPT_FORWARDED_USER_TOKENS": True}
    assert with_jwt(client, creds, user).status_code == 200


# -- beside a client-credentials access token (no commitment: exchanged tokens only) -----


@pytest.fixture
def bearer(identity_service, creds):
    return mint_access(
        identity_service, sub=CALLER, client_id="jwtcaller", aud=USERS, scope="test:read"
    )


def call_bearer(client, token, user=None):
    extra = {"HTTP_S2S_END_USER_TOKEN": user} if user else {}
    return client.get("/tokens-test/at/any", HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def test_access_token_callers_carry_an_exchanged_user(client, identity_service, bearer):
    response = call_bearer(client, bearer, exchanged(identity_service))
    assert response.status_code == 200, response.json()
    assert response.json()["end_user"] == "42"
    assert call_bearer(client, bearer).json()["end_user"] is None


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"actor": OTHER, "client_id": "search"}, "end_user_actor_mismatch"),
        ({"aud": OTHER}, "end_user_wrong_audience"),
        ({"act": None, "aud": END_USERS}, "end_user_not_exchanged"),
    ],
)
def test_access_token_callers_cannot_bring_a_lifted_user(
    client, identity_service, bearer, settings, claims, code
):
    # Even opted in, a forwarded token needs a credential that commits to it.
    actor = claims.pop("actor", CALLER)
    response = call_bearer(client, bearer, exchanged(identity_service, actor=actor, **claims))
    assert (response.status_code, response.json()["error"]) == (403, code)


def call_mtls(client, creds, user=None):
    """A call over mTLS alone (the certificate as the TLS worker passes it on)."""
    extra = {"HTTP_S2S_END_USER_TOKEN": user} if user else {}
    pem = creds.cert_path.read_text()
    return client.get("/any/scoped", SSL_CLIENT_CERT=pem, **extra)


def test_mtls_callers_carry_an_exchanged_user(client, creds, identity_service):
    response = call_mtls(client, creds, exchanged(identity_service))
    assert response.status_code == 200, response.json()
    assert (response.json()["mechanism"], response.json()["end_user"]) == ("mtls", "42")
    assert call_mtls(client, creds).json()["end_user"] is None


def test_mtls_callers_cannot_bring_a_user_exchanged_by_another(client, creds, identity_service):
    lifted = exchanged(identity_service, actor=OTHER, client_id="search")
    response = call_mtls(client, creds, lifted)
    assert (response.status_code, response.json()["error"]) == (403, "end_user_actor_mismatch")
