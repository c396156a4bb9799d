"""Rate limits of the identity service: DRF throttles on Django's cache.

The request history lives in Django's cache (Redis in production), so a limit holds
across worker processes that share it. DRF's :class:`SimpleRateThrottle` keeps a
sliding window (the timestamps of the last ``limit`` requests): no burst of
``2 * limit`` across a window edge. Its read-modify-write is not atomic, so under a
concurrent burst a handful of requests beyond the limit may pass; that is the trade
for DRF's well-kept throttle and one cache round trip each way.

Limits are read from ``S2S_AUTH`` when the throttle is built (per request), so
``override_settings`` works; ``0`` turns a limit off. Throttles whose key comes from
the request body (the client at ``/oauth/token``, the username at login) are given
their key by the view once the body is validated: ``TokenRateThrottle(client_id)``.
"""

from __future__ import annotations

import hashlib
import math

from rest_framework.throttling import SimpleRateThrottle

from s2s_auth.conf import s2s_settings

__all__ = [
    "IssuerRateThrottle",
    "LoginRateThrottle",
    "RegistrationRateThrottle",
    "TokenRateThrottle",
    "retry_after",
]


class IssuerRateThrottle(SimpleRateThrottle):
    """A throttle whose rate is an ``S2S_AUTH`` setting and whose key is ``ident``.

    Without an ``ident``, the key is the peer address (``REMOTE_ADDR``). DRF's
    ``get_ident`` would trust ``X-Forwarded-For`` from anyone, which lets a caller
    pick a fresh key per request.
    """

    #: The ``S2S_AUTH`` key holding the number of requests per :attr:`period`.
    setting = ""
    #: ``"minute"`` or ``"hour"`` (DRF's rate syntax).
    period = "minute"
    cache_format = "s2s:throttle:%(scope)s:%(ident)s"

    def __init__(self, ident: str | None = None):
        self.ident = ident
        super().__init__()

    def get_rate(self) -> str | None:
        limit = int(getattr(s2s_settings(), self.setting))
        return f"{limit}/{self.period}" if limit > 0 else None

    def get_ident(self, request) -> str:
        return request.META.get("REMOTE_ADDR", "")

    def get_cache_key(self, request, view) -> str:
        ident = self.ident if self.ident is not None else self.get_ident(request)
        # Hashed: usernames and client ids may hold anything, cache keys may not.
        digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": digest}


class TokenRateThrottle(IssuerRateThrottle):
    """Token requests per client id, failed ones included (secret guessing)."""

    scope = "token"
    setting = "TOKEN_RATE_LIMIT_PER_MINUTE"


class LoginRateThrottle(IssuerRateThrottle):
    """Login attempts per (username, IP): ``LoginRateThrottle(f"{username}|{ip}")``."""

    scope = "login"
    setting = "LOGIN_RATE_LIMIT_PER_MINUTE"

    @classmethod
    def for_user(cls, request, username: str) -> LoginRateThrottle:
        return cls(f"{username.casefold()}|{request.META.get('REMOTE_ADDR', '')}")


class RegistrationRateThrottle(IssuerRateThrottle):
    """Service registrations per client IP (a view's ``throttle_classes``)."""

    scope = "register"
    setting = "REGISTRATION_RATE_LIMIT_PER_HOUR"
    period = "hour"


def retry_after(throttle: SimpleRateThrottle) -> int:
    """Whole seconds for ``Retry-After`` after ``throttle`` refused (at least 1)."""
    wait = throttle.wait()
    return max(1, math.ceil(throttle.duration if wait is None else wait))
