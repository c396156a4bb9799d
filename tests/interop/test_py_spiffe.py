"""py-spiffe (the SPIFFE project's Python library) against s2s_auth: it parses our
X509-SVIDs and JWT-SVIDs, and we accept what it parses and writes.

py-spiffe cannot mint a JWT-SVID (it fetches them from a SPIRE agent's Workload API),
so "theirs" is a token in SPIRE's shape (typ JWT, kid, sub/aud/exp/iat, no iss, no jti)
that py-spiffe's own ``JwtSvid.parse_and_validate`` accepts with the bundle py-spiffe
parsed, presented to us as ``Authorization: Bearer`` the way SPIFFE clients send it.
Run with ``--ds=tests.s2s_auth.settings``.
"""

from __future__ import annotations

import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

spiffe = pytest.importorskip("spiffe", reason="py-spiffe is not installed (requirements-dev.txt)")

from spiffe import JwtBundle, JwtSvid, TrustDomain, X509Svid  # noqa: E402

from s2s_auth.client.auth import JWTSVIDAuth, ServiceCredentials, jwt_bundle_of  # noqa: E402
from s2s_auth.core import jose  # noqa: E402
from s2s_auth.core.svid import jwt_bundle  # noqa: E402
from s2s_auth.credentials.principals import ensure_principal  # noqa: E402

TD = "fleamarket.local"
AUDIENCE = f"spiffe://{TD}/service/users"
PEM = serialization.Encoding.PEM


@pytest.fixture
def conf(ca, settings, db):
    settings.S2S_AUTH = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": TD,
        "PKI_DIR": str(ca.directory),
        "SPIFFE_ID_PATHS": ["/service/{name}", "/ns/default/sa/{name}"],
    }
    return settings


@pytest.fixture
def creds(ca, conf):
    issued = ca.issue("spiffepeer")
    ensure_principal("spiffepeer", ["test:read"])
    return ServiceCredentials.from_files(issued.cert_path, issued.key_path)


@pytest.mark.interop("py-spiffe", "X509-SVID issued by `s2s_pki issue` parses")
def test_py_spiffe_loads_our_x509_svid(creds):
    svid = X509Svid.load(str(creds.cert_path), str(creds.key_path), PEM)
    assert str(svid.spiffe_id) == creds.spiffe_id
    assert len(svid.cert_chain) == 2


@pytest.mark.interop("py-spiffe", "X509-SVID with an Istio-style ID (SPIFFE_ID_PATHS) parses")
def test_py_spiffe_loads_an_istio_style_svid(ca, conf):
    conf.S2S_AUTH = {**conf.S2S_AUTH, "SPIFFE_ID_PATHS": ["/ns/default/sa/{name}"]}
    issued = ca.issue("istiopeer")
    svid = X509Svid.load(str(issued.cert_path), str(issued.key_path), PEM)
    assert str(svid.spiffe_id) == f"spiffe://{TD}/ns/default/sa/istiopeer"


@pytest.mark.interop("py-spiffe", "X509-SVID written by py-spiffe is used for mTLS")
def test_an_svid_saved_by_py_spiffe_authenticates(creds, client, tmp_path):
    svid = X509Svid.load(str(creds.cert_path), str(creds.key_path), PEM)
    cert, key = tmp_path / "svid.pem", tmp_path / "svid.key"
    svid.save(str(cert), str(key), PEM)
    reloaded = ServiceCredentials.from_files(cert, key)
    response = client.get("/mtls/scoped", SSL_CLIENT_CERT=cert.read_text())
    assert response.status_code == 200, response.json()
    assert reloaded.spiffe_id == creds.spiffe_id


@pytest.mark.interop("py-spiffe", "JWT-SVID minted by JWTSVIDAuth validates")
def test_py_spiffe_validates_our_jwt_svid(creds):
    token = JWTSVIDAuth(creds, "users").token()
    bundle = JwtBundle.parse(TrustDomain(TD), json.dumps(jwt_bundle_of(creds)).encode())
    parsed = JwtSvid.parse_and_validate(token, bundle, {AUDIENCE})
    assert str(parsed.spiffe_id) == creds.spiffe_id
    assert parsed.audience == {AUDIENCE} or AUDIENCE in parsed.audience


@pytest.mark.interop("py-spiffe", "service JWT (typ s2s+jwt) is refused by py-spiffe, as expected")
def test_py_spiffe_refuses_our_service_jwt_type(creds):
    from spiffe.svid.errors import InvalidTypeError

    from s2s_auth.client.auth import ServiceJWTAuth

    with pytest.raises(InvalidTypeError):
        JwtSvid.parse_insecure(ServiceJWTAuth(creds, "users").token(), {AUDIENCE})


@pytest.mark.interop("py-spiffe", "SPIRE-shaped JWT-SVID it validates is accepted as Bearer")
def test_we_accept_a_jwt_svid_py_spiffe_validates(creds, conf, client, tmp_path):
    authority = ec.generate_private_key(ec.SECP256R1())
    document = json.dumps(jwt_bundle({"spire-authority": authority.public_key()}))
    path = tmp_path / "bundle.json"
    path.write_text(document)
    conf.S2S_AUTH = {**conf.S2S_AUTH, "SPIFFE_JWT_BUNDLES": {TD: str(path)}}
    now = int(time.time())
    claims = {"sub": creds.spiffe_id, "aud": [AUDIENCE], "iat": now, "exp": now + 300}
    token = jose.sign(claims, authority, kid="spire-authority", typ="JWT")
    bundle = JwtBundle.parse(TrustDomain(TD), document.encode())
    assert str(JwtSvid.parse_and_validate(token, bundle, {AUDIENCE}).spiffe_id) == creds.spiffe_id
    # No jti: accepted over mTLS from the identity it names (and refused without).
    assert client.get("/service/scoped", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 403
    response = client.get(
        "/service/scoped",
        HTTP_AUTHORIZATION=f"Bearer {token}",
        SSL_CLIENT_CERT=creds.cert_path.read_text(),
    )
    assert response.status_code == 200, response.json()
    assert response.json()["mechanism"] == "jwt_svid"
