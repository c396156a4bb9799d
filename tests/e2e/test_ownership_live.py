"""Sellers own their ads, known from the token users issued at login (issue 16).

Live: a person logs in at users, creates an ad at ads with the token, edits it (200);
another person cannot (403 ``not_the_seller``); nobody signed in cannot (401); ads'
own admin account, pk 1 like seller01, is not seller01 (403 ``end_user_required``).
"""

from __future__ import annotations

import pytest

from tests.e2e.app import LAMP, anonymous, give_password, log_in

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def deployment(shared_deployment):
    return shared_deployment


@pytest.fixture(scope="module")
def alice(deployment):
    return log_in(deployment, "seller01", give_password(deployment, "seller01"))


@pytest.fixture(scope="module")
def bob(deployment):
    return log_in(deployment, "seller02", give_password(deployment, "seller02"))


@pytest.fixture(scope="module")
def alices_ad(alice):
    response = alice.ads("POST", "/api/v1/ads/", json={**LAMP, "seller_id": 2})
    assert response.status_code == 201, response.text
    assert response.json()["seller_id"] == alice.id == 1
    return response.json()


def test_the_seller_edits_their_own_ad(alice, alices_ad):
    response = alice.ads("PATCH", f"/api/v1/ads/{alices_ad['id']}/", json={"price": "10.00"})
    assert response.status_code == 200, response.text
    assert response.json()["price"] == "10.00"


def test_someone_else_cannot_edit_or_delete_it(bob, alices_ad):
    for method in ("PATCH", "DELETE"):
        response = bob.ads(method, f"/api/v1/ads/{alices_ad['id']}/", json={"price": "1.00"})
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "not_the_seller"


def test_nobody_signed_in_cannot_edit_it(deployment, alices_ad):
    response = anonymous(
        deployment, "PATCH", f"/api/v1/ads/{alices_ad['id']}/", json={"price": "1.00"}
    )
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_forged_token_is_refused(deployment, alice, alices_ad):
    header, payload, signature = alice.token.split(".")
    forged = f"{header}.{payload}.{signature[::-1]}"
    response = alice.session(token=forged).patch(
        deployment.url("ads") + f"/api/v1/ads/{alices_ad['id']}/", json={"price": "1"}, timeout=30
    )
    assert response.status_code in (401, 403)
    assert response.json()["error"]


def test_the_local_admin_of_ads_is_not_seller_one(deployment, alice, alices_ad):
    """ads' admin (pk 1 in ads' database) signs in with a session: no end user, no edit."""
    from tests.jobs.support import shell_json

    password = "admin-" + alice.token[-12:]
    shell_json(
        deployment,
        "ads",
        "from django.contrib.auth import get_user_model\n"
        "u = get_user_model().objects.get(username='admin')\n"
        f"u.set_password({password!r}); u.save()\n"
        'print("JSON:" + str(u.pk))',
    )
    session = alice.session(bearer=False)
    login = deployment.url("ads") + "/admin/login/"  # /api-auth/login/ is for end users
    session.get(login, timeout=30)
    session.post(
        login,
        data={"username": "admin", "password": password, "next": "/api/v1/ads/"},
        headers={"Referer": login, "X-CSRFToken": session.cookies["csrftoken"]},
        timeout=30,
    )
    assert "sessionid" in session.cookies
    response = session.patch(
        deployment.url("ads") + f"/api/v1/ads/{alices_ad['id']}/",
        json={"price": "1.00"},
        headers={"X-CSRFToken": session.cookies["csrftoken"], "Referer": login},
        timeout=30,
    )
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "end_user_required"


def test_hostile_json_at_ads_is_a_400_live(alice):
    from tests.hostile_json import HOSTILE_BODIES

    for name, (body, code) in HOSTILE_BODIES.items():
        response = alice.ads(
            "POST", "/api/v1/ads/", data=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, (name, response.text[:200])
        assert response.json()["error"] == code, name
