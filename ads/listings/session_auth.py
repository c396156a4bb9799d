"""The end user signed in through ads' browsable API (:mod:`.signin`): the access token
UserService issued, kept in the session, verified on every request as a Bearer token is.

``request.user`` and ``request.auth`` are exactly what ``EndUserTokenAuthentication``
gives an app (a ``TokenUser`` and the ``AccessToken``), so ownership, deals and the
user context forwarded to UserService do not know how the user signed in. A session is
ambient (the browser sends it by itself), so every request it authenticates passes
Django's CSRF check, as DRF's ``SessionAuthentication`` does. A token that no longer
verifies (expired, keys rotated away) ends the sign-in: it is dropped from the session
and the request goes on anonymous; an issuer that is down is still a 503.
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import CSRFCheck

from s2s_auth import EndUserTokenAuthentication

from .signin import SESSION_TOKEN

__all__ = ["SessionTokenAuthentication"]


class SessionTokenAuthentication(EndUserTokenAuthentication):
    """An end user's access token from the session instead of the header."""

    mechanism = "end_user_session"

    def get_raw_token(self, request) -> str | None:
        session = getattr(request._request, "session", None)
        raw = session.get(SESSION_TOKEN) if session is not None else None
        return raw if isinstance(raw, str) and raw else None

    def authenticate(self, request):
        try:
            result = super().authenticate(request)
        except (exceptions.AuthenticationFailed, exceptions.PermissionDenied):
            request._request.session.pop(SESSION_TOKEN, None)  # signed out
            return None
        if result is not None:
            enforce_csrf(request)
        return result


def enforce_csrf(request) -> None:
    """Django's CSRF check for a request authenticated by its session (DRF's way)."""
    check = CSRFCheck(lambda _request: None)
    check.process_request(request)  # reads the CSRF cookie into request.META
    reason = check.process_view(request, None, (), {})
    if reason:
        raise exceptions.PermissionDenied(f"CSRF Failed: {reason}", code="csrf_failed")
