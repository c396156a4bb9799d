"""One exception family for every refusal, and the one place a reason becomes a status.

Core modules raise subclasses of :class:`S2SError` (``TokenError``,
``CertificateRejected``, ``SignatureError``, ...), each with a snake_case ``code`` and a
``detail`` for humans. :data:`HTTP_STATUS` says which HTTP answer each code gets: 401
with ``WWW-Authenticate`` when no usable credential was presented, 403 when one was
presented and is invalid or not allowed, 503 when a dependency is down. The DRF
adapters turn an error into that answer in one place
(``s2s_auth.mechanisms.base.http_error``). Bodies are ``{"error": code, "detail": text}``.

This module imports nothing of DRF, so the request-free core can raise these errors.
"""

from __future__ import annotations

__all__ = ["HTTP_STATUS", "S2SError", "exception_handler", "http_status"]

#: The one table from reason code to HTTP status. A code not listed is a 403: a
#: credential was presented and is invalid or not allowed. A key may be a code, or
#: ``(scheme, code)`` for a code whose status depends on the ``Authorization`` scheme.
HTTP_STATUS: dict[str | tuple[str, str], int] = {
    # 401 (with WWW-Authenticate): no usable credential, or one we cannot identify.
    "missing_credential": 401,
    "missing_token": 401,
    "certificate_missing": 401,
    "certificate_required": 401,
    "unknown_key": 401,
    "malformed_api_key": 401,
    "unknown_api_key": 401,
    # Bearer tokens come from an issuer: what a fresh token fixes is a 401
    # ``invalid_token`` (RFC 6750 §3.1), so clients refresh once. A self-signed service
    # JWT with the same fault is the caller's own bug: 403.
    ("bearer", "malformed_token"): 401,
    ("bearer", "token_too_large"): 401,
    ("bearer", "expired"): 401,
    ("bearer", "not_yet_valid"): 401,
    # 503 (with Retry-After): a dependency of ours is down; the credential may be
    # fine, so neither 401 (clients would fetch new credentials) nor 403.
    "jwks_unavailable": 503,
    "crl_unavailable": 503,
    "crl_stale": 503,
    "crl_invalid": 503,
    "trust_anchors_unavailable": 503,
    "replay_store_unavailable": 503,
}


def http_status(code: str, scheme: str | None = None) -> int:
    """The HTTP status of reason ``code`` (under ``Authorization`` ``scheme``, if any)."""
    if scheme:
        status = HTTP_STATUS.get((scheme.lower(), code))
        if status is not None:
            return status
    return HTTP_STATUS.get(code, 403)


class S2SError(Exception):
    """A refusal with a reason ``code`` (snake_case) and a ``detail`` for humans."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def exception_handler(exc, context):
    """DRF's handler, with plain ``{"detail": ...}`` bodies given an ``error`` code too.

    Set ``REST_FRAMEWORK["EXCEPTION_HANDLER"] = "s2s_auth.errors.exception_handler"``.
    Field validation errors keep DRF's per-field shape.
    """
    # Imported here: rest_framework.views imports DEFAULT_AUTHENTICATION_CLASSES at
    # import time, so a module-level import would be circular when s2s_auth classes
    # are listed there; and the core imports this module without DRF.
    from rest_framework import exceptions
    from rest_framework.views import exception_handler as drf_exception_handler

    response = drf_exception_handler(exc, context)
    if (
        response is not None
        and isinstance(response.data, dict)
        and set(response.data) == {"detail"}
    ):
        codes = exc.get_codes() if isinstance(exc, exceptions.APIException) else None
        response.data = {
            "error": codes if isinstance(codes, str) else "error",
            "detail": str(response.data["detail"]),
        }
    return response
