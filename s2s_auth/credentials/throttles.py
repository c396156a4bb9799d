"""Throttles on the shared replay store, and the login throttle every Django login uses.

DRF's :class:`SimpleRateThrottle` keeps a sliding window (the timestamps of the last
``limit`` requests) in a cache; here that cache is the replay store
(``S2S_AUTH["REPLAY_CACHE"]``), so a limit holds across every worker process. Its
read-modify-write is not atomic: under a concurrent burst a handful of requests
beyond the limit may pass, the trade for DRF's well-kept throttle. A store that does
not answer raises :class:`~s2s_auth.credentials.replay.ReplayStoreUnavailable` (503).

Limits are ``S2S_AUTH`` settings read when a throttle is built; ``0`` turns one off.

Logins: :class:`LoginThrottleBackend`, first in ``AUTHENTICATION_BACKENDS``, refuses
a login before the password hasher runs when the username has failed too often (from
any address) or the address has tried too often (any usernames): the admin's
``/admin/login/``, DRF's ``/api-auth/login/`` and the identity service's login alike.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging

from django.contrib.auth.signals import user_login_failed
from django.core.exceptions import PermissionDenied
from rest_framework.throttling import SimpleRateThrottle

from s2s_auth.conf import s2s_settings
from s2s_auth.credentials.replay import ReplayStoreUnavailable, replay_cache, unavailable

__all__ = [
    "FailureCounter",
    "LoginAttempts",
    "LoginFailures",
    "LoginThrottleBackend",
    "SharedRateThrottle",
    "client_address",
    "login_gate",
]

logger = logging.getLogger("s2s_auth.throttles")

#: Set on a request whose login attempt was counted already (by the login view).
GATED_ATTR = "_s2s_login_gated"


def client_address(request) -> str:
    """The peer address. Not ``X-Forwarded-For``: anyone could pick a fresh key."""
    meta = getattr(request, "META", None) or {}
    return str(meta.get("REMOTE_ADDR", ""))


class SharedRateThrottle(SimpleRateThrottle):
    """A DRF throttle on the replay store, its rate an ``S2S_AUTH`` setting.

    The key is ``ident`` when given (``Throttle(client_id)``), else the peer address.
    """

    #: The ``S2S_AUTH`` key holding the number of requests per :attr:`period`.
    setting = ""
    #: ``"minute"`` or ``"hour"`` (DRF's rate syntax).
    period = "minute"
    cache_format = "s2s:throttle:%(scope)s:%(ident)s"

    def __init__(self, ident: str | None = None):
        self.ident = ident
        super().__init__()

    @property
    def cache(self):
        return replay_cache()

    def get_rate(self) -> str | None:
        limit = int(getattr(s2s_settings(), self.setting))
        return f"{limit}/{self.period}" if limit > 0 else None

    def get_ident(self, request) -> str:
        return client_address(request)

    def get_cache_key(self, request, view) -> str:
        ident = self.ident if self.ident is not None else self.get_ident(request)
        # Hashed: usernames and client ids may hold anything, cache keys may not.
        digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": digest}

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except ReplayStoreUnavailable:
            raise
        except Exception as exc:  # the cache backend failed
            raise unavailable(exc) from exc


class FailureCounter(SharedRateThrottle):
    """Counts only what :meth:`record` is told (failures); ``allow_request`` looks."""

    def throttle_success(self) -> bool:
        return True

    def record(self) -> None:
        """Count one failure now."""
        if self.rate is None:
            return
        try:
            key = self.get_cache_key(None, None)
            now = self.timer()
            history = [t for t in self.cache.get(key, []) if t > now - self.duration]
            self.cache.set(key, [now, *history][: self.num_requests], self.duration)
        except Exception as exc:
            raise unavailable(exc) from exc


class LoginFailures(FailureCounter):
    """Failed logins of one username (casefolded), from any address."""

    scope = "login"
    setting = "LOGIN_RATE_LIMIT_PER_MINUTE"

    @classmethod
    def of(cls, username: str) -> LoginFailures:
        return cls(str(username).casefold())


class LoginAttempts(SharedRateThrottle):
    """Login attempts from one address, whatever the username."""

    scope = "login-address"
    setting = "LOGIN_ADDRESS_RATE_LIMIT_PER_MINUTE"


def login_gate(request, username: str) -> SimpleRateThrottle | None:
    """Count this login attempt; the throttle that refuses it, None to go ahead.

    Cheap (cache reads), so it runs before the password hasher.
    """
    setattr(request, GATED_ATTR, True)
    failures = LoginFailures.of(username)
    if not failures.allow_request(request, None):
        return failures
    attempts = LoginAttempts(client_address(request))
    if not attempts.allow_request(request, None):
        return attempts
    return None


class LoginThrottleBackend:
    """An authentication backend that only refuses: put it first.

    Raising ``PermissionDenied`` stops Django's ``authenticate()`` before the next
    backend hashes the password. A store that does not answer refuses the login.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None or username is None or getattr(request, GATED_ATTR, False):
            return None
        try:
            refused = login_gate(request, username)
        except ReplayStoreUnavailable:
            raise PermissionDenied from None
        if refused is not None:
            logger.warning("login throttled from %s", client_address(request) or "-")
            raise PermissionDenied
        return None

    # No get_user(): it never logs anyone in, and Django's force_login() and
    # login() pick the first backend that has one.


def _count_failure(sender, credentials, request=None, **kwargs) -> None:
    username = credentials.get("username")
    if username is None:
        return
    with contextlib.suppress(ReplayStoreUnavailable):  # logged; the login failed anyway
        LoginFailures.of(username).record()


user_login_failed.connect(_count_failure, dispatch_uid="s2s_auth.login_failures")
