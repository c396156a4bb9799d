"""``SPECTACULAR_SETTINGS`` of a service: data only, imported by settings modules."""

from __future__ import annotations

#: Every mechanism the services may accept, as an OpenAPI security scheme (3.1). Listed
#: in every schema's components; each operation names those its view really accepts
#: (``S2S_AUTH["MECHANISMS"]`` for service endpoints), with the scopes it needs.
SECURITY_SCHEMES = {
    "mutualTLS": {
        "type": "mutualTLS",
        "description": "The caller's X.509 certificate from the private CA (SPIFFE ID "
        "spiffe://<trust domain>/service/<name> in its URI SAN), presented in the TLS "
        "handshake. The scopes are the principal's grants at users.",
    },
    "ServiceJWT": {
        "type": "http",
        "scheme": "ServiceJWT",
        "description": "Authorization: ServiceJWT <jwt>: a self-signed, single-use JWT "
        "(iss = sub = the caller's SPIFFE ID, aud = this service, exp <= 60 s, jti), "
        "signed with the key of the caller's certificate (over mTLS, or x5c). May nest "
        "an end user's token (end_user_token): the user context.",
    },
    "oauth2": {
        "type": "oauth2",
        "description": "Authorization: Bearer <access token> issued to a service by the "
        "identity service (client credentials; certificate-bound with tls_client_auth).",
        "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {}}},
    },
    "endUserToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT (at+jwt)",
        "description": "Authorization: Bearer <access token> of an end user, from "
        "POST /api/v1/auth/login at users. The token's sub is the user id.",
    },
    "httpSignature": {
        "type": "apiKey",
        "in": "header",
        "name": "Signature",
        "description": "RFC 9421 HTTP Message Signatures: Signature and Signature-Input "
        "over @method, @target-uri, content-digest (RFC 9530) and created, keyid = the "
        "caller's registered key; a replay window applies.",
    },
    "apiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": "Authorization: ApiKey <key>: a key issued by s2s_service add-key, "
        "stored hashed, with expiry and revocation (when the service enables api_key).",
    },
    "clientSecretBasic": {
        "type": "http",
        "scheme": "basic",
        "description": "client_secret_basic at the token endpoint (RFC 6749 §2.3.1).",
    },
    "cookieAuth": {
        "type": "apiKey",
        "in": "cookie",
        "name": "sessionid",
        "description": "A session of this service's own Django accounts (admin, "
        "browsable API); such an account is never an end user of the marketplace.",
    },
}

#: The scopes the deployment grants (oauth2 client credentials).
SCOPES = {
    "users:read": "read people's public previews (users)",
    "users:notify": "notify a person (users)",
    "metrics:read": "read /metrics",
}


def spectacular_settings(
    service: str, description: str, issuer: str | None = None, enums: dict | None = None
) -> dict:
    """The settings for ``service``; ``issuer``: the identity service's URL (its token
    endpoint for oauth2); ``enums``: ``ENUM_NAME_OVERRIDES``."""
    schemes = {name: dict(scheme) for name, scheme in SECURITY_SCHEMES.items()}
    token_url = f"{issuer.rstrip('/')}/oauth/token" if issuer else "/oauth/token"
    schemes["oauth2"]["flows"] = {"clientCredentials": {"tokenUrl": token_url, "scopes": SCOPES}}
    return {
        "TITLE": f"fleamarket {service}",
        "DESCRIPTION": description,
        "VERSION": "1.0.0",
        "OAS_VERSION": "3.1.0",
        "SERVE_INCLUDE_SCHEMA": False,
        "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
        "SERVE_AUTHENTICATION": [],
        "COMPONENT_SPLIT_REQUEST": True,
        "APPEND_COMPONENTS": {"securitySchemes": schemes},
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
        "SWAGGER_UI_SETTINGS": {"persistAuthorization": True, "deepLinking": True},
        "ENUM_NAME_OVERRIDES": enums or {},
    }
