"""DRF adapters for OAuth2 access tokens (verified by :mod:`s2s_auth.core.access_tokens`).

Two adapters share the pipeline
(``get_raw_token → get_validated_token → check_binding → get_user``):

* :class:`AccessTokenAuthentication` — tokens issued to a *service* (``sub`` is the
  SPIFFE ID of an enabled principal). ``request.user`` is a ``ServiceIdentity`` whose
  scopes are the token's ``scope`` ∩ the principal's current scopes; its ``end_user``
  comes from an exchanged user-context token beside it (``S2S-End-User-Token``,
  :mod:`s2s_auth.mechanisms.user_context`), accepted only from the service its ``act``
  names.
* :class:`EndUserTokenAuthentication` — tokens issued to an end user (``sub`` a user
  id); ``request.user`` is a stateless :class:`TokenUser`.

A token carrying ``cnf.x5t#S256`` (RFC 8705) is accepted only over mTLS with the
certificate of that SHA-256 thumbprint. ``request.auth`` is an ``AccessToken``.

Statuses come from :data:`s2s_auth.errors.HTTP_STATUS` (the ``bearer`` column): a 401
for a token that a fresh one from the issuer fixes (``missing_token``,
``malformed_token``, ``token_too_large``, ``expired``, ``not_yet_valid``,
``unknown_key``) carries ``WWW-Authenticate: Bearer realm=..., error="invalid_token",
error_description=...`` (RFC 6750 §3; a 403 for a refused token carries it too, and a
403 for a missing scope ``error="insufficient_scope"``), and clients
(``s2s_auth.client.token_manager.BearerTokenAuth``) refresh once on it; a 401
``certificate_required`` (a certificate-bound token without a client certificate) has
no ``error`` parameter (RFC 6750 §3.1); a token that verifies badly or is not allowed
is a 403; ``jwks_unavailable`` (the issuer's keys were never fetched and the issuer is
unreachable) is a 503 with ``Retry-After``: the token may well be valid, and a 401
would make every client fetch new tokens from an issuer that is down.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

from s2s_auth.audit import events
from s2s_auth.conf import s2s_settings
from s2s_auth.core.access_tokens import AccessToken, validate_access_token
from s2s_auth.core.certs import VerifiedPeer
from s2s_auth.core.jose import TokenError
from s2s_auth.core.jwks import JWKSUnavailable
from s2s_auth.core.x509 import CertificateRejected, x5t_s256
from s2s_auth.errors import S2SError
from s2s_auth.identity import EndUser, is_spiffe_id, service_name
from s2s_auth.mechanisms.base import (
    DependencyUnavailable,
    ServiceAuthentication,
    identity_for_name,
)
from s2s_auth.tls.peer import verify_peer
from s2s_auth.tls.proxy_headers import ProxyHeaderError

__all__ = [
    "AccessTokenAuthentication",
    "BearerTokenAuthentication",
    "EndUserTokenAuthentication",
    "TokenUser",
]
# RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E.
_UNSAFE_DESCRIPTION = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")


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


# ------------------------------------------------------------------------- adapters


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


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
        raw = self.get_authorization(request)
        if raw is None:
            return None
        if not raw or len(raw.split()) != 1:
            code = "malformed_token" if raw else "missing_token"
            self.reject(request, TokenError(code, "Authorization: Bearer needs exactly one token"))
        if not raw.isascii():
            self.reject(request, TokenError("malformed_token", "token is not ASCII"))
        return raw

    def get_validated_token(self, request, raw: str) -> AccessToken:
        try:
            return validate_access_token(raw, kind=self.kind, audiences=self.audiences())
        except (TokenError, JWKSUnavailable) as exc:
            self.reject(request, exc)

    def check_binding(self, request, token: AccessToken) -> VerifiedPeer | None:
        """RFC 8705: a ``cnf.x5t#S256`` token needs the mTLS certificate it names.

        Returns the verified peer when the request has one (bound or not).
        """
        cnf = token.claims.get("cnf")
        evidence = {"principal": str(token.claims.get("sub", "")), "claims": token.claims}
        try:
            peer = verify_peer(request)
        except ProxyHeaderError as exc:
            self.reject(request, S2SError("malformed_proxy_header", exc.detail), **evidence)
        except CertificateRejected as exc:
            self.reject(request, exc, fingerprint=exc.fingerprint or "", **evidence)
        if cnf is None:
            return peer
        thumb = cnf.get("x5t#S256") if isinstance(cnf, dict) else None
        if not isinstance(thumb, str) or not thumb.isascii():
            self.reject(
                request,
                S2SError(
                    "unsupported_token_binding",
                    "Only certificate-bound (cnf.x5t#S256) tokens are accepted as Bearer.",
                ),
                **evidence,
            )
        if peer is None:
            self.reject(
                request,
                S2SError(
                    "certificate_required",
                    "This token is bound to a client certificate; call over mutual TLS.",
                ),
                **evidence,
            )
        if not hmac.compare_digest(thumb.encode("ascii"), x5t_s256(peer.leaf).encode()):
            self.reject(
                request,
                S2SError(
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
    def http_error(self, request, error):
        """A refused token is named in the challenge (RFC 6750 §3.1 ``invalid_token``),
        on a 401 and on a 403 alike; a 401 ``certificate_required`` (no credential for
        the binding) and a 503 carry no ``error``."""
        exc = super().http_error(request, error)
        if not isinstance(exc, DependencyUnavailable) and exc.reason != "certificate_required":
            request._s2s_bearer_error = (exc.reason, str(exc.detail["detail"]))
        return exc

    def forbidden_challenge(self, request) -> str | None:
        return self.authenticate_header(request)

    def scope_challenge(self, request, scopes: list[str]) -> str | None:
        realm = s2s_settings().own_spiffe_id or "s2s"
        value = f'{self.keyword} realm="{realm}", error="insufficient_scope"'
        if scopes:
            value += f', scope="{_UNSAFE_DESCRIPTION.sub("", " ".join(scopes))}"'
        return value

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
            self.reject(
                request,
                S2SError(
                    "not_a_service_token",
                    "This token was not issued to a service of this trust domain.",
                ),
                **evidence,
            )
        if token.client_id is not None and token.client_id != name:
            self.reject(
                request,
                TokenError("invalid_claim", "client_id does not match sub"),
                **evidence,
            )
        try:
            identity = identity_for_name(
                name,
                sub,
                self.mechanism,
                end_user=self.end_user(request, sub),
                scopes=token.scopes,  # the token's scope ∩ the principal's current scopes
            )
        except (S2SError, TokenError) as exc:
            self.reject(request, exc, fingerprint=fingerprint, **evidence)
        self.accept(request, identity, claims=token.claims, fingerprint=fingerprint)
        return identity


class EndUserTokenAuthentication(BearerTokenAuthentication):
    """Access tokens issued to end users (``POST /api/v1/auth/login``).

    Same issuer and JWKS as service tokens; the audience is
    ``S2S_AUTH["END_USER_AUDIENCE"]`` (a string or a list; by default the trust domain's
    SPIFFE ID, see ``s2s_auth.conf.DEFAULTS``).
    A service token is refused here (``not_an_end_user_token``).
    """

    mechanism = "end_user_token"
    kind = "end_user"

    def audiences(self) -> list[str]:
        return _as_list(s2s_settings().END_USER_AUDIENCE)

    def get_user(self, request, token: AccessToken, peer: VerifiedPeer | None):
        sub = token.subject
        if is_spiffe_id(sub):
            self.reject(
                request,
                S2SError(
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
