"""The OpenAPI security scheme of the browsable API's end-user sign-in (``endUserSession``).

Imported by ``ListingsConfig.ready`` so drf-spectacular finds it, like the library's
schemes in ``fleamarket.openapi.schemes``.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class SessionTokenScheme(OpenApiAuthenticationExtension):
    target_class = "ads.listings.session_auth.SessionTokenAuthentication"
    name = "endUserSession"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": (
                "An end user signed in to the browsable API at /api-auth/login/ "
                "(username and password checked by users): the same identity as "
                "endUserToken. Unsafe methods need the CSRF token (X-CSRFToken)."
            ),
        }
