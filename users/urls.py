from django.contrib import admin
from django.urls import include, path

from s2s_auth import MetricsView
from s2s_auth.views import WhoAmIView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("users.notifications.urls")),
    path("api/v1/", include("users.people.urls")),
    path("api/v1/auth/whoami", WhoAmIView.as_view(), name="whoami"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("api-auth/", include("rest_framework.urls")),
    path("", include("fleamarket.openapi.urls")),
    # The identity service: /oauth/token, /.well-known/*, /api/v1/account/*, login.
    path("", include("s2s_auth.issuer.urls")),
]

# Errors Django answers itself are JSON too (fleamarket.handlers).
handler400 = "fleamarket.handlers.bad_request"
handler403 = "fleamarket.handlers.permission_denied"
handler404 = "fleamarket.handlers.not_found"
handler500 = "fleamarket.handlers.server_error"
