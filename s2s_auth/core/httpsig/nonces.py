"""Remembering nonces, so that a signed request is accepted once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["MemoryNonceStore"]


class MemoryNonceStore:
    """An in-process ``nonce_store`` (tests, single-process scripts). Thread-safe;
    entries expire after their TTL. A server with several worker processes needs the
    shared store: ``s2s_auth.mechanisms.http_signature.remember_nonce`` (the replay
    store of ``s2s_auth.credentials.replay``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def __call__(self, key_id: str, nonce: str, ttl_seconds: int) -> bool:
        now = self._clock()
        with self._lock:
            if len(self._seen) > 10_000:
                self._seen = {k: t for k, t in self._seen.items() if t > now}
            expiry = self._seen.get((key_id, nonce))
            if expiry is not None and expiry > now:
                return False
            self._seen[(key_id, nonce)] = now + ttl_seconds
            return True
