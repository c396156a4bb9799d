"""The browsable API signed in as an end user, live (issue 16): a browser (requests,
cookies only, no Authorization header) signs in at ads, which gets the token from
users; it sees the browsable page, posts the HTML form, edits its own ad, not another's."""

from __future__ import annotations

import pytest
import requests

from tests.e2e.app import LAMP, give_password, log_in

pytestmark = pytest.mark.live


@pytest.fixture(scope="module")
def deployment(shared_deployment):
    return shared_deployment


def test_a_browser_signs_in_and_sells_in_the_browsable_api(deployment):
    ads = deployment.url("ads")
    password = give_password(deployment, "seller01")
    bob = log_in(deployment, "seller02", give_password(deployment, "seller02"))
    bobs = bob.ads("POST", "/api/v1/ads/", json={**LAMP, "title": "Bob's lamp"}).json()

    browser = requests.Session()
    browser.trust_env = False
    browser.verify = str(deployment.pki_dir / "ca.pem")
    browser.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"
    login = ads + "/api-auth/login/"
    assert browser.get(login, params={"next": "/api/v1/ads/"}, timeout=30).status_code == 200
    csrf = {"X-CSRFToken": browser.cookies["csrftoken"], "Referer": login}
    signed = browser.post(
        login,
        data={"username": "seller01", "password": password, "next": "/api/v1/ads/"},
        headers=csrf,
        timeout=30,
    )
    assert signed.status_code == 200 and signed.url == ads + "/api/v1/ads/"
    cookie = next(c for c in browser.cookies if c.name == "sessionid")
    assert cookie.secure and cookie.has_nonstandard_attr("HttpOnly")
    assert "seller01" in signed.text and 'name="csrfmiddlewaretoken"' in signed.text

    csrf = {"X-CSRFToken": browser.cookies["csrftoken"], "Referer": ads + "/api/v1/ads/"}
    form = {**LAMP, "csrfmiddlewaretoken": browser.cookies["csrftoken"]}
    created = browser.post(
        ads + "/api/v1/ads/", data=form, headers={**csrf, "Accept": "application/json"}, timeout=30
    )
    assert created.status_code == 201, created.text
    mine = created.json()
    assert mine["seller_id"] == 1
    csrf["Accept"] = "application/json"
    edit = browser.patch(
        ads + f"/api/v1/ads/{mine['id']}/", data={"price": "9.00"}, headers=csrf, timeout=30
    )
    assert edit.status_code == 200, edit.text
    other = browser.patch(
        ads + f"/api/v1/ads/{bobs['id']}/", data={"price": "1.00"}, headers=csrf, timeout=30
    )
    assert other.status_code == 403
    assert other.json()["error"] == "not_the_seller"
