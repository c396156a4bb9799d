"""Names on the wire shared by the client hooks and the server-side mechanisms.

Kept free of Django imports, so the client side (``s2s_auth.client.auth``) works in a
process that has no Django settings, e.g. a script or a non-Django service.
"""

# Self-signed service JWTs: ``Authorization: ServiceJWT <jwt>``, JOSE ``typ`` header,
# and the claim that carries a forwarded end user's access token.
SERVICE_JWT_KEYWORD = "ServiceJWT"
SERVICE_JWT_TYPE = "s2s+jwt"  # a media type (RFC 8725 explicit typing)
END_USER_CLAIM = "end_user_token"
