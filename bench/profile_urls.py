"""URLs of ``python -m bench.profile`` on s2s_auth's test project: the test project's
own, plus ``/bench-ping``, an open view without authentication (the same body size as
the users service's ``PingView``): the baseline the mechanisms are measured against."""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class BenchPingView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"ok": True, "service": "users"})


urlpatterns = [
    path("bench-ping", BenchPingView.as_view()),
    path("", include("tests.s2s_auth.urls")),
]
