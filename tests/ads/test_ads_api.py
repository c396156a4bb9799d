import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from ads.listings.models import Ad

ADS = "/api/v1/ads/"


@pytest.fixture
def seeded(db):
    call_command("seed_demo", verbosity=0)


def test_list_is_paginated(client, seeded):
    first = client.get(ADS).json()
    assert first["count"] == 500
    assert len(first["results"]) == 20
    second = client.get(first["next"]).json()
    assert not {a["id"] for a in first["results"]} & {a["id"] for a in second["results"]}


def test_filters_by_kind_and_price(client, seeded):
    body = client.get(ADS, {"kind": "rent", "min_price": "50", "max_price": "100"}).json()
    expected = Ad.objects.filter(kind="rent", price__gte=50, price__lte=100).count()
    assert body["count"] == expected > 0
    assert all(a["kind"] == "rent" and 50 <= float(a["price"]) <= 100 for a in body["results"])


def test_seed_is_idempotent(db):
    call_command("seed_demo", verbosity=0)
    Ad.objects.filter(pk=1).update(status=Ad.Status.SOLD)
    call_command("seed_demo", verbosity=0)
    assert Ad.objects.count() == 500
    assert Ad.objects.get(pk=1).status == Ad.Status.SOLD


def test_anonymous_cannot_create(client, db):
    response = client.post(ADS, {})
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_seller_creates_and_only_the_seller_edits(client, db):
    User = get_user_model()
    alice, bob = User.objects.create(username="alice"), User.objects.create(username="bob")
    client.force_login(alice)
    ad = client.post(
        ADS,
        {
            "title": "Lamp",
            "price": "12.50",
            "currency": "EUR",
            "kind": "sell",
            "latitude": 52.5,
            "longitude": 13.4,
            "seller_id": bob.pk,
        },
        content_type="application/json",
    )
    assert ad.status_code == 201, ad.json()
    assert ad.json()["seller_id"] == alice.pk  # read-only: the signed-in seller
    client.force_login(bob)
    response = client.patch(
        f"{ADS}{ad.json()['id']}/", {"price": "1.00"}, content_type="application/json"
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("field", "value"),
    [("price", "-1"), ("currency", "euro"), ("kind", "lend"), ("latitude", 95)],
)
def test_invalid_ad_fields_are_400(client, db, field, value):
    user = get_user_model().objects.create(username="carol")
    client.force_login(user)
    data = {
        "title": "X",
        "price": "1.00",
        "currency": "EUR",
        "kind": "sell",
        "latitude": 1,
        "longitude": 1,
        field: value,
    }
    response = client.post(ADS, data, content_type="application/json")
    assert response.status_code == 400
    assert field in response.json()


def test_ping_is_open(client):
    assert client.get("/api/v1/ping").json() == {"ok": True, "service": "ads"}
