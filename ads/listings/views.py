from django.db.models import Q
from django.http import Http404
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import AllowAny, IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth.client.auth import end_user_context
from s2s_auth.negotiation import JSONNegotiationMixin

from . import deals
from .filters import AdFilter
from .identity import end_user_id, end_user_token
from .models import Ad, Deal
from .nearby import ads_within
from .permissions import EndUserWrites, IsEndUser, IsSellerOrReadOnly
from .sellers import previews_for
from .serializers import (
    AdDetailSerializer,
    AdSerializer,
    DealRequestSerializer,
    DealSerializer,
    NearbyAdSerializer,
    NearbyPageSerializer,
    NearbyQuerySerializer,
)


class NotFoundCode:
    """A missing object is 404 ``not_found``, not DRF's code-less Http404."""

    def get_object(self):
        try:
            return super().get_object()
        except Http404:
            raise NotFound("No such object here.", code="not_found") from None


class AdViewSet(NotFoundCode, viewsets.ModelViewSet):
    """Ads: anyone may browse; signed-in end users sell, rent or swap their things."""

    queryset = Ad.objects.all()
    serializer_class = AdSerializer
    permission_classes = [IsAuthenticatedOrReadOnly, EndUserWrites, IsSellerOrReadOnly]
    filterset_class = AdFilter
    search_fields = ["title", "description"]
    ordering_fields = ["price", "created_at", "expires_at"]

    @extend_schema(responses=AdDetailSerializer)
    def retrieve(self, request, *args, **kwargs):
        """One ad with its seller's preview (fresh, or stored and marked stale)."""
        ad = self.get_object()
        with end_user_context(end_user_token(request)):
            previews = previews_for([ad])
        return Response(AdDetailSerializer(ad, context={"previews": previews}).data)

    def perform_create(self, serializer):
        # The seller is the verified end user (the token's ``sub``), never the body.
        serializer.save(seller_id=end_user_id(self.request))

    @extend_schema(request=DealRequestSerializer, responses={201: DealSerializer})
    @action(
        detail=True,
        methods=["post"],
        url_path="deals",
        permission_classes=[IsAuthenticated, IsEndUser],
        serializer_class=DealRequestSerializer,
    )
    def request_deal(self, request, pk=None):
        """A buyer reserves a sell ad, asks to rent a rent ad for a period, or offers
        one of their own ads for a swap ad. The seller is notified through users."""
        ad = self.get_object()
        body = DealRequestSerializer(
            data=request.data, context={"kind": deals.KIND_FOR_AD[ad.kind]}
        )
        body.is_valid(raise_exception=True)
        deal = deals.request_deal(
            ad.pk,
            end_user_id(request),
            body.validated_data,
            end_user_token(request),
            request.user.username,
        )
        return Response(DealSerializer(deal).data, status=status.HTTP_201_CREATED)


class DealViewSet(
    NotFoundCode, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """The deals of the signed-in end user, as buyer or seller; nobody else's (404).

    ``POST .../accept`` and ``.../decline`` are the seller's, ``.../cancel`` the
    buyer's; each answers the deal as it now is (409 ``not_pending`` once decided).
    """

    serializer_class = DealSerializer
    permission_classes = [IsAuthenticated, IsEndUser]
    filterset_fields = ["status", "kind", "ad"]
    ordering_fields = ["created_at", "decided_at"]

    def get_queryset(self):
        me = end_user_id(self.request)
        return Deal.objects.filter(Q(buyer_id=me) | Q(seller_id=me))

    def _change(self, request, verb: str) -> Response:
        deal = deals.change(
            self.get_object(),
            end_user_id(request),
            verb,
            end_user_token(request),
            request.user.username,
        )
        return Response(DealSerializer(deal).data)

    @extend_schema(request=None, responses=DealSerializer)
    @action(detail=True, methods=["post"])
    def accept(self, request, pk=None):
        """The seller accepts: a reservation or a swap marks the ad(s) sold."""
        return self._change(request, "accept")

    @extend_schema(request=None, responses=DealSerializer)
    @action(detail=True, methods=["post"])
    def decline(self, request, pk=None):
        """The seller declines: a reserved ad is active again."""
        return self._change(request, "decline")

    @extend_schema(request=None, responses=DealSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """The buyer withdraws a pending request."""
        return self._change(request, "cancel")


class NearbyView(APIView):
    """``GET /api/v1/ads/nearby?lat=&lon=&radius_km=``: nearest active ads first,
    each with its seller's preview, fetched from UserService in one call per page."""

    permission_classes = [IsAuthenticatedOrReadOnly]
    pagination_class = PageNumberPagination

    @extend_schema(parameters=[NearbyQuerySerializer], responses=NearbyPageSerializer)
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


class PingView(JSONNegotiationMixin, APIView):
    """Liveness for healthchecks: open, tiny, touches no database."""

    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "Ping", {"ok": serializers.BooleanField(), "service": serializers.CharField()}
        )
    )
    def get(self, request):
        return Response({"ok": True, "service": "ads"})
