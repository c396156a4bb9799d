from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, viewsets
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth.negotiation import JSONNegotiationMixin
from s2s_auth.views import ServiceAPIView

from .models import Profile
from .serializers import PersonSerializer, PreviewQuerySerializer, PreviewSerializer


class PreviewsView(ServiceAPIView):
    """``GET /api/v1/users/previews?ids=1,2,3``: seller previews in one query.

    Unknown ids are simply absent from ``results``. Callers are services with
    scope ``users:read``.
    """

    required_scopes = ["users:read"]

    @extend_schema(
        parameters=[PreviewQuerySerializer],
        responses=inline_serializer("Previews", {"results": PreviewSerializer(many=True)}),
    )
    def get(self, request):
        query = PreviewQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        profiles = Profile.objects.filter(user_id__in=query.validated_data["ids"])
        return Response({"results": PreviewSerializer(profiles, many=True).data})


class PersonViewSet(viewsets.ReadOnlyModelViewSet):
    """People, for signed-in users and the browsable API."""

    queryset = Profile.objects.select_related("user")
    serializer_class = PersonSerializer
    filterset_fields = ["city"]
    search_fields = ["display_name", "city"]
    ordering_fields = ["rating", "member_since", "user_id"]
    lookup_field = "user_id"


PING = {"ok": True, "service": "users"}
PING_SCHEMA = extend_schema(
    responses=inline_serializer(
        "Ping", {"ok": serializers.BooleanField(), "service": serializers.CharField()}
    )
)


class PingView(JSONNegotiationMixin, APIView):
    """A tiny open JSON endpoint: the no-auth baseline of the benchmarks.

    It negotiates like the service views (:mod:`s2s_auth.negotiation`), so the
    distance to ``ServicePingView`` is what authentication adds."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @PING_SCHEMA
    def get(self, request):
        return Response(PING)


class ServicePingView(ServiceAPIView):
    """The same JSON for an authenticated service with ``users:read``: the
    benchmarks compare each mechanism's cost against ``PingView``."""

    required_scopes = ["users:read"]

    @PING_SCHEMA
    def get(self, request):
        return Response(PING)
