"""ECDSA signatures in one canonical form: low S.

An ECDSA signature ``(r, s)`` verifies as ``(r, n - s)`` too, so a verifier that names
a signature by its bytes (a replay store, the audit's replay check) must first bring it
to one form: ``s = min(s, n - s)``. Signatures here are raw ``r || s`` (JWS, RFC 9421).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

__all__ = ["CURVE_ORDERS", "low_s", "low_s_der"]

#: Group orders of the NIST curves (FIPS 186-4 D.1.2), by cryptography's curve name;
#: cryptography does not expose them.
CURVE_ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
    "secp521r1": int(
        "01FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"
        "FA51868783BF2F966B7FCC0148F709A5D03BB5C9B8899C47AEBB6FB71E91386409",
        16,
    ),
}


def _split(signature: bytes, curve_name: str) -> tuple[int, int, int] | None:
    """(r, low s, half length), or None: unknown curve or not a raw ``r || s``."""
    order = CURVE_ORDERS.get(curve_name)
    if order is None or not signature or len(signature) % 2:
        return None
    half = len(signature) // 2
    r = int.from_bytes(signature[:half], "big")
    s = int.from_bytes(signature[half:], "big")
    return r, min(s, order - s), half


def low_s(signature: bytes, curve_name: str) -> bytes:
    """A raw ``r || s`` with ``s = min(s, n - s)``, same length; unchanged when the
    curve is unknown or the length does not fit."""
    parts = _split(signature, curve_name)
    if parts is None:
        return signature
    _, s, half = parts
    return signature[:half] + s.to_bytes(half, "big")


def low_s_der(signature: bytes, curve_name: str) -> bytes:
    """A raw ``r || s`` as DER with ``s = min(s, n - s)``: the one form shared by a
    signature and its malleated copy. Unchanged when the curve is unknown or the
    length does not fit."""
    parts = _split(signature, curve_name)
    if parts is None:
        return signature
    r, s, _ = parts
    return encode_dss_signature(r, s)
