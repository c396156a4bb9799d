"""Every authentication outcome goes through ``record()``: one keyword-only function.

It logs each decision (reason code, principal, certificate fingerprint — never a
key, secret or token) and hands it to the audit log of non-repudiation.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger("s2s_auth")


def record(
    request,
    *,
    mechanism: str,
    outcome: str,
    reason: str = "",
    detail: str = "",
    principal: str = "",
    end_user: str = "",
    fingerprint: str = "",
    credential: str = "",
    signature_base: str = "",
    certificate_pem: str = "",
    claims: dict[str, Any] | None = None,
) -> None:
    """Log one authentication decision.

    ``outcome`` is "accepted" or "refused". ``credential`` is the raw credential the
    caller signed itself (a single-use JWT, an RFC 9421 signature) — stored for
    non-repudiation, never logged; a bearer token is never passed here raw: pass its
    ``claims`` instead. ``certificate_pem`` is the certificate whose key verified it.
    """
    method = getattr(request, "method", "")
    path = getattr(request, "path", "")
    remote = request.META.get("REMOTE_ADDR", "") if hasattr(request, "META") else ""
    if outcome == "accepted":
        logger.debug(
            "s2s accepted mechanism=%s principal=%s %s %s from %s fingerprint=%s",
            mechanism,
            principal,
            method,
            path,
            remote,
            fingerprint or "-",
        )
    else:
        logger.warning(
            "s2s refused mechanism=%s reason=%s principal=%s %s %s from %s fingerprint=%s: %s",
            mechanism,
            reason,
            principal or "-",
            method,
            path,
            remote,
            fingerprint or "-",
            detail,
        )
