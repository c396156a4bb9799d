"""users stopped: ads still answers nearby (200) with the stored previews, marked stale;
its circuit breaker opens, and closes again once users is back (issue 16)."""

from __future__ import annotations

import time

import pytest

from tests.e2e.app import give_password, log_in
from tests.live import live_deployment

# SQLite pass only (.ci/run): the circuit breaker is per process, and the stored
# previews are the same code on both databases.
pytestmark = [pytest.mark.live, pytest.mark.single_pass]

BERLIN = {"lat": "52.52", "lon": "13.405", "radius_km": "10"}


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    breaker = {"USERS_BREAKER_FAILURES": "2", "USERS_BREAKER_RESET_SECONDS": "1"}
    with live_deployment(
        tmp_path_factory.mktemp("degraded"),
        extra_env={"ads": breaker},
        workers=1,  # the breaker is per process: every call below meets the same one
    ) as deployment:
        yield deployment


def sellers(person) -> list[dict]:
    response = person.ads("GET", "/api/v1/ads/nearby", params=BERLIN)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert results
    return [ad["seller"] for ad in results]


def test_nearby_with_users_stopped_answers_with_stale_previews(deployment):
    buyer = log_in(deployment, "seller05", give_password(deployment, "seller05"))
    fresh = sellers(buyer)
    assert all(s is not None and s["stale"] is False for s in fresh)

    deployment.stop_service("users")
    try:
        for _ in range(4):  # the first calls fail, then the breaker answers at once
            stale = sellers(buyer)
            assert all(s is not None and s["stale"] is True for s in stale)
            assert [s["display_name"] for s in stale] == [s["display_name"] for s in fresh]
            assert all(s["age_seconds"] >= 0 and s["as_of"] for s in stale)
        log = deployment.log_path("ads").read_text(errors="replace")
        assert "seller previews unavailable: ConnectionError" in log
        assert "circuit users open for 1 s after 2 consecutive failures" in log
    finally:
        deployment.start_service("users")

    for _ in range(60):  # the half-open probe finds users back
        if all(s["stale"] is False for s in sellers(buyer)):
            break
        time.sleep(0.5)
    else:
        raise AssertionError("previews stayed stale after users came back")
    assert "circuit users closed" in deployment.log_path("ads").read_text(errors="replace")
