"""Bad client certificates against a real UserService (gunicorn, TLS worker, loopback).

Where OpenSSL already refuses a certificate during the handshake (another CA,
self-signed, expired, not yet valid, no clientAuth EKU) the request never reaches
Django; everything the handshake lets through is refused by MTLSAuthentication with
a reason code — and nothing is ever a 500.
"""

from __future__ import annotations

import datetime as dt

import pytest
import requests
from cryptography.x509.oid import ExtendedKeyUsageOID

from s2s_auth.core.ca import CertificateAuthority
from tests.live import live_deployment

# SQLite pass only (.ci/run): the TLS handshake and the peer certificate checks, no
# database or shared cache.
pytestmark = [pytest.mark.live, pytest.mark.single_pass]

PREVIEWS = "/api/v1/users/previews?ids=1,2"


@pytest.fixture(scope="module")
def users(tmp_path_factory):
    with live_deployment(tmp_path_factory.mktemp("mtls-live"), ("users",)) as deployment:
        yield deployment


@pytest.fixture(scope="module")
def ca(users):
    return CertificateAuthority(users.pki_dir, "fleamarket.local")


def call(users, cert: tuple[str, str] | None, **kwargs) -> requests.Response:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(users.pki_dir / "ca.pem")
    session.cert = cert
    return session.get(users.url("users") + PREVIEWS, timeout=10, **kwargs)


def files(leaf, directory, name) -> tuple[str, str]:
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    cert.write_bytes(leaf.chain_pem)
    key.write_bytes(leaf.key_pem)
    return str(cert), str(key)


def test_valid_certificate_with_the_scope_is_served(users):
    pki = users.pki_dir
    response = call(users, (str(pki / "ads.pem"), str(pki / "ads.key")))
    assert response.status_code == 200
    assert [p["id"] for p in response.json()["results"]] == [1, 2]


def test_no_certificate_is_401_with_a_challenge(users):
    response = call(users, None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"]
    assert response.json()["error"] == "not_authenticated"


@pytest.mark.parametrize("case", ["rogue", "self_signed", "expired", "not_yet_valid", "no_eku"])
def test_handshake_refuses_what_openssl_can_judge(users, ca, make_leaf, tmp_path, case):
    now = dt.datetime.now(dt.UTC)
    hour = dt.timedelta(hours=1)
    rogue = CertificateAuthority(tmp_path / "rogue", "fleamarket.local")
    rogue.init()
    leaves = {
        "rogue": lambda: make_leaf(rogue, "ads"),
        "self_signed": lambda: make_leaf(None, "ads"),
        "expired": lambda: make_leaf(ca, "ads", not_before=now - 2 * hour, not_after=now - hour),
        "not_yet_valid": lambda: make_leaf(ca, "ads", not_before=now + hour),
        "no_eku": lambda: make_leaf(ca, "ads", eku=[ExtendedKeyUsageOID.SERVER_AUTH]),
    }
    with pytest.raises(requests.exceptions.SSLError):
        call(users, files(leaves[case](), tmp_path, case))


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("foreign_domain", "foreign_trust_domain"),
        ("unknown", "unknown_principal"),
        ("disabled", "principal_disabled"),
        ("revoked", "revoked"),
        ("no_scope", "insufficient_scope"),
    ],
)
def test_app_refuses_the_rest_with_a_reason(users, ca, make_leaf, tmp_path, case, code):
    name = f"live-{case.replace('_', '-')}"
    if case == "foreign_domain":
        leaf = make_leaf(ca, name, uris=[f"spiffe://evil.example/service/{name}"])
        cert = files(leaf, tmp_path, case)
    else:
        issued = ca.issue(name)
        cert = (str(issued.cert_path), str(issued.key_path))
        if case != "unknown":
            scopes = [] if case == "no_scope" else ["--scope", "users:read"]
            users.manage("users", "s2s_service", "add", name, *scopes, "--no-secret")
        if case == "disabled":
            users.manage("users", "s2s_service", "disable", name)
        if case == "revoked":
            ca.revoke(name)
    response = call(users, cert)
    assert response.status_code == 403
    assert response.json()["error"] == code


def test_forged_proxy_header_from_an_untrusted_client_is_ignored(users):
    from urllib.parse import quote

    pem = quote((users.pki_dir / "ads.pem").read_text(), safe="")
    response = call(users, None, headers={"X-SSL-Client-Cert": pem})
    assert response.status_code == 401


@pytest.mark.parametrize("target", ["users", "neighbour"])
def test_a_request_signed_for_a_neighbour_on_the_same_host_is_refused(users, target):
    """Issue 17, item 5: RFC 9421 @target-uri is this service's own origin, port included.

    A signed request captured at another service of the host (127.0.0.1, another port)
    is replayed at users with that service's Host header, which ALLOWED_HOSTS accepts
    (it ignores ports): users verifies against its own origin and refuses it.
    """
    from s2s_auth.client.auth import ServiceCredentials, signature_auth

    pki = users.pki_dir
    own = users.url("users")
    port = int(own.rsplit(":", 1)[1])
    signed_for = own if target == "users" else f"https://127.0.0.1:{port + 1}"
    session = requests.Session()
    session.trust_env = False
    prepared = session.prepare_request(requests.Request("GET", signed_for + PREVIEWS))
    signature_auth(ServiceCredentials.from_files(pki / "ads.pem", pki / "ads.key"))(prepared)
    prepared.url = own + PREVIEWS  # delivered to users, Host still naming the signed origin
    prepared.headers["Host"] = signed_for.removeprefix("https://")
    response = session.send(
        prepared, verify=str(pki / "ca.pem"), cert=(str(pki / "ads.pem"), str(pki / "ads.key"))
    )
    if target == "users":
        assert response.status_code == 200, response.text
    else:
        assert response.status_code == 403, response.text
        assert response.json()["error"] == "bad_signature"
