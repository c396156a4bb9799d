"""``Decision``: the one record type of an authentication decision.

Mechanisms build it, :func:`s2s_auth.audit.events.record` logs it and
:func:`s2s_auth.audit.rows.build_row` turns it into a stored row: a field is added
here and nowhere else. Keyword-only, so an unknown field is a ``TypeError`` at the
call site rather than a silently dropped piece of evidence.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any

from s2s_auth.audit.canonical import credential_hash as hash_token
from s2s_auth.core import jose

__all__ = ["ACCEPTED", "OUTCOMES", "REFUSED", "Decision", "is_bearer_token", "redact_tokens"]

logger = logging.getLogger("s2s_auth.audit")

ACCEPTED = "accepted"
REFUSED = "refused"
OUTCOMES = (ACCEPTED, REFUSED)


def is_bearer_token(credential: str) -> bool:
    """An OAuth access token (RFC 9068 ``typ: at+jwt``), which must never be stored raw."""
    if credential.count(".") != 2:
        return False
    try:
        header = jose.unverified_header(credential)
    except jose.TokenError:
        return False
    typ = str(header.get("typ", "")).lower().removeprefix("application/")
    return typ == "at+jwt"


#: A compact JWS anywhere in a text: three base64url segments, the first a JSON header.
_JWS_RE = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")


def _is_jws(text: str) -> bool:
    try:
        jose.unverified_header(text)
    except jose.TokenError:
        return False
    return True


def _redact_match(match: re.Match) -> str:
    found = match.group(0)
    return f"[token sha-256={hash_token(found)}]" if _is_jws(found) else found


def _redact_text(text: str) -> str:
    return _JWS_RE.sub(_redact_match, text)


def redact_tokens(value: Any) -> Any:
    """``value`` (claims, a JSON value) with every token in it replaced by its hash: a
    token nested in a credential is a bearer token all the same. ``value`` itself when
    it holds no token (every accepted request passes its claims through here: a scan
    that builds nothing answers that first)."""
    return _redacted(value) if _may_hold_token(value) else value


_CONTAINERS = (dict, list, tuple)


def _may_hold_token(value: Any) -> bool:
    """Is there a string with a JWS's first characters (``eyJ``) anywhere in ``value``?
    (Or a tuple: the full walk turns those into lists, as it always has.)"""
    if isinstance(value, str):
        return "eyJ" in value
    if isinstance(value, dict):
        value = value.values()
    elif isinstance(value, tuple):
        return True
    elif not isinstance(value, list):
        return False
    for item in value:
        if isinstance(item, str):
            if "eyJ" in item:
                return True
        elif isinstance(item, _CONTAINERS) and _may_hold_token(item):
            return True
    return False


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return _redact_text(value) if "eyJ" in value else value
    if isinstance(value, dict):
        redacted = {k: _redacted(v) for k, v in value.items()}
        return value if all(redacted[k] is v for k, v in value.items()) else redacted
    if isinstance(value, list | tuple):
        items = [_redacted(v) for v in value]
        same = isinstance(value, list) and all(a is b for a, b in zip(items, value, strict=True))
        return value if same else items
    return value


def _nested_payload(credential: str) -> dict | None:
    """The payload of a JWT credential when it carries a token inside, else None."""
    from s2s_auth.audit.evidence import decode_jwt_unverified

    decoded = decode_jwt_unverified(credential)
    if decoded is None:
        return None
    payload = decoded[1]
    return payload if redact_tokens(payload) is not payload else None


@dataclasses.dataclass(frozen=True, kw_only=True, init=False)
class Decision:
    """One accepted or refused request, as the mechanism saw it.

    ``credential`` is a credential the caller signed itself (a single-use JWT, an
    RFC 9421 ``Signature`` field, with ``signature_base`` the base it was verified
    over); it is stored for non-repudiation, never logged. A bearer token is never kept
    raw: pass its ``claims`` and its hash as ``credential_hash``; one passed as
    ``credential`` anyway is replaced by its hash here. So is a credential with a
    token inside (a JWT nesting one, a signature base covering an ``Authorization``
    header): its claims or base are kept with each token replaced by its hash, and
    every token in ``claims`` too. ``certificate_pem`` is the certificate (chain, leaf
    first) whose key verified the credential.
    """

    mechanism: str
    outcome: str
    reason: str = ""
    detail: str = ""
    principal: str = ""
    end_user: str = ""
    fingerprint: str = ""
    credential: str = dataclasses.field(default="", repr=False)
    signature_base: str = dataclasses.field(default="", repr=False)
    certificate_pem: str = dataclasses.field(default="", repr=False)
    claims: dict[str, Any] | None = dataclasses.field(default=None, repr=False)
    credential_hash: str = ""

    def __init__(
        self,
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
    ):
        # The fields above, set in one step: a frozen dataclass's own __init__ makes an
        # object.__setattr__ call per field (a decision per request; a test keeps this
        # signature equal to the fields).
        self.__dict__.update(
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
        self.__post_init__()

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be 'accepted' or 'refused', not {self.outcome!r}")
        if self.credential and is_bearer_token(self.credential):
            logger.error("an access token was passed to the audit log raw; keeping its hash only")
            object.__setattr__(
                self, "credential_hash", self.credential_hash or hash_token(self.credential)
            )
            object.__setattr__(self, "credential", "")
        nested = _nested_payload(self.credential) if self.credential else None
        if nested is not None:
            object.__setattr__(self, "credential_hash", hash_token(self.credential))
            object.__setattr__(self, "credential", "")
            object.__setattr__(self, "claims", self.claims or nested)
        if self.signature_base and _redact_text(self.signature_base) != self.signature_base:
            claims = dict(self.claims or {})
            claims["signature_base"] = self.signature_base
            object.__setattr__(self, "claims", claims)
            object.__setattr__(self, "credential_hash", hash_token(self.credential))
            object.__setattr__(self, "credential", "")
            object.__setattr__(self, "signature_base", "")
        if self.claims and _may_hold_token(self.claims):
            object.__setattr__(self, "claims", _redacted(self.claims))

    @property
    def accepted(self) -> bool:
        return self.outcome == ACCEPTED
