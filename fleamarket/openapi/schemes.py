"""One OpenAPI security scheme per s2s_auth authentication class, registered by import.

drf-spectacular finds an extension for each class a view authenticates with; the
requirement it returns names the scopes the view needs (``required_scopes``): for
``oauth2`` as OAuth scopes, for the other schemes as the roles OpenAPI 3.1 allows there
(the principal's grants at users).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.permissions import SAFE_METHODS
from rest_framework.permissions import IsAuthenticatedOrReadOnly as _ReadOpen

from .settings import SECURITY_SCHEMES


def required_scopes(auto_schema) -> list[str]:
    return sorted(getattr(auto_schema.view, "required_scopes", None) or [])


class _Scheme(OpenApiAuthenticationExtension):
    """Defined by name in :data:`~fleamarket.openapi.settings.SECURITY_SCHEMES`."""

    scoped = True

    def get_security_definition(self, auto_schema):
        return SECURITY_SCHEMES[self.name]

    def get_security_requirement(self, auto_schema):
        return {self.name: required_scopes(auto_schema) if self.scoped else []}


class MTLSScheme(_Scheme):
    target_class = "s2s_auth.mechanisms.mtls.MTLSAuthentication"
    name = "mutualTLS"


class ServiceJWTScheme(_Scheme):
    target_class = "s2s_auth.mechanisms.service_jwt.ServiceJWTAuthentication"
    name = "ServiceJWT"


class AccessTokenScheme(_Scheme):
    target_class = "s2s_auth.mechanisms.access_token.AccessTokenAuthentication"
    name = "oauth2"


class EndUserTokenScheme(_Scheme):
    target_class = "s2s_auth.mechanisms.access_token.EndUserTokenAuthentication"
    name = "endUserToken"
    scoped = False  # any signed-in end user; what they may do is the view's rule


class HTTPSignatureScheme(_Scheme):
    target_class = "s2s_auth.mechanisms.http_signature.HTTPSignatureAuthentication"
    name = "httpSignature"


class APIKeyScheme(_Scheme):
    target_class = "s2s_auth.mechanisms.api_key.APIKeyAuthentication"
    name = "apiKey"


class SessionScheme(_Scheme):
    target_class = "rest_framework.authentication.SessionAuthentication"
    name = "cookieAuth"
    priority = 1  # over drf-spectacular's own, for our description
    scoped = False

    def get_security_requirement(self, auto_schema):
        """Not listed where a view needs an end user: a local account is refused there."""
        unsafe = auto_schema.method not in SAFE_METHODS
        permissions = auto_schema.view.get_permissions()
        if any(getattr(p, "code", "") == "end_user_required" for p in permissions) and (
            unsafe or not any(isinstance(p, _ReadOpen) for p in permissions)
        ):
            return []
        return super().get_security_requirement(auto_schema)
