#!/usr/bin/env python
"""HTTPS probe for compose healthchecks (stdlib only).

    python docker/bin/healthcheck.py https://localhost:8000/api/v1/ping [--status 200]

Verifies the server certificate against HEALTHCHECK_CA (default: TLS_CA, the CA the
service itself uses) and the host name of the URL, so the probe fails on a wrong or
expired certificate too, not only on a dead process. No client certificate is sent:
the TLS worker requests one but does not require it, and the probed paths are open.
Exits 0 when the status is one of --status (default: any below 500), else 1.
"""

from __future__ import annotations

import argparse
import http.client
import os
import ssl
import sys
from urllib.parse import urlsplit


def probe(url: str, ca: str | None, statuses: set[int] | None, timeout: float) -> str | None:
    """None when healthy, else the reason."""
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return f"not an https URL: {url}"
    context = ssl.create_default_context(cafile=ca)
    connection = http.client.HTTPSConnection(
        parts.hostname, parts.port or 443, context=context, timeout=timeout
    )
    try:
        connection.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        status = connection.getresponse().status
    except (OSError, http.client.HTTPException) as exc:
        return f"{url}: {exc}"
    finally:
        connection.close()
    healthy = status in statuses if statuses else status < 500
    return None if healthy else f"{url}: HTTP {status}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="HTTPS healthcheck probe")
    parser.add_argument("url", nargs="?", default="https://localhost:8000/api/v1/ping")
    parser.add_argument("--status", type=int, action="append", default=None)
    parser.add_argument("--timeout", type=float, default=3.0)
    args = parser.parse_args(argv)
    ca = os.environ.get("HEALTHCHECK_CA") or os.environ.get("TLS_CA") or None
    reason = probe(args.url, ca, set(args.status or ()), args.timeout)
    if reason:
        print(reason, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
