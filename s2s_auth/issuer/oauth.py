"""The OAuth2 logic of the identity service: client authentication, scopes,
audiences, and minting RFC 9068 access tokens. Views (``views.py``) only parse the
HTTP request and turn :class:`OAuthError` into RFC 6749 §5.2 responses.

Token layout (JWT, header ``typ: at+jwt``, ``alg: ES256``, ``kid``):

* service tokens: ``iss``, ``sub`` = the client's SPIFFE ID, ``client_id`` = its
  service name, ``aud``, ``scope``, ``iat``, ``exp``, ``jti`` and, when the client
  presented a TLS client certificate, ``cnf: {"x5t#S256": ...}`` (RFC 8705).
* ``aud``: the targets named by ``resource`` (RFC 8707, repeatable) or
  ``audience`` (space-separated) — a SPIFFE ID of our trust domain
  (``spiffe://<td>/service/<name>``) or a bare service name; by default the SPIFFE
  IDs of the services the granted scopes name (``users:read`` → ``users``), or the
  issuer's own SPIFFE ID when no scope names a service. One value is a string,
  several a list.
* end-user tokens: ``iss``, ``sub`` = the user id (a string), ``username``,
  ``client_id`` = the issuer's service name, ``aud`` = ``USER_TOKEN_AUDIENCE``,
  ``scope`` = ``USER_TOKEN_SCOPE``, ``iat``, ``exp``, ``jti``.
"""

from __future__ import annotations

import functools
import logging
import re
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.urls import get_script_prefix, get_urlconf, reverse

from s2s_auth.audit.issuance import record_issued
from s2s_auth.conf import s2s_settings
from s2s_auth.core.certs import VerifiedPeer, peer_verifier
from s2s_auth.core.jose import (
    TokenError,
    new_jti,
    sign,
    unverified_claims,
    unverified_header,
    verify,
)
from s2s_auth.core.x509 import CertificateRejected, x5c_decode, x5t_s256
from s2s_auth.credentials.certificates import client_keys_of
from s2s_auth.credentials.principals import cached_principal
from s2s_auth.credentials.replay import remember_once
from s2s_auth.credentials.throttles import read_histories, record_failures
from s2s_auth.identity import SERVICE_NAME_RE, is_spiffe_id, service_name, spiffe_id
from s2s_auth.issuer.clients import cached_secrets_of, match_secret
from s2s_auth.issuer.keys import key_store
from s2s_auth.issuer.throttling import (
    AddressTokenFailures,
    TokenFailures,
    TokenRateThrottle,
    retry_after,
)
from s2s_auth.models import ServicePrincipal
from s2s_auth.tls.peer import verify_peer
from s2s_auth.tls.proxy_headers import ProxyHeaderError

__all__ = [
    "ASSERTION_TYPE",
    "AUTH_METHODS",
    "AuthenticatedClient",
    "FailureGate",
    "OAuthError",
    "authenticate_secret",
    "issuer_url",
    "mint_service_token",
    "mint_user_token",
    "resolve_audiences",
    "select_scopes",
    "token_endpoint_url",
]

logger = logging.getLogger("s2s_auth.issuer")

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt", "tls_client_auth")
GRANT_TYPES = ("client_credentials", "urn:ietf:params:oauth:grant-type:token-exchange")
TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a password
#: ``typ`` accepted on client assertions: the explicit type (jose.CLIENT_AUTH_JWT_TYP), or
#: from clients that predate it the generic ``JWT`` or none; any other type is a token
#: minted for something else (at+jwt, s2s+jwt).
ASSERTION_TYPS = ("client-authentication+jwt", "JWT", None)
_SCOPE_SERVICE_RE = re.compile(r"^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?):")


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``error`` code, description, HTTP status, headers."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
        principal: str = "",
        reason: str = "",
    ):
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        self.headers = dict(headers or {})
        self.principal = principal
        #: s2s_auth's reason code when it says more than ``error`` (a 503's cause).
        self.reason = reason


def basic_challenge() -> dict[str, str]:
    realm = s2s_settings().own_spiffe_id or "s2s-issuer"
    return {"WWW-Authenticate": f'Basic realm="{realm}", charset="UTF-8"'}


def invalid_client(description: str, *, basic: bool = True, principal: str = "") -> OAuthError:
    return OAuthError(
        "invalid_client",
        description,
        status=401,
        headers=basic_challenge() if basic else None,
        principal=principal,
    )


def rate_limited(retry_after: int, principal: str = "") -> OAuthError:
    return OAuthError(
        "slow_down",
        "Too many token requests; retry later.",
        status=429,
        headers={"Retry-After": str(retry_after)},
        principal=principal,
    )


# ----------------------------------------------------------------------- URLs


def issuer_url(request) -> str:
    configured = s2s_settings().ISSUER
    if configured:
        return str(configured)
    return f"{request.scheme}://{request.get_host()}"


def endpoint_url(request, name: str) -> str:
    return issuer_url(request).rstrip("/") + endpoint_path(name)


def endpoint_path(name: str) -> str:
    """``reverse("s2s_issuer:<name>")``, resolved once per URLconf and script prefix
    (reversing walks the URL patterns: a tenth of an assertion check)."""
    return _reversed(name, get_urlconf(settings.ROOT_URLCONF), get_script_prefix())


@functools.lru_cache(maxsize=64)
def _reversed(name: str, urlconf, script_prefix: str) -> str:
    return reverse(f"s2s_issuer:{name}", urlconf=urlconf)


def _forget_reversed(**kwargs) -> None:
    _reversed.cache_clear()  # a test's override_settings may swap a URLconf's patterns


setting_changed.connect(_forget_reversed, dispatch_uid="s2s_issuer_reversed")


def token_endpoint_url(request) -> str:
    return endpoint_url(request, "token")


# ------------------------------------------------------------ client authentication


@dataclass
class AuthenticatedClient:
    principal: ServicePrincipal
    method: str
    #: The verified TLS client certificate of the connection: tokens are bound to it.
    peer: VerifiedPeer | None


def connection_peer(request) -> VerifiedPeer | None:
    """The verified TLS client certificate, None without one; a bad one is refused."""
    try:
        return verify_peer(request)
    except CertificateRejected as exc:
        raise invalid_client(f"TLS client certificate refused: {exc.code}.", basic=False) from exc
    except ProxyHeaderError as exc:
        raise invalid_client("Unreadable client certificate header.", basic=False) from exc


def check_rate(client_id: str, gate: FailureGate | None = None) -> None:
    """Count a token request of ``client_id`` once it has authenticated (the window
    ``gate`` read ahead with its counters when it is this client's)."""
    throttle = gate.rate_throttle(client_id) if gate is not None else None
    throttle = throttle or TokenRateThrottle(client_id)
    if not throttle.allow_request(None, None):
        raise rate_limited(retry_after(throttle), client_id)


class FailureGate:
    """Failed client authentications of one source: looked at before the credential is
    checked, counted when it fails. Per (claimed client id, address) and per address;
    a connection with a verified TLS client certificate (``exempt``) is never held
    back, so nobody's failures lock a certificate client out.

    One round trip to the shared store reads both counters and the claimed client's
    rate window (:func:`check_rate`); a failure is counted with one read and one
    write. Nothing is written for a request that authenticates, but its rate window.
    """

    #: The window read ahead is used only this soon after: a longer gap (a slow
    #: password hash) would widen the read-modify-write race with other processes.
    RATE_READ_AHEAD_SECONDS = 0.05

    def __init__(
        self, client_id: str, address: str, *, exempt: bool = False, claimed: str | None = None
    ):
        self.exempt = exempt
        self.counters = (TokenFailures.of(client_id, address), AddressTokenFailures(address))
        self.client_id = client_id
        #: Whose rate window to read ahead: the client id, else who the credential
        #: claims to be (an assertion's ``sub``); used only if that client authenticates.
        self.claimed = client_id or claimed or ""
        self._rate = TokenRateThrottle(self.claimed) if self.claimed else None
        self._read_at: float | None = None
        self._passed = False

    def check(self) -> None:
        if self.exempt:
            return
        if self._passed:
            return  # looked already, and nothing was counted since (a failure raises)
        self._read_at = time.monotonic()
        read_histories([*self.counters, *filter(None, [self._rate])])
        for counter in self.counters:
            if not counter.allow_request(None, None):
                raise rate_limited(retry_after(counter), self.client_id)
        self._passed = True

    def failed(self) -> None:
        self._passed = False
        record_failures(self.counters)

    def rate_throttle(self, client_id: str) -> TokenRateThrottle | None:
        """The claimed client's rate window read ahead by :meth:`check`, while fresh."""
        rate, self._rate = self._rate, None
        if rate is None or client_id != self.claimed or self._read_at is None:
            return None
        if time.monotonic() - self._read_at > self.RATE_READ_AHEAD_SECONDS:
            return None
        return rate

    def run(self, authenticate):
        """``authenticate()`` behind the gate; a failed client authentication counted."""
        self.check()
        try:
            return authenticate()
        except OAuthError as exc:
            if exc.status == 401:
                self.failed()
            raise


def assertion_subject(assertion: str) -> str | None:
    """The service name a client assertion claims (``sub``, not verified), None when it
    names none: only to read that client's rate window ahead (:class:`FailureGate`)."""
    try:
        claimed = unverified_claims(assertion).get("sub")
    except (TokenError, ValueError, TypeError, AttributeError):
        return None
    return claimed if isinstance(claimed, str) and SERVICE_NAME_RE.fullmatch(claimed) else None


def _principal(name: str, *, basic: bool) -> ServicePrincipal:
    # Called once the client authenticated (assertion or certificate): the cache's
    # entries are keyed by verified names only.
    principal = cached_principal(name) if SERVICE_NAME_RE.fullmatch(name or "") else None
    if principal is None:
        raise invalid_client("Client authentication failed.", basic=basic, principal=name)
    return principal


def authenticate_secret(client_id: str, secret: str, *, basic: bool) -> ServicePrincipal:
    """client_secret_basic / client_secret_post / the JSON service-token endpoint.

    The client's active secrets with the principal joined, through the principal cache
    (one query when not cached). An unknown client and a client without secrets fail
    alike.
    """
    rows = cached_secrets_of(client_id) if SERVICE_NAME_RE.fullmatch(client_id or "") else []
    if not rows or not match_secret(rows, secret, client_id=client_id):
        raise invalid_client("Client authentication failed.", basic=basic, principal=client_id)
    return rows[0].principal


def authenticate_assertion(
    request, assertion: str, client_id: str | None, conn_peer: VerifiedPeer | None
) -> ServicePrincipal:
    """private_key_jwt (RFC 7523 §2.2): a JWT signed by a key of the client.

    The key is the certificate of the assertion's ``x5c`` header (chained to our CA
    with the SPIFFE ID of ``client_id``), else a key registered for the client
    (``s2s_service register-key``, chosen by ``kid``), else the TLS connection's
    certificate. ``iss`` = ``sub`` = client_id, ``aud`` = the token endpoint URL or the
    issuer, ``exp``, ``iat`` (``exp - iat`` at most CLIENT_ASSERTION_MAX_LIFETIME),
    ``jti`` used once (remembered until ``exp``).
    """
    conf = s2s_settings()
    try:
        header = unverified_header(assertion)
        claimed = client_id or unverified_claims(assertion).get("sub")
    except TokenError as exc:
        raise invalid_client(f"Client assertion refused: {exc.code}.", basic=False) from exc
    claimed = claimed if isinstance(claimed, str) and SERVICE_NAME_RE.fullmatch(claimed) else None
    peer, keys = _assertion_keys(header, claimed, conn_peer)
    name = client_id or (peer.service_name if peer is not None else claimed)
    if peer is not None and peer.service_name != name:
        raise invalid_client(
            "The assertion's certificate does not belong to the client.",
            basic=False,
            principal=name,
        )
    issuer = issuer_url(request)
    refused: TokenError | None = None
    for key in keys:
        try:
            verified = verify(
                assertion,
                key,
                algorithms=conf.JWT_ALGORITHMS,
                audience=[token_endpoint_url(request), issuer],
                issuer=name,
                subject=name,
                typ=ASSERTION_TYPS,
                leeway=conf.CLOCK_SKEW,
                max_lifetime=int(conf.CLIENT_ASSERTION_MAX_LIFETIME),
                require=("exp", "iat", "jti", "iss", "sub", "aud"),
            )
            break
        except TokenError as exc:
            refused = exc
    else:
        code = refused.code if refused is not None else "unknown_key"
        raise invalid_client(
            f"Client assertion refused: {code}.", basic=False, principal=name or ""
        ) from refused
    claims = verified.claims
    remaining = float(claims["exp"]) + float(conf.CLOCK_SKEW) - time.time()
    if not remember_once("pkjwt", name, str(claims["jti"]), ttl=remaining):
        raise invalid_client(
            "Client assertion was already used (jti).", basic=False, principal=name
        )
    principal = _principal(name, basic=False)
    if peer is not None and principal.name != peer.service_name:  # any SPIFFE ID layout
        raise invalid_client(
            "The certificate's SPIFFE ID is not the client's.", basic=False, principal=name
        )
    return principal


#: At most this many registered keys are tried for an assertion without ``kid``.
MAX_ASSERTION_KEYS = 8


def _assertion_keys(
    header: dict, name: str | None, conn_peer: VerifiedPeer | None
) -> tuple[VerifiedPeer | None, list]:
    """The certificate (if the key is one) and the keys that may verify an assertion."""
    x5c = header.get("x5c")
    if x5c is not None:
        try:
            peer = peer_verifier().verify(x5c_decode(x5c))
        except TokenError as exc:
            raise invalid_client(
                "Client assertion x5c must be a list of 1-8 base64 DER certificates.",
                basic=False,
            ) from exc
        except CertificateRejected as exc:
            raise invalid_client(
                f"Client assertion certificate refused: {exc.code}.", basic=False
            ) from exc
        return peer, [peer.leaf.public_key()]
    keys = client_keys_of(name, header.get("kid"))[:MAX_ASSERTION_KEYS] if name else []
    if keys:
        return None, keys
    if conn_peer is not None:
        return conn_peer, [conn_peer.leaf.public_key()]
    raise invalid_client(
        "Client assertion names no certificate (x5c), the client has no registered key "
        "for it and no TLS client certificate was presented.",
        basic=False,
        principal=name or "",
    )


def authenticate_tls(client_id: str | None, conn_peer: VerifiedPeer | None) -> ServicePrincipal:
    """tls_client_auth (RFC 8705 §2.1): the TLS client certificate of the connection."""
    if conn_peer is None:
        raise invalid_client(
            "No client authentication: no credentials and no TLS client certificate.",
            principal=client_id or "",
        )
    name = client_id or conn_peer.service_name
    if name != conn_peer.service_name:
        raise invalid_client(
            "The TLS client certificate does not belong to the client.", basic=False, principal=name
        )
    principal = _principal(name, basic=False)
    if principal.name != conn_peer.service_name:
        raise invalid_client(
            "The certificate's SPIFFE ID is not the client's.", basic=False, principal=name
        )
    return principal


def bind_peer(principal: ServicePrincipal, conn_peer: VerifiedPeer | None) -> VerifiedPeer | None:
    """The certificate to bind the token to; a certificate of another service is refused."""
    if conn_peer is None:
        return None
    if conn_peer.service_name != principal.name:
        raise invalid_client(
            "The TLS client certificate belongs to another service.",
            basic=False,
            principal=principal.name,
        )
    return conn_peer


def ensure_enabled(principal: ServicePrincipal) -> None:
    if not principal.enabled:
        raise OAuthError("unauthorized_client", "The client is disabled.", principal=principal.name)


# ----------------------------------------------------------------- scope and aud


def select_scopes(principal: ServicePrincipal, requested: str | None) -> list[str]:
    """RFC 6749 §3.3: requested ⊆ granted, else invalid_scope; omitted: all granted."""
    granted = principal.scope_set
    if requested is None or not requested.strip():
        if not granted:
            raise OAuthError(
                "invalid_scope", "The client has no granted scope.", principal=principal.name
            )
        return sorted(granted)
    return requested_within(requested, granted, principal, "Scope not granted to this client")


def requested_within(
    requested: str, available: set[str], principal: ServicePrincipal, refusal: str
) -> list[str]:
    """The scopes of a ``scope`` parameter, all within ``available``, else invalid_scope."""
    wanted = requested.split(" ")
    if any(not token for token in wanted):
        raise OAuthError("invalid_request", "Malformed scope parameter.")
    beyond = sorted(set(wanted) - available)
    if beyond:
        raise OAuthError(
            "invalid_scope", f"{refusal}: {' '.join(beyond)}.", principal=principal.name
        )
    return sorted(set(wanted))


def resolve_audiences(values: list[str], principal: ServicePrincipal | None = None) -> list[str]:
    """SPIFFE IDs of the requested target services (RFC 8707 ``invalid_target``).

    At most ``TOKEN_MAX_TARGETS`` of them, each a registered service: a principal,
    this issuer's own service, or a service the client's granted scopes name.
    """
    conf = s2s_settings()
    trust_domain = conf.TRUST_DOMAIN
    limit = int(conf.TOKEN_MAX_TARGETS)
    if len(values) > limit:
        raise OAuthError("invalid_target", f"At most {limit} resource/audience values.")
    names: list[str] = []
    for value in values:
        name = (service_name(value, trust_domain) or "") if is_spiffe_id(value) else value
        if not SERVICE_NAME_RE.fullmatch(name):
            raise OAuthError(
                "invalid_target",
                f"Not a service of trust domain {trust_domain}: {value[:100]!r}.",
            )
        if name not in names:
            names.append(name)
    unknown = [name for name in names if name not in known_targets(names, principal)]
    if unknown:
        raise OAuthError("invalid_target", f"No registered service {unknown[0]!r}.")
    return [spiffe_id(name, trust_domain) for name in names]


def known_targets(names: list[str], principal: ServicePrincipal | None) -> set[str]:
    """Which of ``names`` are services this issuer knows (one query)."""
    known = {str(s2s_settings().SERVICE_NAME or "")}
    if principal is not None:
        known |= {m.group(1) for m in map(_SCOPE_SERVICE_RE.match, principal.scope_set) if m}
    rest = set(names) - known
    if rest:
        known |= set(ServicePrincipal.objects.filter(name__in=rest).values_list("name", flat=True))
    return known


def default_audiences(scopes: list[str]) -> list[str]:
    names = sorted({m.group(1) for m in map(_SCOPE_SERVICE_RE.match, scopes) if m})
    if names:
        return [spiffe_id(name) for name in names]
    own = s2s_settings().own_spiffe_id
    return [own] if own else []


# -------------------------------------------------------------------------- minting


def _sign(claims: dict[str, Any]) -> str:
    key = key_store().current()
    return sign(claims, key.private_key, kid=key.kid, typ=TOKEN_TYPE)


def _response(token: str, lifetime: int, scope: str) -> dict[str, Any]:
    body = {"access_token": token, "token_type": "Bearer", "expires_in": lifetime}
    if scope:
        body["scope"] = scope
    return body


def mint_service_token(
    request,
    principal: ServicePrincipal,
    *,
    scopes: list[str],
    audiences: list[str] | None,
    peer: VerifiedPeer | None,
    method: str,
) -> dict[str, Any]:
    """The token response (RFC 6749 §5.1) for an authenticated, enabled client."""
    conf = s2s_settings()
    lifetime = int(conf.ACCESS_TOKEN_LIFETIME)
    now = int(time.time())
    aud = audiences or default_audiences(scopes) or [issuer_url(request)]
    claims: dict[str, Any] = {
        "iss": issuer_url(request),
        "sub": principal.spiffe_id,
        "client_id": principal.name,
        "aud": aud[0] if len(aud) == 1 else aud,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": now + lifetime,
        "jti": new_jti(),
    }
    if peer is not None:
        claims["cnf"] = {"x5t#S256": x5t_s256(peer.leaf)}
    token = _sign(claims)
    record_issued(request, method=method, claims=claims, token=token)
    logger.info(
        "issued token client=%s method=%s scope=%r aud=%s jti=%s bound=%s",
        principal.name,
        method,
        claims["scope"],
        claims["aud"],
        claims["jti"],
        peer.fingerprint[:16] if peer else "-",
    )
    return _response(token, lifetime, claims["scope"])


def mint_user_token(request, user) -> dict[str, Any]:
    conf = s2s_settings()
    lifetime = int(conf.USER_TOKEN_LIFETIME)
    now = int(time.time())
    scope = str(s2s_settings().USER_TOKEN_SCOPE or "")
    claims: dict[str, Any] = {
        "iss": issuer_url(request),
        "sub": str(user.pk),
        "username": user.get_username(),
        "client_id": conf.SERVICE_NAME or "login",
        "aud": s2s_settings().USER_TOKEN_AUDIENCE,
        "scope": scope,
        "iat": now,
        "exp": now + lifetime,
        "jti": new_jti(),
    }
    token = _sign(claims)
    record_issued(request, method="login", claims=claims, token=token)
    return _response(token, lifetime, scope)
