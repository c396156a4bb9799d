"""OAuth2 access tokens (RFC 9068 JWTs, ``typ: at+jwt``): verified, without a request.

:func:`validate_access_token` checks a token against the issuer's JWKS
(:mod:`s2s_auth.core.jwks`): signature with an allow-listed algorithm, ``iss``, ``aud``,
``exp``/``iat`` (with ``CLOCK_SKEW``), ``sub``, ``jti``, ``client_id``, ``typ``, and
returns an :class:`AccessToken`. It raises :class:`~s2s_auth.core.jose.TokenError` or
:class:`~s2s_auth.core.jwks.JWKSUnavailable`; the DRF adapters
(:mod:`s2s_auth.mechanisms.access_token`) turn those into HTTP answers.
Verified tokens are kept in a bounded in-process cache until they expire.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from django.core.signals import setting_changed

from s2s_auth.conf import s2s_settings
from s2s_auth.core.jose import TokenError, parse, verify
from s2s_auth.core.jwks import jwks_cache, jwks_url

__all__ = [
    "ACCESS_TOKEN_TYPE",
    "AccessToken",
    "VerifiedTokenCache",
    "validate_access_token",
    "verified_token_cache",
]

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type
#: RFC 9068 §2.2: ``client_id`` is required (a token without it was minted by something
#: other than an RFC 9068 issuer).
REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti", "client_id")


@dataclass(frozen=True)
class AccessToken:
    """A verified access token: what ``request.auth`` holds.

    The raw token is kept (``token``) for a caller that must forward it, but is out of
    ``repr`` so that it does not end up in logs or tracebacks.
    """

    header: dict[str, Any]
    claims: dict[str, Any]
    key_id: str | None
    algorithm: str
    token_hash: str  # sha256 hex of the token: what the audit log may keep
    token: str = field(repr=False, compare=False)

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.claims.get("scope", "").split())

    @property
    def subject(self) -> str:
        return self.claims["sub"]

    @property
    def client_id(self) -> str | None:
        return self.claims.get("client_id")

    @property
    def expires_at(self) -> float:
        return float(self.claims["exp"])

    @property
    def certificate_thumbprint(self) -> str | None:
        cnf = self.claims.get("cnf")
        return cnf.get("x5t#S256") if isinstance(cnf, dict) else None


class VerifiedTokenCache:
    """In-process LRU of verified tokens, keyed by (verification policy, SHA-256 of the
    token), each entry kept until the token's ``exp``. Only the signature and claim
    checks are cached: the principal and the certificate binding are checked on every
    request. Bounded (``maxsize``), so a flood of distinct tokens cannot grow it."""

    def __init__(self, maxsize: int = 10000, clock=time.time):
        self.maxsize = maxsize
        self._clock = clock
        self._entries: OrderedDict[tuple, AccessToken] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple) -> AccessToken | None:
        with self._lock:
            token = self._entries.get(key)
            if token is None:
                self.misses += 1
                return None
            if self._clock() >= token.expires_at:
                del self._entries[key]
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return token

    def put(self, key: tuple, token: AccessToken) -> None:
        with self._lock:
            self._entries[key] = token
            self._entries.move_to_end(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)


_token_cache = VerifiedTokenCache()


def verified_token_cache() -> VerifiedTokenCache:
    return _token_cache


def _reload(*, setting, **kwargs):
    if setting == "S2S_AUTH":
        _token_cache.clear()


setting_changed.connect(_reload)


def validate_access_token(raw: str, *, kind: str, audiences: list[str]) -> AccessToken:
    """Verify an access token against the issuer's JWKS.

    ``kind`` separates the cache entries of callers with different policies (service
    tokens, end users' tokens). Raises TokenError or JWKSUnavailable. Verified tokens
    are cached by hash until they expire (``CACHE_VERIFIED_TOKENS``), per policy.
    """
    conf = s2s_settings()
    algorithms = tuple(conf.JWT_ALGORITHMS)
    policy = (
        kind,
        conf.ACCESS_TOKEN_ISSUER,
        jwks_url(),
        tuple(audiences),
        algorithms,
        float(conf.CLOCK_SKEW),
    )
    token_hash = hashlib.sha256(raw.encode("ascii")).hexdigest()
    use_cache = bool(conf.CACHE_VERIFIED_TOKENS)
    if use_cache:
        cached = _token_cache.get((policy, token_hash))
        if cached is not None:
            return cached
    parsed = parse(raw)  # once: the key's kid and the verification read it
    key = jwks_cache().key_for(parsed.header.get("kid"))
    verified = verify(
        parsed,
        key,
        algorithms=algorithms,
        audience=audiences,
        issuer=conf.ACCESS_TOKEN_ISSUER,
        typ=ACCESS_TOKEN_TYPE,
        leeway=conf.CLOCK_SKEW,
        require=REQUIRED_CLAIMS,
    )
    claims = verified.claims
    if not isinstance(claims.get("scope", ""), str):
        raise TokenError("invalid_claim", "scope must be a string")
    if not isinstance(claims["client_id"], str) or not claims["client_id"]:
        raise TokenError("invalid_claim", "client_id must be a non-empty string")
    token = AccessToken(
        header=verified.header,
        claims=claims,
        key_id=verified.key_id,
        algorithm=verified.algorithm,
        token_hash=token_hash,
        token=raw,
    )
    if use_cache:
        _token_cache.put((policy, token_hash), token)
    return token
