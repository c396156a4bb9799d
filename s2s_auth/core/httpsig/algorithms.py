"""Which RFC 9421 algorithms we sign and verify with, and which one a key implies."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from http_message_signatures.algorithms import (
    ECDSA_P256_SHA256,
    ECDSA_P384_SHA384,
    ED25519,
    RSA_PSS_SHA512,
    RSA_V1_5_SHA256,
    HTTPSignatureAlgorithm,
)

from s2s_auth.core.httpsig.errors import SignatureError

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DEFAULT_COMPONENTS",
    "RSA_ALGORITHMS",
    "SUPPORTED_ALGORITHMS",
    "algorithm_for_key",
]

#: Algorithms this module can sign and verify (RFC 9421 §3.3 names). No HMAC: the keys
#: here are public keys, and a shared secret gives no non-repudiation.
SUPPORTED_ALGORITHMS: dict[str, type[HTTPSignatureAlgorithm]] = {
    "ecdsa-p256-sha256": ECDSA_P256_SHA256,
    "ecdsa-p384-sha384": ECDSA_P384_SHA384,
    "ed25519": ED25519,
    "rsa-pss-sha512": RSA_PSS_SHA512,
    "rsa-v1_5-sha256": RSA_V1_5_SHA256,
}
#: Verifier default allow-list: the project's ES256 / EdDSA. RSA only where configured.
DEFAULT_ALGORITHMS = frozenset({"ecdsa-p256-sha256", "ed25519"})
#: Components a request signature covers, and the verifier requires, by default.
DEFAULT_COMPONENTS = ("@method", "@target-uri", "content-digest")

_RSA_MIN_BITS = 2048
RSA_ALGORITHMS = frozenset({"rsa-pss-sha512", "rsa-v1_5-sha256"})


def algorithm_for_key(key: Any) -> str:
    """The RFC 9421 algorithm name for a private or public key object.

    EC P-256 → ``ecdsa-p256-sha256``, EC P-384 → ``ecdsa-p384-sha384``, Ed25519 →
    ``ed25519``, RSA (≥ 2048 bits) → ``rsa-pss-sha512``. Anything else raises
    ``SignatureError("algorithm_not_allowed")``.
    """
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return "ecdsa-p256-sha256"
        if isinstance(key.curve, ec.SECP384R1):
            return "ecdsa-p384-sha384"
        raise SignatureError("algorithm_not_allowed", f"unsupported EC curve {key.curve.name}")
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < _RSA_MIN_BITS:
            raise SignatureError("algorithm_not_allowed", f"RSA key of {key.key_size} bits")
        return "rsa-pss-sha512"
    raise SignatureError("algorithm_not_allowed", f"unsupported key type {type(key).__name__}")
