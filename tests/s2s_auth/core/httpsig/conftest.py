"""Keys and a verifying server for the HTTP signature tests."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from tests.s2s_auth.core.httpsig.support import (
    Server,
)


@pytest.fixture(params=["ec-p256", "ed25519"])
def keypair(request):
    if request.param == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def server(keypair) -> Server:
    return Server(keys={"ads": keypair.public_key()})
