"""The end user on whose behalf a service calls: a token for this hop, beside the
caller's own credential.

The caller exchanges the user's token at the identity service (RFC 8693,
``s2s_auth.issuer.exchange``) for one minted for this service: ``aud`` = this
service, ``sub`` = the user, ``act.sub`` = the caller's SPIFFE ID, ``client_id`` = its
name. It travels in ``S2S-End-User-Token``; it is accepted only from the caller that
``act`` names, and only here (its ``aud``), so a token lifted at one hop is refused at
any other. With a service JWT the JWT also commits to it by its hash (``ath``, DPoP's
encoding, RFC 9449 §4.2): the JWT, kept raw by the audit log, proves which token the
caller presented without holding a usable one.

The user's own token forwarded as it is (``aud`` = ``END_USER_AUDIENCE``, no ``act``:
any service that received it could replay it anywhere) is refused
(``end_user_not_exchanged``) unless ``ACCEPT_FORWARDED_USER_TOKENS`` opts in, for
peers that cannot exchange; then only beside a service JWT that commits to it. The
``end_user_token`` claim of earlier releases (the token nested in the JWT) is refused
(``end_user_token_nested``). Anything wrong fails the whole request.
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
from s2s_auth.identity import EndUser, is_spiffe_id, service_name

__all__ = ["end_user_beside", "end_user_from", "forwarded_token", "verify_end_user_token"]

_META_KEY = "HTTP_" + END_USER_TOKEN_HEADER.upper().replace("-", "_")


def forwarded_token(request) -> str | None:
    """The end-user token sent beside the JWT, or None."""
    # A DRF request forwards each attribute read to Django's: read it directly.
    meta = getattr(getattr(request, "_request", request), "META", None) or {}
    value = meta.get(_META_KEY)
    return value.strip() if isinstance(value, str) else None


def end_user_from(claims: dict, request, caller: str | None = None) -> EndUser | None:
    """The end user a verified service JWT (``claims``, from ``caller``) acts for, or None.

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
    return verify_end_user_token(token, caller=caller, committed=True)


def end_user_beside(request, caller: str) -> EndUser | None:
    """The end user of an exchanged token sent beside a credential that commits to
    nothing (an access token): None without one; raise TokenError if it is bad."""
    token = forwarded_token(request)
    if not token:
        return None
    if not token.isascii():
        raise tokens.TokenError("end_user_malformed", "Malformed end-user token.")
    return verify_end_user_token(token, caller=caller)


def _as_list(value) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else [str(v) for v in value]


def verify_end_user_token(token, *, caller: str | None = None, committed: bool = False) -> EndUser:
    """Verify the user context ``caller`` presented; raise TokenError if it is not
    acceptable. ``committed``: the caller's signed credential commits to the token
    (the only way a forwarded, not exchanged, token may come, when opted in)."""
    if not isinstance(token, str):
        raise tokens.TokenError("end_user_malformed", "the end-user token must be a string")
    conf = s2s_settings()
    if not conf.ACCESS_TOKEN_ISSUER:
        raise tokens.TokenError(
            "end_user_unverifiable", "No identity service is configured to verify end users."
        )
    users = _as_list(conf.END_USER_AUDIENCE)
    ours = _as_list(conf.ACCESS_TOKEN_AUDIENCE) or _as_list(conf.own_spiffe_id)
    try:
        verified = validate_access_token(token, kind="user_context", audiences=ours + users)
    except tokens.TokenError as exc:
        raise tokens.TokenError(f"end_user_{exc.code}", f"end-user token: {exc.detail}") from exc
    except JWKSUnavailable as exc:
        raise tokens.TokenError("end_user_unverifiable", str(exc)) from exc
    subject = verified.subject
    if is_spiffe_id(subject):
        raise tokens.TokenError("end_user_not_a_user", "the nested token belongs to a service")
    aud = set(_as_list(verified.claims.get("aud")))
    if "act" in verified.claims:
        _check_exchanged(verified.claims, aud, ours, caller)
    elif not (conf.ACCEPT_FORWARDED_USER_TOKENS and committed):
        raise tokens.TokenError(
            "end_user_not_exchanged",
            "The user's own token was forwarded: exchange it for one for this service "
            "(RFC 8693 token exchange at the identity service).",
        )
    elif not aud & set(users):
        raise tokens.TokenError("end_user_wrong_audience", "end-user token: wrong audience")
    return EndUser(
        id=subject,
        username=str(verified.claims.get("username", "")),
        scopes=verified.scopes,
    )


def _check_exchanged(claims: dict, aud: set[str], ours: list[str], caller: str | None) -> None:
    """An exchanged token is for this service, from the caller its ``act`` names."""
    if not aud & set(ours):
        raise tokens.TokenError(
            "end_user_wrong_audience", "The user context was issued for another service."
        )
    act = claims["act"]
    actor = act.get("sub") if isinstance(act, dict) else None
    if not isinstance(actor, str) or not isinstance(caller, str):
        raise tokens.TokenError("end_user_malformed", "The user context's act is malformed.")
    name = service_name(caller, s2s_settings().TRUST_DOMAIN)
    client_id = claims.get("client_id")
    if not (
        hmac.compare_digest(actor.encode(), caller.encode())
        and isinstance(client_id, str)
        and client_id == name
    ):
        raise tokens.TokenError(
            "end_user_actor_mismatch",
            "The user context was issued to another service than the caller.",
        )
