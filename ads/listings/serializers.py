import math

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .models import Ad, Deal

MAX_RADIUS_KM = 100.0


class AdSerializer(serializers.ModelSerializer):
    class Meta:
        model = Ad
        fields = [
            "id",
            "title",
            "description",
            "price",
            "currency",
            "kind",
            "status",
            "latitude",
            "longitude",
            "seller_id",
            "created_at",
            "updated_at",
            "expires_at",
        ]
        # The seller comes from the verified token; the status changes through deals
        # (reserve, accept, decline) and the nightly expiry, never by a PATCH.
        read_only_fields = ["seller_id", "status", "created_at", "updated_at"]


class SellerPreviewSerializer(serializers.Serializer):
    """A seller as UserService shows them; ``stale``: ads' stored copy, UserService
    could not answer; ``as_of``/``age_seconds``: when UserService said so."""

    id = serializers.IntegerField()
    display_name = serializers.CharField()
    city = serializers.CharField(allow_blank=True)
    rating = serializers.DecimalField(max_digits=3, decimal_places=2)
    member_since = serializers.DateField()
    stale = serializers.BooleanField()
    as_of = serializers.DateTimeField()
    age_seconds = serializers.IntegerField(min_value=0)


class WithSellerMixin(serializers.Serializer):
    seller = serializers.SerializerMethodField()

    @extend_schema_field(SellerPreviewSerializer(allow_null=True))
    def get_seller(self, ad) -> dict | None:
        previews = self.context.get("previews")
        return previews.get(ad.seller_id) if previews else None


class AdDetailSerializer(WithSellerMixin, AdSerializer):
    class Meta(AdSerializer.Meta):
        fields = [*AdSerializer.Meta.fields, "seller"]


class NearbyAdSerializer(WithSellerMixin, AdSerializer):
    distance_km = serializers.SerializerMethodField()

    class Meta(AdSerializer.Meta):
        fields = [*AdSerializer.Meta.fields, "distance_km", "seller"]

    def get_distance_km(self, ad) -> float:
        return round(ad.distance_km, 3)


class NearbyPageSerializer(serializers.Serializer):
    """A page of nearby ads (for the schema: PageNumberPagination's shape)."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = NearbyAdSerializer(many=True)


class NearbyQuerySerializer(serializers.Serializer):
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lon = serializers.FloatField(min_value=-180, max_value=180)
    radius_km = serializers.FloatField()

    def _finite(self, value: float) -> float:
        if not math.isfinite(value):
            raise serializers.ValidationError("A finite number is required.")
        return value

    def validate_lat(self, value):
        return self._finite(value)

    def validate_lon(self, value):
        return self._finite(value)

    def validate_radius_km(self, value):
        self._finite(value)
        if not 0 < value <= MAX_RADIUS_KM:
            raise serializers.ValidationError(
                f"Must be greater than 0 and at most {MAX_RADIUS_KM:g} km."
            )
        return value


MAX_RENT_DAYS = 90


class DealSerializer(serializers.ModelSerializer):
    """A deal as its buyer and seller see it (nobody else sees it)."""

    class Meta:
        model = Deal
        fields = [
            "id",
            "ad",
            "kind",
            "status",
            "buyer_id",
            "seller_id",
            "offered_ad",
            "rent_from",
            "rent_until",
            "message",
            "created_at",
            "decided_at",
            "seller_notified_at",
            "buyer_notified_at",
        ]
        read_only_fields = fields


class DealRequestSerializer(serializers.Serializer):
    """``POST /api/v1/ads/{id}/deals/``: what the ad's kind needs, nothing more.

    A sell ad: nothing (a reservation). A rent ad: ``rent_from`` and ``rent_until``
    (dates, from today, at most 90 days). A swap ad: ``offered_ad``, the id of one of
    the buyer's own active ads. ``message`` is optional everywhere.
    """

    rent_from = serializers.DateField(required=False)
    rent_until = serializers.DateField(required=False)
    offered_ad = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    message = serializers.CharField(required=False, allow_blank=True, max_length=500)

    def validate(self, attrs):
        kind = self.context["kind"]
        if kind == Deal.Kind.RENT:
            missing = [f for f in ("rent_from", "rent_until") if f not in attrs]
            if missing:
                raise serializers.ValidationError({f: ["Required to rent."] for f in missing})
            start, end = attrs["rent_from"], attrs["rent_until"]
            if start < timezone.localdate():
                raise serializers.ValidationError({"rent_from": ["Today or later."]})
            if end < start or (end - start).days >= MAX_RENT_DAYS:
                raise serializers.ValidationError(
                    {"rent_until": [f"On or after rent_from, at most {MAX_RENT_DAYS} days."]}
                )
        if kind == Deal.Kind.SWAP and "offered_ad" not in attrs:
            raise serializers.ValidationError({"offered_ad": ["Required to swap."]})
        return attrs
