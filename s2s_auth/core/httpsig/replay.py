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

from s2s_auth.core.ecdsa import low_s

__all__ = ["signature_replay_key"]

#: The curve of each ECDSA algorithm we verify (RFC 9421 §3.3).
_ECDSA_CURVES = {"ecdsa-p256-sha256": "secp256r1", "ecdsa-p384-sha384": "secp384r1"}


def signature_replay_key(algorithm: str, signature: bytes) -> str:
    """``<algorithm>:<base64>`` of the canonical form of a verified ``signature``."""
    curve = _ECDSA_CURVES.get(algorithm)
    if curve is not None:
        signature = low_s(signature, curve)
    return f"{algorithm}:{base64.b64encode(signature).decode('ascii')}"
