"""One bounded HTTPS GET for the documents verifiers cache (the JWKS, the CRLs).

Both are fetched the same way: the private CA pinned by ``verify`` and the proxy/CA
environment ignored (``trust_env`` off: ``REQUESTS_CA_BUNDLE`` would otherwise replace
the pin), no redirects, and the body read in chunks up to a size limit, so a hostile or
broken server cannot make a verifier hold an unbounded document.
"""

from __future__ import annotations

from collections.abc import Callable

import requests

__all__ = ["describe_failure", "fetch_bounded"]


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
