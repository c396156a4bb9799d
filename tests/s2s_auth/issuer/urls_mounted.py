"""The issuer under a path prefix (tests of reversed endpoint URLs)."""

from django.urls import include, path

urlpatterns = [path("idp/", include("s2s_auth.issuer.urls"))]
