"""The identity service's JWK Set, fetched over HTTP(S) and cached in-process.

One :class:`JWKSCache` per JWKS URL and process. It imports no DRF and knows nothing
of requests to *this* service: the access-token adapter asks it for the key of a
``kid`` and turns its errors into HTTP responses.

Policy:

* Keys are fetched with ``requests`` (``trust_env`` off, so ``REQUESTS_CA_BUNDLE`` and
  proxy variables are ignored; no redirects; timeouts; a size limit). For ``https``
  the server certificate must chain to our trust anchors (``S2S_AUTH["TRUST_ANCHORS"]``,
  by default ``PKI_DIR/ca.pem``) when that file exists, else to the system store.
* The set is parsed once per fetch with :class:`s2s_auth.core.jwk.JWKSet`
  (``skip_unusable=True``: ``use: enc``, other key types or algorithms are skipped; a
  set with private key material or duplicate kids is refused as a whole and the
  previous keys stay in use).
* Fresh for ``JWKS_CACHE_SECONDS``; after that the next caller refreshes it while
  other threads go on with the keys they have (only one fetch in flight).
* An unknown ``kid`` triggers a re-fetch, but once keys are held fetches are at least
  ``JWKS_MIN_REFETCH_SECONDS`` apart, whatever their outcome: a flood of tokens with
  random kids costs the issuer at most one request per interval.
* When the issuer is unreachable the last good keys are kept (stale keys serve until
  the issuer is back); with no keys ever fetched, :class:`JWKSUnavailable` is raised.
* With no keys held, a failed fetch is retried after a short backoff
  (``FIRST_RETRY_SECONDS``, doubling up to ``JWKS_MIN_REFETCH_SECONDS``), still one
  fetch in flight: a service that starts while its issuer is slow or restarting gets
  its keys within a second of the issuer's return, not after a 30 s blackout. A request
  that finds a fetch in flight waits for it at most ``FIRST_FETCH_WAIT_SECONDS``;
  requests between attempts get their 503 ``jwks_unavailable`` at once.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from django.core.signals import setting_changed

from s2s_auth.conf import s2s_settings
from s2s_auth.core.fetch import CachedDocument, describe_failure
from s2s_auth.core.jose_encoding import TokenError
from s2s_auth.core.jwk import JWK, JWKSet
from s2s_auth.errors import S2SError

__all__ = [
    "MAX_JWKS_BYTES",
    "JWKSCache",
    "JWKSUnavailable",
    "clear_jwks_caches",
    "jwks_cache",
    "jwks_url",
    "register_local_issuer",
    "warm_up",
]

logger = logging.getLogger("s2s_auth.core.jwks")

#: Largest JWK Set accepted from the issuer.
MAX_JWKS_BYTES = 65536
#: With no keys held: the first retry after a failed fetch (then doubling, up to
#: ``min_refetch_seconds``).
FIRST_RETRY_SECONDS = 0.25
#: With no keys held: how long a request waits for a fetch another thread has in
#: flight before it is answered 503 (the fetch itself may take its whole timeout).
FIRST_FETCH_WAIT_SECONDS = 2.0


class JWKSUnavailable(S2SError):
    """No keys to verify with: the issuer was never reached (or never sent a usable set).

    ``retry_after``: seconds until the next fetch may be tried.
    """

    code = "jwks_unavailable"

    def __init__(self, detail: str, *, retry_after: float = 0):
        super().__init__(self.code, detail)
        self.retry_after = retry_after


class JWKSCache(CachedDocument):
    """Thread-safe cache of one JWKS URL. ``fetch_count`` counts HTTP attempts."""

    what = "JWK Set"
    source = "jwks"
    accept = "application/jwk-set+json, application/json"
    max_bytes = MAX_JWKS_BYTES

    def __init__(
        self, url: str, *, cache_seconds: float = 300, min_refetch_seconds: float = 30, **options
    ):
        super().__init__(url, min_refetch_seconds=min_refetch_seconds, **options)
        self.cache_seconds = float(cache_seconds)
        self._keys: JWKSet | None = None
        self._failures = 0  # consecutive failed attempts while no keys are held
        self._retry_at = -math.inf  # with no keys held: earliest next attempt

    # -- public ----------------------------------------------------------------------
    def key_for(self, kid: str | None) -> JWK:
        """The key with this ``kid`` (``None``: the only key of a one-key set).

        Raises ``TokenError("unknown_key")`` when the issuer does not publish it (after
        at most one rate-limited re-fetch) and :class:`JWKSUnavailable` when no keys
        were ever obtained.
        """
        keys = self.keys()
        if _has(keys, kid):
            return keys.get(kid)
        with self._lock:
            keys = self._keys
            if not _has(keys, kid):  # another thread may have fetched it meanwhile
                self._refresh_locked()
                keys = self._keys
        if keys is None:
            raise self._unavailable()
        return keys.get(kid)

    def keys(self) -> JWKSet:
        """The current key set, refreshed when older than ``cache_seconds``."""
        keys = self._keys
        if keys is not None:
            if self._clock() - self._fetched_at < self.cache_seconds:
                return keys
            # Stale: one thread refreshes, the others verify with what we have.
            if self._lock.acquire(blocking=False):
                try:
                    self._refresh_locked()
                finally:
                    self._lock.release()
            return self._keys or keys
        # No keys yet: wait (bounded) for a fetch in flight rather than start another.
        if not self._lock.acquire(timeout=FIRST_FETCH_WAIT_SECONDS):
            raise self._unavailable(in_flight=True)
        try:
            if self._keys is None:
                self._refresh_locked()
            keys = self._keys
        finally:
            self._lock.release()
        if keys is None:
            raise self._unavailable()
        return keys

    def prefetch(self) -> bool:
        """Fetch now if no keys are held, bypassing the re-fetch interval; True once held.

        For a worker that starts: its first requests should not wait for a fetch, and
        it must not depend on the issuer still being up when its first token arrives.
        """
        with self._lock:
            if self._keys is None:
                self._fetch_locked()
            return self._keys is not None

    def parse(self, body: bytes) -> JWKSet:
        keys = self.parse_keys(body)
        if not len(keys):
            raise ValueError("the JWK Set holds no usable signature key")
        return keys

    def parse_keys(self, body: bytes) -> JWKSet:
        """The key set of a fetched document (a hook: SPIFFE bundles filter by ``use``)."""
        return JWKSet.from_json(body, max_length=MAX_JWKS_BYTES, skip_unusable=True)

    def held(self) -> bool:
        return self._keys is not None

    def describe(self, exc: Exception) -> str:
        if isinstance(exc, TokenError):
            return f"invalid JWK Set: {exc.code}"
        return describe_failure(exc)

    # -- internals -------------------------------------------------------------------
    def _unavailable(self, *, in_flight: bool = False) -> JWKSUnavailable:
        if in_flight:
            return JWKSUnavailable(
                "the issuer's keys are being fetched (slow issuer)", retry_after=1
            )
        wait = max(0.0, self._next_attempt_at() - self._clock())
        return JWKSUnavailable(
            f"the issuer's keys could not be fetched ({self.last_error or 'not fetched yet'})",
            retry_after=math.ceil(wait) or 1,
        )

    def _next_attempt_at(self) -> float:
        """No keys held: after the failures' backoff; else the minimum interval."""
        if self._keys is None and self._failures:
            return self._retry_at
        return self._attempted_at + self.min_refetch_seconds

    def _refresh_locked(self) -> None:
        """Fetch now unless the next attempt is not due yet (minimum interval, or the
        backoff of a cache without keys)."""
        if self._clock() >= self._next_attempt_at():
            self._fetch_locked()

    def _fetch_locked(self) -> None:
        keys = self._attempt(self.parse)
        if keys is not None:
            self._keys, self._failures, self._retry_at = keys, 0, -math.inf
            logger.debug("JWKS fetched from %s: kids=%s", self.url, keys.kids)
        elif self._keys is None:
            # No keys held: the next attempt after a short backoff, doubling.
            self._failures += 1
            delay = min(FIRST_RETRY_SECONDS * 2 ** (self._failures - 1), self.min_refetch_seconds)
            self._retry_at = self._clock() + delay


def _has(keys: JWKSet | None, kid: str | None) -> bool:
    if keys is None:
        return False
    if kid is None:
        return len(keys) == 1
    return kid in keys


class LocalJWKS:
    """The keys of the issuer that runs in this very process, read from its key store.

    A service that is also the issuer must not fetch its own JWKS over HTTP: under load
    every worker thread is busy, the request to itself times out, and every token is
    refused for ``JWKS_MIN_REFETCH_SECONDS`` (a cold start answered thousands of 503s).
    """

    def __init__(self, source: Callable[[], dict]):
        self._source = source
        self._lock = threading.Lock()
        self._document: dict | None = None
        self._keys: JWKSet | None = None

    def keys(self) -> JWKSet:
        document = self._source()
        with self._lock:
            if document != self._document or self._keys is None:
                self._keys = JWKSet.from_dict(document, skip_unusable=True)
                self._document = document
            return self._keys

    def key_for(self, kid: str | None) -> JWK:
        return self.keys().get(kid)


# An issuer installed in this process registers itself here (the core never imports it).
_local_issuer: tuple[Callable[[], str | None], LocalJWKS] | None = None


def register_local_issuer(issuer: Callable[[], str | None], jwks: Callable[[], dict]) -> None:
    """Verify tokens of ``issuer()`` with ``jwks()`` (its key store), not over HTTP."""
    global _local_issuer
    _local_issuer = (issuer, LocalJWKS(jwks))


def _local_keys() -> LocalJWKS | None:
    if _local_issuer is None:
        return None
    issuer, keys = _local_issuer
    wanted = s2s_settings().ACCESS_TOKEN_ISSUER
    own = issuer()
    if wanted and own and wanted.rstrip("/") == own.rstrip("/"):
        return keys
    return None


# ----------------------------------------------------------------- per-settings caches

_caches: dict[tuple, JWKSCache] = {}
_caches_lock = threading.Lock()


def jwks_url() -> str | None:
    """``JWKS_URL``, else ``<ACCESS_TOKEN_ISSUER>/.well-known/jwks.json``, else None."""
    conf = s2s_settings()
    if conf.JWKS_URL:
        return conf.JWKS_URL
    if conf.ACCESS_TOKEN_ISSUER:
        return conf.ACCESS_TOKEN_ISSUER.rstrip("/") + "/.well-known/jwks.json"
    return None


def jwks_cache() -> JWKSCache | LocalJWKS:
    """The process-wide cache for the configured JWKS URL (one per settings), or the
    local issuer's key store when the tokens are this process's own."""
    local = _local_keys()
    if local is not None:
        return local
    conf = s2s_settings()
    url = jwks_url()
    if not url:
        raise ValueError("S2S_AUTH has neither JWKS_URL nor ACCESS_TOKEN_ISSUER")
    verify: str | bool = True
    if urlsplit(url).scheme == "https" and conf.trust_anchors_path.exists():
        verify = str(conf.trust_anchors_path)
    key = (
        url,
        verify,
        float(conf.JWKS_CACHE_SECONDS),
        float(conf.JWKS_MIN_REFETCH_SECONDS),
        tuple(conf.CLIENT_TIMEOUT),
    )
    cache = _caches.get(key)
    if cache is None:
        with _caches_lock:
            cache = _caches.get(key)
            if cache is None:
                cache = _caches[key] = JWKSCache(
                    url,
                    cache_seconds=key[2],
                    min_refetch_seconds=key[3],
                    verify=verify,
                    timeout=key[4],
                )
    return cache


def warm_up(*, attempts: int = 8, first_delay: float = 0.5) -> threading.Thread | None:
    """Fetch the configured JWKS in a background thread, retrying with backoff
    (0.5 s, 1 s, 2 s, ... ``attempts`` times); None when there is nothing to fetch
    (no issuer configured, or the issuer is this process)."""
    if jwks_url() is None or _local_keys() is not None:
        return None
    cache = jwks_cache()

    def run() -> None:
        delay = first_delay
        for attempt in range(attempts):
            if cache.prefetch():
                logger.info("JWKS of %s fetched at start", cache.url)
                return
            if attempt + 1 < attempts:
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        logger.warning("JWKS of %s not fetched at start (%s)", cache.url, cache.last_error)

    thread = threading.Thread(target=run, name="s2s-jwks-warm-up", daemon=True)
    thread.start()
    return thread


def clear_jwks_caches() -> None:
    """Forget every cached key set (tests; a settings change does it too)."""
    with _caches_lock:
        _caches.clear()


def _reload(*, setting, **kwargs):
    if setting in ("S2S_AUTH", "BASE_DIR"):
        clear_jwks_caches()


setting_changed.connect(_reload)
