"""Client auth hooks (s2s_auth.client.auth) that need no server: signing hooks, x5c."""

from __future__ import annotations

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from django.test import override_settings

from s2s_auth.client.auth import HTTPSignatureAuth, ServiceCredentials, ServiceJWTAuth
from s2s_auth.core import jose
from s2s_auth.core.httpsig import MemoryNonceStore, SignatureError, SignatureVerifier
from s2s_auth.core.x509 import fingerprint, x5c_decode

URL = "https://users.fleamarket.local/api/v1/users/previews?ids=1,2"
BODY = b'{"ids": [1, 2]}'


@pytest.mark.parametrize(
    "key", [ec.generate_private_key(ec.SECP256R1()), ed25519.Ed25519PrivateKey.generate()]
)
def test_http_signature_auth_signs_each_request_afresh(key):
    auth = HTTPSignatureAuth("ads", key)
    first = requests.Request("POST", URL, data=BODY, auth=auth).prepare()
    second = requests.Request("POST", URL, data=BODY, auth=auth).prepare()
    verifier = SignatureVerifier(
        resolve_key=lambda key_id: ({"ads": key.public_key()}[key_id], None),
        nonce_store=MemoryNonceStore(),
    )
    a = verifier.verify("POST", URL, first.headers, BODY)
    b = verifier.verify("POST", URL, second.headers, BODY)
    assert a.key_id == b.key_id == "ads"
    assert a.nonce != b.nonce


def test_http_signature_auth_fails_at_configuration():
    key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(TypeError):
        HTTPSignatureAuth("ads", key, colour="blue")
    with pytest.raises(SignatureError) as info:
        HTTPSignatureAuth("ads", ec.generate_private_key(ec.SECP521R1()))
    assert info.value.code == "algorithm_not_allowed"


def test_service_jwt_auth_sends_the_chain_as_x5c(ca):
    issued = ca.issue("client-auth")
    credentials = ServiceCredentials.from_files(issued.cert_path, issued.key_path)
    assert credentials.spiffe_id == "spiffe://fleamarket.local/service/client-auth"
    assert x5c_decode(credentials.x5c) == list(credentials.chain)
    credentials.x5c.append("junk")  # remembered, but each caller gets its own list
    assert x5c_decode(credentials.x5c) == list(credentials.chain)
    token = ServiceJWTAuth(credentials, "spiffe://fleamarket.local/service/users").token()
    header = jose.unverified_header(token)
    assert header["kid"] == fingerprint(credentials.chain[0])
    assert x5c_decode(header["x5c"])[0] == credentials.chain[0]
    with override_settings(S2S_AUTH={"TRUST_DOMAIN": "fleamarket.local"}):
        bare = ServiceJWTAuth(credentials, "users", send_x5c=False)
    assert "x5c" not in jose.unverified_header(bare.token())
    assert bare.audience == "spiffe://fleamarket.local/service/users"
