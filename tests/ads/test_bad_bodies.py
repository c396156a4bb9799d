"""Hostile JSON at ``POST /api/v1/ads/``: every one a 400 with a reason code, never a 500."""

import pytest

from tests.hostile_json import HOSTILE_BODIES

ADS = "/api/v1/ads/"


@pytest.mark.parametrize(("body", "code"), HOSTILE_BODIES.values(), ids=HOSTILE_BODIES)
def test_hostile_json_is_400_with_a_reason(as_end_user, body, code):
    client = as_end_user(7)
    client.raise_request_exception = False
    response = client.generic("POST", ADS, body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert response.json()["error"] == code


def test_hostile_json_before_authentication_is_400_too(client, db):
    """The body is parsed when the view reads it: an anonymous POST is refused first."""
    client.raise_request_exception = False
    response = client.generic(
        "POST", ADS, HOSTILE_BODIES["7000 deep"][0], content_type="application/json"
    )
    assert response.status_code == 401
