"""The end user on whose behalf a service calls, forwarded as a nested token.

The nested token is the user's own access token from the identity service; it is
verified exactly like one presented at an end-user endpoint (same issuer, JWKS and
``END_USER_AUDIENCE``). Anything wrong with it fails the whole request.
"""

from __future__ import annotations

from s2s_auth.conf import s2s_settings
from s2s_auth.core import jose as tokens
from s2s_auth.core.access_tokens import validate_access_token
from s2s_auth.core.jwks import JWKSUnavailable
from s2s_auth.identity import EndUser, is_spiffe_id


def verify_end_user_token(token) -> EndUser:
    """Verify a forwarded end-user token; raise TokenError if it is not acceptable."""
    if not isinstance(token, str):
        raise tokens.TokenError("end_user_malformed", "end_user_token must be a string")
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
