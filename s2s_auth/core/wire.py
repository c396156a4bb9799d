"""Names on the wire shared by the client hooks and the server-side mechanisms.

Kept free of Django imports, so the client side (``s2s_auth.client.auth``) works in a
process that has no Django settings, e.g. a script or a non-Django service.
"""

import base64
import hashlib

# Self-signed service JWTs: ``Authorization: ServiceJWT <jwt>``, JOSE ``typ`` header.
SERVICE_JWT_KEYWORD = "ServiceJWT"
SERVICE_JWT_TYPE = "s2s+jwt"  # a media type (RFC 8725 explicit typing)

# A forwarded end user's access token travels *beside* the service JWT, in this
# header; the JWT commits to it by its hash in the ``ath`` claim (the claim and its
# encoding are DPoP's, RFC 9449 §4.2). The signed JWT, which the audit log keeps for
# non-repudiation, then holds no usable bearer token.
END_USER_TOKEN_HEADER = "S2S-End-User-Token"  # noqa: S105 - a header name
END_USER_HASH_CLAIM = "ath"
#: The nested claim of earlier releases (the token inside the JWT): refused now.
LEGACY_END_USER_CLAIM = "end_user_token"


def token_hash(token: str) -> str:
    """``ath`` of ``token``: base64url (no padding) of SHA-256 over its ASCII bytes."""
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
