"""OAuth2 access tokens (RFC 9068 JWTs, ``typ: at+jwt``) issued by the identity service.

Validated locally against the issuer's JWKS (:mod:`s2s_auth.core.jwks`): signature with
an allow-listed algorithm, ``iss``, ``aud``, ``exp``/``iat`` (with ``CLOCK_SKEW``),
``sub``, ``jti``, ``typ``. Two adapters share the pipeline
(``get_raw_token → get_validated_token → check_binding → get_user``):

* :class:`AccessTokenAuthentication` — tokens issued to a *service* (``sub`` is the
  SPIFFE ID of an enabled principal). ``request.user`` is a ``ServiceIdentity`` whose
  scopes are the token's ``scope`` ∩ the principal's current scopes.
* :class:`EndUserTokenAuthentication` — tokens issued to an end user (``sub`` a user
  id); ``request.user`` is a stateless :class:`TokenUser`.

A token carrying ``cnf.x5t#S256`` (RFC 8705) is accepted only over mTLS with the
certificate of that SHA-256 thumbprint. ``request.auth`` is an :class:`AccessToken`.

Status codes (DESIGN §3: 401 missing/unknown credential, 403 presented but invalid):

* 401 with ``WWW-Authenticate: Bearer realm=..., error="invalid_token",
  error_description=...`` (RFC 6750 §3) for a token we cannot use and that a fresh
  token from the issuer fixes: ``malformed_token``, ``token_too_large``, ``expired``,
  ``not_yet_valid``, ``unknown_key`` (signed with a key the issuer no longer
  publishes). Clients (``s2s_auth.client.token_manager.BearerTokenAuth``) refresh once on it.
* 401 ``certificate_required`` (no ``error`` parameter, RFC 6750 §3.1): a certificate-
  bound token presented without a client certificate.
* 403 for a token that verifies badly or is not allowed: ``bad_signature``,
  ``wrong_issuer``, ``wrong_audience``, ``wrong_type``, ``algorithm_not_allowed``,
  ``forbidden_header``, ``missing_claim``, ``invalid_claim``, ``issued_in_future``,
  ``not_a_service_token``, ``not_an_end_user_token``, ``unsupported_token_binding``,
  ``certificate_binding_mismatch``, ``unknown_principal``, ``principal_disabled`` and
  the certificate codes of :mod:`s2s_auth.core.certs`.
* 503 ``jwks_unavailable`` with ``Retry-After``: the issuer's keys were never fetched
  and the issuer is unreachable. Not 401: the token may well be valid, the fault is
  ours, and a 401 would make every client fetch new tokens from an issuer that is down;
  not 500: it is an expected, transient condition.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from rest_framework import exceptions, status

from s2s_auth.audit import events
from s2s_auth.conf import s2s_settings
from s2s_auth.core.certs import VerifiedPeer
from s2s_auth.core.jose import TokenError, unverified_header, verify
from s2s_auth.core.jwks import JWKSUnavailable, jwks_cache, jwks_url
from s2s_auth.core.x509 import CertificateRejected, x5t_s256
from s2s_auth.identity import EndUser, is_spiffe_id, service_name
from s2s_auth.mechanisms.base import (
    CredentialMissing,
    CredentialRejected,
    ServiceAuthentication,
    identity_for,
)
from s2s_auth.tls.peer import verify_peer
from s2s_auth.tls.proxy_headers import ProxyHeaderError

__all__ = [
    "AccessToken",
    "AccessTokenAuthentication",
    "EndUserTokenAuthentication",
    "KeysUnavailable",
    "TokenUser",
    "VerifiedTokenCache",
    "verified_token_cache",
]

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type
REQUIRED_CLAIMS = ("exp", "iat", "sub", "jti")
#: Codes that are a 401 ``invalid_token``: the credential is unusable or unknown, and
#: a fresh token fixes it. Everything else presented-but-wrong is a 403.
INVALID_TOKEN_CODES = frozenset(
    {
        "missing_token",
        "malformed_token",
        "token_too_large",
        "expired",
        "not_yet_valid",
        "unknown_key",
    }
)
# RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E.
_UNSAFE_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


class KeysUnavailable(exceptions.APIException):
    """503: the issuer's keys are not available, so no token can be checked."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE

    def __init__(self, detail: str, retry_after: float = 1):
        super().__init__({"error": "jwks_unavailable", "detail": detail}, code="jwks_unavailable")
        self.reason = "jwks_unavailable"
        self.wait = max(1, int(retry_after))  # DRF's handler turns it into Retry-After


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


@dataclass(frozen=True)
class TokenUser(EndUser):
    """A stateless end user built from a verified user token; no database row."""

    client_id: str | None = None

    is_service = False
    is_authenticated = True
    is_anonymous = False
    is_active = True
    is_staff = False
    is_superuser = False

    @property
    def pk(self) -> str:
        return self.id

    def __str__(self) -> str:
        return self.username or self.id

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes

    def get_username(self) -> str:
        return self.username or self.id

    def has_perm(self, perm, obj=None) -> bool:
        return False

    def has_perms(self, perms, obj=None) -> bool:
        return False

    def has_module_perms(self, app_label) -> bool:
        return False


# ------------------------------------------------------------------ verified-token cache


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


# ------------------------------------------------------------------------- adapters


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def validate_access_token(raw: str, *, kind: str, audiences: list[str]) -> AccessToken:
    """Verify an access token against the issuer's JWKS (the core, no DRF).

    Raises TokenError or JWKSUnavailable. Verified tokens are cached by hash until
    they expire (``CACHE_VERIFIED_TOKENS``), per verification policy.
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
    header = unverified_header(raw)
    key = jwks_cache().key_for(header.get("kid"))
    verified = verify(
        raw,
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
    if "client_id" in claims and not isinstance(claims["client_id"], str):
        raise TokenError("invalid_claim", "client_id must be a string")
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


class BearerTokenAuthentication(ServiceAuthentication):
    """The shared pipeline; subclasses say which audience and which kind of ``sub``."""

    keyword = "Bearer"
    mechanism = "access_token"
    #: Distinguishes the verified-token cache entries of the subclasses.
    kind = "bearer"

    # -- steps (overridable) ------------------------------------------------------------
    def audiences(self) -> list[str]:
        raise NotImplementedError

    def get_user(self, request, token: AccessToken, peer: VerifiedPeer | None):
        raise NotImplementedError

    def get_raw_token(self, request) -> str | None:
        """The token of ``Authorization: Bearer <token>``; None for any other scheme."""
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not isinstance(header, str) or not header:
            return None
        parts = header.split()
        if not parts or parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            self.refuse_token(
                request,
                TokenError(
                    "missing_token" if len(parts) == 1 else "malformed_token",
                    "Authorization: Bearer needs exactly one token",
                ),
            )
        raw = parts[1]
        if not raw.isascii():
            self.refuse_token(request, TokenError("malformed_token", "token is not ASCII"))
        return raw

    def get_validated_token(self, request, raw: str) -> AccessToken:
        try:
            return validate_access_token(raw, kind=self.kind, audiences=self.audiences())
        except TokenError as exc:
            self.refuse_token(request, exc)
        except JWKSUnavailable as exc:
            self.refuse(request, KeysUnavailable(exc.detail, exc.retry_after))

    def check_binding(self, request, token: AccessToken) -> VerifiedPeer | None:
        """RFC 8705: a ``cnf.x5t#S256`` token needs the mTLS certificate it names.

        Returns the verified peer when the request has one (bound or not).
        """
        cnf = token.claims.get("cnf")
        evidence = {"principal": str(token.claims.get("sub", "")), "claims": token.claims}
        try:
            peer = verify_peer(request)
        except ProxyHeaderError as exc:
            self.refuse(request, CredentialRejected(exc.code, exc.detail), **evidence)
        except CertificateRejected as exc:
            self.refuse(
                request,
                CredentialRejected(exc.code, exc.detail),
                fingerprint=exc.fingerprint or "",
                **evidence,
            )
        if cnf is None:
            return peer
        thumb = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
        if not isinstance(thumb, str) or not thumb.isascii():
            self.refuse(
                request,
                CredentialRejected(
                    "unsupported_token_binding",
                    "Only certificate-bound (cnf.x5t#S256) tokens are accepted as Bearer.",
                ),
                **evidence,
            )
        if peer is None:
            request._s2s_bearer_error = None
            self.refuse(
                request,
                CredentialMissing(
                    "certificate_required",
                    "This token is bound to a client certificate; call over mutual TLS.",
                ),
                **evidence,
            )
        if not hmac.compare_digest(thumb.encode("ascii"), x5t_s256(peer.leaf).encode()):
            self.refuse(
                request,
                CredentialRejected(
                    "certificate_binding_mismatch",
                    "The token is bound to another client certificate.",
                ),
                fingerprint=peer.fingerprint,
                **evidence,
            )
        return peer

    def authenticate(self, request):
        if not s2s_settings().ACCESS_TOKEN_ISSUER:
            return None  # access tokens are not accepted by this service
        raw = self.get_raw_token(request)
        if raw is None:
            return None
        token = self.get_validated_token(request, raw)
        peer = self.check_binding(request, token)
        return self.get_user(request, token, peer), token

    # -- errors ----------------------------------------------------------------------
    def refuse_token(self, request, exc: TokenError, **evidence):
        if exc.code in INVALID_TOKEN_CODES:
            request._s2s_bearer_error = (exc.code, exc.detail)
            self.refuse(request, CredentialMissing(exc.code, exc.detail), **evidence)
        self.refuse(request, CredentialRejected(exc.code, exc.detail), **evidence)

    def authenticate_header(self, request) -> str:
        realm = s2s_settings().own_spiffe_id or "s2s"
        value = f'{self.keyword} realm="{realm}"'
        error = getattr(request, "_s2s_bearer_error", None)
        if error:
            description = _UNSAFE_DESCRIPTION.sub("", f"{error[0]}: {error[1]}")[:200]
            value += f', error="invalid_token", error_description="{description}"'
        return value


class AccessTokenAuthentication(BearerTokenAuthentication):
    """Access tokens issued to services (client credentials grant)."""

    mechanism = "access_token"
    kind = "service"

    def audiences(self) -> list[str]:
        conf = s2s_settings()
        audiences = _as_list(conf.ACCESS_TOKEN_AUDIENCE) or _as_list(conf.own_spiffe_id)
        if not audiences:
            raise ImproperlyConfigured(
                "AccessTokenAuthentication needs S2S_AUTH['ACCESS_TOKEN_AUDIENCE'] or "
                "S2S_AUTH['SERVICE_NAME'] (the expected audience of access tokens)."
            )
        return audiences

    def get_user(self, request, token: AccessToken, peer: VerifiedPeer | None):
        sub = token.subject
        evidence = {"principal": sub, "claims": token.claims}
        fingerprint = peer.fingerprint if peer else ""
        name = service_name(sub, s2s_settings().TRUST_DOMAIN)
        if name is None:
            self.refuse(
                request,
                CredentialRejected(
                    "not_a_service_token",
                    "This token was not issued to a service of this trust domain.",
                ),
                **evidence,
            )
        if token.client_id is not None and token.client_id != name:
            self.refuse(
                request,
                CredentialRejected("invalid_claim", "client_id does not match sub"),
                **evidence,
            )
        try:
            identity = identity_for(sub, self.mechanism)
        except CredentialRejected as exc:
            self.refuse(request, exc, fingerprint=fingerprint, **evidence)
        identity = dataclasses.replace(identity, scopes=identity.scopes & token.scopes)
        self.accept(request, identity, claims=token.claims, fingerprint=fingerprint)
        return identity


class EndUserTokenAuthentication(BearerTokenAuthentication):
    """Access tokens issued to end users (``POST /api/v1/auth/login``).

    Same issuer and JWKS as service tokens; the audience is
    ``S2S_AUTH["END_USER_AUDIENCE"]`` (a string or a list, default ``"fleamarket"``).
    A service token is refused here (``not_an_end_user_token``).
    """

    mechanism = "end_user_token"
    kind = "end_user"

    def audiences(self) -> list[str]:
        return _as_list(s2s_settings().END_USER_AUDIENCE)

    def get_user(self, request, token: AccessToken, peer: VerifiedPeer | None):
        sub = token.subject
        if is_spiffe_id(sub):
            self.refuse(
                request,
                CredentialRejected(
                    "not_an_end_user_token", "This token was issued to a service, not a user."
                ),
                principal=sub,
                claims=token.claims,
            )
        username = token.claims.get("preferred_username", token.claims.get("username", ""))
        user = TokenUser(
            id=sub,
            username=username if isinstance(username, str) else "",
            scopes=token.scopes,
            client_id=token.client_id,
        )
        events.record(
            request,
            events.Decision(
                mechanism=self.mechanism,
                outcome="accepted",
                end_user=user.id,
                fingerprint=peer.fingerprint if peer else "",
                claims=token.claims,
            ),
        )
        return user
