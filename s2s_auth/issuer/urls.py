"""Mount at the root of the identity service's URLconf::

    path("", include("s2s_auth.issuer.urls")),

(RFC 8414 puts the metadata under /.well-known/ of the issuer's origin.)
"""

from django.urls import path

from s2s_auth.issuer import renewal, views
from s2s_auth.issuer.crl import CRLView

app_name = "s2s_issuer"

urlpatterns = [
    path("oauth/token", views.TokenView.as_view(), name="token"),
    path(".well-known/jwks.json", views.JWKSView.as_view(), name="jwks"),
    path(
        ".well-known/oauth-authorization-server",
        views.MetadataView.as_view(),
        name="metadata",
    ),
    path(
        "api/v1/account/register/service",
        views.RegisterServiceView.as_view(),
        name="register-service",
    ),
    path(
        "api/v1/account/service-token",
        views.ServiceTokenView.as_view(),
        name="service-token",
    ),
    path("api/v1/auth/login", views.LoginView.as_view(), name="login"),
    path("api/v1/pki/renew", renewal.RenewView.as_view(), name="pki-renew"),
    # The CRL of each CA, public (docs/revocation.md); named in certificates' CRL DP.
    path("pki/crl/<str:ca_id>.crl", CRLView.as_view(), name="crl"),
]
