"""A circuit breaker for calls to another service: stop waiting for one that is down.

Closed: calls go through; ``failures`` consecutive failures open it. Open: no call is
made for ``reset_seconds`` (callers answer from what they stored); then one caller is
let through as a probe (half-open): its success closes the breaker, its failure opens
it again for another ``reset_seconds``. A 4xx answer is not a failure: the service is
up and refused, which waiting would not fix.

In-process: each gunicorn worker process has its own breaker (and learns on its own
that the service is down, after ``failures`` calls). Sharing it through the cache would
cost a cache round trip per call and is not needed for a breaker's purpose. Settings
are read at every call (``override_settings`` and the environment apply at once);
transitions are logged, and :attr:`counts` counts every outcome.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable

__all__ = ["CLOSED", "HALF_OPEN", "OPEN", "CircuitBreaker"]

logger = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    """``allow()`` before a call, then ``success()`` or ``failure()`` after it."""

    def __init__(
        self,
        name: str,
        settings: Callable[[], tuple[int, float]],
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self._settings = settings  # () -> (failures, reset_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self.state = CLOSED
        self.consecutive_failures = 0
        self.opened_at = 0.0
        self.counts: Counter[str] = Counter()

    def allow(self) -> bool:
        """May a call be made now? In half-open state, only the one probe may."""
        with self._lock:
            if self.state == CLOSED:
                self.counts["allowed"] += 1
                return True
            _, reset_seconds = self._settings()
            if self.state == OPEN and self._clock() - self.opened_at >= reset_seconds:
                self.state = HALF_OPEN
                self.counts["probes"] += 1
                logger.info("circuit %s half-open: one probe call", self.name)
                return True
            self.counts["short_circuited"] += 1
            return False

    def success(self) -> None:
        with self._lock:
            self.counts["successes"] += 1
            self.consecutive_failures = 0
            if self.state != CLOSED:
                logger.warning("circuit %s closed: the probe call succeeded", self.name)
                self.counts["closed"] += 1
            self.state = CLOSED

    def failure(self) -> None:
        with self._lock:
            self.counts["failures"] += 1
            self.consecutive_failures += 1
            threshold, reset_seconds = self._settings()
            if self.state == HALF_OPEN or (
                self.state == CLOSED and self.consecutive_failures >= threshold
            ):
                self.state = OPEN
                self.opened_at = self._clock()
                self.counts["opened"] += 1
                logger.warning(
                    "circuit %s open for %g s after %d consecutive failures",
                    self.name,
                    reset_seconds,
                    self.consecutive_failures,
                )

    def reset(self) -> None:
        with self._lock:
            self.state, self.consecutive_failures, self.opened_at = CLOSED, 0, 0.0
            self.counts.clear()
