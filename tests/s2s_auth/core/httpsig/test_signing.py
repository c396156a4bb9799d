"""Signing requests and verifying them back (s2s_auth.core.httpsig.signing)."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.http.request import HttpHeaders

from s2s_auth.core.httpsig import (
    SignatureError,
    VerifiedSignature,
    algorithm_for_key,
    content_digest,
    sign_request,
    target_uri,
)
from tests.s2s_auth.core.httpsig.support import (
    BODY,
    T0,
    URL,
    Msg,
    Server,
    code_of,
    signed,
    verify,
)

# --------------------------------------------------------------------------- round trips


def test_round_trip(keypair, server):
    request = signed(keypair)
    assert request.headers["Content-Digest"] == content_digest(BODY)
    verified = verify(server.verifier(), request)
    assert isinstance(verified, VerifiedSignature)
    assert verified.key_id == "ads"
    assert verified.label == "sig1"
    assert verified.algorithm == algorithm_for_key(keypair)
    assert verified.covered_components == ("@method", "@target-uri", "content-digest")
    assert verified.created == T0
    assert verified.nonce and len(verified.nonce) >= 16
    assert verified.signature_input.startswith("sig1=(")
    assert verified.signature_input in request.headers["Signature-Input"]
    assert base64.b64encode(verified.signature).decode() in request.headers["Signature"]
    assert verified.signature_base.splitlines()[:3] == [
        '"@method": POST',
        f'"@target-uri": {URL}',
        f'"content-digest": {content_digest(BODY)}',
    ]
    assert verified.signature_base.endswith(verified.signature_input.removeprefix("sig1="))


def test_signature_base_reverifies_offline(keypair, server):
    """What the audit stores (base + raw signature + public key) suffices to re-check."""
    verified = verify(server.verifier(), signed(keypair))
    public, data = keypair.public_key(), verified.signature_base.encode("ascii")
    if isinstance(public, ec.EllipticCurvePublicKey):
        r, s = verified.signature[:32], verified.signature[32:]
        der = encode_dss_signature(int.from_bytes(r, "big"), int.from_bytes(s, "big"))
        public.verify(der, data, ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(verified.signature, data)


def test_round_trip_on_the_server_side_with_django_headers(keypair, server):
    request = signed(keypair, url="https://Users.Fleamarket.Local:443/api/v1/x?ids=1%2C2&q=a")
    assert request.url == "https://users.fleamarket.local/api/v1/x?ids=1%2C2&q=a"
    meta = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in request.headers.items()}
    meta["CONTENT_LENGTH"] = meta.pop("HTTP_CONTENT_LENGTH")
    uri = target_uri("https", "users.fleamarket.local", "/api/v1/x", "ids=1%2C2&q=a")
    verified = server.verifier().verify("POST", uri, HttpHeaders(meta), BODY, now=T0)
    assert verified.key_id == "ads"


def test_round_trip_empty_body_get(keypair, server):
    request = signed(keypair, method="GET", body=None)
    assert request.body is None
    assert request.headers["Content-Digest"] == content_digest(b"")
    assert verify(server.verifier(), request, body=b"").created == T0


def test_sign_simple_object_with_str_body(keypair, server):
    message = Msg("PUT", URL, {"content-digest": "sha-256=:stale:"}, '{"name": "caf\u00e9"}')
    sign_request(message, key_id="ads", private_key=keypair, created=T0)
    assert list(message.headers).count("Content-Digest") == 1
    assert "content-digest" not in message.headers
    body = '{"name": "caf\u00e9"}'.encode()
    verified = server.verifier().verify("PUT", URL, message.headers, body, now=T0)
    assert verified.created == T0


def test_signing_again_replaces_earlier_signatures(keypair, server):
    """Earlier signature fields go, whatever their case: one label, the new one."""
    message = Msg("POST", URL, {"signature-input": 'old=("@method")', "SIGNATURE": "old=:AA==:"})
    message.body = BODY
    sign_request(message, key_id="ads", private_key=keypair, created=T0, label="new")
    names = sorted(name for name in message.headers if name.lower().startswith("signature"))
    assert names == ["Signature", "Signature-Input"]
    assert message.headers["Signature-Input"].startswith('new=("@method" "@target-uri"')
    assert message.headers["Signature"].startswith("new=:")
    verified = server.verifier().verify("POST", URL, message.headers, BODY, now=T0)
    assert verified.label == "new"
    assert verified.signature_input == message.headers["Signature-Input"]


def test_rsa_pss_when_allowed():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    server = Server(keys={"ads": key.public_key()})
    request = signed(key)
    assert 'alg="rsa-pss-sha512"' in request.headers["Signature-Input"]
    assert code_of(lambda: verify(server.verifier(), request)) == "algorithm_not_allowed"
    allowed = server.verifier(algorithms={"rsa-pss-sha512"})
    assert verify(allowed, request).algorithm == "rsa-pss-sha512"


def test_sign_refuses_unsupported_keys_and_streams(keypair):
    weak = ec.generate_private_key(ec.SECP256K1())
    assert code_of(lambda: signed(weak)) == "algorithm_not_allowed"
    assert code_of(lambda: algorithm_for_key(object())) == "algorithm_not_allowed"
    message = Msg("POST", URL, {}, iter([b"chunk"]))
    with pytest.raises(TypeError):
        sign_request(message, key_id="ads", private_key=keypair)
    missing_header = Msg("POST", URL, {}, b"")
    with pytest.raises(SignatureError) as info:
        sign_request(missing_header, key_id="ads", private_key=keypair, components=("date",))
    assert info.value.code == "malformed_signature"
