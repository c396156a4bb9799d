"""SPIFFE JWT-SVIDs under Bearer (the default MECHANISMS) and under ServiceJWT."""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from s2s_auth.client.auth import JWTSVIDAuth, ServiceCredentials
from s2s_auth.core import jose
from s2s_auth.core.svid import jwt_bundle
from s2s_auth.credentials.principals import ensure_principal

TD = "fleamarket.local"
CALLER = f"spiffe://{TD}/service/svidcaller"
AUDIENCE = f"spiffe://{TD}/service/users"
URL = "/service/scoped"  # S2S_AUTH["MECHANISMS"]: the default list


@pytest.fixture
def pki(ca, settings, tmp_path):
    settings.S2S_AUTH = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": TD,
        "PKI_DIR": str(ca.directory),
    }
    return ca


@pytest.fixture
def creds(pki, db):
    issued = pki.issue("svidcaller")
    ensure_principal("svidcaller", ["test:read"])
    return ServiceCredentials.from_files(issued.cert_path, issued.key_path)


def svid(key, *, kid=None, headers=None, typ="JWT", **overrides):
    """A JWT-SVID as SPIRE mints one: sub, aud, exp, iat; no iss, no jti."""
    now = int(time.time())
    claims = {"sub": CALLER, "aud": [AUDIENCE], "iat": now, "exp": now + 60, **overrides}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jose.sign(claims, key, kid=kid, typ=typ, headers=headers)


def bearer(client, token, **extra):
    return client.get(URL, HTTP_AUTHORIZATION=f"Bearer {token}", **extra)


def test_client_hook_token_is_accepted_as_bearer(client, creds):
    token = JWTSVIDAuth(creds, "users", send_x5c=True).token()
    assert "iss" not in jose.verify(token, creds.chain[0].public_key(), audience=AUDIENCE).claims
    response = bearer(client, token)
    assert response.status_code == 200, response.json()
    assert response.json()["mechanism"] == "jwt_svid"
    assert response.json()["name"] == "svidcaller"


def test_jwt_svid_under_the_service_jwt_scheme(client, creds):
    token = JWTSVIDAuth(creds, "users", send_x5c=True).token()
    response = client.get("/jwt/scoped", HTTP_AUTHORIZATION=f"ServiceJWT {token}")
    assert response.status_code == 200, response.json()
    assert response.json()["mechanism"] == "jwt_svid"


def test_a_jti_is_single_use(client, creds):
    token = JWTSVIDAuth(creds, "users", send_x5c=True).token()
    assert bearer(client, token).status_code == 200
    response = bearer(client, token)
    assert response.status_code == 403
    assert response.json()["error"] == "replayed_jti"


def test_without_jti_only_over_mtls_from_the_same_identity(client, creds, pki):
    token = svid(creds.private_key, headers={"x5c": creds.x5c})
    response = bearer(client, token)
    assert response.status_code == 403
    assert response.json()["error"] == "jti_required"
    pem = creds.cert_path.read_text()
    assert bearer(client, token, SSL_CLIENT_CERT=pem).status_code == 200
    other = pki.issue("svidother")
    ensure_principal("svidother", ["test:read"])
    response = bearer(client, token, SSL_CLIENT_CERT=other.cert_path.read_text())
    assert response.status_code == 403
    assert response.json()["error"] == "subject_mismatch"


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"exp": int(time.time()) + 3600, "iat": None}, "lifetime_too_long"),
        ({"exp": int(time.time()) + 400, "iat": int(time.time()) - 200}, "lifetime_too_long"),
        ({"aud": "spiffe://fleamarket.local/service/ads"}, "wrong_audience"),
        ({"aud": None}, "missing_claim"),
        ({"sub": "spiffe://other.example/service/svidcaller"}, "foreign_trust_domain"),
        ({"sub": "spiffe://fleamarket.local/ns/default/sa/svidcaller"}, "bad_spiffe_id"),
    ],
)
def test_bad_jwt_svids_are_refused(client, creds, overrides, code):
    token = svid(creds.private_key, headers={"x5c": creds.x5c}, **overrides)
    response = bearer(client, token, SSL_CLIENT_CERT=creds.cert_path.read_text())
    assert response.status_code in (401, 403)
    assert response.json()["error"] == code


def test_expired_is_401_under_bearer(client, creds):
    token = svid(creds.private_key, exp=int(time.time()) - 100, iat=int(time.time()) - 130)
    response = bearer(client, token, SSL_CLIENT_CERT=creds.cert_path.read_text())
    assert response.status_code == 401
    assert response.json()["error"] == "expired"


def test_signed_by_another_key_is_refused(client, creds):
    token = svid(ec.generate_private_key(ec.SECP256R1()), jti="x")
    response = bearer(client, token, SSL_CLIENT_CERT=creds.cert_path.read_text())
    assert response.status_code == 403
    assert response.json()["error"] == "bad_signature"


@pytest.fixture
def authority(creds, settings, tmp_path):
    """A SPIRE-like JWT authority of the trust domain, in a bundle file."""
    key = ec.generate_private_key(ec.SECP256R1())
    document = jwt_bundle({"authority-1": key.public_key()})
    document["keys"].append({"use": "x509-svid", "kty": "EC", "crv": "P-256", "x5c": []})
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(document))
    settings.S2S_AUTH = {**settings.S2S_AUTH, "SPIFFE_JWT_BUNDLES": {TD: str(path)}}
    return key


def test_jwt_svid_signed_by_a_bundle_authority(client, authority, creds):
    token = svid(authority, kid="authority-1", jti=jose.new_jti())
    response = bearer(client, token)
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "svidcaller"
    # Over mTLS (SPIRE's usual setup) and without jti:
    token = svid(authority, kid="authority-1")
    assert bearer(client, token, SSL_CLIENT_CERT=creds.cert_path.read_text()).status_code == 200


def test_unknown_bundle_kid_is_401(client, authority):
    response = bearer(client, svid(authority, kid="authority-2", jti="y"))
    assert response.status_code == 401
    assert response.json()["error"] == "unknown_key"


def test_access_tokens_still_go_to_access_token(client, creds):
    token = jose.sign({"sub": CALLER, "aud": AUDIENCE}, creds.private_key, typ="at+jwt")
    response = bearer(client, token)
    assert response.status_code in (401, 403)
    assert response.json()["error"] != "jti_required"
