import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ads.listings.geo import bounding_box, haversine_km


@pytest.mark.parametrize(
    ("a", "b", "km"),
    [
        ((52.5200, 13.4050), (48.1351, 11.5820), 504.4),  # Berlin - Munich
        ((0.0, 0.0), (0.0, 1.0), 111.195),  # one degree of the equator
        ((0.0, 179.5), (0.0, -179.5), 111.195),  # across the antimeridian
        ((89.9, 0.0), (89.9, 180.0), 22.239),  # over the pole
    ],
)
def test_haversine_known_distances(a, b, km):
    assert haversine_km(*a, *b) == pytest.approx(km, abs=0.5)


def _inside(box, lat, lon):
    if not box.min_lat - 1e-9 <= lat <= box.max_lat + 1e-9:
        return False
    return not box.lon_ranges or any(w - 1e-9 <= lon <= e + 1e-9 for w, e in box.lon_ranges)


@settings(max_examples=500, deadline=None)
@given(
    lat=st.floats(-90, 90),
    lon=st.floats(-180, 180),
    radius=st.floats(0.001, 100),
    bearing=st.floats(0, 2 * math.pi),
    fraction=st.floats(0, 1),
)
def test_every_point_within_the_radius_is_inside_the_box(lat, lon, radius, bearing, fraction):
    # A point at distance fraction*radius in direction bearing (spherical destination).
    delta = fraction * radius / 6371.0088
    phi1, lmb1 = math.radians(lat), math.radians(lon)
    phi2 = math.asin(
        math.sin(phi1) * math.cos(delta) + math.cos(phi1) * math.sin(delta) * math.cos(bearing)
    )
    lmb2 = lmb1 + math.atan2(
        math.sin(bearing) * math.sin(delta) * math.cos(phi1),
        math.cos(delta) - math.sin(phi1) * math.sin(phi2),
    )
    lat2 = math.degrees(phi2)
    lon2 = (math.degrees(lmb2) + 540) % 360 - 180
    assert haversine_km(lat, lon, lat2, lon2) <= radius + 1e-6
    assert _inside(bounding_box(lat, lon, radius), lat2, lon2)


def test_box_wraps_at_the_antimeridian():
    box = bounding_box(0.0, 179.9, 50)
    assert len(box.lon_ranges) == 2
    assert _inside(box, 0.0, -179.9) and not _inside(box, 0.0, 0.0)


def test_box_near_a_pole_takes_every_longitude():
    assert bounding_box(89.9, 10.0, 50).lon_ranges == ()
