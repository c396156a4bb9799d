"""One exception family for every refusal, and the one place a reason becomes a status.

Core modules raise subclasses of :class:`S2SError` (``TokenError``,
``CertificateRejected``, ``SignatureError``, ...), each with a snake_case ``code`` and a
``detail`` for humans. The DRF adapters (``s2s_auth.mechanisms.base``) turn them into
HTTP answers: 401 with ``WWW-Authenticate`` when no usable credential was presented,
403 when one was presented and is invalid or not allowed, 503 when a dependency is
down. Bodies are ``{"error": code, "detail": text}``.

This module imports nothing of DRF, so the request-free core can raise these errors.
"""

from __future__ import annotations

__all__ = ["S2SError", "exception_handler"]


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
