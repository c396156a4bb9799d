"""JSON Web Keys and the algorithm policy: which keys verify which algorithms.

* The allow-list of JWS algorithms (:func:`check_algorithms`) can never contain
  ``none`` or HMAC, and an algorithm must also fit the *key type*
  (:func:`key_algorithms`): a token's header cannot switch it.
* :class:`JWK` refuses private material, ``use`` other than ``sig``, ``key_ops``
  without ``verify``, unsupported ``kty``/``crv``, points off the curve and RSA below
  2048 bits; :class:`JWKSet` refuses duplicate kids.
* :func:`public_jwk` publishes a key, :func:`thumbprint` is its RFC 7638 id.

Key parsing is PyJWT's and cryptography's; failures on untrusted input are
:class:`~s2s_auth.core.jose_encoding.TokenError`, caller mistakes ``ValueError``/``TypeError``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from s2s_auth.core.jose_encoding import (
    TokenError,
    b64url_decode_strict,
    b64url_encode,
    strict_json_object,
)

__all__ = [
    "ALGORITHMS_NEVER",
    "DEFAULT_ALGORITHMS",
    "ED25519_ALGORITHMS",
    "JWK",
    "MIN_RSA_KEY_SIZE",
    "SUPPORTED_ALGORITHMS",
    "JWKSet",
    "check_algorithms",
    "key_algorithms",
    "private_key_algorithms",
    "public_jwk",
    "thumbprint",
]

#: Never accepted, whatever a caller configures: unsigned tokens and HMAC (a shared
#: secret cannot prove which service signed, and HMAC "keyed" with a public key is
#: the classic algorithm-confusion attack).
ALGORITHMS_NEVER = frozenset({"none", "HS256", "HS384", "HS512"})
#: What s2s_auth can verify at all; an allow-list is a subset of it.
SUPPORTED_ALGORITHMS = frozenset({"ES256", "EdDSA", "Ed25519", "RS256", "PS256"})
DEFAULT_ALGORITHMS = ("ES256", "EdDSA", "Ed25519")
#: RFC 9864's fully specified name for EdDSA over Ed25519, accepted beside ``EdDSA``.
ED25519_ALGORITHMS = frozenset({"EdDSA", "Ed25519"})
MIN_RSA_KEY_SIZE = 2048

# Private members of EC/OKP (d), RSA (d, p, q, dp, dq, qi, oth) and oct (k) keys.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def key_algorithms(public_key: Any) -> frozenset[str]:
    """The algorithms a public key may verify: the key type decides, not the token."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return frozenset({"ES256"})
        raise TokenError("unsupported_key", f"EC curve {public_key.curve.name} is not supported")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return ED25519_ALGORITHMS
    if isinstance(public_key, rsa.RSAPublicKey):
        if public_key.key_size < MIN_RSA_KEY_SIZE:
            raise TokenError("weak_key", f"RSA key of {public_key.key_size} bits")
        return frozenset({"RS256", "PS256"})
    if isinstance(
        public_key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    ):
        raise TypeError("verification needs a public key, got a private key")
    if hasattr(public_key, "public_bytes"):  # another cryptography public key (Ed448, DSA…)
        raise TokenError("unsupported_key", f"{type(public_key).__name__} is not supported")
    raise TypeError(f"expected a cryptography public key or a JWK, got {type(public_key)!r}")


def private_key_algorithms(private_key: Any) -> tuple[str, ...]:
    """Signing algorithms for a private key, the default first."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if isinstance(private_key.curve, ec.SECP256R1):
            return ("ES256",)
        raise ValueError(f"EC curve {private_key.curve.name} is not supported (P-256 only)")
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return ("EdDSA", "Ed25519")
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < MIN_RSA_KEY_SIZE:
            raise ValueError(f"RSA key of {private_key.key_size} bits is too small")
        return ("RS256", "PS256")
    raise TypeError(f"expected a cryptography private key, got {type(private_key)!r}")


def check_algorithms(algorithms: Iterable[str]) -> tuple[str, ...]:
    """Validate an allow-list at configuration time (ValueError on any misuse)."""
    if isinstance(algorithms, str | bytes):
        raise ValueError("algorithms must be a sequence of names, not a single string")
    result = tuple(algorithms)
    if not result:
        raise ValueError("the algorithm allow-list is empty")
    for name in result:
        if not isinstance(name, str):
            raise ValueError(f"algorithm names are strings, got {name!r}")
        if name in ALGORITHMS_NEVER or name.lower() == "none" or name.upper().startswith("HS"):
            raise ValueError(f"algorithm {name!r} is never allowed")
        if name not in SUPPORTED_ALGORITHMS:
            raise ValueError(
                f"algorithm {name!r} is not supported; choose from "
                f"{', '.join(sorted(SUPPORTED_ALGORITHMS))}"
            )
    return result


# ------------------------------------------------------------------------------ JWK


class JWK:
    """A public signature-verification key parsed from a JWK dict (RFC 7517).

    Refuses private members, ``use`` other than ``sig``, ``key_ops`` without
    ``verify``, kty/crv other than EC P-256, OKP Ed25519 and RSA >= 2048 bits,
    points not on the curve, non-canonical base64url members, and an ``alg`` that
    is not supported or does not fit the key type.
    """

    __slots__ = ("_data", "alg", "algorithms", "key_ops", "kid", "kty", "public_key", "use")

    def __init__(self, data: Mapping[str, Any]):
        if not isinstance(data, Mapping):
            raise TokenError("invalid_key", "a JWK must be a JSON object")
        data = dict(data)
        kty = data.get("kty")
        if not isinstance(kty, str) or not kty:
            raise TokenError("invalid_key", "JWK without kty")
        private = _PRIVATE_MEMBERS & set(data)
        if private:
            raise TokenError(
                "private_key_material",
                f"JWK contains private key members ({', '.join(sorted(private))})",
            )
        kid = data.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise TokenError("invalid_key", "kid must be a string")
        use = data.get("use")
        if use is not None and use != "sig":
            raise TokenError("key_not_for_signing", f"JWK use is {use!r}, not 'sig'")
        key_ops = data.get("key_ops")
        if key_ops is not None:
            if not isinstance(key_ops, list) or not all(isinstance(o, str) for o in key_ops):
                raise TokenError("invalid_key", "key_ops must be a list of strings")
            if len(set(key_ops)) != len(key_ops):
                raise TokenError("invalid_key", "key_ops contains duplicates")
            if "verify" not in key_ops:
                raise TokenError("key_not_for_signing", f"JWK key_ops {key_ops} lacks 'verify'")
        alg = data.get("alg")
        if alg is not None and not isinstance(alg, str):
            raise TokenError("invalid_key", "alg must be a string")

        crv = data.get("crv")
        if kty == "EC":
            if crv != "P-256":
                raise TokenError("unsupported_key", f"EC curve {crv!r} is not supported")
            members, pyjwt_alg = ("x", "y"), "ES256"
        elif kty == "OKP":
            if crv != "Ed25519":
                raise TokenError("unsupported_key", f"OKP curve {crv!r} is not supported")
            members, pyjwt_alg = ("x",), "EdDSA"
        elif kty == "RSA":
            members, pyjwt_alg = ("n", "e"), "RS256"
        else:
            raise TokenError("unsupported_key", f"kty {kty!r} is not supported")
        for member in members:
            value = data.get(member)
            if not isinstance(value, str) or not value:
                raise TokenError("invalid_key", f"JWK member {member!r} missing")
            try:
                b64url_decode_strict(value, f"JWK member {member!r}")
            except TokenError as exc:
                raise TokenError("invalid_key", exc.detail) from exc
        try:
            parsed = jwt.PyJWK(data, algorithm=pyjwt_alg)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise TokenError("invalid_key", f"JWK could not be parsed: {exc}") from exc
        public_key = parsed.key
        try:
            key_algs = key_algorithms(public_key)
        except TypeError as exc:  # pragma: no cover - private members refused above
            raise TokenError("invalid_key", str(exc)) from exc
        if alg is not None:
            if alg not in key_algs:
                raise TokenError(
                    "algorithm_not_allowed",
                    f"JWK alg {alg!r} is not supported for this {kty} key",
                )
            # EdDSA and RFC 9864's Ed25519 name one algorithm for an Ed25519 key.
            key_algs = ED25519_ALGORITHMS if alg in ED25519_ALGORITHMS else frozenset({alg})

        self._data = data
        self.kty: str = kty
        self.kid: str | None = kid
        self.alg: str | None = alg
        self.use: str | None = use
        self.key_ops: tuple[str, ...] | None = tuple(key_ops) if key_ops is not None else None
        self.public_key = public_key
        #: What this key may verify: its type, narrowed by its ``alg`` if present.
        self.algorithms: frozenset[str] = key_algs

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JWK:
        return cls(data)

    def to_dict(self) -> dict[str, Any]:
        return dict(self._data)

    def thumbprint(self) -> str:
        return thumbprint(self.public_key)

    def __repr__(self) -> str:
        return f"<JWK kty={self.kty} kid={self.kid!r} algorithms={sorted(self.algorithms)}>"


class JWKSet:
    """A JWK Set (RFC 7517 §5) of public verification keys, looked up by ``kid``.

    Duplicate kids are an error (an ambiguous key choice), as is private key
    material anywhere in the set. With ``skip_unusable=True`` keys that are merely
    not for us (``use: enc``, another kty/crv/alg) are skipped instead of refusing
    the whole set; private material and duplicates still refuse it.
    """

    def __init__(self, keys: Iterable[JWK]):
        self._keys: dict[str | None, JWK] = {}
        for key in keys:
            if not isinstance(key, JWK):
                raise TypeError(f"expected JWK, got {type(key)!r}")
            if key.kid in self._keys:
                raise TokenError("duplicate_key_id", f"duplicate kid {key.kid!r} in key set")
            self._keys[key.kid] = key

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, skip_unusable: bool = False) -> JWKSet:
        if not isinstance(data, Mapping) or not isinstance(data.get("keys"), list):
            raise TokenError("invalid_key", "a JWK Set is an object with a 'keys' list")
        keys = []
        for entry in data["keys"]:
            try:
                keys.append(JWK(entry))
            except TokenError as exc:
                if skip_unusable and exc.code in {
                    "key_not_for_signing",
                    "unsupported_key",
                    "algorithm_not_allowed",
                }:
                    continue
                raise
        return cls(keys)

    @classmethod
    def from_json(
        cls, text: str | bytes, *, max_length: int = 65536, skip_unusable: bool = False
    ) -> JWKSet:
        if len(text) > max_length:
            raise TokenError("invalid_key", f"JWK Set larger than {max_length} bytes")
        if isinstance(text, str):
            text = text.encode("utf-8")
        try:
            data = strict_json_object(text, "JWK Set")
        except TokenError as exc:
            raise TokenError("invalid_key", exc.detail) from exc
        return cls.from_dict(data, skip_unusable=skip_unusable)

    def get(self, kid: str | None) -> JWK:
        """The key with this kid; ``None`` selects the only key of a one-key set."""
        if kid is None:
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise TokenError("unknown_key", "token has no kid and the key set is ambiguous")
        try:
            return self._keys[kid]
        except (KeyError, TypeError):
            raise TokenError("unknown_key", f"no key with kid {kid!r}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"keys": [key.to_dict() for key in self._keys.values()]}

    @property
    def kids(self) -> list[str | None]:
        return list(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    def __iter__(self) -> Iterator[JWK]:
        return iter(list(self._keys.values()))

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"<JWKSet kids={self.kids!r}>"


def public_jwk(public_key: Any, kid: str | None, *, alg: str | None = None) -> dict[str, Any]:
    """The public JWK to publish for a key: kty, crv, x, y (or n, e), kid, use=sig, alg."""
    if isinstance(public_key, ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise TypeError("public_jwk() takes the public key; call .public_key() first")
    if isinstance(public_key, rsa.RSAPrivateKey):
        raise TypeError("public_jwk() takes the public key; call .public_key() first")
    key_algs = key_algorithms(public_key)
    if alg is None:
        alg = (
            "RS256"
            if isinstance(public_key, rsa.RSAPublicKey)
            else "EdDSA"
            if isinstance(public_key, ed25519.Ed25519PublicKey)
            else next(iter(key_algs))
        )
    elif alg not in key_algs:
        raise ValueError(f"algorithm {alg!r} does not fit this key")
    jwk = dict(_to_jwk_dict(public_key))
    if kid is not None:
        jwk["kid"] = kid
    jwk["use"] = "sig"
    jwk["alg"] = alg
    return jwk


def _to_jwk_dict(public_key: Any) -> dict[str, Any]:
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ECAlgorithm.to_jwk(public_key, as_dict=True)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return OKPAlgorithm.to_jwk(public_key, as_dict=True)
    return RSAAlgorithm.to_jwk(public_key, as_dict=True)


_THUMBPRINT_MEMBERS = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
}


def thumbprint(public_key: Any) -> str:
    """RFC 7638 JWK SHA-256 thumbprint, base64url without padding."""
    if isinstance(public_key, JWK):
        public_key = public_key.public_key
    key_algorithms(public_key)
    jwk = _to_jwk_dict(public_key)
    required = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return b64url_encode(hashlib.sha256(canonical.encode("ascii")).digest())
