"""Degraded answers when UserService cannot answer: stored previews marked stale, a
circuit breaker that stops waiting for a service that is down, and probes it back."""

import datetime as dt
import logging

import pytest
from django.utils import timezone

from ads.listings import sellers
from ads.listings.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from ads.listings.models import Ad
from tests.ads.test_nearby import BERLIN, NEARBY, make_ad
from tests.live import free_port

PREVIEW = {
    "id": 3,
    "display_name": "Ida Klein",
    "city": "Berlin",
    "rating": "4.20",
    "member_since": "2024-01-02",
}


def nearby(client):
    return client.get(NEARBY, {"lat": BERLIN[0], "lon": BERLIN[1], "radius_km": 10})


@pytest.fixture
def stored_ad(db):
    """An ad whose seller's preview was stored an hour ago."""
    ad = make_ad(*BERLIN, seller_id=3)
    an_hour_ago = timezone.now() - dt.timedelta(hours=1)
    Ad.objects.filter(pk=ad.pk).update(seller_preview=PREVIEW, seller_preview_at=an_hour_ago)
    return ad


def test_users_down_shows_the_stored_preview_marked_stale_with_its_age(
    client, stored_ad, users_at, caplog
):
    users_at(f"http://127.0.0.1:{free_port()}")
    with caplog.at_level(logging.WARNING, logger="ads.listings.sellers"):
        response = nearby(client)
    assert response.status_code == 200
    [item] = response.json()["results"]
    seller = item["seller"]
    assert {k: seller[k] for k in PREVIEW} == PREVIEW
    assert seller["stale"] is True
    assert 3600 <= seller["age_seconds"] < 3700
    as_of = dt.datetime.fromisoformat(seller["as_of"])
    assert abs((as_of - (timezone.now() - dt.timedelta(hours=1))).total_seconds()) < 100
    assert "seller previews degraded: 1 stored" in caplog.text
    assert sellers.degraded["stale"] == 1


def test_ad_detail_falls_back_the_same_way(client, stored_ad, users_at):
    users_at(f"http://127.0.0.1:{free_port()}")
    response = client.get(f"/api/v1/ads/{stored_ad.pk}/")
    assert response.status_code == 200
    assert response.json()["seller"]["stale"] is True
    assert response.json()["seller"]["display_name"] == "Ida Klein"


def test_a_successful_call_refreshes_the_stored_copy(client, db, users_at, live_users):
    users_at(live_users.url("users"), pki_dir=live_users.pki_dir)
    ad = make_ad(*BERLIN, seller_id=4)
    other_ad_of_the_seller = make_ad(10.0, 10.0, seller_id=4)
    response = nearby(client)
    seller = response.json()["results"][0]["seller"]
    assert seller["id"] == 4 and seller["stale"] is False and seller["age_seconds"] == 0
    for stored in Ad.objects.filter(pk__in=[ad.pk, other_ad_of_the_seller.pk]):
        assert stored.seller_preview["display_name"] == seller["display_name"]
        assert (timezone.now() - stored.seller_preview_at).total_seconds() < 60
    # And with UserService gone, that copy is what is shown.
    users_at(f"http://127.0.0.1:{free_port()}")
    seller = nearby(client).json()["results"][0]["seller"]
    assert (
        seller["stale"] is True and seller["display_name"] == stored.seller_preview["display_name"]
    )


def test_the_breaker_stops_calling_a_hung_service_then_probes_it(
    client, stored_ad, users_at, silent_server, settings, caplog
):
    settings.USERS_BREAKER_FAILURES = 2
    settings.USERS_BREAKER_RESET_SECONDS = 3600
    users_at(silent_server.url, timeout=(0.5, 0.2))
    with caplog.at_level(logging.INFO, logger="ads.listings"):
        for _ in range(5):
            response = nearby(client)
            assert response.status_code == 200
            assert response.json()["results"][0]["seller"]["stale"] is True
    # Two calls waited for the hung service, then the breaker opened: no more calls.
    assert len(silent_server.accepted) == 2
    assert sellers.users_breaker.state == OPEN
    assert sellers.users_breaker.counts["short_circuited"] == 3
    assert "circuit users open for 3600 s after 2 consecutive failures" in caplog.text
    # After the reset time, one probe goes through; it fails, and the breaker reopens.
    settings.USERS_BREAKER_RESET_SECONDS = 0
    nearby(client)
    assert len(silent_server.accepted) == 3
    assert sellers.users_breaker.state == OPEN


def test_a_refusal_does_not_open_the_breaker(client, stored_ad, users_at, live_users, settings):
    settings.USERS_BREAKER_FAILURES = 1
    users_at(live_users.url("users") + "/nonexistent-prefix", pki_dir=live_users.pki_dir)
    for _ in range(3):
        assert nearby(client).json()["results"][0]["seller"]["stale"] is True
    assert sellers.users_breaker.state == CLOSED
    assert sellers.users_breaker.counts["short_circuited"] == 0


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


@pytest.fixture
def breaker():
    clock = Clock()
    return CircuitBreaker("test", lambda: (3, 30.0), clock=clock), clock


def test_opens_after_the_threshold_of_consecutive_failures(breaker):
    b, _ = breaker
    b.failure()
    b.failure()
    b.success()  # a success resets the count
    b.failure()
    b.failure()
    assert b.state == CLOSED and b.allow()
    b.failure()
    assert b.state == OPEN and not b.allow()


def test_half_open_lets_exactly_one_probe_through(breaker):
    b, clock = breaker
    for _ in range(3):
        b.failure()
    clock.now = 29.9
    assert not b.allow()
    clock.now = 30.0
    assert b.allow()
    assert b.state == HALF_OPEN
    assert not b.allow()  # a second caller while the probe runs
    b.success()
    assert b.state == CLOSED and b.allow()


def test_a_failed_probe_reopens_for_another_period(breaker):
    b, clock = breaker
    for _ in range(3):
        b.failure()
    clock.now = 30.0
    assert b.allow()
    b.failure()
    assert b.state == OPEN
    clock.now = 59.0
    assert not b.allow()
    clock.now = 60.0
    assert b.allow()
    assert dict(b.counts) == {
        "failures": 4,
        "opened": 2,
        "probes": 2,
        "short_circuited": 1,
    }
