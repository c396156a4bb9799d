from decimal import Decimal

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


LAMP = {
    "title": "Lamp",
    "price": "12.50",
    "currency": "EUR",
    "kind": "sell",
    "latitude": 52.5,
    "longitude": 13.4,
}


def test_the_seller_is_the_verified_end_user_not_the_body(as_end_user):
    response = as_end_user(7).post(ADS, {**LAMP, "seller_id": 8, "status": "sold"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["seller_id"] == 7  # the token's sub, compared as an integer
    assert response.json()["status"] == "active"  # status changes through deals only


def test_the_seller_edits_and_deletes_their_own_ad(as_end_user):
    seller = as_end_user(7)
    ad = seller.post(ADS, LAMP, format="json").json()
    response = seller.patch(f"{ADS}{ad['id']}/", {"price": "9.00"}, format="json")
    assert response.status_code == 200, response.json()
    assert response.json()["price"] == "9.00"
    assert seller.delete(f"{ADS}{ad['id']}/").status_code == 204


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
def test_someone_elses_ad_is_403_not_the_seller(as_end_user, method):
    ad = as_end_user(7).post(ADS, LAMP, format="json").json()
    response = getattr(as_end_user(8), method)(f"{ADS}{ad['id']}/", LAMP, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "not_the_seller"
    assert Ad.objects.get(pk=ad["id"]).price == Decimal("12.50")


def test_a_local_account_of_ads_is_never_a_seller(client, as_end_user):
    """ads' admin is pk 1 here, like seller 1 at users: the ids must not be confused."""
    # id 1 explicitly: PostgreSQL's sequences are not reset between tests.
    admin = get_user_model().objects.create_superuser("admin", password="x" * 12, id=1)
    assert admin.pk == 1
    ad = as_end_user(1).post(ADS, LAMP, format="json").json()
    client.force_login(admin)
    response = client.patch(f"{ADS}{ad['id']}/", {"price": "1.00"}, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == "end_user_required"
    response = client.post(ADS, LAMP, content_type="application/json")
    assert response.status_code == 403
    assert response.json()["error"] == "end_user_required"


@pytest.mark.parametrize("sub", ["alice", "-3", "0", "\uff11\uff12", str(2**64)])
def test_a_token_whose_sub_is_not_a_user_id_cannot_sell(as_end_user, sub):
    response = as_end_user(sub).post(ADS, LAMP, format="json")
    assert response.status_code == 403
    assert response.json()["error"] == "end_user_required"


def test_anonymous_cannot_edit(client, as_end_user):
    ad = as_end_user(7).post(ADS, LAMP, format="json").json()
    response = client.patch(f"{ADS}{ad['id']}/", {"price": "1"}, content_type="application/json")
    assert response.status_code == 401
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize(
    ("field", "value"),
    [("price", "-1"), ("currency", "euro"), ("kind", "lend"), ("latitude", 95)],
)
def test_invalid_ad_fields_are_400(as_end_user, field, value):
    data = {
        "title": "X",
        "price": "1.00",
        "currency": "EUR",
        "kind": "sell",
        "latitude": 1,
        "longitude": 1,
        field: value,
    }
    response = as_end_user(3).post(ADS, data, format="json")
    assert response.status_code == 400
    assert field in response.json()


def test_ping_is_open(client):
    assert client.get("/api/v1/ping").json() == {"ok": True, "service": "ads"}
