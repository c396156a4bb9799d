from django.contrib import admin
from django.urls import include, path

from s2s_auth import MetricsView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("ads.listings.urls")),
    # The browsable API's sign-in: end users of UserService (ads.listings.signin).
    path("api-auth/", include("ads.listings.signin_urls")),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("", include("fleamarket.openapi.urls")),
]

# Errors Django answers itself are JSON too (fleamarket.handlers).
handler400 = "fleamarket.handlers.bad_request"
handler403 = "fleamarket.handlers.permission_denied"
handler404 = "fleamarket.handlers.not_found"
handler500 = "fleamarket.handlers.server_error"
