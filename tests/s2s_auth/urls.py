from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("mtls/scoped", views.MTLSScopedView.as_view()),
    path("mtls/any", views.MTLSAnyServiceView.as_view()),
    path("mtls/undeclared", views.MTLSNoScopeDeclaredView.as_view()),
    path("mtls/required", views.MTLSRequiredScopesView.as_view()),
    path("jwt/scoped", views.JWTScopedView.as_view()),
    path("sig/scoped", views.SignatureScopedView.as_view()),
    path("any/scoped", views.AnyServiceMechanismView.as_view()),
    path("jwt/read", views.FailingReadView.as_view()),
    path("service/scoped", views.SettingsMechanismsView.as_view()),
    path("audit-test/", include("tests.s2s_auth.urls_audit")),
    path("tokens-test/", include("tests.s2s_auth.urls_tokens")),
    path("", include("tests.s2s_auth.urls_issuer")),
]
