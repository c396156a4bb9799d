"""Tokens issued and refused by the identity service, as audit records.

An access token is a bearer credential, so the record keeps its claims and its hash
(``credential_hash``: a token presented later can be traced back to its issuance),
never the token. A refusal keeps the error code, its description and the client it
claimed to be. Called by :mod:`s2s_auth.issuer` (one call per issuance or refusal).
"""

from __future__ import annotations

from typing import Any

from s2s_auth import metrics
from s2s_auth.audit.canonical import credential_hash
from s2s_auth.audit.decision import REFUSED
from s2s_auth.audit.events import record_event
from s2s_auth.errors import S2SError
from s2s_auth.identity import SERVICE_NAME_RE, is_spiffe_id, spiffe_id

__all__ = ["record_issued", "record_refused", "record_registered"]


def record_issued(request, *, method: str, claims: dict[str, Any], token: str) -> None:
    """A token minted for ``claims`` (client authenticated with ``method``)."""
    subject = str(claims.get("sub", ""))
    service = is_spiffe_id(subject)
    metrics.token_issued(str(claims.get("client_id", "")), _grant(request, method))
    record_event(
        "token_issued" if service else "user_token_issued",
        mechanism=method,
        principal=subject if service else "",
        end_user="" if service else subject,
        detail=f"scope={claims.get('scope', '')!r} aud={claims.get('aud')!r}",
        claims=claims,
        credential_hash=credential_hash(token),
        request=request,
    )


def _grant(request, method: str) -> str:
    """The grant of a token request, its URN shortened (``token-exchange``); ``login``
    for end users' tokens."""
    if method == "login":
        return "login"
    try:
        data = getattr(request, "data", None)  # parsed (and cached) by the token view
    except Exception:
        data = None
    grant = data.get("grant_type") if hasattr(data, "get") else None
    return str(grant).rpartition(":")[2][:40] if isinstance(grant, str) and grant else "-"


def record_refused(
    request, *, mechanism: str, error: str, description: str, client_id: str = ""
) -> None:
    """A token (or registration, or login) request refused with ``error``."""
    name = client_id if isinstance(client_id, str) else ""
    try:
        principal = spiffe_id(name) if SERVICE_NAME_RE.fullmatch(name) else ""
    except S2SError:  # no valid trust domain configured: keep the claimed name only
        principal = ""
    record_event(
        error,
        mechanism=mechanism,
        outcome=REFUSED,
        principal=principal,
        detail=description,
        claims={"client_id": name[:255]} if name else None,
        request=request,
    )


def record_registered(request, principal, *, password: bool, peer=None) -> None:
    """A service registered itself (no scopes), with a password and/or the verified
    certificate ``peer``."""
    credentials = [c for c, present in (("password", password), ("certificate", peer)) if present]
    record_event(
        "service_registered",
        mechanism="register",
        principal=principal.spiffe_id,
        detail=f"self-registered with {' and '.join(credentials)}",
        claims={
            "name": principal.name,
            "credentials": credentials,
            "fingerprint": getattr(peer, "fingerprint", ""),
        },
        request=request,
    )
