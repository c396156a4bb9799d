"""MTLSAuthentication on a verifier host whose CRLs come from the CA host over HTTPS.

The verifier's PKI_DIR holds the public trust anchors only (no CA, no crl.pem). While
the CA host is down the last CRL is used until its nextUpdate; after it, every call is
``503 crl_unavailable``: fail closed, never an acceptance.
"""

from __future__ import annotations

import datetime as dt
import shutil
import time

import pytest

from s2s_auth.core import issuance
from s2s_auth.core.ca import CertificateAuthority
from s2s_auth.core.certs import warm_up_crls
from s2s_auth.core.issuance import crl_url_for
from s2s_auth.credentials.principals import ensure_principal
from tests.s2s_auth.core.test_revocation import CRLServer


@pytest.fixture
def ca(tmp_path):
    authority = CertificateAuthority(tmp_path / "ca", "fleamarket.local")
    authority.init()
    authority.issue("users")  # the CA host's TLS certificate
    return authority


@pytest.fixture
def server(ca):
    server = CRLServer(*ca.paths("users"))
    yield server
    server.stop()


def publish(ca, server, next_update: dt.datetime) -> None:
    from cryptography.hazmat.primitives import serialization

    inter, inter_key = ca.load_intermediate()
    root = ca.root_certificate()
    root_key = serialization.load_pem_private_key(ca.root_key_path.read_bytes(), None)
    now = dt.datetime.now(dt.UTC)
    for cert, key in ((inter, inter_key), (root, root_key)):
        crl = issuance.build_crl(
            cert, key, number=1, revoked=[], last_update=now, next_update=next_update
        )
        server.put(crl_url_for(server.base, cert), crl)


@pytest.fixture
def verifier_host(ca, server, settings, tmp_path, db):
    """S2S_AUTH of a service that is not the CA host: anchors only, CRLs fetched."""
    pki = tmp_path / "verifier"
    pki.mkdir()
    for name in ("ca.pem", "intermediates.pem"):
        shutil.copy(ca.directory / name, pki / name)
    settings.S2S_AUTH = {
        "SERVICE_NAME": "ads",
        "TRUST_DOMAIN": "fleamarket.local",
        "PKI_DIR": str(pki),
        "CRL_URL": server.base,
        "CRL_REFRESH_SECONDS": 0.2,
        "CRL_MIN_REFETCH_SECONDS": 0.2,
        "CLIENT_TIMEOUT": (1.0, 1.0),
    }
    ensure_principal("caller", ["test:read"])
    return ca.issue("caller").cert_path.read_text()


def test_stale_while_unreachable_until_next_update_then_503(client, ca, server, verifier_host):
    next_update = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=4)).replace(microsecond=0)
    publish(ca, server, next_update)
    first = client.get("/mtls/scoped", SSL_CLIENT_CERT=verifier_host)
    assert first.status_code == 200, first.content
    server.stop()  # the CA host goes away
    seen = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        asked = dt.datetime.now(dt.UTC)
        response = client.get("/mtls/scoped", SSL_CLIENT_CERT=verifier_host)
        seen.append((asked, response.status_code))
        if response.status_code != 200:
            break
        time.sleep(0.2)
    assert seen[0][1] == 200  # served from the CRL held, the CA host down
    assert all(asked <= next_update for asked, status in seen if status == 200)
    assert response.status_code == 503, response.content
    assert response.json()["error"] == "crl_unavailable"
    assert seen[-1][0] >= next_update - dt.timedelta(seconds=1)  # not before it expired


def test_never_fetched_is_503_not_an_acceptance(client, server, verifier_host):
    response = client.get("/mtls/scoped", SSL_CLIENT_CERT=verifier_host)  # nothing published
    assert response.status_code == 503
    assert response.json()["error"] == "crl_unavailable"


def test_a_starting_worker_fetches_the_crls_in_the_background(client, ca, server, verifier_host):
    publish(ca, server, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5))
    thread = warm_up_crls(first_delay=0.05)
    assert thread is not None
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert len(server.hits) == 2  # the intermediate's CRL and the root's
    server.stop()  # gone before the first call: the worker has what it needs
    assert client.get("/mtls/scoped", SSL_CLIENT_CERT=verifier_host).status_code == 200


def test_nothing_to_warm_up_without_crl_url(settings, verifier_host):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "CRL_URL": None}
    assert warm_up_crls() is None
