"""Who the caller of an ads endpoint is, as ads stores people: a verified end user's id.

Sellers and buyers are UserService's users, identified by the ``sub`` of the access
token its identity service issued (a decimal string). ads stores them as integers
(``Ad.seller_id``), so the comparison happens here, once, as integers. Only a token
verified by ``EndUserTokenAuthentication`` counts: a local account of ads (its admin,
signed in with a session) shares the integer id space but is never a seller or a buyer.
"""

from __future__ import annotations

from s2s_auth import AccessToken, TokenUser

__all__ = ["MAX_USER_ID", "end_user_id", "end_user_token"]

#: Ad.seller_id is a PositiveBigIntegerField.
MAX_USER_ID = 2**63 - 1


def end_user_id(request) -> int | None:
    """The verified end user's id, or None (anonymous, a local account, a service)."""
    user = getattr(request, "user", None)
    if not isinstance(user, TokenUser) or not isinstance(request.auth, AccessToken):
        return None
    sub = user.id
    if not (isinstance(sub, str) and sub.isascii() and sub.isdigit()):
        return None
    value = int(sub)
    return value if 0 < value <= MAX_USER_ID else None


def end_user_token(request) -> str | None:
    """The end user's raw access token, to forward when ads calls UserService for them."""
    return request.auth.token if end_user_id(request) is not None else None
