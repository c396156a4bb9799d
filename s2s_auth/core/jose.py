"""Compact JWS/JWT: strict parsing, verification and signing (the core, no Django).

Every token mechanism (self-signed service JWTs, access tokens, nested end-user
tokens, private_key_jwt client assertions) goes through this module. It reads
nothing from Django settings: callers pass the allow-list, audience, issuer,
lifetimes and clock explicitly. Keys and the algorithm policy are
:mod:`s2s_auth.core.jwk`'s.

The cryptography and JOSE parsing are PyJWT's and cryptography's; this module adds
the strictness PyJWT lacks (RFC 8725):

* a size limit before anything is decoded (no JSON nesting bombs, no huge tokens);
* compact serialization only, exactly three parts, strict and canonical base64url
  (no padding, url-safe alphabet only, no non-zero trailing bits);
* UTF-8 JSON objects without duplicate member names or NaN/Infinity;
* ``jku``, ``x5u``, ``jwk``, ``crit`` and ``b64`` headers are refused;
* the header's ``alg`` must be allow-listed and fit the key type;
* ``exp``/``nbf``/``iat`` checked against an injectable clock, plus a maximum
  lifetime and a ``typ`` check.

Every failure on untrusted input is a :class:`TokenError` with a stable
snake_case ``code``; library exceptions are chained as ``__cause__``.
Configuration mistakes by the caller (an HMAC algorithm in the allow-list, a
private key where a public one belongs) raise ``ValueError``/``TypeError``.
"""

from __future__ import annotations

import functools
import math
import secrets
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
from jwt.algorithms import OKPAlgorithm

from s2s_auth.core.jose_encoding import TokenError, b64url_decode_strict, strict_json_object
from s2s_auth.core.jwk import (
    DEFAULT_ALGORITHMS,
    JWK,
    check_algorithms,
    key_algorithms,
    private_key_algorithms,
)

__all__ = [
    "CLIENT_AUTH_JWT_TYP",
    "FORBIDDEN_HEADERS",
    "MAX_TOKEN_LENGTH",
    "ParsedJWS",
    "TokenError",
    "VerifiedToken",
    "new_jti",
    "parse",
    "sign",
    "unverified_claims",
    "unverified_header",
    "verify",
    "verify_jws",
]

#: Header parameters that make a verifier fetch or trust keys named by the token
#: itself (jku, x5u, jwk) or demand extensions we do not implement (crit, b64).
FORBIDDEN_HEADERS = frozenset({"jku", "x5u", "jwk", "crit", "b64"})
MAX_TOKEN_LENGTH = 8192
#: ``typ`` of a private_key_jwt client assertion (RFC 7523bis, explicit typing), so that
#: no token minted for something else (``at+jwt``, ``s2s+jwt``) passes as one.
CLIENT_AUTH_JWT_TYP = "client-authentication+jwt"

# ------------------------------------------------------------------------ verifying


def _with_rfc9864(jws: jwt.PyJWS) -> jwt.PyJWS:
    """``jws`` knowing RFC 9864's ``Ed25519`` (PyJWT knows only ``EdDSA``): the same
    algorithm under its fully specified name, verified by PyJWT's own OKP code."""
    if "Ed25519" not in jws.get_algorithms():
        jws.register_algorithm("Ed25519", OKPAlgorithm())
    return jws


@dataclass(frozen=True, eq=False)
class ParsedJWS:
    """A compact JWS split and decoded once, strictly (see :func:`parse`); nothing
    verified. Mechanisms parse a credential once and pass this along: to pick a key
    (``header``), to find whose keys to try (:meth:`unverified_claims`), to
    :func:`verify`."""

    token: str = field(repr=False)  # a credential: kept out of logs and tracebacks
    header: dict[str, Any]
    payload: bytes = field(repr=False)

    def unverified_claims(self) -> dict[str, Any]:
        """The claims, parsed strictly but *not verified* (parsed once, then kept)."""
        claims = self.__dict__.get("_claims")
        if claims is None:
            claims = strict_json_object(self.payload, "claims")
            object.__setattr__(self, "_claims", claims)
        return claims


#: Recently parsed tokens by their text: the same credential is looked at by the
#: mechanism, the verifier and the audit record of one request. Small and cleared when
#: full; a token that fails to parse is never kept.
_RECENT: dict[str, ParsedJWS] = {}
_RECENT_MAX = 64


def parse(token: str | bytes | ParsedJWS, *, max_length: int = MAX_TOKEN_LENGTH) -> ParsedJWS:
    """``token`` split and decoded with the structural checks (the module doc's list):
    the one parse every other function here starts from.

    Raises TokenError (``token_too_large``, ``malformed_token``, ``forbidden_header``).
    """
    if isinstance(token, ParsedJWS):
        if len(token.token) > max_length:
            raise TokenError("token_too_large", f"token longer than {max_length} characters")
        return token
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
    parsed = _RECENT.get(token)
    if parsed is None:
        parsed = _parse(token)
        if len(_RECENT) >= _RECENT_MAX:
            _RECENT.clear()
        _RECENT[token] = parsed
    return parsed


def _parse(token: str) -> ParsedJWS:
    parts = token.split(".")
    if len(parts) == 5:
        raise TokenError("malformed_token", "JWE tokens are not accepted")
    if len(parts) != 3:
        raise TokenError("malformed_token", "not a compact JWS (header.payload.signature)")
    if not parts[0]:
        raise TokenError("malformed_token", "empty header")
    if not parts[2]:
        raise TokenError("malformed_token", "empty signature")
    header_bytes = b64url_decode_strict(parts[0], "header")
    payload = b64url_decode_strict(parts[1], "payload")
    b64url_decode_strict(parts[2], "signature")
    header = strict_json_object(header_bytes, "header")
    forbidden = FORBIDDEN_HEADERS & set(header)
    if forbidden:
        raise TokenError(
            "forbidden_header", f"header parameter(s) {', '.join(sorted(forbidden))} refused"
        )
    alg = header.get("alg")
    if not isinstance(alg, str) or not alg:
        raise TokenError("malformed_token", "header alg must be a non-empty string")
    for name in ("kid", "typ", "cty"):
        if name in header and not isinstance(header[name], str):
            raise TokenError("malformed_token", f"header {name} must be a string")
    return ParsedJWS(token=token, header=header, payload=payload)


def unverified_header(
    token: str | bytes | ParsedJWS, *, max_length: int = MAX_TOKEN_LENGTH
) -> dict:
    """The JOSE header of a compact JWS, after structural checks only (a copy).

    Not authenticated: use it to pick a key (``kid``, ``x5c``), never to trust.
    Raises TokenError (``token_too_large``, ``malformed_token``, ``forbidden_header``).
    """
    return dict(parse(token, max_length=max_length).header)


def unverified_claims(
    token: str | bytes | ParsedJWS, *, max_length: int = MAX_TOKEN_LENGTH
) -> dict:
    """The claims of a compact JWS, parsed strictly but *not verified*: to find which
    client's keys to try (RFC 7523's ``sub``), never to trust."""
    return dict(parse(token, max_length=max_length).unverified_claims())


def _resolve_key(key: Any) -> tuple[Any, frozenset[str], str | None]:
    if isinstance(key, JWK):
        return key.public_key, key.algorithms, key.kid
    if isinstance(key, jwt.PyJWK):
        raise TypeError("wrap JWK dicts with s2s_auth.core.jwk.JWK, not jwt.PyJWK")
    return key, key_algorithms(key), None


def _allowed(algorithms: Iterable[str]) -> tuple[str, ...]:
    """``check_algorithms(algorithms)``, remembered: every request passes the same
    configured allow-list. Anything unhashable is checked (and refused) each time."""
    if isinstance(algorithms, list | tuple):
        try:
            return _checked_algorithms(tuple(algorithms))
        except TypeError:  # an unhashable member: not a name, check_algorithms says so
            pass
    return check_algorithms(algorithms)


@functools.lru_cache(maxsize=32)
def _checked_algorithms(algorithms: tuple[str, ...]) -> tuple[str, ...]:
    return check_algorithms(algorithms)  # a ValueError is raised, never remembered


def _prepare(
    token: Any, key: Any, algorithms: Iterable[str], max_length: int
) -> tuple[ParsedJWS, str, Any, str | None]:
    allowed = _allowed(algorithms)
    public_key, key_algs, key_kid = _resolve_key(key)
    parsed = parse(token, max_length=max_length)
    header = parsed.header
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
    return parsed, alg, public_key, header.get("kid", key_kid)


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
    token: str | bytes | ParsedJWS,
    key: Any,
    *,
    algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
    max_length: int = MAX_TOKEN_LENGTH,
) -> tuple[dict[str, Any], bytes]:
    """Verify a compact JWS over any payload; returns ``(header, payload_bytes)``.

    ``key`` is a cryptography public key or a :class:`JWK`. The header's ``alg``
    must be in ``algorithms`` and fit the key's type.
    """
    parsed, alg, public_key, _ = _prepare(token, key, algorithms, max_length)
    try:
        decoded = _JWS.decode_complete(
            parsed.token, key=public_key, algorithms=[alg], options=_SIG_OPTIONS
        )
    except Exception as exc:  # library boundary: anything it raises is a refusal
        _raise_from_library(exc)
    _same_header(parsed, decoded)
    return dict(parsed.header), decoded["payload"]


def _same_header(parsed: ParsedJWS, decoded: Mapping[str, Any]) -> None:
    """PyJWT's own view of the header (its kid checks apply) must agree with ours."""
    if decoded.get("header") != parsed.header:  # pragma: no cover - the same bytes
        raise TokenError("malformed_token", "header parsed inconsistently")


_SIG_OPTIONS = {"verify_signature": True, "enforce_minimum_key_length": True}
#: Built once per process (a PyJWS instantiates every algorithm it knows); each call
#: names the one algorithm it allows.
_JWS = _with_rfc9864(jwt.PyJWS())


class _StrictPyJWT(jwt.PyJWT):
    """PyJWT with a strict claims parser (UTF-8, no duplicate names, no NaN) that
    knows RFC 9864's ``Ed25519``."""

    def __init__(self, options=None):
        super().__init__(options)
        _with_rfc9864(self._jws)

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        try:
            return strict_json_object(decoded["payload"], "claims")
        except TokenError as exc:
            raise jwt.DecodeError(exc.detail) from exc


#: Built once per process; the options of each call are passed to decode_complete.
_JWT = _StrictPyJWT()


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


def _check_typ(token_typ: str | None, expected: str | Iterable[str | None]) -> None:
    accepted = [expected] if isinstance(expected, str) else list(expected)
    if not accepted:
        raise ValueError("typ must name at least one accepted type")
    normalised = {None if t is None else _normalise_typ(t) for t in accepted}
    if (None if token_typ is None else _normalise_typ(token_typ)) not in normalised:
        names = " or ".join("(none)" if t is None else repr(t) for t in accepted)
        raise TokenError("wrong_type", f"token typ {token_typ!r} is not {names}")


def verify(
    token: str | bytes | ParsedJWS,
    key: Any,
    *,
    algorithms: Iterable[str] = DEFAULT_ALGORITHMS,
    audience: str | Sequence[str] | None = None,
    issuer: str | Sequence[str] | None = None,
    subject: str | None = None,
    typ: str | Iterable[str | None] | None = None,
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
    * ``typ``: compared case-insensitively, ``application/`` prefix optional; several
      accepted types as a collection, ``None`` in it accepting a header without ``typ``.
    * ``jti``, when present, must be a non-empty string (an empty one would give every
      such token the same replay key).
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
    parsed, alg, public_key, key_id = _prepare(token, key, algorithms, max_length)
    header = dict(parsed.header)
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
        decoded = _JWT.decode_complete(
            parsed.token,
            key=public_key,
            algorithms=[alg],
            options=options,
            audience=audience,
            issuer=issuer,
        )
    except Exception as exc:  # library boundary: anything it raises is a refusal
        _raise_from_library(exc)
    _same_header(parsed, decoded)
    claims: dict[str, Any] = decoded["payload"]

    for name in ("iss", "sub", "jti"):
        if name in claims and not isinstance(claims[name], str):
            raise TokenError("invalid_claim", f"{name} must be a string")
    if claims.get("jti") == "":
        raise TokenError("invalid_claim", "jti must not be empty")
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
        _check_typ(header.get("typ"), typ)
    return VerifiedToken(
        header=header, claims=claims, token=parsed.token, key_id=key_id, algorithm=alg
    )


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
    (ES256 for P-256, EdDSA for Ed25519, RS256 for RSA; PS256, or RFC 9864's
    ``Ed25519``, on request)."""
    if not isinstance(claims, Mapping):
        raise TypeError("claims must be a mapping")
    key_algs = private_key_algorithms(private_key)
    if algorithm is None:
        algorithm = key_algs[0]
    _allowed((algorithm,))
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
    return _JWT.encode(dict(claims), private_key, algorithm=algorithm, headers=extra)


def new_jti() -> str:
    """A fresh 128-bit random token identifier (urlsafe base64, 22 characters)."""
    return secrets.token_urlsafe(16)
