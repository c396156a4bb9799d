"""URLconf mounting every view snippet of the docs, plus the identity service."""

from django.urls import include, path

from tests.docs.snippets import load

quickstart = load("quickstart_view")
mtls = load("mtls_view")
service_jwt = load("service_jwt_view")
http_signature = load("http_signature_view")
access_token = load("access_token_view")
api_key = load("api_key_view")
user_context = load("user_context_view")

urlpatterns = [
    path("api/v1/users/previews", quickstart.PreviewsView.as_view()),
    path("api/v1/users/notify", mtls.NotifyView.as_view()),
    path("api/v1/ping", mtls.PingView.as_view()),
    path("api/v1/users/signed-previews", service_jwt.SignedPreviewsView.as_view()),
    path("api/v1/users/notifications", http_signature.SignedNotificationsView.as_view()),
    path("api/v1/users/token-previews", access_token.TokenPreviewsView.as_view()),
    path("api/v1/users/keyed-previews", api_key.KeyedPreviewsView.as_view()),
    path("api/v1/users/on-behalf", user_context.OnBehalfView.as_view()),
    path("api/v1/me", user_context.MeView.as_view()),
    path("", include("s2s_auth.issuer.urls")),
]
