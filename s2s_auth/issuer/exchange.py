"""The token-exchange grant (RFC 8693): a user's token for one hop's user context.

A service that acts for an end user does not hand the user's token to the next
service (whoever receives it could replay it anywhere until it expires). It asks the
token endpoint, authenticated as itself, for a token minted for that next service:

* ``subject_token``: the user's access token (ours, ``typ at+jwt``, not expired, an
  end user's), or a token from an earlier exchange that names the caller as ``aud``;
  ``subject_token_type``: ``urn:ietf:params:oauth:token-type:access_token``.
* ``audience`` or ``resource``: exactly one registered service, one the caller's
  granted scopes name (``users:read`` → ``users``).
* ``scope`` (optional): at most the user's scopes that the caller is also granted.

The token issued: ``aud`` = the target's SPIFFE ID, ``sub`` = the user,
``act = {"sub": caller}`` (RFC 8693 §4.1; the subject token's own ``act`` nested
inside it along a chain), ``client_id`` = the caller, a lifetime of
``TOKEN_EXCHANGE_LIFETIME`` seconds (never beyond the subject token's ``exp``). Lifted
from the next service it is refused everywhere else: another ``aud``; and at that
service from any caller but the one in ``act``.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from s2s_auth.audit.issuance import record_issued
from s2s_auth.conf import s2s_settings
from s2s_auth.core.jose import TokenError, new_jti, unverified_header, verify
from s2s_auth.identity import is_spiffe_id, service_name
from s2s_auth.issuer import oauth
from s2s_auth.issuer.keys import key_store, retention
from s2s_auth.issuer.oauth import OAuthError, requested_within
from s2s_auth.models import ServicePrincipal

__all__ = ["ACCESS_TOKEN_TYPE_URN", "GRANT_TYPE", "MAX_ACTOR_DEPTH", "exchange"]

logger = logging.getLogger("s2s_auth.issuer")

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE_URN = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
#: Most services an exchanged token may name in its ``act`` chain.
MAX_ACTOR_DEPTH = 5


def exchange(request, principal: ServicePrincipal, params: dict, *, method: str) -> dict:
    """The RFC 8693 §2.2 response for an authenticated, enabled client ``principal``."""
    subject_token = _subject_token(params)
    target = _target(params, principal)
    subject = verify_subject(request, subject_token, principal)
    scopes = _scopes(principal, subject, params.get("scope"))
    return mint_exchanged(request, principal, subject, target, scopes, method=method)


def _subject_token(params: dict) -> str:
    if params.get("actor_token") or params.get("actor_token_type"):
        raise OAuthError(
            "invalid_request",
            "actor_token is not supported: the authenticated client is the actor.",
        )
    requested = params.get("requested_token_type")
    if requested not in (None, ACCESS_TOKEN_TYPE_URN):
        raise OAuthError(
            "invalid_request", f"requested_token_type must be {ACCESS_TOKEN_TYPE_URN}."
        )
    token = params.get("subject_token")
    if not token:
        raise OAuthError("invalid_request", "Missing subject_token.")
    if not params.get("subject_token_type"):
        raise OAuthError("invalid_request", "Missing subject_token_type.")
    if params["subject_token_type"] != ACCESS_TOKEN_TYPE_URN:
        raise OAuthError("invalid_request", f"subject_token_type must be {ACCESS_TOKEN_TYPE_URN}.")
    return token


def _target(params: dict, principal: ServicePrincipal) -> str:
    """The one registered service the token is for, which the caller may call."""
    values = list(params.get("resource") or [])
    if params.get("audience") is not None:
        values += params["audience"].split()
    if len(values) != 1:
        raise OAuthError("invalid_target", "Name exactly one audience or resource.")
    (target,) = oauth.resolve_audiences(values)  # registered, else invalid_target
    name = service_name(target, s2s_settings().TRUST_DOMAIN)
    if not any(scope.startswith(f"{name}:") for scope in principal.scope_set):
        raise OAuthError(
            "invalid_target",
            f"The client is granted no scope of {name!r}: it cannot act there for a user.",
            principal=principal.name,
        )
    return target


def verify_subject(request, token: str, principal: ServicePrincipal) -> dict[str, Any]:
    """The claims of a subject token this issuer minted for an end user; invalid_grant
    otherwise. A token from an earlier exchange must have been issued for the caller."""
    conf = s2s_settings()
    audiences = [str(conf.USER_TOKEN_AUDIENCE), principal.spiffe_id]
    try:
        key = _verification_key(unverified_header(token).get("kid"))
        claims = verify(
            token,
            key,
            algorithms=conf.JWT_ALGORITHMS,
            audience=audiences,
            issuer=oauth.issuer_url(request),
            typ=oauth.TOKEN_TYPE,
            leeway=conf.CLOCK_SKEW,
            require=("exp", "iat", "sub", "jti", "aud"),
        ).claims
    except TokenError as exc:
        raise _invalid_grant(f"The subject_token is refused: {exc.code}.", principal) from exc
    if not isinstance(claims["sub"], str) or is_spiffe_id(claims["sub"]):
        raise _invalid_grant("The subject_token is not an end user's token.", principal)
    if not isinstance(claims.get("scope", ""), str):
        raise _invalid_grant("The subject_token's scope is not a string.", principal)
    if "act" in claims:
        aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if principal.spiffe_id not in aud:
            raise _invalid_grant("The subject_token was issued to another service.", principal)
        if _depth(claims["act"]) >= MAX_ACTOR_DEPTH:  # the caller adds one
            raise _invalid_grant("The subject_token's actor chain is too long.", principal)
    return claims


def _verification_key(kid):
    """The public key of a signing key this issuer still publishes, by ``kid``."""
    now = dt.datetime.now(dt.UTC)
    for key in key_store().ring().published(now, retention()):
        if isinstance(kid, str) and key.kid == kid:
            return key.private_key.public_key()
    raise TokenError("unknown_key", "not signed by a key of this issuer")


def _depth(act) -> int:
    """Services named in an ``act`` chain; a malformed one counts as too long."""
    depth = 0
    while act is not None and depth < MAX_ACTOR_DEPTH:
        if not isinstance(act, dict) or not is_spiffe_id(act.get("sub")):
            return MAX_ACTOR_DEPTH
        depth += 1
        act = act.get("act")
    return depth if act is None else MAX_ACTOR_DEPTH


def _invalid_grant(description: str, principal: ServicePrincipal) -> OAuthError:
    return OAuthError("invalid_grant", description, principal=principal.name)


def _scopes(principal: ServicePrincipal, subject: dict, requested: str | None) -> list[str]:
    """RFC 8693 §2.1 ``scope``: within the user's scopes and the caller's grants."""
    available = set(subject.get("scope", "").split()) & principal.scope_set
    if requested is None or not requested.strip():
        return sorted(available)
    return requested_within(
        requested, available, principal, "Beyond the user's scopes and the client's grants"
    )


def mint_exchanged(
    request,
    principal: ServicePrincipal,
    subject: dict[str, Any],
    target: str,
    scopes: list[str],
    *,
    method: str,
) -> dict[str, Any]:
    now = int(time.time())
    exp = min(now + int(s2s_settings().TOKEN_EXCHANGE_LIFETIME), int(subject["exp"]))
    actor: dict[str, Any] = {"sub": principal.spiffe_id}
    if "act" in subject:
        actor["act"] = subject["act"]
    claims: dict[str, Any] = {
        "iss": oauth.issuer_url(request),
        "sub": subject["sub"],
        "client_id": principal.name,
        "aud": target,
        "scope": " ".join(scopes),
        "iat": now,
        "exp": exp,
        "jti": new_jti(),
        "act": actor,
    }
    if isinstance(subject.get("username"), str):
        claims["username"] = subject["username"]
    token = oauth._sign(claims)
    record_issued(request, method=method, claims=claims, token=token)
    logger.info(
        "exchanged token client=%s method=%s aud=%s scope=%r jti=%s subject_jti=%s",
        principal.name,
        method,
        target,
        claims["scope"],
        claims["jti"],
        subject.get("jti"),
    )
    body = oauth._response(token, exp - now, claims["scope"])
    body["issued_token_type"] = ACCESS_TOKEN_TYPE_URN
    return body
