"""The token endpoint maps an Istio-style SPIFFE ID to its client when SPIFFE_ID_PATHS
says so (tls_client_auth), and refuses it otherwise."""

from __future__ import annotations

import pytest

from s2s_auth.credentials import principals

from .support import assert_error, check_token, post_token, spiffe

ISTIO_ID = "spiffe://fleamarket.local/ns/default/sa/mtlsclient"


@pytest.fixture
def istio_client(ca, make_leaf, issuer_conf, settings):
    settings.S2S_AUTH = {**issuer_conf, "SPIFFE_ID_PATHS": "/service/{name},/ns/default/sa/{name}"}
    principals.ensure_principal("mtlsclient", ["users:read"])
    return make_leaf(ca, "mtlsclient", uris=[ISTIO_ID])


def request(client, leaf):
    return post_token(
        client,
        {"grant_type": "client_credentials", "client_id": "mtlsclient"},
        SSL_CLIENT_CERT=leaf.chain_pem.decode(),
    )


def test_tls_client_auth_with_an_istio_id(client, istio_client):
    response = request(client, istio_client)
    assert response.status_code == 200, response.content
    claims = check_token(client, response.json()["access_token"], spiffe("users"))
    assert claims["sub"] == spiffe("mtlsclient")  # the principal's issued ID


def test_tls_client_auth_with_an_istio_id_refused_when_not_configured(
    client, istio_client, settings
):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "SPIFFE_ID_PATHS": ["/service/{name}"]}
    assert_error(request(client, istio_client), 401, "invalid_client")
