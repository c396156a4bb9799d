"""URLs of the audit tests (owned by those tests)."""

from django.urls import path

from . import views_audit

urlpatterns = [
    path("write", views_audit.WriteView.as_view()),
    path("scoped", views_audit.ScopedView.as_view()),
    path("access-token", views_audit.AccessTokenView.as_view()),
    path("plain", views_audit.PlainView.as_view()),
]
