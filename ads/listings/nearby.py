"""Active ads within a radius, nearest first."""

from __future__ import annotations

from django.db.models import Q
from django.utils import timezone

from .geo import bounding_box, haversine_km
from .models import Ad


def ads_within(lat: float, lon: float, radius_km: float) -> list[Ad]:
    """Active, unexpired ads within ``radius_km``, ordered by distance then id.

    The bounding box narrows the query in SQL (indexed); the exact great-circle
    distance decides in Python. Each ad gets a ``distance_km`` attribute.
    """
    box = bounding_box(lat, lon, radius_km)
    query = Ad.objects.filter(
        status=Ad.Status.ACTIVE,
        expires_at__gt=timezone.now(),
        latitude__gte=box.min_lat,
        latitude__lte=box.max_lat,
    )
    if box.lon_ranges:
        lon_filter = Q()
        for west, east in box.lon_ranges:
            lon_filter |= Q(longitude__gte=west, longitude__lte=east)
        query = query.filter(lon_filter)
    found = []
    for ad in query:
        ad.distance_km = haversine_km(lat, lon, ad.latitude, ad.longitude)
        if ad.distance_km <= radius_km:
            found.append(ad)
    found.sort(key=lambda ad: (ad.distance_km, ad.id))
    return found
