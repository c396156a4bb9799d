"""The end user on whose behalf a service calls: their access token, forwarded beside
the service JWT and committed to by its hash.

The caller sends the user's own access token in ``S2S-End-User-Token`` and puts its
hash in the service JWT's ``ath`` claim (DPoP's encoding, RFC 9449 §4.2). The token
must match the hash, and is verified exactly like one presented at an end-user
endpoint (same issuer, JWKS and ``END_USER_AUDIENCE``). Anything wrong fails the whole
request. The JWT, kept raw by the audit log, thus proves which user token the caller
forwarded without holding one that could be replayed.

The ``end_user_token`` claim of earlier releases (the token nested in the JWT) is
refused (``end_user_token_nested``); token exchange (RFC 8693) will replace forwarding.
"""

from __future__ import annotations

import hmac

from s2s_auth.conf import s2s_settings
from s2s_auth.core import jose as tokens
from s2s_auth.core.access_tokens import validate_access_token
from s2s_auth.core.jwks import JWKSUnavailable
from s2s_auth.core.wire import (
    END_USER_HASH_CLAIM,
    END_USER_TOKEN_HEADER,
    LEGACY_END_USER_CLAIM,
    token_hash,
)
from s2s_auth.identity import EndUser, is_spiffe_id

__all__ = ["end_user_from", "forwarded_token", "verify_end_user_token"]

_META_KEY = "HTTP_" + END_USER_TOKEN_HEADER.upper().replace("-", "_")


def forwarded_token(request) -> str | None:
    """The end-user token sent beside the JWT, or None."""
    meta = getattr(request, "META", None) or {}
    value = meta.get(_META_KEY)
    return value.strip() if isinstance(value, str) else None


def end_user_from(claims: dict, request) -> EndUser | None:
    """The end user a verified service JWT (``claims``) forwards, or None.

    Raise TokenError when the JWT nests a token, commits to a token that is not
    there, comes with a token it does not commit to, or the token does not match."""
    if LEGACY_END_USER_CLAIM in claims:
        raise tokens.TokenError(
            "end_user_token_nested",
            f"Send the end user's token in {END_USER_TOKEN_HEADER} and its hash as "
            f"'{END_USER_HASH_CLAIM}', not inside the JWT.",
        )
    commitment = claims.get(END_USER_HASH_CLAIM)
    token = forwarded_token(request)
    if commitment is None and not token:
        return None
    if commitment is None:
        raise tokens.TokenError(
            "end_user_uncommitted",
            f"{END_USER_TOKEN_HEADER} was sent but the JWT has no '{END_USER_HASH_CLAIM}'.",
        )
    if not token:
        raise tokens.TokenError(
            "end_user_missing",
            f"The JWT commits to an end-user token that is not in {END_USER_TOKEN_HEADER}.",
        )
    if not isinstance(commitment, str) or not token.isascii():
        raise tokens.TokenError("end_user_malformed", "Malformed end-user token or hash.")
    if not hmac.compare_digest(token_hash(token).encode(), commitment.encode("ascii", "replace")):
        raise tokens.TokenError(
            "end_user_mismatch",
            f"The end-user token does not match the JWT's '{END_USER_HASH_CLAIM}'.",
        )
    return verify_end_user_token(token)


def verify_end_user_token(token) -> EndUser:
    """Verify a forwarded end-user token; raise TokenError if it is not acceptable."""
    if not isinstance(token, str):
        raise tokens.TokenError("end_user_malformed", "the end-user token must be a string")
    conf = s2s_settings()
    if not conf.ACCESS_TOKEN_ISSUER:
        raise tokens.TokenError(
            "end_user_unverifiable", "No identity service is configured to verify end users."
        )
    audiences = conf.END_USER_AUDIENCE
    audiences = [audiences] if isinstance(audiences, str) else list(audiences)
    try:
        verified = validate_access_token(token, kind="end_user", audiences=audiences)
    except tokens.TokenError as exc:
        raise tokens.TokenError(f"end_user_{exc.code}", f"end-user token: {exc.detail}") from exc
    except JWKSUnavailable as exc:
        raise tokens.TokenError("end_user_unverifiable", str(exc)) from exc
    subject = verified.subject
    if is_spiffe_id(subject):
        raise tokens.TokenError("end_user_not_a_user", "the nested token belongs to a service")
    return EndUser(
        id=subject,
        username=str(verified.claims.get("username", "")),
        scopes=verified.scopes,
    )
