"""private_key_jwt assertions are explicitly typed and carry a usable ``jti``.

A token minted for something else (an access token, a service JWT) and signed by the
client's key must not pass as a client assertion; an empty ``jti`` would give every
such assertion the same replay key.
"""

from __future__ import annotations

import time

import pytest

from s2s_auth.core.jose import CLIENT_AUTH_JWT_TYP, new_jti, sign
from s2s_auth.issuer.oauth import ASSERTION_TYPS

from .support import ASSERTION_TYPE, TOKEN_URL, assert_error, post_token, x5c


def typed_assertion(leaf, client_id: str, *, typ, jti=None) -> str:
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": TOKEN_URL,
        "iat": now,
        "exp": now + 60,
        "jti": new_jti() if jti is None else jti,
    }
    return sign(claims, leaf.key, typ=typ, headers={"x5c": x5c(leaf.chain)})


def exchange(client, token):
    return post_token(
        client,
        {
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": token,
        },
    )


def test_the_explicit_type_is_the_first_accepted():
    assert ASSERTION_TYPS[0] == CLIENT_AUTH_JWT_TYP


@pytest.mark.parametrize("typ", [CLIENT_AUTH_JWT_TYP, "JWT", None])
def test_typed_or_generic_assertions_are_accepted(client, pk_client, typ):
    response = exchange(client, typed_assertion(pk_client, "pkjwt", typ=typ))
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("typ", ["at+jwt", "s2s+jwt", "dpop+jwt", "secevent+jwt"])
def test_tokens_of_another_type_are_refused(client, pk_client, typ):
    response = exchange(client, typed_assertion(pk_client, "pkjwt", typ=typ))
    body = assert_error(response, 401, "invalid_client")
    assert "wrong_type" in body["error_description"]


def test_an_empty_jti_is_refused_the_first_time(client, pk_client):
    body = assert_error(
        exchange(client, typed_assertion(pk_client, "pkjwt", typ=CLIENT_AUTH_JWT_TYP, jti="")),
        401,
        "invalid_client",
    )
    assert "invalid_claim" in body["error_description"]


def test_the_client_sends_the_explicit_type(client, pk_client, tmp_path):
    """TokenManager's private_key_jwt assertions carry typ client-authentication+jwt,
    and the issuer takes them."""
    from s2s_auth.client.token_manager import TokenManager
    from s2s_auth.core.jose import unverified_header

    cert, key = tmp_path / "pkjwt.pem", tmp_path / "pkjwt.key"
    cert.write_bytes(pk_client.chain_pem)
    key.write_bytes(pk_client.key_pem)
    manager = TokenManager(
        TOKEN_URL, client_id="pkjwt", cert=(str(cert), str(key)), auth_method="private_key_jwt"
    )
    token = manager.client_assertion()
    assert unverified_header(token)["typ"] == CLIENT_AUTH_JWT_TYP
    assert exchange(client, token).status_code == 200
