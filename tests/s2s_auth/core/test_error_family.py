"""Every refusal of the core (and of the stores beside it) is an S2SError(code, detail)."""

from __future__ import annotations

import pytest

from s2s_auth.core.httpsig import SignatureError
from s2s_auth.core.jose import TokenError
from s2s_auth.core.jwks import JWKSUnavailable
from s2s_auth.core.x509 import CertificateRejected
from s2s_auth.credentials.apikeys import APIKeyError
from s2s_auth.errors import S2SError
from s2s_auth.identity import SpiffeIDError
from s2s_auth.tls.proxy_headers import ProxyHeaderError, pem_from_nginx


@pytest.mark.parametrize(
    ("exc", "code", "detail", "extra"),
    [
        (TokenError("bad_signature", "nope"), "bad_signature", "nope", {}),
        (TokenError("wrong_type"), "wrong_type", "wrong type", {}),
        (
            SignatureError("unknown_key", "who", key_id="k", label="sig1"),
            "unknown_key",
            "who",
            {"key_id": "k", "label": "sig1"},
        ),
        (
            CertificateRejected("revoked", "gone", fingerprint="ab"),
            "revoked",
            "gone",
            {"fingerprint": "ab"},
        ),
        (
            JWKSUnavailable("down", retry_after=7),
            "jwks_unavailable",
            "down",
            {"retry_after": 7},
        ),
        (
            APIKeyError("api_key_revoked", "revoked", key_id="0123"),
            "api_key_revoked",
            "revoked",
            {"key_id": "0123"},
        ),
        (ProxyHeaderError("unreadable"), "malformed_proxy_header", "unreadable", {}),
        (SpiffeIDError("bad"), "bad_spiffe_id", "bad", {}),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_one_shape(exc, code, detail, extra):
    assert isinstance(exc, S2SError)
    assert (exc.code, exc.detail, str(exc)) == (code, detail, f"{code}: {detail}")
    for name, value in extra.items():
        assert getattr(exc, name) == value


def test_a_proxy_header_refusal_carries_its_code():
    with pytest.raises(S2SError) as info:
        pem_from_nginx("not a certificate")
    assert info.value.code == "malformed_proxy_header"
    assert isinstance(info.value, ValueError)  # what callers caught before


def test_signature_error_codes_stay_a_closed_set():
    with pytest.raises(ValueError):
        SignatureError("no_such_code")
