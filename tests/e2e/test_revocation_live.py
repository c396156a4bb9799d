"""A revocation made at the identity service reaches another service with no file copied.

Two deployments as two hosts would run them: users (the identity service, the CA in its
state directory) and ads in a state directory of its own that holds only the public
trust anchors and its own certificate and key, never a CRL. ``s2s_pki revoke`` runs at
users; ads must refuse the revoked certificate within the documented bound (here
``S2S_CRL_REFRESH_SECONDS=1``: the CRL is re-fetched every second), and revoking the
intermediate must make both refuse every certificate it issued.
"""

from __future__ import annotations

import contextlib
import shutil
import time

import pytest
import requests
from cryptography import x509
from prometheus_client.parser import text_string_to_metric_families

from fleamarket import processes
from fleamarket.deployment import Deployment
from tests.live import free_port, fresh_database, live_deployment

# SQLite pass only (.ci/run): CRLs fetched over HTTPS: files and HTTP, no database or shared cache.
pytestmark = [pytest.mark.live, pytest.mark.single_pass]

REFRESH_SECONDS = 1
#: The documented bound (docs/revocation.md): CRL_REFRESH_SECONDS plus one fetch, with
#: room for a loaded CI machine. Behaviour, not speed, is checked: a bound, polled.
BOUND = REFRESH_SECONDS + 20
FAST_CRLS = {
    "S2S_CRL_REFRESH_SECONDS": str(REFRESH_SECONDS),
    "S2S_CRL_MIN_REFETCH_SECONDS": "0.5",
}
PREVIEWS = "/api/v1/users/previews?ids=1"


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("revocation-users")
    with live_deployment(workdir, ("users",), extra_env={"users": FAST_CRLS}) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def ads(users, tmp_path_factory):
    """ads on a host of its own: its PKI directory has ca.pem, intermediates.pem and
    its own certificate, copied once at provisioning; no CA, no crl.pem."""
    workdir = tmp_path_factory.mktemp("revocation-ads")
    pki = workdir / "pki"
    pki.mkdir(mode=0o700)
    for name in ("ca.pem", "intermediates.pem", "ads.pem", "ads.key"):
        shutil.copy2(users.pki_dir / name, pki / name)
    with contextlib.ExitStack() as stack:
        deployment = Deployment(
            var=workdir,
            # users' port: where ads finds the identity service (its CRLs, its JWKS).
            ports={"ads": free_port(), "users": users.ports["users"]},
            database_urls={"ads": stack.enter_context(fresh_database("ads", workdir))},
            extra_env={"ads": {**FAST_CRLS, "S2S_PKI_DIR": str(pki)}},
        )
        deployment.manage("ads", "migrate", "--noinput", "-v0")
        for name in ("prometheus", "worker"):  # two callers allowed to scrape ads
            deployment.manage(
                "ads", "s2s_service", "add", name, "--scope", "metrics:read", "--no-secret"
            )
        deployment._spawn("ads")
        stack.callback(deployment.stop)
        processes.wait_for_port(deployment.ports["ads"], deployment.children["ads"])
        assert not (pki / "crl.pem").exists() and not (pki / "ca").exists()
        yield deployment


def call(service, url: str, caller: str, pki) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(pki / "ca.pem")
    session.cert = (str(pki / f"{caller}.pem"), str(pki / f"{caller}.key"))
    return session.get(url, timeout=10)


def scrape(ads, users, caller: str) -> requests.Response:
    return call(ads, ads.url("ads") + "/metrics", caller, users.pki_dir)


def refused_within_bound(ads, users, caller: str) -> requests.Response:
    deadline = time.monotonic() + BOUND
    while True:
        response = scrape(ads, users, caller)
        if response.status_code != 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_the_crl_is_published_der_signed_and_cacheable(users):
    base = users.url("users") + "/pki/crl"
    session = requests.Session()
    session.trust_env = False
    session.verify = str(users.pki_dir / "ca.pem")
    leaf = x509.load_pem_x509_certificates((users.pki_dir / "ads.pem").read_bytes())
    inter = leaf[1]
    points = leaf[0].extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    url = points[0].full_name[0].value
    assert url.startswith(base + "/")
    response = session.get(url, timeout=10)  # no client certificate: CRLs are public
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/pkix-crl"
    assert response.headers["Cache-Control"].startswith("public, max-age=")
    assert int(response.headers["Cache-Control"].rpartition("=")[2]) <= REFRESH_SECONDS
    assert response.headers["Last-Modified"] and response.headers["Expires"]
    crl = x509.load_der_x509_crl(response.content)
    assert crl.issuer == inter.subject
    assert crl.is_signature_valid(inter.public_key())
    assert crl.next_update_utc is not None
    root = session.get(base + "/root.crl", timeout=10)
    assert x509.load_der_x509_crl(root.content).issuer == inter.issuer
    for unknown in ("0" * 40, "nope"):
        missing = session.get(f"{base}/{unknown}.crl", timeout=10)
        assert missing.status_code == 404, unknown
        assert missing.json()["error"] == "unknown_ca"
    traversal = session.get(base + "/..%2F..%2Fca%2Froot.key", timeout=10)
    assert traversal.status_code == 404 and b"PRIVATE" not in traversal.content


def test_ads_fetches_the_crls_and_says_so_in_its_metrics(users, ads):
    response = scrape(ads, users, "prometheus")
    assert response.status_code == 200, response.text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    ok = samples.get(("s2s_auth_fetches_total", (("outcome", "ok"), ("source", "crl"))), 0)
    assert ok >= 2  # the intermediate's CRL and the root's
    assert samples[("s2s_auth_fetch_last_success_timestamp_seconds", (("source", "crl"),))]
    next_update = samples[("s2s_auth_crl_next_update_timestamp_seconds", ())]
    assert next_update > time.time()  # read from the fetched CRLs: ads has no crl.pem


def test_a_revoked_caller_is_refused_by_another_host_without_copying_files(users, ads):
    assert scrape(ads, users, "prometheus").status_code == 200
    assert scrape(ads, users, "worker").status_code == 200
    users.manage("users", "s2s_pki", "revoke", "prometheus").check_returncode()
    # The identity service itself, at once (its own crl.pem, no HTTP to itself).
    own = call(users, users.url("users") + "/metrics", "prometheus", users.pki_dir)
    assert own.status_code == 403 and own.json()["error"] == "revoked"
    # ads, within the bound, from the CRL it fetched.
    response = refused_within_bound(ads, users, "prometheus")
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "revoked"
    assert scrape(ads, users, "worker").status_code == 200  # only that certificate
    assert not (ads.pki_dir / "crl.pem").exists()


def test_the_token_issuer_refuses_a_revoked_certificate(users):
    """tls_client_auth (certificate-bound tokens) with the revoked certificate."""
    pki = users.pki_dir
    session = requests.Session()
    session.trust_env = False
    session.verify = str(pki / "ca.pem")
    session.cert = (str(pki / "prometheus.pem"), str(pki / "prometheus.key"))
    response = session.post(
        users.url("users") + "/oauth/token",
        data={"grant_type": "client_credentials", "client_id": "prometheus"},
        timeout=10,
    )
    assert response.status_code in (400, 401), response.text
    assert response.json()["error"] == "invalid_client"
    assert "refused: revoked" in response.json()["error_description"]
    assert "access_token" not in response.json()


def test_a_revoked_intermediate_refuses_every_certificate_under_it(users, ads):
    assert scrape(ads, users, "worker").status_code == 200
    previews = call(users, users.url("users") + PREVIEWS, "worker", users.pki_dir)
    assert previews.status_code == 200
    users.manage("users", "s2s_pki", "revoke", "--intermediate").check_returncode()
    at_users = call(users, users.url("users") + PREVIEWS, "worker", users.pki_dir)
    assert at_users.status_code == 403 and at_users.json()["error"] == "revoked"
    response = refused_within_bound(ads, users, "worker")
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "revoked"
    assert "Its CA" in response.json()["detail"]
