"""The schema of the views s2s_auth ships (the identity service, whoami), described from
the deployment's side: drf-spectacular's ``OpenApiViewExtension`` decorates a subclass
it uses for the schema only; the library's views are untouched and unimported here."""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiViewExtension
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers

OAUTH_ERROR = inline_serializer(
    "OAuthError",
    {"error": serializers.CharField(), "error_description": serializers.CharField()},
)
TOKEN = inline_serializer(
    "TokenResponse",
    {
        "access_token": serializers.CharField(),
        "token_type": serializers.CharField(),
        "expires_in": serializers.IntegerField(),
        "scope": serializers.CharField(required=False),
    },
)
ERRORS = {
    400: OpenApiResponse(OAUTH_ERROR, "invalid_request, unsupported_grant_type, ..."),
    401: OpenApiResponse(OAUTH_ERROR, "invalid_client / invalid_grant"),
    403: OpenApiResponse(OAUTH_ERROR, "refused"),
    409: OpenApiResponse(OAUTH_ERROR, "already registered"),
    429: OpenApiResponse(OAUTH_ERROR, "rate limited"),
}
CLIENT_AUTH = [{"clientSecretBasic": []}, {"mutualTLS": []}, {}]


def _documented(target: str, **schema):
    class Doc(OpenApiViewExtension):
        target_class = target

        def view_replacement(self):
            @extend_schema(**schema)
            class Documented(self.target_class):
                pass

            return Documented

    Doc.__name__ = Doc.__qualname__ = f"Doc{target.rsplit('.', 1)[1]}"
    return Doc


TokenDoc = _documented(
    "s2s_auth.issuer.views.TokenView",
    summary="OAuth2 token endpoint (client credentials, RFC 6749 §4.4)",
    description="Client authentication: client_secret_basic (Basic), client_secret_post, "
    "private_key_jwt (RFC 7523) or tls_client_auth (RFC 8705: the mTLS certificate; the "
    "token is then bound to it). resource (RFC 8707) may repeat.",
    request={
        "application/x-www-form-urlencoded": inline_serializer(
            "TokenRequest",
            {
                "grant_type": serializers.CharField(),
                "scope": serializers.CharField(required=False),
                "client_id": serializers.CharField(required=False),
                "client_secret": serializers.CharField(required=False),
                "client_assertion": serializers.CharField(required=False),
                "client_assertion_type": serializers.CharField(required=False),
                "audience": serializers.CharField(required=False),
                "resource": serializers.ListField(child=serializers.CharField(), required=False),
            },
        )
    },
    responses={200: TOKEN, **ERRORS},
    auth=CLIENT_AUTH,
)
ServiceTokenDoc = _documented(
    "s2s_auth.issuer.views.ServiceTokenView",
    summary="A service token for a service name and password, as JSON",
    request=inline_serializer(
        "ServiceTokenRequest",
        {
            "serviceName": serializers.CharField(),
            "password": serializers.CharField(),
            "scope": serializers.CharField(required=False),
            "audience": serializers.CharField(required=False),
            "resource": serializers.ListField(child=serializers.CharField(), required=False),
        },
    ),
    responses={200: TOKEN, **ERRORS},
    auth=[{}],
)
RegisterDoc = _documented(
    "s2s_auth.issuer.views.RegisterServiceView",
    summary="Register a service account (no scopes) when registration is open",
    request=inline_serializer(
        "RegisterServiceRequest",
        {
            "serviceName": serializers.CharField(required=False),
            "password": serializers.CharField(required=False),
        },
    ),
    responses={
        201: inline_serializer(
            "RegisteredService",
            {
                "serviceName": serializers.CharField(),
                "clientId": serializers.CharField(),
                "spiffeId": serializers.CharField(),
                "scopes": serializers.ListField(child=serializers.CharField()),
                "credentials": serializers.ListField(child=serializers.CharField()),
            },
        ),
        **ERRORS,
    },
    auth=[{"mutualTLS": []}, {}],
)
LoginDoc = _documented(
    "s2s_auth.issuer.views.LoginView",
    summary="End-user login: an access token for the marketplace (Bearer at ads)",
    request=inline_serializer(
        "LoginRequest", {"username": serializers.CharField(), "password": serializers.CharField()}
    ),
    responses={200: TOKEN, **ERRORS},
    auth=[{}],
)
JWKSDoc = _documented(
    "s2s_auth.issuer.views.JWKSView",
    summary="The identity service's public signing keys (JWKS)",
    responses={200: inline_serializer("JWKS", {"keys": serializers.ListField()})},
    auth=[{}],
)
MetadataDoc = _documented(
    "s2s_auth.issuer.views.MetadataView",
    summary="Authorization server metadata (RFC 8414)",
    responses={200: inline_serializer("ASMetadata", {"issuer": serializers.CharField()})},
    auth=[{}],
)
WhoAmIDoc = _documented(
    "s2s_auth.views.WhoAmIView",
    summary="The calling service as this server sees it",
    responses={
        200: inline_serializer(
            "WhoAmI",
            {
                "name": serializers.CharField(),
                "spiffe_id": serializers.CharField(),
                "mechanism": serializers.CharField(),
                "scopes": serializers.ListField(child=serializers.CharField()),
                "end_user": serializers.CharField(allow_null=True),
            },
        )
    },
)
