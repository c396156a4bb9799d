"""Fixed-window counters in Django's cache (Redis in production, shared by workers).

``hit(scope, key, limit, window)`` counts one request and returns ``None`` when it
is within ``limit`` per ``window`` seconds, else the seconds until the window ends
(for ``Retry-After``). A fixed window admits at most ``2 * limit`` requests across a
window boundary; that is the trade for one cache round trip per request.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.core.cache import cache

__all__ = ["hit"]


def _clock() -> float:
    return time.time()


def hit(scope: str, key: str, limit: int, window: int = 60) -> int | None:
    if limit <= 0:
        return None
    now = _clock()
    bucket = int(now // window)
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    cache_key = f"s2s:rl:{scope}:{bucket}:{digest}"
    if cache.add(cache_key, 1, timeout=window + 5):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.add(cache_key, 1, timeout=window + 5)
            count = 1
    if count <= limit:
        return None
    return max(1, math.ceil((bucket + 1) * window - now))
