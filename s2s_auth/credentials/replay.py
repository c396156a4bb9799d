"""The replay store: "remember this key once for ttl seconds", shared by every process.

Service JWT ``jti``, RFC 9421 ``nonce`` and client-assertion ``jti`` values, and the
history of every throttle, live in the Django cache named by
``S2S_AUTH["REPLAY_CACHE"]``. A credential is single-use only if every worker process
asks the same store, so that cache must be shared: Redis, or a table in the service's
database, :class:`s2s_auth.credentials.dbcache.ReplayDatabaseCache` (``manage.py
check`` refuses a per-process one with DEBUG off, s2s_auth.E020, and warns about
Django's own ``DatabaseCache``, whose cull forgets live keys, s2s_auth.W022).

Cache ``add`` is the primitive: it stores the key only when it is absent (or expired),
atomically across processes and hosts: ``SET NX`` on Redis, one ``INSERT ... ON
CONFLICT`` statement on the database cache (the key is the table's primary key).
A store that cannot answer raises :class:`ReplayStoreUnavailable` (503): a credential
that cannot be checked for a replay is neither accepted nor blamed on the caller.
"""

from __future__ import annotations

import hashlib
import logging
import time

from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache

from s2s_auth.conf import s2s_settings
from s2s_auth.errors import S2SError

__all__ = [
    "ReplayStoreUnavailable",
    "create_cache_table",
    "remember_jti",
    "remember_once",
    "replay_cache",
    "store_key",
]

logger = logging.getLogger("s2s_auth.replay")


class ReplayStoreUnavailable(S2SError):
    """The replay store did not answer: 503, never an acceptance."""

    def __init__(self, detail: str = "The replay store is unavailable; retry later."):
        super().__init__("replay_store_unavailable", detail)


def replay_cache():
    """The cache named by ``S2S_AUTH["REPLAY_CACHE"]`` (read at call time)."""
    return caches[s2s_settings().REPLAY_CACHE]


def store_key(namespace: str, *parts: str) -> str:
    """``s2s:<namespace>:<sha256>``: callers' values may hold anything, keys may not."""
    raw = "\0".join(parts).encode("utf-8", "surrogatepass")
    return f"s2s:{namespace}:{hashlib.sha256(raw).hexdigest()}"


def remember_once(namespace: str, *parts: str, ttl: float) -> bool:
    """True the first time ``(namespace, *parts)`` is seen within ``ttl`` seconds, False
    when it was already there (a replay). Raises :class:`ReplayStoreUnavailable`."""
    key = store_key(namespace, *parts)
    try:
        return bool(replay_cache().add(key, 1, timeout=max(1, int(ttl) + 1)))
    except Exception as exc:  # any backend failure: Redis, database, a missing table
        raise unavailable(exc) from exc


def remember_jti(issuer: str, jti: str, expires_at: float) -> bool:
    """True the first time (issuer, jti) is seen before ``expires_at`` (plus the clock
    skew); False on replay. Raises ReplayStoreUnavailable (503)."""
    ttl = max(1, int(expires_at - time.time()) + int(s2s_settings().CLOCK_SKEW) + 1)
    return remember_once("jti", issuer, jti, ttl=ttl)


def unavailable(exc: BaseException) -> ReplayStoreUnavailable:
    """Log why the store failed (never a key or a credential) and return the error."""
    logger.error("replay store %r unavailable: %s", s2s_settings().REPLAY_CACHE, type(exc).__name__)
    return ReplayStoreUnavailable()


def create_cache_table(using: str = "default", verbosity: int = 0, **kwargs) -> None:
    """A ``post_migrate`` receiver: ``createcachetable`` when the replay store is a
    database cache (Django's or its subclass ReplayDatabaseCache), so ``migrate``
    leaves it ready."""
    from django.core.management import call_command

    try:
        cache = replay_cache()
    except Exception:  # an unknown alias: E020 reports it
        return
    if isinstance(cache, DatabaseCache):
        call_command("createcachetable", database=using, verbosity=verbosity)
