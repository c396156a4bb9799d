"""URLs of the issuer tests (owned by those tests): the issuer mounted at the root."""

from django.urls import include, path

urlpatterns = [path("", include("s2s_auth.issuer.urls"))]
