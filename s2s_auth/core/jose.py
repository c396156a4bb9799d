"""JOSE core of s2s_auth: strict JWS/JWT verification, minting and JWK handling.

Every token mechanism (self-signed service JWTs, access tokens, nested end-user
tokens, private_key_jwt client assertions) goes through this module. It reads
nothing from Django settings: callers pass the allow-list, audience, issuer,
lifetimes and clock explicitly.

The cryptography and JOSE parsing are PyJWT's and cryptography's; this module adds
the strictness PyJWT lacks (RFC 8725):

* a size limit before anything is decoded (no JSON nesting bombs, no huge tokens);
* compact serialization only, exactly three parts, strict and canonical base64url
  (no padding, url-safe alphabet only, no non-zero trailing bits);
* UTF-8 JSON objects without duplicate member names or NaN/Infinity;
* ``jku``, ``x5u``, ``jwk``, ``crit`` and ``b64`` headers are refused;
* an algorithm allow-list that can never contain ``none`` or HMAC, and an
  algorithm that must also match the *key type* (the header cannot switch it);
* JWKs with private material, ``use`` other than ``sig``, ``key_ops`` without
  ``verify``, unsupported ``kty``/``crv``, points off the curve or RSA < 2048 bits
  are refused;
* ``exp``/``nbf``/``iat`` checked against an injectable clock, plus a maximum
  lifetime and a ``typ`` check.

Every failure on untrusted input is a :class:`TokenError` with a stable
snake_case ``code``; library exceptions are chained as ``__cause__``.
Configuration mistakes by the caller (an HMAC algorithm in the allow-list, a
private key where a public one belongs) raise ``ValueError``/``TypeError``.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import math
import re
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from jwt.utils import base64url_encode

__all__ = [
    "ALGORITHMS_NEVER",
    "DEFAULT_ALGORITHMS",
    "FORBIDDEN_HEADERS",
    "JWK",
    "MAX_TOKEN_LENGTH",
    "MIN_RSA_KEY_SIZE",
    "SUPPORTED_ALGORITHMS",
    "JWKSet",
    "TokenError",
    "VerifiedToken",
    "check_algorithms",
    "new_jti",
    "public_jwk",
    "sign",
    "thumbprint",
    "unverified_header",
    "verify",
    "verify_jws",
]

#: Never accepted, whatever a caller configures: unsigned tokens and HMAC (a shared
#: secret cannot prove which service signed, and HMAC "keyed" with a public key is
#: the classic algorithm-confusion attack).
ALGORITHMS_NEVER = frozenset({"none", "HS256", "HS384", "HS512"})
#: What this module can verify at all; an allow-list is a subset of it.
SUPPORTED_ALGORITHMS = frozenset({"ES256", "EdDSA", "RS256", "PS256"})
DEFAULT_ALGORITHMS = ("ES256", "EdDSA")
#: Header parameters that make a verifier fetch or trust keys named by the token
#: itself (jku, x5u, jwk) or demand extensions we do not implement (crit, b64).
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "crit", "b64"})
MAX_TOKEN_LENGTH = 8192
MIN_RSA_KEY_SIZE = 2048

_B64URL = re.compile(r"[A-Za-z0-9_-]*")
# Private members of EC/OKP (d), RSA (d, p, q, dp, dq, qi, oth) and oct (k) keys.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


class TokenError(Exception):
    """A token, key or key set was refused. ``code`` is a stable snake_case reason.

    Codes: ``malformed_token``, ``token_too_large``, ``algorithm_not_allowed``,
    ``forbidden_header``, ``unknown_key``, ``invalid_key``, ``unsupported_key``,
    ``weak_key``, ``private_key_material``, ``key_not_for_signing``,
    ``duplicate_key_id``, ``bad_signature``, ``expired``, ``not_yet_valid``,
    ``issued_in_future``, ``lifetime_too_long``, ``wrong_audience``,
    ``wrong_issuer``, ``wrong_subject``, ``missing_claim``, ``invalid_claim``,
    ``wrong_type``.
    """

    def __init__(self, code: str, detail: str = ""):
        self.code = code
        self.detail = detail or code.replace("_", " ")
        super().__init__(f"{code}: {self.detail}")


# --------------------------------------------------------------------------- helpers


def _b64url_decode_strict(segment: str, what: str) -> bytes:
    """Strict, canonical base64url without padding (RFC 7515 §2)."""
    if not _B64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise TokenError("malformed_token", f"{what} is not unpadded base64url")
    try:
        decoded = jwt.utils.base64url_decode(segment)
    except (binascii.Error, ValueError) as exc:  # pragma: no cover - regex excludes it
        raise TokenError("malformed_token", f"{what} is not base64url") from exc
    # Non-zero unused trailing bits ("AB" vs "AA") decode to the same bytes: refuse,
    # so that exactly one encoding of a signature/payload exists.
    if base64url_encode(decoded).decode("ascii") != segment:
        raise TokenError("malformed_token", f"{what} is not canonical base64url")
    return decoded


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for name, value in pairs:
        if name in result:
            raise ValueError(f"duplicate member name {name!r}")
        result[name] = value
    return result


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _strict_json_object(data: bytes, what: str) -> dict[str, Any]:
    """UTF-8 JSON object, no duplicate names, no NaN/Infinity (RFC 7515 §5.2, 8259)."""
    try:
        text = data.decode("utf-8")
        value = json.loads(
            text, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant
        )
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise TokenError("malformed_token", f"{what} is not a valid JSON object") from exc
    if not isinstance(value, dict):
        raise TokenError("malformed_token", f"{what} is not a JSON object")
    return value


def _key_algorithms(public_key: Any) -> frozenset[str]:
    """The algorithms a public key may verify: the key type decides, not the token."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return frozenset({"ES256"})
        raise TokenError("unsupported_key", f"EC curve {public_key.curve.name} is not supported")
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return frozenset({"EdDSA"})
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


def _private_key_algorithms(private_key: Any) -> tuple[str, ...]:
    """Signing algorithms for a private key, the default first."""
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if isinstance(private_key.curve, ec.SECP256R1):
            return ("ES256",)
        raise ValueError(f"EC curve {private_key.curve.name} is not supported (P-256 only)")
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return ("EdDSA",)
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
                _b64url_decode_strict(value, f"JWK member {member!r}")
            except TokenError as exc:
                raise TokenError("invalid_key", exc.detail) from exc
        try:
            parsed = jwt.PyJWK(data, algorithm=pyjwt_alg)
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise TokenError("invalid_key", f"JWK could not be parsed: {exc}") from exc
        public_key = parsed.key
        try:
            key_algs = _key_algorithms(public_key)
        except TypeError as exc:  # pragma: no cover - private members refused above
            raise TokenError("invalid_key", str(exc)) from exc
        if alg is not None:
            if alg not in key_algs:
                raise TokenError(
                    "algorithm_not_allowed",
                    f"JWK alg {alg!r} is not supported for this {kty} key",
                )
            key_algs = frozenset({alg})

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
            data = _strict_json_object(text, "JWK Set")
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
    key_algs = _key_algorithms(public_key)
    if alg is None:
        alg = "RS256" if isinstance(public_key, rsa.RSAPublicKey) else next(iter(key_algs))
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
    _key_algorithms(public_key)
    jwk = _to_jwk_dict(public_key)
    required = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(required, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return base64url_encode(hashlib.sha256(canonical.encode("ascii")).digest()).decode("ascii")


# ------------------------------------------------------------------------ verifying


def unverified_header(token: str | bytes, *, max_length: int = MAX_TOKEN_LENGTH) -> dict:
    """The JOSE header of a compact JWS, after structural checks only.

    Not authenticated: use it to pick a key (``kid``, ``x5c``), never to trust.
    Raises TokenError (``token_too_large``, ``malformed_token``, ``forbidden_header``).
    """
    header, _ = _split(token, max_length)
    return header


def _split(token: Any, max_length: int) -> tuple[dict[str, Any], list[str]]:
    if isinstance(token, bytes | bytearray | memoryview):
        if len(token) > max_length:
            raise TokenError("token_too_large", f"token longer than {max_length} bytes")
        try:
            token = bytes(token).decode("ascii")
        except UnicodeDecodeError as exc:
            raise TokenError("malformed_token", "token is not ASCII") from exc
    if not isinstance(token, str):
        raise TokenError("malformed_token", f"token must be str or bytes, not {type(token)!r}")
    if len(token) > max_length:
        raise TokenError("token_too_large", f"token longer than {max_length} characters")
    parts = token.split(".")
    if len(parts) == 5:
        raise TokenError("malformed_token", "JWE tokens are not accepted")
    if len(parts) != 3:
        raise TokenError("malformed_token", "not a compact JWS (header.payload.signature)")
    if not parts[0]:
        raise TokenError("malformed_token", "empty header")
    if not parts[2]:
        raise TokenError("malformed_token", "empty signature")
    header_bytes = _b64url_decode_strict(parts[0], "header")
    _b64url_decode_strict(parts[1], "payload")
    _b64url_decode_strict(parts[2], "signature")
    header = _strict_json_object(header_bytes, "header")
    forbidden = FORBIDDEN_HEADERS & set(header)
    if forbidden:
        raise TokenError(
            "forbidden_header", f"header parameter(s) {', '.join(sorted(forbidden))} refused"
        )
    try:
        # PyJWT's own view of the header must agree (and its kid checks apply).
        library_header = jwt.get_unverified_header(token)
    except Exception as exc:  # library boundary: anything it raises is a refusal
        raise TokenError("malformed_token", f"header refused: {exc}") from exc
    if library_header != header:  # pragma: no cover - both parse the same bytes
        raise TokenError("malformed_token", "header parsed inconsistently")
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise TokenError("malformed_token", "header alg must be a non-empty string")
    for name in ("kid", "typ", "cty"):
        if name in header and not isinstance(header[name], str):
            raise TokenError("malformed_token", f"header {name} must be a string")
    return header, parts


def _resolve_key(key: Any) -> tuple[Any, frozenset[str], str | None]:
    if isinstance(key, JWK):
        return key.public_key, key.algorithms, key.kid
    if isinstance(key, jwt.PyJWK):
        raise TypeError("wrap JWK dicts with s2s_auth.core.jose.JWK, not jwt.PyJWK")
    return key, _key_algorithms(key), None


def _prepare(
    token: Any, key: Any, algorithms: Iterable[str], max_length: int
) -> tuple[dict[str, Any], str, Any, str | None]:
    allowed = check_algorithms(algorithms)
    public_key, key_algs, key_kid = _resolve_key(key)
    header, _ = _split(token, max_length)
    alg = header["alg"]
    if alg not in allowed:
        raise TokenError("algorithm_not_allowed", f"algorithm {alg!r} is not allowed")
    if alg not in key_algs:
        raise TokenError(
            "algorithm_not_allowed",
            f"algorithm {alg!r} does not fit the key (allowed: {', '.join(sorted(key_algs))})",
        )
    if key_kid is not None and "kid" in header and header["kid"] != key_kid:
        raise TokenError("unknown_key", f"token kid {header['kid']!r} is not the key's kid")
    return header, alg, public_key, header.get("kid", key_kid)


def _raise_from_library(exc: Exception) -> None:
    """Convert a PyJWT (or other library) exception into a TokenError."""
    mapping: list[tuple[type[Exception], str]] = [
        (jwt.InvalidSignatureError, "bad_signature"),
        (jwt.MissingRequiredClaimError, "missing_claim"),
        (jwt.InvalidAudienceError, "wrong_audience"),
        (jwt.InvalidIssuerError, "wrong_issuer"),
        (jwt.InvalidAlgorithmError, "algorithm_not_allowed"),
        (jwt.InvalidKeyError, "unsupported_key"),
        (jwt.ExpiredSignatureError, "expired"),
        (jwt.ImmatureSignatureError, "not_yet_valid"),
    ]
    for exc_type, code in mapping:
        if isinstance(exc, exc_type):
            raise TokenError(code, str(exc)) from exc
    raise TokenError("malformed_token", f"token refused: {exc}") from exc


def verify_jws(
    token: str | bytes,
    key: Any,
    *,
    algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
    max_length: int = MAX_TOKEN_LENGTH,
) -> tuple[dict[str, Any], bytes]:
    """Verify a compact JWS over any payload; returns ``(header, payload_bytes)``.

    ``key`` is a cryptography public key or a :class:`JWK`. The header's ``alg``
    must be in ``algorithms`` and fit the key's type.
    """
    header, alg, public_key, _ = _prepare(token, key, algorithms, max_length)
    try:
        decoded = jwt.PyJWS(algorithms=[alg]).decode_complete(
            token, key=public_key, algorithms=[alg], options=_SIG_OPTIONS
        )
    except Exception as exc:  # library boundary: anything it raises is a refusal
        _raise_from_library(exc)
    return header, decoded["payload"]


_SIG_OPTIONS = {"verify_signature": True, "enforce_minimum_key_length": True}


class _StrictPyJWT(jwt.PyJWT):
    """PyJWT with a strict claims parser (UTF-8, no duplicate names, no NaN)."""

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        try:
            return _strict_json_object(decoded["payload"], "claims")
        except TokenError as exc:
            raise jwt.DecodeError(exc.detail) from exc


@dataclass(frozen=True)
class VerifiedToken:
    """A JWT whose signature and claims were verified."""

    header: dict[str, Any]
    claims: dict[str, Any]
    token: str
    key_id: str | None
    algorithm: str


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenError("invalid_claim", f"{name} must be a NumericDate")
    return float(value)


def _timestamp(now: float | datetime | None) -> float:
    if now is None:
        return time.time()
    if isinstance(now, datetime):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        return now.timestamp()
    if isinstance(now, bool) or not isinstance(now, int | float):
        raise TypeError("now must be a POSIX timestamp or an aware datetime")
    return float(now)


def _seconds(value: float | timedelta, name: str) -> float:
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ValueError(f"{name} must be a non-negative number of seconds")
    return float(seconds)


def _normalise_typ(value: str) -> str:
    value = value.lower()
    return value.removeprefix("application/")


def verify(
    token: str | bytes,
    key: Any,
    *,
    algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
    audience: str | Sequence[str] | None = None,
    issuer: str | Sequence[str] | None = None,
    subject: str | None = None,
    typ: str | None = None,
    leeway: float | timedelta = 0,
    max_lifetime: float | timedelta | None = None,
    require: Iterable[str] = ("exp", "iat"),
    now: float | datetime | None = None,
    max_length: int = MAX_TOKEN_LENGTH,
) -> VerifiedToken:
    """Verify a JWT: signature, header policy, then claims.

    * ``audience``: this verifier's identifier(s); the token's ``aud`` must name one.
      With ``audience=None`` a token that carries an ``aud`` is refused (RFC 7519
      §4.1.3: a recipient that does not identify itself with it must reject).
    * ``issuer``/``subject``: exact match when given.
    * ``typ``: compared case-insensitively, ``application/`` prefix optional.
    * ``exp``/``nbf``/``iat`` against ``now`` (timestamp or aware datetime; default
      the system clock) with ``leeway`` seconds; ``iat`` in the future beyond the
      leeway is refused; ``exp - iat`` must not exceed ``max_lifetime``.
    """
    leeway_s = _seconds(leeway, "leeway")
    max_lifetime_s = None if max_lifetime is None else _seconds(max_lifetime, "max_lifetime")
    now_ts = _timestamp(now)
    if isinstance(require, str):
        raise ValueError("require must be a sequence of claim names")
    required = list(require)
    header, alg, public_key, key_id = _prepare(token, key, algorithms, max_length)
    options = {
        **_SIG_OPTIONS,
        "verify_exp": False,  # checked below against `now`
        "verify_nbf": False,
        "verify_iat": False,
        "verify_aud": True,
        "verify_iss": issuer is not None,
        "verify_sub": False,  # checked below (type and value)
        "verify_jti": False,
        "require": required,
    }
    try:
        decoded = _StrictPyJWT(options=options).decode_complete(
            token,
            key=public_key,
            algorithms=[alg],
            options=options,
            audience=audience,
            issuer=issuer,
        )
    except Exception as exc:  # library boundary: anything it raises is a refusal
        _raise_from_library(exc)
    claims: dict[str, Any] = decoded["payload"]

    for name in ("iss", "sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise TokenError("invalid_claim", f"{name} must be a string")
    exp = _numeric_date(claims, "exp")
    nbf = _numeric_date(claims, "nbf")
    iat = _numeric_date(claims, "iat")
    if exp is not None and now_ts >= exp + leeway_s:
        raise TokenError("expired", "token has expired")
    if nbf is not None and now_ts + leeway_s < nbf:
        raise TokenError("not_yet_valid", "token is not valid yet (nbf)")
    if iat is not None and iat > now_ts + leeway_s:
        raise TokenError("issued_in_future", "token was issued in the future (iat)")
    if max_lifetime_s is not None:
        if exp is None or iat is None:
            raise TokenError("missing_claim", "exp and iat are needed to bound the lifetime")
        if exp - iat > max_lifetime_s:
            raise TokenError(
                "lifetime_too_long",
                f"lifetime {exp - iat:g}s exceeds the maximum of {max_lifetime_s:g}s",
            )
    if subject is not None:
        if "sub" not in claims:
            raise TokenError("missing_claim", "sub")
        if claims["sub"] != subject:
            raise TokenError("wrong_subject", "token subject does not match")
    if typ is not None:
        token_typ = header.get("typ")
        if token_typ is None or _normalise_typ(token_typ) != _normalise_typ(typ):
            raise TokenError("wrong_type", f"token typ {token_typ!r} is not {typ!r}")
    raw = token if isinstance(token, str) else bytes(token).decode("ascii")
    return VerifiedToken(header=header, claims=claims, token=raw, key_id=key_id, algorithm=alg)


# -------------------------------------------------------------------------- minting


def sign(
    claims: Mapping[str, Any],
    private_key: Any,
    *,
    kid: str | None = None,
    typ: str | None = "JWT",
    algorithm: str | None = None,
    headers: Mapping[str, Any] | None = None,
) -> str:
    """Sign ``claims`` as a compact JWT. The algorithm follows the key type
    (ES256 for P-256, EdDSA for Ed25519, RS256 for RSA; PS256 on request)."""
    if not isinstance(claims, Mapping):
        raise TypeError("claims must be a mapping")
    key_algs = _private_key_algorithms(private_key)
    if algorithm is None:
        algorithm = key_algs[0]
    check_algorithms([algorithm])
    if algorithm not in key_algs:
        raise ValueError(f"algorithm {algorithm!r} does not fit this key")
    extra = dict(headers or {})
    forbidden = FORBIDDEN_HEADERS & set(extra)
    if forbidden:
        raise ValueError(f"header parameter(s) {', '.join(sorted(forbidden))} are not allowed")
    for name in ("alg", "typ", "kid"):
        if name in extra:
            raise ValueError(f"pass {name} as a keyword argument, not in headers")
    if kid is not None:
        if not isinstance(kid, str):
            raise TypeError("kid must be a string")
        extra["kid"] = kid
    extra["typ"] = typ  # None removes PyJWT's default "JWT"
    return jwt.encode(dict(claims), private_key, algorithm=algorithm, headers=extra)


def new_jti() -> str:
    """A fresh 128-bit random token identifier (urlsafe base64, 22 characters)."""
    return secrets.token_urlsafe(16)
