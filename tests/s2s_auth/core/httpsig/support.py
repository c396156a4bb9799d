"""Helpers of the HTTP signature tests: a request object, a test server, signing."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from s2s_auth.core.httpsig import (
    REASON_CODES,
    MemoryNonceStore,
    SignatureError,
    SignatureVerifier,
    sign_request,
)

VECTORS_PATH = Path(__file__).resolve().parents[3] / "fixtures/vectors/rfc9421-appendix-b.json"
T0 = 1_700_000_000  # a fixed "now" for signing and verifying
URL = "https://users.fleamarket.local/api/v1/users/previews?ids=1,2"
BODY = b'{"ids": [1, 2]}'


# --------------------------------------------------------------------------- helpers


@dataclass
class Msg:
    """A request as the library reads it."""

    method: str
    url: str
    headers: dict
    body: bytes | None = None


@dataclass
class Resp:
    status_code: int
    headers: dict
    request: Msg | None = None


@dataclass
class Server:
    """A verifier with its key table and nonce store, as a receiving service has."""

    keys: dict = field(default_factory=dict)
    store: MemoryNonceStore = field(default_factory=MemoryNonceStore)

    def resolve(self, key_id):
        if key_id not in self.keys:
            raise SignatureError("unknown_key", f"no key {key_id!r}")
        return self.keys[key_id], None

    def verifier(self, **options) -> SignatureVerifier:
        options.setdefault("nonce_store", self.store)
        return SignatureVerifier(resolve_key=self.resolve, **options)


def code_of(call) -> str:
    with pytest.raises(SignatureError) as info:
        call()
    assert info.value.code in REASON_CODES
    return info.value.code


def signed(private_key, *, method="POST", url=URL, body=BODY, key_id="ads", **options):
    kwargs = {"data": body} if body is not None else {}
    request = requests.Request(method, url, **kwargs).prepare()
    options.setdefault("created", T0)
    return sign_request(request, key_id=key_id, private_key=private_key, **options)


def verify(verifier, request, *, method=None, url=None, headers=None, body=None, now=T0):
    return verifier.verify(
        method or request.method,
        url or request.url,
        dict(request.headers) if headers is None else headers,
        request.body if body is None else body,
        now=now,
    )
