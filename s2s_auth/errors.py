"""The one place where s2s_auth's reason codes become HTTP errors.

Core modules raise their own errors (``CertificateRejected``, ``TokenError``,
``SignatureError``), each with a snake_case ``code``. The DRF adapters turn them
into one of two exceptions: ``CredentialMissing`` (401, with ``WWW-Authenticate``)
when no usable credential was presented, ``CredentialRejected`` (403) when one was
presented and is invalid or not allowed. Bodies are ``{"error": code, "detail": text}``.
"""

from __future__ import annotations

from rest_framework import exceptions

__all__ = ["CredentialMissing", "CredentialRejected", "exception_handler"]


class CredentialMissing(exceptions.AuthenticationFailed):
    def __init__(self, code: str, detail: str):
        super().__init__({"error": code, "detail": detail}, code=code)
        self.reason = code


class CredentialRejected(exceptions.PermissionDenied):
    def __init__(self, code: str, detail: str):
        super().__init__({"error": code, "detail": detail}, code=code)
        self.reason = code


def exception_handler(exc, context):
    """DRF's handler, with plain ``{"detail": ...}`` bodies given an ``error`` code too.

    Set ``REST_FRAMEWORK["EXCEPTION_HANDLER"] = "s2s_auth.errors.exception_handler"``.
    Field validation errors keep DRF's per-field shape.
    """
    # Imported here: rest_framework.views imports DEFAULT_AUTHENTICATION_CLASSES at
    # import time, so a module-level import would be circular when s2s_auth classes
    # are listed there.
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
