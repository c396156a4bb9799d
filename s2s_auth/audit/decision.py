"""``Decision``: the one record type of an authentication decision.

Mechanisms build it, :func:`s2s_auth.audit.events.record` logs it and
:func:`s2s_auth.audit.rows.build_row` turns it into a stored row: a field is added
here and nowhere else. Keyword-only, so an unknown field is a ``TypeError`` at the
call site rather than a silently dropped piece of evidence.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from s2s_auth.audit.canonical import credential_hash as hash_token
from s2s_auth.core import jose

__all__ = ["ACCEPTED", "OUTCOMES", "REFUSED", "Decision", "is_bearer_token"]

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


@dataclasses.dataclass(frozen=True, kw_only=True)
class Decision:
    """One accepted or refused request, as the mechanism saw it.

    ``credential`` is a credential the caller signed itself (a single-use JWT, an
    RFC 9421 ``Signature`` field, with ``signature_base`` the base it was verified
    over); it is stored for non-repudiation, never logged. A bearer token is never kept
    raw: pass its ``claims`` and its hash as ``credential_hash``; one passed as
    ``credential`` anyway is replaced by its hash here. ``certificate_pem`` is the
    certificate (chain, leaf first) whose key verified the credential.
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

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be 'accepted' or 'refused', not {self.outcome!r}")
        if self.credential and is_bearer_token(self.credential):
            logger.error("an access token was passed to the audit log raw; keeping its hash only")
            object.__setattr__(
                self, "credential_hash", self.credential_hash or hash_token(self.credential)
            )
            object.__setattr__(self, "credential", "")

    @property
    def accepted(self) -> bool:
        return self.outcome == ACCEPTED
