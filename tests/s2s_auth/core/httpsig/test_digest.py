"""RFC 9530 Content-Digest (s2s_auth.core.httpsig.digest)."""

from __future__ import annotations

import base64
import hashlib

import pytest

from s2s_auth.core.httpsig import (
    check_content_digest,
    content_digest,
)
from tests.s2s_auth.core.httpsig.support import (
    code_of,
)

# --------------------------------------------------------------------------- Content-Digest


def test_content_digest_rfc9530_example():
    # RFC 9530 §2 example body {"hello": "world"} and its sha-256 digest.
    body = b'{"hello": "world"}'
    assert content_digest(body) == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"
    assert content_digest(b"") == (
        "sha-256=:" + base64.b64encode(hashlib.sha256(b"").digest()).decode() + ":"
    )
    with pytest.raises(ValueError):
        content_digest(body, "md5")


def test_check_content_digest():
    body = b"payload"
    good256 = content_digest(body)
    good512 = content_digest(body, "sha-512")
    assert check_content_digest(good256, body) == ("sha-256",)
    assert check_content_digest(f"{good256}, {good512}", body) == ("sha-256", "sha-512")
    assert check_content_digest(f"md5=:AAAA:, {good256}", body) == ("sha-256",)
    assert code_of(lambda: check_content_digest(good256, b"other")) == "digest_mismatch"
    bad512 = content_digest(b"other", "sha-512")
    assert code_of(lambda: check_content_digest(f"{good256}, {bad512}", body)) == (
        "digest_mismatch"
    )
    assert code_of(lambda: check_content_digest("md5=:AAAA:", body)) == "missing_digest"
    assert code_of(lambda: check_content_digest(None, body)) == "missing_digest"
    assert code_of(lambda: check_content_digest("", body)) == "missing_digest"
    assert code_of(lambda: check_content_digest("sha-256=:AAAA:", body)) == "digest_mismatch"
    assert code_of(lambda: check_content_digest("sha-256=abc", body)) == "digest_mismatch"
    assert code_of(lambda: check_content_digest("sha-256=:%%:", body)) == "digest_mismatch"
    assert code_of(lambda: check_content_digest(f"{good256}, {good256}", body)) == (
        "digest_mismatch"
    )
