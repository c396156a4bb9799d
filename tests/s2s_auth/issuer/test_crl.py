"""The CA host: its CRLs published at /pki/crl/<key id>.crl, re-signed before nextUpdate,
and read locally by its own verifier (never fetched from itself)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509

from s2s_auth.core.ca import CertificateAuthority
from s2s_auth.core.certs import peer_verifier
from s2s_auth.core.issuance import crl_url_for
from s2s_auth.core.x509 import CertificateRejected
from s2s_auth.issuer.crl import local_ca

UNREACHABLE = "https://127.0.0.1:9/pki/crl"  # discard port: nothing answers


@pytest.fixture
def host(settings, tmp_path, db):
    """A CA of its own (these tests re-sign its CRLs) and the issuer's settings."""
    ca = CertificateAuthority(tmp_path / "pki", "fleamarket.local")
    ca.init()
    settings.S2S_AUTH = {
        **settings.S2S_AUTH,
        "SERVICE_NAME": "users",
        "PKI_DIR": str(ca.directory),
        "CRL_URL": UNREACHABLE,
        "CRL_VALIDITY": "10m",
    }
    return ca


def number(crl) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_published_der_with_cache_headers(client, host):
    inter = host.intermediate_certificate()
    path = crl_url_for("/pki/crl", inter)
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.content)
    assert crl.issuer == inter.subject and crl.is_signature_valid(inter.public_key())
    assert response["Cache-Control"] == "public, max-age=30"
    assert response["Expires"] and response["Last-Modified"] and response["ETag"]
    assert client.get("/pki/crl/intermediate.crl").content == response.content
    root = x509.load_der_x509_crl(client.get("/pki/crl/root.crl").content)
    assert root.issuer == host.root_certificate().subject


@pytest.mark.parametrize("name", ["0" * 40, "ROOTS", "a" * 41, "ca"])
def test_unknown_ca_is_404(client, host, name):
    response = client.get(f"/pki/crl/{name}.crl")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_ca"


def test_no_ca_here_is_404(client, settings, tmp_path, db):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "PKI_DIR": str(tmp_path / "empty")}
    assert client.get("/pki/crl/root.crl").status_code == 404


def test_publication_re_signs_a_crl_close_to_next_update(client, host):
    host.write_crl(days=3 / 1440)  # 3 minutes left: less than half of CRL_VALIDITY
    before = number(host.crls()[0])
    crl = x509.load_der_x509_crl(client.get("/pki/crl/intermediate.crl").content)
    assert number(crl) == before + 1
    assert crl.next_update_utc - dt.datetime.now(dt.UTC) > dt.timedelta(minutes=9)
    again = x509.load_der_x509_crl(client.get("/pki/crl/intermediate.crl").content)
    assert number(again) == number(crl)  # fresh now: not re-signed on every request


def test_the_ca_host_checks_its_own_crl_file_and_re_signs_it(host):
    verifier = peer_verifier()
    assert verifier.crl_fetcher is None and verifier.crl_refresher is not None
    issued = local_ca().issue("ads")
    leaf = x509.load_pem_x509_certificates(issued.cert_path.read_bytes())[0]
    points = leaf.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert points[0].full_name[0].value.startswith(UNREACHABLE + "/")
    host.write_crl(days=3 / 1440)
    before = number(host.crls()[0])
    assert verifier.verify_pem(issued.cert_path.read_bytes()).service_name == "ads"
    assert number(host.crls()[0]) == before + 1  # re-signed, nothing fetched from itself
    host.revoke("ads")
    with pytest.raises(CertificateRejected) as caught:
        verifier.verify_pem(issued.cert_path.read_bytes())
    assert caught.value.code == "revoked"


def test_without_crl_url_the_file_alone(settings, host):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "CRL_URL": None}
    verifier = peer_verifier()
    assert verifier.crl_fetcher is None and verifier.crl_refresher is None


def test_the_ca_host_question_is_asked_once_per_recheck_interval(host, monkeypatch):
    """Choosing the verifier asks the file system whether this is the CA host: not on
    every request, but again after VERIFIER_RECHECK_SECONDS and on a settings change."""
    from s2s_auth.core import certs

    asked = []
    real = certs.is_local_ca_host

    def counted(*args):
        asked.append(args)
        return real(*args)

    monkeypatch.setattr(certs, "is_local_ca_host", counted)
    first = peer_verifier()
    assert peer_verifier() is first and peer_verifier() is first
    assert len(asked) == 1
    assert first.crl_refresher is not None  # the CA host's verifier
    monkeypatch.setattr(certs, "VERIFIER_RECHECK_SECONDS", 0.0)
    assert peer_verifier() is first  # the same verifier, asked again
    assert len(asked) == 2


def test_a_settings_change_is_seen_at_once(settings, host):
    assert peer_verifier().crl_refresher is not None
    settings.S2S_AUTH = {**settings.S2S_AUTH, "CRL_URL": None}
    verifier = peer_verifier()
    assert verifier.crl_fetcher is None and verifier.crl_refresher is None
