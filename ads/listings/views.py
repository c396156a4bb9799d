from rest_framework import viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth.client.auth import end_user_context

from .filters import AdFilter
from .identity import end_user_id, end_user_token
from .models import Ad
from .nearby import ads_within
from .permissions import EndUserWrites, IsSellerOrReadOnly
from .sellers import previews_for
from .serializers import (
    AdDetailSerializer,
    AdSerializer,
    NearbyAdSerializer,
    NearbyQuerySerializer,
)


class AdViewSet(viewsets.ModelViewSet):
    """Ads: anyone may browse; signed-in end users sell, rent or swap their things."""

    queryset = Ad.objects.all()
    serializer_class = AdSerializer
    permission_classes = [IsAuthenticatedOrReadOnly, EndUserWrites, IsSellerOrReadOnly]
    filterset_class = AdFilter
    search_fields = ["title", "description"]
    ordering_fields = ["price", "created_at", "expires_at"]

    def retrieve(self, request, *args, **kwargs):
        """One ad with its seller's preview (fresh, or stored and marked stale)."""
        ad = self.get_object()
        with end_user_context(end_user_token(request)):
            previews = previews_for([ad])
        return Response(AdDetailSerializer(ad, context={"previews": previews}).data)

    def perform_create(self, serializer):
        # The seller is the verified end user (the token's ``sub``), never the body.
        serializer.save(seller_id=end_user_id(self.request))


class NearbyView(APIView):
    """``GET /api/v1/ads/nearby?lat=&lon=&radius_km=``: nearest active ads first,
    each with its seller's preview, fetched from UserService in one call per page."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    pagination_class = PageNumberPagination

    def get(self, request):
        query = NearbyQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        ads = ads_within(**query.validated_data)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(ads, request, view=self)
        # On behalf of a signed-in end user, ads forwards the user's token.
        with end_user_context(end_user_token(request)):
            previews = previews_for(page)
        data = NearbyAdSerializer(page, many=True, context={"previews": previews}).data
        return paginator.get_paginated_response(data)


class PingView(APIView):
    """Liveness for healthchecks: open, tiny, touches no database."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    def get(self, request):
        return Response({"ok": True, "service": "ads"})
