"""The audit admin in a real browser (Debian's headless Chromium, driven by Selenium)
against a live UserService under gunicorn with the TLS worker: the admin's CSS is
served (whitenoise), an operator signs in, filters the records by principal and opens
one whose service JWT still verifies.

Needs ``apt-get install -y chromium chromium-driver``; skipped with that message
when they are not installed.
"""

from __future__ import annotations

import shutil
from contextlib import suppress

import pytest
import requests

from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth
from tests.live import live_deployment

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "Debian's Chromium is not installed: apt-get install -y chromium chromium-driver",
        allow_module_level=True,
    )

from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

ADS = "spiffe://fleamarket.local/service/ads"
USERS = "spiffe://fleamarket.local/service/users"
PREVIEWS = "/api/v1/users/previews?ids=1,2"


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    with live_deployment(tmp_path_factory.mktemp("browser"), ("users",)) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-dev-shm-usage",
        "--disable-gpu",
        # The dev CA is not in Chromium's store; nothing here is a secret.
        "--ignore-certificate-errors",
        "--window-size=1400,1000",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        with suppress(Exception):
            driver.quit()


def call_as_ads(users) -> None:
    """One request from ads with a service JWT: the record keeps the JWT and the chain."""
    pki = users.pki_dir
    session = requests.Session()
    session.trust_env = False
    session.verify = str(pki / "ca.pem")
    credentials = ServiceCredentials.from_files(pki / "ads.pem", pki / "ads.key")
    session.auth = ServiceJWTAuth(credentials, audience=USERS)
    response = session.get(users.url("users") + PREVIEWS, timeout=10)
    assert response.status_code == 200, response.text


def test_operator_finds_a_record_whose_signature_still_verifies(users, browser):
    call_as_ads(users)
    wait = WebDriverWait(browser, 30)
    base = users.url("users")
    browser.get(base + "/admin/login/?next=/admin/s2s_auth/auditrecord/")

    # The admin's stylesheet is served under gunicorn: the header has its colour.
    header = wait.until(ec.presence_of_element_located((By.ID, "header")))
    colour = browser.execute_script("return getComputedStyle(arguments[0]).backgroundColor", header)
    assert colour not in ("", "rgba(0, 0, 0, 0)", "transparent"), "admin CSS not served"

    browser.find_element(By.ID, "id_username").send_keys("admin")
    password = (users.var / "admin.password").read_text().strip()
    browser.find_element(By.ID, "id_password").send_keys(password)
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(ec.presence_of_element_located((By.ID, "changelist-filter")))

    # Filter by principal: the link in the sidebar (inside a <details> that may be shut).
    link = browser.find_element(
        By.XPATH, f"//*[@id='changelist-filter']//a[normalize-space()='{ADS}']"
    )
    browser.execute_script("arguments[0].click()", link)
    wait.until(ec.url_contains("principal="))
    principals = {e.text for e in browser.find_elements(By.CSS_SELECTOR, "td.field-principal")}
    assert principals == {ADS}

    # Open the service JWT record.
    rows = browser.find_elements(By.CSS_SELECTOR, "#result_list tbody tr")
    row = next(
        r for r in rows if r.find_element(By.CSS_SELECTOR, ".field-mechanism").text == "service_jwt"
    )
    row.find_element(By.CSS_SELECTOR, "th a, td a").click()
    check = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".field-signature_check")))
    assert "Signature still verifies?" in check.text
    assert "yes: verifies with the stored certificate's public key" in check.text
