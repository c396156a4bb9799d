"""Shared helpers of the JOSE tests (test_jose, test_jwk): claims, verify, refusals."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from s2s_auth.core import jose as tokens
from s2s_auth.core.jose import TokenError

NOW = 1_800_000_000
CALLER = "spiffe://fleamarket.local/service/ads"
TARGET = "spiffe://fleamarket.local/service/users"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(obj) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def claims(**overrides):
    base = {
        "iss": CALLER,
        "sub": CALLER,
        "aud": TARGET,
        "iat": NOW,
        "exp": NOW + 60,
        "jti": tokens.new_jti(),
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def check(token, key, **kwargs):
    kwargs.setdefault("audience", TARGET)
    kwargs.setdefault("now", NOW)
    return tokens.verify(token, key, **kwargs)


def refused(code, token, key, **kwargs):
    with pytest.raises(TokenError) as info:
        check(token, key, **kwargs)
    assert info.value.code == code, info.value
    return info.value


def raw_es256(header: dict, payload: bytes, private_key) -> str:
    """A correctly signed ES256 token with any header (bypassing sign()'s checks)."""
    signing_input = f"{b64json(header)}.{b64(payload)}".encode()
    sig = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256).sign(
        signing_input, private_key
    )
    return f"{signing_input.decode()}.{b64(sig)}"
