"""The browsable API, used by an end user who signs in (issue 16), with Django's test
client (CSRF checks on) against a live UserService that checks the password and issues
the token: sign in, see the browsable page, post the form, edit the own ad, not
another's, sign out."""

from __future__ import annotations

import pytest
from django.test import Client

from ads.listings.models import Ad
from ads.listings.signin import SESSION_TOKEN
from tests.e2e.app import give_password

pytestmark = pytest.mark.live

HTML = {"HTTP_ACCEPT": "text/html", "secure": True}
JSON = {"HTTP_ACCEPT": "application/json", "secure": True}
LOGIN = "/api-auth/login/"
LAMP = {
    "title": "Desk lamp",
    "description": "Brass, works.",
    "price": "12.50",
    "currency": "EUR",
    "kind": "sell",
    "latitude": "52.52",
    "longitude": "13.405",
}


@pytest.fixture(scope="module")
def password(live_users):
    return give_password(live_users, "seller01")


@pytest.fixture
def signed_to(db, settings, users_at, live_users):
    """ads (this process) verifying tokens of, and signing in at, the live UserService."""
    users_at(live_users.url("users"), pki_dir=live_users.pki_dir)
    settings.S2S_AUTH = {**settings.S2S_AUTH, "ACCESS_TOKEN_ISSUER": live_users.url("users")}
    return live_users


def csrf(client: Client) -> str:
    return client.cookies["csrftoken"].value


def sign_in(client: Client, username: str, password: str, next_url="/api/v1/ads/"):
    assert client.get(LOGIN, {"next": next_url}, **HTML).status_code == 200
    return client.post(
        LOGIN,
        {"username": username, "password": password, "next": next_url},
        HTTP_X_CSRFTOKEN=csrf(client),
        HTTP_REFERER="https://testserver/api-auth/login/",
        **HTML,
    )


def test_an_end_user_signs_in_and_sells_in_the_browsable_api(signed_to, password):
    browser = Client(enforce_csrf_checks=True)
    response = sign_in(browser, "seller01", password)
    assert response.status_code == 302
    assert response["Location"] == "/api/v1/ads/"
    cookie = browser.cookies["sessionid"]
    assert cookie["secure"] and cookie["httponly"]
    assert browser.session[SESSION_TOKEN].count(".") == 2  # kept server-side

    page = browser.get("/api/v1/ads/", **HTML)
    assert page.status_code == 200
    html = page.content.decode()
    assert "seller01" in html and 'id="logoutForm"' in html
    assert 'name="csrfmiddlewaretoken"' in html and 'name="title"' in html  # the HTML form

    referer = {"HTTP_REFERER": "https://testserver/api/v1/ads/"}
    refused = browser.post("/api/v1/ads/", LAMP, **referer, **JSON)  # no CSRF token
    assert refused.status_code == 403
    assert refused.json()["error"] == "csrf_failed"

    created = browser.post(
        "/api/v1/ads/", {**LAMP, "csrfmiddlewaretoken": csrf(browser)}, **referer, **HTML
    )
    assert created.status_code == 201, created.content[:500]
    mine = Ad.objects.get(title="Desk lamp")
    assert mine.seller_id == 1  # seller01 at users: the token's sub, not a local account

    theirs = Ad.objects.create(**{**LAMP, "title": "Their lamp"}, seller_id=2)
    headers = {"HTTP_X_CSRFTOKEN": csrf(browser), **referer, **JSON}
    edit = browser.patch(
        f"/api/v1/ads/{mine.pk}/",
        "price=10.00",
        content_type="application/x-www-form-urlencoded",
        **headers,
    )
    assert edit.status_code == 200, edit.content[:500]
    assert edit.json()["price"] == "10.00"
    other = browser.patch(
        f"/api/v1/ads/{theirs.pk}/",
        "price=1.00",
        content_type="application/x-www-form-urlencoded",
        **headers,
    )
    assert other.status_code == 403
    assert other.json()["error"] == "not_the_seller"

    out = browser.post(
        "/api-auth/logout/", {"csrfmiddlewaretoken": csrf(browser)}, **referer, **HTML
    )
    assert out.status_code == 302
    after = browser.patch(f"/api/v1/ads/{mine.pk}/", "price=2.00", **headers)
    assert after.status_code == 401
    assert Ad.objects.get(pk=mine.pk).price == 10


def test_a_wrong_password_signs_nobody_in(signed_to, password):
    browser = Client(enforce_csrf_checks=True)
    response = sign_in(browser, "seller01", password + "x")
    assert response.status_code == 401
    assert "Invalid username or password." in response.content.decode()
    assert SESSION_TOKEN not in browser.session


def test_the_sign_in_form_needs_its_csrf_token(signed_to, password):
    browser = Client(enforce_csrf_checks=True)
    browser.get(LOGIN, **HTML)
    response = browser.post(LOGIN, {"username": "seller01", "password": password}, **HTML)
    assert response.status_code == 403
    assert SESSION_TOKEN not in browser.session


def test_users_down_is_a_503_on_the_form(db, users_at):
    from tests.live import free_port

    users_at(f"http://127.0.0.1:{free_port()}")
    browser = Client()
    response = browser.post(LOGIN, {"username": "seller01", "password": "x"}, **HTML)
    assert response.status_code == 503
    assert "unavailable" in response.content.decode()


def test_a_token_that_no_longer_verifies_ends_the_sign_in(signed_to, password):
    browser = Client(enforce_csrf_checks=True)
    assert sign_in(browser, "seller01", password).status_code == 302
    session = browser.session
    header, payload, signature = session[SESSION_TOKEN].split(".")
    session[SESSION_TOKEN] = f"{header}.{payload}.{signature[::-1]}"
    session.save()
    page = browser.get("/api/v1/ads/", **JSON)
    assert page.status_code == 200  # anonymous now: reading is open
    assert SESSION_TOKEN not in browser.session


def test_next_must_stay_on_this_site(signed_to, password):
    browser = Client(enforce_csrf_checks=True)
    response = sign_in(browser, "seller01", password, next_url="https://evil.example/")
    assert response.status_code == 302
    assert response["Location"] == "/api/v1/"
