"""SignatureError, chained library errors and the public names of the package."""

from __future__ import annotations

import pytest

from s2s_auth.core import httpsig
from s2s_auth.core.httpsig import (
    REASON_CODES,
    SignatureError,
)
from tests.s2s_auth.core.httpsig.support import (
    signed,
    verify,
)

# --------------------------------------------------------------------------- misc


def test_signature_error():
    error = SignatureError("bad_signature", "nope", key_id="k", label="sig1")
    assert (error.code, error.detail, error.key_id, error.label) == (
        "bad_signature",
        "nope",
        "k",
        "sig1",
    )
    assert SignatureError("expired").detail == "expired"
    with pytest.raises(ValueError):
        SignatureError("not_a_code")
    assert {
        "missing_signature",
        "malformed_signature",
        "unknown_key",
        "algorithm_not_allowed",
        "missing_component",
        "bad_signature",
        "digest_mismatch",
        "missing_digest",
        "created_missing",
        "created_in_future",
        "signature_too_old",
        "expired",
        "replayed_nonce",
        "missing_nonce",
        "replayed_signature",
    } == REASON_CODES


def test_library_errors_are_chained(keypair, server):
    request = signed(keypair)
    with pytest.raises(SignatureError) as info:
        verify(server.verifier(), request, method="PUT")
    assert info.value.__cause__ is not None


def test_exported_names():
    assert set(httpsig.__all__) == {
        "DEFAULT_ALGORITHMS",
        "DEFAULT_COMPONENTS",
        "REASON_CODES",
        "SUPPORTED_ALGORITHMS",
        "MemoryNonceStore",
        "SignatureError",
        "SignatureVerifier",
        "VerifiedSignature",
        "algorithm_for_key",
        "check_content_digest",
        "content_digest",
        "parse_origin",
        "sign_request",
        "target_uri",
    }
    for name in httpsig.__all__:
        assert hasattr(httpsig, name)
