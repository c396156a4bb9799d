"""The base of every issuer endpoint: a DRF view that answers in RFC 6749 §5.2 terms.

The endpoints are anonymous (client authentication is OAuth's, not DRF's), so no
DRF authentication or permission class runs. Bodies are read by the bounded parsers
and validated by serializers; whatever DRF raises on the way (a parse error, an
unsupported media type, a validation error, a throttle) and every
:class:`~s2s_auth.issuer.oauth.OAuthError` becomes ``{"error", "error_description"}``
with ``Cache-Control: no-store``, and a log line without the credential (what the
caller sent is escaped there: no forged log lines). A store or key that is down is a
503 ``temporarily_unavailable`` with s2s_auth's ``reason`` code.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from s2s_auth.audit.issuance import record_refused
from s2s_auth.errors import S2SError, http_status
from s2s_auth.issuer import oauth
from s2s_auth.issuer.oauth import OAuthError
from s2s_auth.issuer.parsers import BoundedJSONParser
from s2s_auth.issuer.serializers import first_error
from s2s_auth.issuer.throttling import retry_after

__all__ = ["IssuerAPIView", "client_ip", "error_response", "loggable", "token_response"]

logger = logging.getLogger("s2s_auth.issuer")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


def loggable(value: str, limit: int = 200) -> str:
    """``value`` for a log line: control and non-ASCII characters escaped, bounded."""
    text = str(value)[:limit].encode("unicode_escape").decode("ascii")
    return text.replace('"', '\\"')


def error_response(exc: OAuthError) -> JsonResponse:
    body = {"error": exc.error, "error_description": exc.description}
    if exc.reason:
        body["reason"] = exc.reason
    response = JsonResponse(body, status=exc.status)
    for name, value in {**NO_STORE, **exc.headers}.items():
        response[name] = value
    return response


def token_response(body: dict[str, Any]) -> JsonResponse:
    response = JsonResponse(body)
    for name, value in NO_STORE.items():
        response[name] = value
    return response


class JSONWhateverAccept(DefaultContentNegotiation):
    """RFC 6749 answers are JSON: an ``Accept`` header cannot turn them into a 406."""

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class IssuerAPIView(APIView):
    """Anonymous DRF view with RFC 6749 error bodies; subclasses set ``parser_classes``."""

    authentication_classes = ()
    permission_classes = ()
    throttle_classes = ()
    renderer_classes = (JSONRenderer,)
    parser_classes = (BoundedJSONParser,)
    content_negotiation_class = JSONWhateverAccept
    #: Names the endpoint (or the client authentication method) in log lines.
    mechanism = "issuer"

    def validated(self, serializer_class, **context) -> dict[str, Any]:
        """The request body through ``serializer_class``; invalid_request otherwise."""
        serializer = serializer_class(data=self.request.data, context=context)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def throttle(self, throttle) -> None:
        """Count this request against ``throttle``; 429 ``slow_down`` when over."""
        if not throttle.allow_request(self.request, self):
            raise oauth.rate_limited(retry_after(throttle))

    def handle_exception(self, exc):
        oauth_error = exc if isinstance(exc, OAuthError) else self.as_oauth_error(exc)
        if oauth_error is None:
            return super().handle_exception(exc)  # a bug: Django's 500
        return self.refused(oauth_error)

    def as_oauth_error(self, exc) -> OAuthError | None:
        if isinstance(exc, S2SError) and http_status(exc.code) == 503:
            return OAuthError(
                "temporarily_unavailable",
                exc.detail,
                status=503,
                headers={"Retry-After": "5"},
                reason=exc.code,
            )
        if isinstance(exc, exceptions.Throttled):
            return oauth.rate_limited(max(1, math.ceil(exc.wait or 1)))
        if isinstance(exc, exceptions.ValidationError):
            return OAuthError("invalid_request", first_error(exc.detail))
        if isinstance(exc, exceptions.UnsupportedMediaType):
            types = " or ".join(parser.media_type for parser in self.get_parsers())
            return OAuthError("invalid_request", f"The body must be {types}.")
        if isinstance(exc, RequestDataTooBig):
            return OAuthError("invalid_request", "The body is too large.")
        if isinstance(exc, exceptions.APIException):
            return OAuthError("invalid_request", str(exc.detail), status=exc.status_code)
        return None

    def refused(self, exc: OAuthError) -> JsonResponse:
        """Log a refusal (never a credential) and answer it."""
        logger.warning(
            'issuer refused %s %s from %s: %s (%s) client="%s"',
            self.mechanism,
            loggable(self.request.path),
            client_ip(self.request) or "-",
            exc.reason or exc.error,
            loggable(exc.description, 300),
            loggable(exc.principal or "-", 100),
        )
        record_refused(
            self.request,
            mechanism=self.mechanism,
            error=exc.error,
            description=exc.description,
            client_id=exc.principal,
        )
        return error_response(exc)
