"""Every authentication outcome goes through ``record()``: one keyword-only function.

It logs each decision (reason code, principal, certificate fingerprint — never a
key, secret or token) and, when ``S2S_AUTH["AUDIT_ENABLED"]``, hands it to the audit
log of non-repudiation (:mod:`s2s_auth.audit`).
"""

from __future__ import annotations

import logging
from typing import Any

from s2s_auth.conf import s2s_settings

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
    credential_hash: str = "",
) -> None:
    """Log one authentication decision.

    ``outcome`` is "accepted" or "refused". ``credential`` is the raw credential the
    caller signed itself (a single-use JWT, an RFC 9421 signature) — stored for
    non-repudiation, never logged; a bearer token is never passed here raw: pass its
    ``claims`` instead, and its SHA-256 as ``credential_hash``
    (:func:`s2s_auth.audit.credential_hash`). For an RFC 9421 signature ``credential`` is
    the ``Signature`` field (or just the verified label's member) and ``signature_base``
    the base it was verified over. ``certificate_pem`` is the certificate (chain, leaf
    first) whose key verified it; missing intermediates are completed from the trust
    anchors' ``intermediates.pem`` so that the record can be checked with the root alone.
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
    if s2s_settings().AUDIT_ENABLED:
        from s2s_auth import audit

        audit.record_decision(
            request,
            mechanism=mechanism,
            outcome=outcome,
            reason=reason,
            detail=detail,
            principal=principal,
            end_user=end_user,
            fingerprint=fingerprint,
            credential=credential,
            signature_base=signature_base,
            certificate_pem=certificate_pem,
            claims=claims,
            credential_hash=credential_hash,
        )
