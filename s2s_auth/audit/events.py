"""Every authentication outcome goes through :func:`record`: one function, one
:class:`~s2s_auth.audit.decision.Decision`. Decisions taken outside an authenticated
service request — a token issued or refused by the issuer, an operator's change to
principals, scopes, keys or secrets — go through :func:`record_event`.

It logs each decision (reason code, principal, certificate fingerprint — never a key,
secret or token) and, when ``S2S_AUTH["AUDIT_ENABLED"]``, stores it in the audit log
(:func:`record_decision`): an accepted decision at once, in the current transaction; a
refused one deferred to :class:`~s2s_auth.audit.middleware.AuditMiddleware` when it
handles the request (DRF rolls the request's transaction back on a refusal). Where a
row goes from there — the caller's transaction or the process's writer thread — is
:func:`s2s_auth.audit.writer.store`'s decision.
"""

from __future__ import annotations

import logging
import re

from s2s_auth.audit import writer
from s2s_auth.audit.decision import ACCEPTED, Decision
from s2s_auth.audit.rows import build_row
from s2s_auth.conf import s2s_settings

__all__ = [
    "DEFER_ACCEPTED_ATTR",
    "PENDING_ATTR",
    "WRITTEN_ATTR",
    "Decision",
    "log_safe",
    "record",
    "record_decision",
    "record_event",
]

logger = logging.getLogger("s2s_auth")

# Attribute names on the (Django) request, set by AuditMiddleware.
PENDING_ATTR = "_s2s_audit_pending"  # list of deferred rows (refusals, see below)
WRITTEN_ATTR = "_s2s_audit_written"  # chain.Pending tokens of rows written for it
# Set by the middleware on a read-only request: accepted rows are written after the
# view too (there are no view writes to share a transaction with).
DEFER_ACCEPTED_ATTR = "_s2s_audit_defer_accepted"


#: C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the backslash
#: (so an escape the caller sent stays distinguishable from one we made).
_UNSAFE = re.compile(r"[\\\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escape(match: re.Match) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


def log_safe(value) -> str:
    """``value`` for one log line: a ``%0A`` decoded into a path cannot start a forged one."""
    return _UNSAFE.sub(_escape, str(value))


def record(request, decision: Decision) -> None:
    """Log one authentication decision and, when auditing is on, store it."""
    # A DRF request forwards each attribute to Django's (where AuditMiddleware keeps
    # its state): read that one directly.
    request = getattr(request, "_request", request)
    level = logging.DEBUG if decision.accepted else logging.WARNING
    if logger.isEnabledFor(level):  # (the escaping is paid only for a line written)
        _log(request, decision)
    if s2s_settings().AUDIT_ENABLED:
        record_decision(request, decision)


def _log(request, decision: Decision) -> None:
    """One log line for a decision: what was decided, never a credential."""
    method = log_safe(getattr(request, "method", ""))
    path = log_safe(getattr(request, "path", ""))
    remote = log_safe(request.META.get("REMOTE_ADDR", "") if hasattr(request, "META") else "")
    if decision.accepted:
        logger.debug(
            "s2s accepted mechanism=%s principal=%s %s %s from %s fingerprint=%s",
            log_safe(decision.mechanism),
            log_safe(decision.principal),
            method,
            path,
            remote,
            log_safe(decision.fingerprint or "-"),
        )
    else:
        logger.warning(
            "s2s refused mechanism=%s reason=%s principal=%s %s %s from %s fingerprint=%s: %s",
            log_safe(decision.mechanism),
            log_safe(decision.reason),
            log_safe(decision.principal or "-"),
            method,
            path,
            remote,
            log_safe(decision.fingerprint or "-"),
            log_safe(decision.detail),
        )


def record_decision(request, decision: Decision) -> None:
    """Store one decision. Accepted: stored now (:func:`s2s_auth.audit.writer.store`:
    in the current transaction, or queued when it need not join one). Refused (or any,
    on a read-only request): deferred to the middleware when it handles this request,
    else stored now."""
    request = getattr(request, "_request", request)  # (Django's, as in record)
    row = build_row(request, decision)
    pending = getattr(request, PENDING_ATTR, None) if request is not None else None
    deferred = not decision.accepted or getattr(request, DEFER_ACCEPTED_ATTR, False)
    if deferred and pending is not None:
        pending.append(row)
        return
    token = writer.store(row)
    written = getattr(request, WRITTEN_ATTR, None) if request is not None else None
    if written is not None and token is not None:
        written.append(token)


def record_event(
    action: str,
    *,
    mechanism: str,
    actor: str = "",
    principal: str = "",
    outcome: str = ACCEPTED,
    detail: str = "",
    claims: dict | None = None,
    end_user: str = "",
    credential_hash: str = "",
    request=None,
) -> None:
    """Log and (when auditing is on) store one event: ``action`` is its reason code
    (``token_issued``, ``principal_disabled``, ...), ``mechanism`` the channel
    (``admin``, ``cli``, the client authentication method), ``actor`` who did it (an
    admin user, an OS user), ``principal`` the SPIFFE ID it concerns. ``claims`` carry
    what changed (never a secret; a token only as its hash, ``credential_hash``).
    ``request`` (an admin or issuer request) gives method, path and address."""
    data = dict(claims or {})
    if actor:
        data["actor"] = actor
    decision = Decision(
        mechanism=mechanism,
        outcome=outcome,
        reason=action,
        detail=detail,
        principal=principal,
        end_user=end_user,
        claims=data,
        credential_hash=credential_hash,
    )
    logger.info(
        "s2s event %s %s mechanism=%s principal=%s actor=%s",
        log_safe(outcome),
        log_safe(action),
        log_safe(mechanism),
        log_safe(principal or "-"),
        log_safe(actor or "-"),
    )
    if s2s_settings().AUDIT_ENABLED:
        record_decision(request, decision)
