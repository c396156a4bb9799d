"""A signature without a nonce is accepted once (s2s_auth.core.httpsig.replay)."""

from __future__ import annotations

import base64

import http_sf
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from s2s_auth.core.httpsig.replay import signature_replay_key
from tests.s2s_auth.core.httpsig.support import T0, Server, code_of, signed, verify

P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _high_s_twin(signature: bytes) -> bytes:
    r, s = signature[:32], int.from_bytes(signature[32:], "big")
    return r + (P256_ORDER - s).to_bytes(32, "big")


def _with_signature(request, label: str, value: bytes) -> dict:
    headers = dict(request.headers)
    headers["Signature"] = http_sf.ser({label: (value, {})})
    return headers


def _signature(request) -> bytes:
    return http_sf.parse(request.headers["Signature"].encode(), tltype="dictionary")["sig1"][0]


def test_accepted_once_then_replayed_signature(keypair, server):
    request = signed(keypair, nonce=False)
    verifier = server.verifier()
    assert verify(verifier, request).nonce is None
    assert code_of(lambda: verify(verifier, request)) == "replayed_signature"
    # A fresh signature (another created) of the same request is a new request.
    assert verify(verifier, signed(keypair, nonce=False, created=T0 + 1), now=T0 + 1)


def test_relabelled_or_reencoded_copy_is_a_replay(keypair, server):
    request = signed(keypair, nonce=False)
    verifier = server.verifier()
    verify(verifier, request)
    relabelled = dict(request.headers)
    relabelled["Signature-Input"] = relabelled["Signature-Input"].replace("sig1=", "copy=", 1)
    relabelled["Signature"] = relabelled["Signature"].replace("sig1=", "copy=", 1)
    assert code_of(lambda: verify(verifier, request, headers=relabelled)) == "replayed_signature"


def test_ecdsa_high_s_twin_verifies_but_is_a_replay():
    key = ec.generate_private_key(ec.SECP256R1())
    request = signed(key, nonce=False)
    twin = _with_signature(request, "sig1", _high_s_twin(_signature(request)))
    # The twin alone verifies (cryptography accepts either S): it would be a fresh key.
    assert verify(Server(keys={"ads": key.public_key()}).verifier(), request, headers=twin)
    verifier = Server(keys={"ads": key.public_key()}).verifier()
    verify(verifier, request)
    assert code_of(lambda: verify(verifier, request, headers=twin)) == "replayed_signature"


def test_store_sees_the_window_and_only_valid_signatures(keypair, server):
    calls = []

    def store(key_id, value, ttl):
        calls.append((key_id, value, ttl))
        return True

    verifier = server.verifier(signature_store=store, max_age=60, clock_skew=5)
    request = signed(keypair, nonce=False)
    assert code_of(lambda: verify(verifier, request, method="PUT")) == "bad_signature"
    assert calls == []
    verified = verify(verifier, request)
    algorithm = verified.algorithm
    assert calls == [("ads", signature_replay_key(algorithm, verified.signature), 60 + 2 * 5 + 1)]
    with_nonce = signed(keypair, nonce="n-1")
    verify(verifier, with_nonce)
    assert len(calls) == 1  # a nonce goes to the nonce store, not here


@pytest.mark.parametrize("algorithm", ["ecdsa-p256-sha256", "ecdsa-p384-sha384"])
def test_low_s_key(algorithm):
    size = 32 if algorithm.endswith("256") else 48
    order = {
        32: P256_ORDER,
        48: int(
            "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
            16,
        ),
    }[size]
    r, s = (7).to_bytes(size, "big"), 12345
    low = r + s.to_bytes(size, "big")
    high = r + (order - s).to_bytes(size, "big")
    assert signature_replay_key(algorithm, low) == signature_replay_key(algorithm, high)
    assert signature_replay_key(algorithm, low).endswith(base64.b64encode(low).decode())
    assert signature_replay_key("ed25519", high) != signature_replay_key("ed25519", low)
