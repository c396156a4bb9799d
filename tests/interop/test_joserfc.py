"""joserfc, an independent JOSE implementation, verifies the tokens the live issuer
issues against the JWKS it serves, with every RFC 9068 claim checked."""

from __future__ import annotations

import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

pytestmark = [pytest.mark.live]


def token_for(issuer, name: str = "authlib") -> str:
    response = requests.post(
        issuer.token_endpoint,
        data={"grant_type": "client_credentials", "scope": "users:read"},
        auth=(name, issuer.secrets[name]),
        verify=issuer.ca,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def served_keys(issuer) -> KeySet:
    metadata = requests.get(issuer.metadata_url, verify=issuer.ca, timeout=10).json()
    return KeySet.import_key_set(requests.get(metadata["jwks_uri"], verify=issuer.ca).json())


@pytest.mark.interop("joserfc", "access token verifies against the served JWKS (RFC 9068 claims)")
def test_access_token_verifies_with_joserfc(issuer):
    keys = served_keys(issuer)
    token = jwt.decode(token_for(issuer), keys, algorithms=["ES256", "EdDSA", "Ed25519"])
    assert token.header["typ"] == "at+jwt"
    assert token.header["kid"] in {key.kid for key in keys}
    registry = JWTClaimsRegistry(
        iss={"essential": True, "value": issuer.base},
        aud={"essential": True, "value": "spiffe://fleamarket.local/service/users"},
        sub={"essential": True, "value": "spiffe://fleamarket.local/service/authlib"},
        client_id={"essential": True, "value": "authlib"},
        exp={"essential": True},
        iat={"essential": True},
        jti={"essential": True},
        scope={"essential": True, "value": "users:read"},
    )
    registry.validate(token.claims)  # raises on any missing or wrong claim


@pytest.mark.interop("joserfc", "a token altered after issuance is refused")
def test_tampered_token_is_refused_by_joserfc(issuer):
    from joserfc.errors import BadSignatureError

    header, payload, signature = token_for(issuer).split(".")
    forged = ".".join(
        (header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB"))
    )
    with pytest.raises(BadSignatureError):
        jwt.decode(forged, served_keys(issuer), algorithms=["ES256"])
