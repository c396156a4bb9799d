"""What every DRF authentication class of s2s_auth shares.

* :func:`authorization_header` — the ``Authorization`` header, parsed once:
  ``(scheme, value)`` with the scheme compared case-insensitively (RFC 9110 §11.1).
* :func:`http_error` — the one place an error's reason ``code`` becomes a DRF
  exception, by :data:`s2s_auth.errors.HTTP_STATUS`: no mechanism picks 401 or 403.
* :class:`ServiceAuthentication` — the base class; ``reject()`` is the refusal path.
* :func:`challenge` / :func:`forbidden_challenge` — ``WWW-Authenticate``: the refusing
  mechanism's own challenge (RFC 6750's ``error="invalid_token"`` for Bearer), every
  accepted scheme when no credential was presented, ``insufficient_scope`` on a 403
  for a Bearer token without the view's scopes.
"""

from __future__ import annotations

import time

from rest_framework import exceptions, status
from rest_framework.authentication import BaseAuthentication

from s2s_auth import metrics
from s2s_auth.audit import events
from s2s_auth.conf import s2s_settings
from s2s_auth.credentials.principals import cached_principal
from s2s_auth.errors import S2SError, http_status
from s2s_auth.identity import ServiceIdentity, service_name
from s2s_auth.mechanisms.user_context import end_user_beside
from s2s_auth.models import ServicePrincipal

__all__ = [
    "CredentialMissing",
    "CredentialRejected",
    "DependencyUnavailable",
    "ServiceAuthentication",
    "authorization_header",
    "challenge",
    "forbidden_challenge",
    "http_error",
    "identity_for",
    "identity_for_name",
    "identity_from_principal",
]


class CredentialMissing(exceptions.AuthenticationFailed):
    """401: no usable credential was presented (DRF adds ``WWW-Authenticate``)."""

    def __init__(self, code: str, detail: str):
        super().__init__({"error": code, "detail": detail}, code=code)
        self.reason = code


class CredentialRejected(exceptions.PermissionDenied):
    """403: a credential was presented and is invalid or not allowed."""

    def __init__(self, code: str, detail: str):
        super().__init__({"error": code, "detail": detail}, code=code)
        self.reason = code


class DependencyUnavailable(exceptions.APIException):
    """503 with ``Retry-After``: a dependency (the issuer's keys, the CRL) is down, so
    the credential cannot be checked. The fault is ours and transient."""

    status_code = status.HTTP_503_SERVICE_UNAVAILABLE

    def __init__(self, code: str, detail: str, retry_after: float | None = None):
        super().__init__({"error": code, "detail": detail}, code=code)
        self.reason = code
        self.wait = max(1, int(retry_after or 1))  # DRF's handler sends it as Retry-After


HTTPError = CredentialMissing | CredentialRejected | DependencyUnavailable


def http_error(error, *, scheme: str | None = None) -> HTTPError:
    """The DRF exception for ``error``: an :class:`~s2s_auth.errors.S2SError` or any
    exception with a reason ``code`` and a ``detail`` (the status comes from
    :data:`~s2s_auth.errors.HTTP_STATUS`). An HTTP error is returned as it is."""
    if isinstance(error, CredentialMissing | CredentialRejected | DependencyUnavailable):
        return error
    code, detail = error.code, str(error.detail)
    status_code = http_status(code, scheme)
    if status_code == 401:
        return CredentialMissing(code, detail)
    if status_code == 503:
        return DependencyUnavailable(code, detail, getattr(error, "retry_after", None))
    return CredentialRejected(code, detail)


def authorization_header(request) -> tuple[str, str] | None:
    """``(scheme, credentials)`` of the ``Authorization`` header, or None without one.

    The scheme is returned lower-cased (schemes are case-insensitive); the credentials
    are the rest of the header with outer whitespace removed ("" when there is none).
    Works on a Django or a DRF request.
    """
    # A DRF request's META is Django's, reached through __getattr__: read it directly.
    header = getattr(request, "_request", request).META.get("HTTP_AUTHORIZATION")
    if not header or not isinstance(header, str):
        return None
    parts = header.split(None, 1)
    if not parts:
        return None
    return parts[0].lower(), parts[1].strip() if len(parts) == 2 else ""


def identity_for(spiffe_id: str, mechanism: str, *, end_user=None) -> ServiceIdentity:
    """The enabled principal this SPIFFE ID names (in any SPIFFE_ID_PATHS layout); else
    S2SError ``bad_spiffe_id``, ``unknown_principal`` or ``principal_disabled``.

    Read through the principal cache (:mod:`s2s_auth.credentials.cache`): a change is
    seen within ``PRINCIPAL_CACHE_SECONDS``."""
    name = service_name(spiffe_id, s2s_settings().TRUST_DOMAIN)
    if name is None:
        raise S2SError("bad_spiffe_id", f"{spiffe_id[:100]} names no service of this trust domain.")
    return identity_for_name(name, spiffe_id, mechanism, end_user=end_user)


def identity_for_name(
    name: str, spiffe_id: str, mechanism: str, *, end_user=None, scopes=None
) -> ServiceIdentity:
    """:func:`identity_for` for a caller that has read the service ``name`` out of
    ``spiffe_id`` already; ``scopes`` (a set) narrows the principal's scopes."""
    principal = cached_principal(name)
    if principal is None:
        raise S2SError("unknown_principal", f"{spiffe_id} is not a registered service principal.")
    return identity_from_principal(principal, mechanism, end_user=end_user, scopes=scopes)


def identity_from_principal(
    principal: ServicePrincipal, mechanism: str, *, end_user=None, scopes=None
) -> ServiceIdentity:
    """The identity of an enabled ``principal``; ``scopes`` (a set) narrows its scopes
    (an access token's ``scope``)."""
    if not principal.enabled:
        raise S2SError("principal_disabled", f"{principal.name} is disabled.")
    granted = principal.scope_set
    return ServiceIdentity(
        name=principal.name,
        spiffe_id=principal.spiffe_id,
        scopes=granted if scopes is None else frozenset(granted & scopes),
        mechanism=mechanism,
        principal_id=principal.id,  # (the primary key: .pk without the property)
        end_user=end_user,
    )


class ServiceAuthentication(BaseAuthentication):
    """Base class: ``mechanism`` names the scheme in audit records and ``request.user``;
    ``keyword`` is the ``Authorization`` scheme, for the mechanisms that use one.

    Subclasses call ``self.reject(request, error, ...)`` for every refusal so that it is
    mapped to its status, logged and audited exactly once, and ``self.accept(...)`` on
    success.
    """

    mechanism = "unknown"
    keyword: str | None = None

    def __init__(self):
        # DRF makes the authenticators per request: the decision's latency counts from here.
        self._started = time.perf_counter()

    def get_authorization(self, request) -> str | None:
        """The credentials of ``Authorization: <keyword> <credentials>`` ("" for the
        scheme alone); None without the header or for another scheme."""
        parsed = authorization_header(request)
        if parsed is None or not self.keyword or parsed[0] != self.keyword.lower():
            return None
        return parsed[1]

    def http_error(self, request, error) -> HTTPError:
        """The HTTP answer to ``error`` (a hook: Bearer adds its challenge here)."""
        return http_error(error, scheme=self.keyword)

    def reject(self, request, error, **evidence):
        """Refuse the request with ``error`` (anything with ``code`` and ``detail``)."""
        self.refuse(request, self.http_error(request, error), **evidence)

    def refuse(self, request, exc: HTTPError, **evidence):
        request._s2s_refused_by = self  # its challenge answers the refusal
        events.record(
            request,
            events.Decision(
                mechanism=self.mechanism,
                outcome="refused",
                reason=exc.reason,
                detail=str(exc.detail.get("detail", "")),
                **evidence,
            ),
        )
        metrics.decision(self.mechanism, "refused", exc.reason, self._elapsed())
        raise exc

    def forbidden_challenge(self, request) -> str | None:
        """``WWW-Authenticate`` for a 403 this mechanism refused (None: no header)."""
        return None

    def scope_challenge(self, request, scopes: list[str]) -> str | None:
        """``WWW-Authenticate`` for a 403 for want of ``scopes`` (None: no header)."""
        return None

    def accept(self, request, identity: ServiceIdentity, **evidence) -> None:
        events.record(
            request,
            events.Decision(
                mechanism=self.mechanism,
                outcome="accepted",
                principal=identity.spiffe_id,
                end_user=identity.end_user.id if identity.end_user else "",
                **evidence,
            ),
        )
        metrics.decision(self.mechanism, "accepted", "", self._elapsed())

    def end_user(self, request, caller: str):
        """The user context sent beside the credential (``S2S-End-User-Token``): a token
        exchanged for this service (RFC 8693) whose ``act`` names ``caller``; None
        without one. Raises TokenError when one is sent and is not acceptable."""
        return end_user_beside(request, caller)

    def _elapsed(self) -> float | None:
        started = getattr(self, "_started", None)  # None: a subclass skipped __init__
        return None if started is None else time.perf_counter() - started


def challenge(request, authenticators) -> str:
    """``WWW-Authenticate`` of a 401: the challenge of the mechanism that refused the
    credential, else (no credential at all) every accepted scheme's, each once."""
    refused_by = getattr(request, "_s2s_refused_by", None)
    if refused_by is not None:
        return refused_by.authenticate_header(request)
    values: list[str] = []
    for authenticator in authenticators:
        value = authenticator.authenticate_header(request)
        if value and value not in values:
            values.append(value)
    return ", ".join(values)


def forbidden_challenge(request, scopes: list[str]) -> str | None:
    """``WWW-Authenticate`` of a 403, if the mechanism involved has one: a refused
    credential's (Bearer: ``invalid_token``), or a missing scope's
    (Bearer: ``insufficient_scope``, RFC 6750 §3.1)."""
    refused_by = getattr(request, "_s2s_refused_by", None)
    if refused_by is not None:
        return refused_by.forbidden_challenge(request)
    # Not request.successful_authenticator: that would authenticate again.
    authenticator = getattr(request, "_authenticator", None)
    hook = getattr(authenticator, "scope_challenge", None)
    return hook(request, scopes) if hook is not None else None
