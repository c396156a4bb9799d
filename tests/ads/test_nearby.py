import logging
import random
from datetime import timedelta

import pytest
from django.utils import timezone

from ads.listings import sellers
from ads.listings.geo import haversine_km
from ads.listings.models import Ad

NEARBY = "/api/v1/ads/nearby"
BERLIN = (52.52, 13.405)


def make_ad(lat, lon, *, seller_id=1, status=Ad.Status.ACTIVE, expires_in=timedelta(days=5)):
    return Ad.objects.create(
        title="Thing",
        price="10.00",
        kind="sell",
        latitude=lat,
        longitude=lon,
        seller_id=seller_id,
        status=status,
        expires_at=timezone.now() + expires_in,
    )


@pytest.fixture
def scattered_ads(db):
    rng = random.Random(7)
    ads = [
        make_ad(
            BERLIN[0] + rng.uniform(-1.5, 1.5),
            BERLIN[1] + rng.uniform(-2.5, 2.5),
            seller_id=rng.randint(1, 50),
            status=rng.choice([Ad.Status.ACTIVE] * 4 + [Ad.Status.SOLD]),
            expires_in=timedelta(days=rng.choice([-1, 3, 10])),
        )
        for _ in range(300)
    ]
    return ads


def brute_force(ads, lat, lon, radius):
    now = timezone.now()
    hits = [
        (haversine_km(lat, lon, a.latitude, a.longitude), a.id)
        for a in ads
        if a.status == Ad.Status.ACTIVE and a.expires_at > now
    ]
    return [ad_id for dist, ad_id in sorted(hits) if dist <= radius]


@pytest.mark.parametrize("radius", [0.5, 5, 25, 60, 100])
def test_matches_brute_force_haversine_in_distance_order(
    client, scattered_ads, users_at, live_users, radius
):
    users_at(live_users.url("users"), pki_dir=live_users.pki_dir)
    expected = brute_force(scattered_ads, *BERLIN, radius)
    got, page = [], 1
    while True:
        response = client.get(
            NEARBY, {"lat": BERLIN[0], "lon": BERLIN[1], "radius_km": radius, "page": page}
        )
        assert response.status_code == 200
        body = response.json()
        got += [item["id"] for item in body["results"]]
        distances = [item["distance_km"] for item in body["results"]]
        assert distances == sorted(distances)
        assert all(d <= radius for d in distances)
        if not body["next"]:
            break
        page += 1
    assert got == expected
    assert body["count"] == len(expected)


def test_ad_exactly_on_the_radius_is_included_and_just_beyond_is_not(client, db, users_at):
    users_at("http://127.0.0.1:9")
    on_edge = make_ad(BERLIN[0], BERLIN[1] + 0.1)
    radius = haversine_km(*BERLIN, on_edge.latitude, on_edge.longitude)
    beyond = make_ad(BERLIN[0], BERLIN[1] + 0.1001)
    ids = [
        a["id"]
        for a in client.get(
            NEARBY, {"lat": BERLIN[0], "lon": BERLIN[1], "radius_km": radius}
        ).json()["results"]
    ]
    assert on_edge.id in ids and beyond.id not in ids


def test_one_previews_call_per_page_and_few_queries(client, scattered_ads, users_at, live_users):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    users_at(live_users.url("users"), pki_dir=live_users.pki_dir)
    calls = []
    sellers.users_client().hooks["response"].append(lambda r, *a, **k: calls.append(r.url))
    with CaptureQueriesContext(connection) as queries:
        response = client.get(NEARBY, {"lat": BERLIN[0], "lon": BERLIN[1], "radius_km": 100})
    selects = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("SELECT")]
    assert len(selects) == 1, selects  # the candidate ads; nothing per ad
    results = response.json()["results"]
    assert len(results) == 20
    assert len(calls) == 1
    assert "ids=" in calls[0]
    seller_ids = {item["seller_id"] for item in results}
    # Every seller of the page has a preview (the live UserService holds ids 1..50).
    assert {item["seller"]["id"] for item in results} == seller_ids
    assert all(item["seller"]["id"] == item["seller_id"] for item in results)
    client.get(NEARBY, {"lat": BERLIN[0], "lon": BERLIN[1], "radius_km": 100, "page": 2})
    assert len(calls) == 2


def test_users_down_and_nothing_stored_gives_null_sellers_and_a_log(
    client, scattered_ads, users_at, caplog
):
    from tests.live import free_port

    users_at(f"http://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING, logger="ads.listings.sellers"):
        response = client.get(NEARBY, {"lat": BERLIN[0], "lon": BERLIN[1], "radius_km": 50})
    assert response.status_code == 200
    assert response.json()["results"]
    assert all(item["seller"] is None for item in response.json()["results"])
    assert "seller previews unavailable: ConnectionError" in caplog.text


def test_users_service_slow_times_out_to_null_sellers(
    client, scattered_ads, users_at, silent_server, caplog
):
    users_at(silent_server.url, timeout=(0.5, 0.3))
    with caplog.at_level(logging.WARNING, logger="ads.listings.sellers"):
        response = client.get(NEARBY, {"lat": BERLIN[0], "lon": BERLIN[1], "radius_km": 50})
    assert response.status_code == 200
    assert all(item["seller"] is None for item in response.json()["results"])
    assert "ReadTimeout" in caplog.text


def test_users_service_refusing_gives_null_sellers(client, scattered_ads, users_at, live_users):
    users_at(live_users.url("users") + "/nonexistent-prefix", pki_dir=live_users.pki_dir)
    response = client.get(NEARBY, {"lat": BERLIN[0], "lon": BERLIN[1], "radius_km": 50})
    assert response.status_code == 200
    assert all(item["seller"] is None for item in response.json()["results"])


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"lat": "91", "lon": "0", "radius_km": "1"}, {"lat"}),
        ({"lat": "0", "lon": "-180.5", "radius_km": "1"}, {"lon"}),
        ({"lat": "x", "lon": "0", "radius_km": "1"}, {"lat"}),
        ({"lat": "nan", "lon": "0", "radius_km": "1"}, {"lat"}),
        ({"lat": "0", "lon": "inf", "radius_km": "1"}, {"lon"}),
        ({"lat": "0", "lon": "0", "radius_km": "0"}, {"radius_km"}),
        ({"lat": "0", "lon": "0", "radius_km": "-5"}, {"radius_km"}),
        ({"lat": "0", "lon": "0", "radius_km": "100.01"}, {"radius_km"}),
        ({"lat": "0", "lon": "0", "radius_km": "nan"}, {"radius_km"}),
        ({}, {"lat", "lon", "radius_km"}),
    ],
)
def test_bad_coordinates_and_radius_are_400_per_field(client, db, params, errors):
    response = client.get(NEARBY, params)
    assert response.status_code == 400
    assert set(response.json()) == errors
    assert all(isinstance(msg, str) for msgs in response.json().values() for msg in msgs)


def test_radius_of_exactly_100_km_is_allowed(client, db, users_at):
    users_at("http://127.0.0.1:9")
    response = client.get(NEARBY, {"lat": 0, "lon": 0, "radius_km": 100})
    assert response.status_code == 200
    assert response.json()["count"] == 0
