"""The end user on whose behalf a service calls, forwarded as a nested token."""

from __future__ import annotations

from .. import tokens
from ..principal import EndUser


def verify_end_user_token(token) -> EndUser:
    """Verify a forwarded end-user access token; raise TokenError if it is not valid.

    Not configured (no identity service keys) → refused: a user context that cannot
    be checked must not be trusted.
    """
    raise tokens.TokenError(
        "end_user_unverifiable", "No identity service is configured to verify end-user tokens."
    )
