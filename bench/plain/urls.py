"""users' URLs, with the previews endpoint open (no authentication, no scope)."""

from django.urls import include, path
from rest_framework.permissions import AllowAny

from users.people.views import PreviewsView
from users.urls import handler400, handler403, handler404, handler500  # noqa: F401


class PlainPreviewsView(PreviewsView):
    """The same query and answer as ``PreviewsView``, for anyone: the no-auth hop."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    required_scopes: list[str] = []

    def get_authenticators(self):
        return []


urlpatterns = [
    path("api/v1/users/previews", PlainPreviewsView.as_view(), name="user-previews"),
    path("", include("users.urls")),
]
