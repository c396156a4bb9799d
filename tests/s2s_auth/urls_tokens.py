"""URLs of the tokens tests (owned by those tests), under /tokens-test/."""

from django.urls import path

from . import views_tokens as views

urlpatterns = [
    path("at/scoped", views.AccessTokenScopedView.as_view()),
    path("at/any", views.AccessTokenAnyServiceView.as_view()),
    path("user/me", views.EndUserView.as_view()),
    path("apikey/scoped", views.APIKeyScopedView.as_view()),
]
