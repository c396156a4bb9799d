"""The replay key of a signature sent without a nonce: its value, in one canonical form.

Without a nonce, what makes a request single-use is the signature itself (``created``
changes it every second, and the verifier remembers it for the whole ``created``
window). The key must be the same for every encoding of that signature that verifies:
the Structured Field byte sequence is decoded, and an ECDSA signature ``r || s`` is
normalised to low S (``s = min(s, n - s)``), since ``(r, n - s)`` verifies too and
would otherwise be a fresh key. Ed25519 (RFC 8032 refuses a non-canonical ``S``) and
RSA (the value is below the modulus, of fixed length) have one form already.
"""

from __future__ import annotations

import base64

__all__ = ["signature_replay_key"]

#: Group orders of the curves we verify (SEC 2 / FIPS 186-4 D.1.2); cryptography does
#: not expose them.
_ECDSA_ORDERS = {
    "ecdsa-p256-sha256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "ecdsa-p384-sha384": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}


def _low_s(signature: bytes, order: int) -> bytes:
    half = len(signature) // 2
    r, s = signature[:half], int.from_bytes(signature[half:], "big")
    return r + min(s, order - s).to_bytes(half, "big")


def signature_replay_key(algorithm: str, signature: bytes) -> str:
    """``<algorithm>:<base64>`` of the canonical form of a verified ``signature``."""
    order = _ECDSA_ORDERS.get(algorithm)
    if order is not None and signature and len(signature) % 2 == 0:
        signature = _low_s(signature, order)
    return f"{algorithm}:{base64.b64encode(signature).decode('ascii')}"
