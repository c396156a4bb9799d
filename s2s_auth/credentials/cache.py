"""A per-process cache of principals and their credentials, with bounded staleness.

Every authenticated request used to read its principal (and API key, registered
certificate or client key) from the database: a round trip per request for rows that
change a few times a day. This cache keeps them in the worker process, and bounds how
stale they can be, so that disabling a service or revoking a scope still takes effect
everywhere within ``S2S_AUTH["PRINCIPAL_CACHE_SECONDS"]`` (default 2 s):

* **Hard max age.** An entry is served at most ``PRINCIPAL_CACHE_SECONDS`` after it was
  read from the database, then read again. This alone bounds staleness for every
  change, even one that bypasses Django's signals (``QuerySet.update()``, raw SQL,
  another application writing the table).
* **Invalidation on change.** Saving or deleting a principal, certificate, client key
  or API key (the admin, the management commands, the ORM) clears this process's
  entries at once and writes a new random *shared version* into the shared store
  (the ``S2S_AUTH["REPLAY_CACHE"]`` cache, which every process and host already
  shares). Each process reads that version at most every
  ``PRINCIPAL_CACHE_CHECK_SECONDS`` (default 1 s) and drops its entries when it
  changed: a change through the ORM is seen everywhere within that interval.
* **Never fail open.** When the shared store cannot be read, entries are not served at
  all: lookups go to the database until the version can be read again (retried at
  most every check interval, so a dead store costs one failing call per interval, not
  one per request).
* **Negative results** (no such principal) are cached like positive ones, so a flood
  of calls from an unregistered (but CA-certified) service is not a flood of SELECTs;
  creating the principal invalidates them like any change, and the max age bounds
  them too. Lookups keyed by unauthenticated input (an API key id) are never cached
  negatively: anybody could fill the cache with made-up ids.
* **Bounded size.** At most ``PRINCIPAL_CACHE_MAX_ENTRIES`` entries; the oldest go first.

The cache holds only what the database holds (API keys: their SHA-256 hashes, never a
secret) and values are treated as read-only by every caller. ``PRINCIPAL_CACHE_SECONDS
= 0`` turns it off. After a bulk change that bypasses signals, :func:`invalidate`
makes it immediate instead of within the max age.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Hashable
from typing import Any

from django.core.cache import caches
from django.core.cache.backends.db import DatabaseCache
from django.db import router, transaction

from s2s_auth.conf import s2s_settings

__all__ = ["VERSION_KEY", "PrincipalCache", "invalidate", "principal_cache"]

logger = logging.getLogger("s2s_auth.principal_cache")

#: The shared store's key of the version every process compares with its own.
VERSION_KEY = "s2s:principal-cache:version"
_UNREAD = object()  # no version read yet (a stored value may be None: never written)


class PrincipalCache:
    """Entries ``key -> (value, loaded_at)`` in this process, dropped when the shared
    version changes or after the max age. ``clock`` is injectable for tests."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, store=None):
        self._clock = clock
        self._store = store  # None: the REPLAY_CACHE alias, read at call time
        self._entries: dict[Hashable, tuple[Any, float]] = {}
        self._lock = threading.Lock()
        self._version: object = _UNREAD
        self._checked_at: float | None = None
        self._store_ok = False
        # Bumped on every clear: a load that started before it is not stored after it.
        self._generation = 0

    # -- reading -------------------------------------------------------------------

    def get(self, key: Hashable, load: Callable[[], Any], *, cache_none: bool = True) -> Any:
        """The value for ``key``: cached if fresh, else ``load()`` (stored when the
        shared version could be read, and when not None unless ``cache_none``)."""
        conf = s2s_settings()
        max_age = float(conf.PRINCIPAL_CACHE_SECONDS)
        if max_age <= 0:
            return load()
        now = self._clock()
        if not self._current(now, float(conf.PRINCIPAL_CACHE_CHECK_SECONDS)):
            return load()  # the shared store is down: the database decides, every time
        entry = self._entries.get(key)
        if entry is not None and now - entry[1] < max_age:
            return entry[0]
        generation = self._generation
        value = load()
        if value is not None or cache_none:
            self._put(key, value, now, generation, int(conf.PRINCIPAL_CACHE_MAX_ENTRIES))
        return value

    def _put(self, key, value, loaded_at: float, generation: int, limit: int) -> None:
        with self._lock:
            if generation != self._generation:
                return  # invalidated while loading: the value may predate the change
            self._entries.pop(key, None)
            while self._entries and len(self._entries) >= limit:
                del self._entries[next(iter(self._entries))]  # the oldest
            if limit > 0:
                self._entries[key] = (value, loaded_at)

    def _current(self, now: float, interval: float) -> bool:
        """Whether entries may be served: the shared version was read within
        ``interval`` (entries are dropped when it changed)."""
        checked = self._checked_at
        if checked is not None and 0 <= now - checked < interval:
            return self._store_ok
        with self._lock:
            if self._checked_at is not None and 0 <= now - self._checked_at < interval:
                return self._store_ok  # another thread checked meanwhile
            try:
                version = _read(self._shared_store(), VERSION_KEY)
            except Exception as exc:  # any backend failure: Redis, database, no table
                if self._store_ok or self._checked_at is None:
                    logger.warning(
                        "principal cache: shared store %r unreadable (%s); reading the "
                        "database on every request until it answers",
                        s2s_settings().REPLAY_CACHE,
                        type(exc).__name__,
                    )
                self._clear_locked()
                self._version = _UNREAD
                self._store_ok = False
            else:
                if version != self._version:
                    self._clear_locked()
                    self._version = version
                self._store_ok = True
            self._checked_at = now
            return self._store_ok

    def _shared_store(self):
        return self._store if self._store is not None else caches[s2s_settings().REPLAY_CACHE]

    # -- invalidating --------------------------------------------------------------

    def clear(self) -> None:
        """Drop this process's entries (nothing shared is touched)."""
        with self._lock:
            self._clear_locked()

    def _clear_locked(self) -> None:
        self._entries.clear()
        self._generation += 1

    def bump(self) -> bool:
        """Drop this process's entries and write a new shared version, so that every
        other process drops its own within the check interval. False (logged) when the
        store did not take it: the others then see the change within the max age."""
        self.clear()
        version = uuid.uuid4().hex
        try:
            self._shared_store().set(VERSION_KEY, version, timeout=None)
        except Exception as exc:
            logger.warning(
                "principal cache: could not publish an invalidation to %r (%s); other "
                "processes see the change within PRINCIPAL_CACHE_SECONDS",
                s2s_settings().REPLAY_CACHE,
                type(exc).__name__,
            )
            return False
        return True  # our next check reads it like any other process's

    def __len__(self) -> int:
        return len(self._entries)


def _read(store, key: str):
    """``store.get(key)``; on the database cache inside a savepoint, so that a failing
    read (no table, a lost connection) cannot break the request's transaction."""
    if isinstance(store, DatabaseCache):
        db = router.db_for_read(store.cache_model_class)
        with transaction.atomic(using=db):
            return store.get(key)
    return store.get(key)


#: The process's cache (one per worker process; threads share it).
principal_cache = PrincipalCache()


def invalidate(**kwargs) -> None:
    """Invalidate every process's cached principals and credentials.

    The receiver of the model signals, and the call to make after a bulk change that
    bypasses them (``QuerySet.update()``, raw SQL) for it to take effect at once. It
    acts now (this process sees its own uncommitted change) and again when the
    transaction commits, so that no process caches the old row between the two.
    """
    using = kwargs.get("using")
    principal_cache.bump()
    if transaction.get_connection(using).in_atomic_block:
        transaction.on_commit(principal_cache.bump, using=using)
