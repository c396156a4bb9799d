"""Throttles on the shared replay store, and the login throttle every Django login uses.

DRF's :class:`SimpleRateThrottle` keeps a sliding window (the timestamps of the last
``limit`` requests) in a cache; here that cache is the replay store
(``S2S_AUTH["REPLAY_CACHE"]``), so a limit holds across every worker process. Its
read-modify-write is not atomic: under a concurrent burst a handful of requests
beyond the limit may pass, the trade for DRF's well-kept throttle. A store that does
not answer raises :class:`~s2s_auth.credentials.replay.ReplayStoreUnavailable` (503).

Limits are ``S2S_AUTH`` settings read when a throttle is built; ``0`` turns one off.

Round trips: :func:`read_histories` reads the histories of several throttles in one
``get_many`` (the token endpoint's lock-out counters and rate window), and
:func:`record_failures` counts a failure in several counters with one ``get_many`` and
one ``set_many``. :class:`WindowRateThrottle` keeps the same sliding window in at most
60 buckets, so a high limit does not make the stored history (and every request's
read and write of it) grow with the number of requests.

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
    "WindowRateThrottle",
    "client_address",
    "login_gate",
    "read_histories",
    "record_failures",
]

logger = logging.getLogger("s2s_auth.throttles")

#: Set on a request whose login attempt was counted already (by the login view).
GATED_ATTR = "_s2s_login_gated"
_UNREAD = object()  # no history read ahead (read_histories): allow_request reads it


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
    _cache = None  # the replay store, once looked up (:attr:`cache`)
    _ident_key: str | None = None  # the cache key of ``ident``, once hashed

    def __init__(self, ident: str | None = None):
        self.ident = ident
        self.preloaded: object = _UNREAD
        super().__init__()

    @property
    def cache(self):
        """The replay store, looked up once per throttle (``caches[...]`` goes through
        asgiref's Local); :func:`read_histories` hands over the one it read from."""
        if self._cache is None:
            self._cache = replay_cache()
        return self._cache

    def get_rate(self) -> str | None:
        limit = int(getattr(s2s_settings(), self.setting))
        return f"{limit}/{self.period}" if limit > 0 else None

    def get_ident(self, request) -> str:
        return client_address(request)

    def get_cache_key(self, request, view) -> str:
        if self.ident is None:
            return self._key_of(self.get_ident(request))
        if self._ident_key is None:  # read ahead, then counted: hashed once
            self._ident_key = self._key_of(self.ident)
        return self._ident_key

    def _key_of(self, ident: str) -> str:
        # Hashed: usernames and client ids may hold anything, cache keys may not.
        digest = hashlib.sha256(ident.encode("utf-8", "surrogatepass")).hexdigest()[:32]
        return self.cache_format % {"scope": self.scope, "ident": digest}

    def allow_request(self, request, view) -> bool:
        """DRF's rule: refused when the window holds ``num_requests`` already; counted
        (written back) when allowed. The history read ahead by :func:`read_histories`
        is used once instead of a read of its own."""
        if self.rate is None:
            return True
        try:
            self.key = self.get_cache_key(request, view)
            self.history = self.take_history()
            self.now = self.timer()
            while self.history and self.history[-1] <= self.now - self.duration:
                self.history.pop()
            if len(self.history) >= self.num_requests:
                return self.throttle_failure()
            return self.throttle_success()
        except ReplayStoreUnavailable:
            raise
        except Exception as exc:  # the cache backend failed
            raise unavailable(exc) from exc

    def take_history(self) -> list:
        """The stored history: the one read ahead (once), else read now."""
        history, self.preloaded = self.preloaded, _UNREAD
        if history is _UNREAD:
            history = self.cache.get(self.key)
        return list(history) if isinstance(history, list) else []


class WindowRateThrottle(SharedRateThrottle):
    """:class:`SharedRateThrottle`'s sliding window kept in at most :attr:`buckets`
    buckets ``[first, last, count]`` (newest first) instead of one timestamp per request.

    A bucket takes the requests of ``duration / buckets`` seconds (one second of a
    minute) and leaves the window when its *last* request does: the count can only
    err on the strict side, by at most one bucket's width. ``Retry-After`` is when
    enough requests have left for one more.
    """

    buckets = 60
    # Another layout than SharedRateThrottle's: never read by a throttle of the other kind.
    cache_format = "s2s:window:%(scope)s:%(ident)s"

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        try:
            self.key = self.get_cache_key(request, view)
            self.now = self.timer()
            self.history, count = _live_buckets(self.take_history(), self.now - self.duration)
            if count >= self.num_requests:
                return self.throttle_failure()
            newest = self.history[0] if self.history else None
            if newest is not None and 0 <= self.now - newest[0] < self.duration / self.buckets:
                newest[1], newest[2] = max(newest[1], self.now), newest[2] + 1
            else:
                self.history.insert(0, [self.now, self.now, 1])
            self.cache.set(self.key, self.history, self.duration)
            return True
        except ReplayStoreUnavailable:
            raise
        except Exception as exc:  # the cache backend failed
            raise unavailable(exc) from exc

    def wait(self) -> float | None:
        """Seconds until the window has room for one more request (after a refusal)."""
        history = getattr(self, "history", [])
        excess = sum(bucket[2] for bucket in history) - self.num_requests + 1
        left = 0
        for _first, last, count in reversed(history):  # the oldest first
            left += count
            if left >= excess:
                return max(0.0, self.duration - (self.now - last))
        return None


_NUMBER = (int, float)


def _live_buckets(stored: list, horizon: float) -> tuple[list, float]:
    """(copies of the well-formed buckets ``[first, last, count]``, three numbers, whose
    last request is after ``horizon``; the sum of their counts), in one pass.

    The window is read on every token request and holds up to 60 buckets: no function
    call and no generator per bucket."""
    live = []
    count = 0
    for b in stored:
        if (
            isinstance(b, list)
            and len(b) == 3
            and isinstance(b[0], _NUMBER)
            and isinstance(b[1], _NUMBER)
            and isinstance(b[2], _NUMBER)
            and b[1] > horizon
        ):
            live.append(list(b))
            count += b[2]
    return live, count


def read_histories(throttles) -> None:
    """Read the stored histories of ``throttles`` (keyed by ``ident``) in one round trip;
    each one's next ``allow_request`` uses what was read instead of a read of its own.
    Throttles that are off (no rate) are left out. Raises ReplayStoreUnavailable."""
    keyed = {}
    for throttle in throttles:
        if throttle.rate is not None:
            keyed[throttle.get_cache_key(None, None)] = throttle
    if not keyed:
        return
    try:
        cache = replay_cache()
        stored = cache.get_many(list(keyed))
    except Exception as exc:
        raise unavailable(exc) from exc
    for key, throttle in keyed.items():
        throttle.preloaded = stored.get(key)
        throttle._cache = cache


class FailureCounter(SharedRateThrottle):
    """Counts only what :meth:`record` is told (failures); ``allow_request`` looks."""

    def throttle_success(self) -> bool:
        return True

    def record(self) -> None:
        """Count one failure now."""
        record_failures([self])

    def counted(self, history, now: float) -> list:
        """``history`` with a failure at ``now``: the window's, at most ``num_requests``."""
        kept = [t for t in history if t > now - self.duration] if isinstance(history, list) else []
        return [now, *kept][: self.num_requests]


def record_failures(counters) -> None:
    """Count one failure now in each of ``counters`` (FailureCounter): one read of all
    their histories, one write. Raises ReplayStoreUnavailable."""
    keyed = {c.get_cache_key(None, None): c for c in counters if c.rate is not None}
    if not keyed:
        return
    try:
        cache = replay_cache()
        stored = cache.get_many(list(keyed))
        updated = {key: c.counted(stored.get(key), c.timer()) for key, c in keyed.items()}
        durations = {c.duration for c in keyed.values()}
        if len(durations) == 1:
            cache.set_many(updated, durations.pop())
        else:
            for key, history in updated.items():
                cache.set(key, history, keyed[key].duration)
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
