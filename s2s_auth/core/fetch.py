"""One bounded HTTPS GET for the documents verifiers cache (the JWKS, the CRLs).

Both are fetched the same way: the private CA pinned by ``verify`` and the proxy/CA
environment ignored (``trust_env`` off: ``REQUESTS_CA_BUNDLE`` would otherwise replace
the pin), no redirects, and the body read in chunks up to a size limit, so a hostile or
broken server cannot make a verifier hold an unbounded document.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

import requests

from s2s_auth import metrics
from s2s_auth.errors import S2SError

__all__ = ["CachedDocument", "describe_failure", "fetch_bounded"]

logger = logging.getLogger("s2s_auth.core.fetch")


def fetch_bounded(
    session_factory: Callable[[], requests.Session],
    url: str,
    *,
    timeout: float,
    verify,
    accept: str,
    max_bytes: int,
    what: str,
) -> bytes:
    """The body of a 200 answer; ``ValueError`` for another status or a body larger
    than ``max_bytes`` (named ``what`` in the message); requests' errors as raised."""
    session = session_factory()
    session.trust_env = False
    try:
        with session.get(
            url,
            timeout=timeout,
            verify=verify,
            allow_redirects=False,
            stream=True,
            headers={"Accept": accept},
        ) as response:
            if response.status_code != 200:
                raise ValueError(f"HTTP {response.status_code}")
            body = b""
            for chunk in response.iter_content(65536):
                body += chunk
                if len(body) > max_bytes:
                    raise ValueError(f"{what} larger than {max_bytes} bytes")
    finally:
        session.close()
    return body


def describe_failure(exc: Exception) -> str:
    """A short reason for a failed fetch, for logs and metrics (no URL, no body)."""
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS failed"
    if isinstance(exc, requests.ConnectionError):
        return "connection failed"
    return str(exc) or type(exc).__name__


class CachedDocument:
    """What the JWKS and CRL caches share: the URL and how it is fetched, one lock for
    the fetch in flight, and the bookkeeping of attempts. Subclasses decide when to
    fetch and what a usable document is (:meth:`parse`)."""

    #: Named in errors and logs ("JWK Set", "CRL"); ``source`` labels the metrics.
    what = "document"
    source = "document"
    accept = "*/*"
    max_bytes = 65536

    def __init__(
        self,
        url: str,
        *,
        min_refetch_seconds: float,
        verify: str | bool = True,
        timeout: float | tuple[float, float] = (2.0, 5.0),
        clock: Callable[[], float] = time.monotonic,
        session_factory: Callable[[], requests.Session] | None = None,
    ):
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"{self.source.upper()} URL must be http(s): {url!r}")
        self.url = url
        self.min_refetch_seconds = float(min_refetch_seconds)
        self.verify = verify
        self.timeout = timeout
        self._clock = clock
        self._session_factory = session_factory or requests.Session
        self._lock = threading.Lock()
        self._fetched_at = -math.inf  # last successful fetch
        self._attempted_at = -math.inf  # last attempt, successful or not
        self.fetch_count = 0
        self.last_error: str | None = None

    def held(self) -> bool:
        """A previous document is held (it stays in use when a fetch fails)."""
        raise NotImplementedError

    def describe(self, exc: Exception) -> str:
        """The reason a fetch failed, for ``last_error``, logs and 503 details."""
        return describe_failure(exc)

    def _attempt(self, parse: Callable[[bytes], object]):
        """One counted fetch, with the caller holding the lock: ``parse(body)``, or None
        when the fetch failed or ``parse`` refused the body with ``ValueError`` or an
        ``S2SError`` (logged without the body, counted, ``last_error`` set)."""
        self._attempted_at = self._clock()
        self.fetch_count += 1
        try:
            document = parse(
                fetch_bounded(
                    self._session_factory,
                    self.url,
                    timeout=self.timeout,
                    verify=self.verify,
                    accept=self.accept,
                    max_bytes=self.max_bytes,
                    what=self.what,
                )
            )
        except (requests.RequestException, ValueError, S2SError) as exc:
            self.last_error = self.describe(exc)
            metrics.fetched(self.source, ok=False)
            logger.warning(
                "%s fetch from %s failed (%s); %s",
                self.what,
                self.url,
                self.last_error,
                "keeping the one held" if self.held() else "none held",
            )
            return None
        self._fetched_at, self.last_error = self._clock(), None
        metrics.fetched(self.source, ok=True)
        return document
