"""MTLSAuthentication through DRF, with the peer chain in the WSGI environ.

The real TLS path (gunicorn worker → environ) is tested in test_gunicorn and the
end-to-end suite; here every refusal reason maps to the right status and body.
"""

from __future__ import annotations

import datetime as dt
import logging
from urllib.parse import quote

import pytest
from cryptography.x509.oid import ExtendedKeyUsageOID
from django.test import override_settings

from s2s_auth.credentials.cache import invalidate
from s2s_auth.credentials.principals import ensure_principal
from s2s_auth.models import ServicePrincipal


@pytest.fixture
def pki(ca, settings):
    settings.S2S_AUTH = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": "fleamarket.local",
        "PKI_DIR": str(ca.directory),
    }
    return ca


@pytest.fixture
def caller(pki, db):
    issued = pki.issue("caller")
    ensure_principal("caller", ["test:read"])
    return issued.cert_path.read_text()


def get(client, path, pem=None, **extra):
    if pem is not None:
        extra["SSL_CLIENT_CERT"] = pem
    return client.get(path, **extra)


def test_valid_certificate_with_scope_is_accepted(client, caller):
    response = get(client, "/mtls/scoped", caller)
    assert response.status_code == 200
    assert response.json() == {
        "name": "caller",
        "spiffe_id": "spiffe://fleamarket.local/service/caller",
        "mechanism": "mtls",
        "scopes": ["test:read"],
    }


def test_leaf_only_as_from_getpeercert_is_accepted(client, caller):
    leaf_only = caller.split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    assert get(client, "/mtls/scoped", leaf_only).status_code == 200


def test_no_certificate_is_401_with_www_authenticate(client, db, pki):
    response = get(client, "/mtls/scoped")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Mutual-TLS")
    assert response.json()["error"] == "not_authenticated"


def test_service_without_the_scope_is_403(client, pki, db):
    pem = pki.issue("noscope").cert_path.read_text()
    ensure_principal("noscope")
    response = get(client, "/mtls/scoped", pem)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"
    assert "test:read" in response.json()["detail"]


def test_view_without_declared_scopes_refuses_everyone(client, caller):
    response = get(client, "/mtls/undeclared", caller)
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_required_scopes_attribute_needs_all(client, caller):
    assert get(client, "/mtls/required", caller).status_code == 403
    ServicePrincipal.objects.filter(name="caller").update(scopes="test:read test:write")
    invalidate()  # an UPDATE sends no signal (principal cache)
    assert get(client, "/mtls/required", caller).status_code == 200


def test_any_service_view_needs_no_scope(client, pki, db):
    pem = pki.issue("plain").cert_path.read_text()
    ensure_principal("plain")
    assert get(client, "/mtls/any", pem).status_code == 200


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("rogue", "untrusted_chain"),
        ("self_signed", "untrusted_chain"),
        ("expired", "expired"),
        ("not_yet_valid", "not_yet_valid"),
        ("no_client_auth", "missing_client_auth_eku"),
        ("foreign_domain", "foreign_trust_domain"),
        ("unknown", "unknown_principal"),
        ("disabled", "principal_disabled"),
        ("malformed", "malformed_certificate"),
    ],
)
def test_refusals_are_403_with_reason_and_logged(
    client, pki, rogue_ca, make_leaf, db, caplog, case, code
):
    now = dt.datetime.now(dt.UTC)
    ensure_principal("victim", ["test:read"])
    pems = {
        "rogue": lambda: rogue_ca.issue("victim").cert_path.read_text(),
        "self_signed": lambda: make_leaf(None, "victim").chain_pem.decode(),
        "expired": lambda: make_leaf(
            pki,
            "victim",
            not_before=now - dt.timedelta(hours=2),
            not_after=now - dt.timedelta(hours=1),
        ).chain_pem.decode(),
        "not_yet_valid": lambda: make_leaf(
            pki, "victim", not_before=now + dt.timedelta(hours=1)
        ).chain_pem.decode(),
        "no_client_auth": lambda: make_leaf(
            pki, "victim", eku=[ExtendedKeyUsageOID.SERVER_AUTH]
        ).chain_pem.decode(),
        "foreign_domain": lambda: make_leaf(
            pki, "victim", uris=["spiffe://evil.example/service/victim"]
        ).chain_pem.decode(),
        "unknown": lambda: pki.issue("stranger").cert_path.read_text(),
        "disabled": lambda: pki.issue("victim").cert_path.read_text(),
        "malformed": lambda: (
            "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
        ),
    }
    if case == "disabled":
        ServicePrincipal.objects.filter(name="victim").update(enabled=False)
        invalidate()  # an UPDATE sends no signal (principal cache)
    with caplog.at_level(logging.WARNING, logger="s2s_auth"):
        response = get(client, "/mtls/scoped", pems[case]())
    assert response.status_code == 403
    assert response.json()["error"] == code
    assert response.json()["detail"]
    refusal = [r.getMessage() for r in caplog.records if "s2s refused" in r.getMessage()]
    assert refusal and f"reason={code}" in refusal[0]
    assert "PRIVATE KEY" not in caplog.text


def test_revoked_certificate_is_refused_without_restart(client, pki, db):
    issued = pki.issue("revokee")
    ensure_principal("revokee", ["test:read"])
    pem = issued.cert_path.read_text()
    assert get(client, "/mtls/scoped", pem).status_code == 200
    pki.revoke("revokee")
    response = get(client, "/mtls/scoped", pem)
    assert response.status_code == 403
    assert response.json()["error"] == "revoked"


# -- certificates passed on by a proxy -------------------------------------------------


def nginx_header(pem: str) -> dict:
    return {"HTTP_X_SSL_CLIENT_CERT": quote(pem, safe="")}


def xfcc_header(pem: str) -> dict:
    return {
        "HTTP_X_FORWARDED_CLIENT_CERT": f"By=spiffe://fleamarket.local/service/users;"
        f'Hash=abc;Cert="{quote(pem, safe="")}";URI=spiffe://fleamarket.local/service/caller'
    }


def test_unreadable_crl_is_a_503_ours_to_fix(client, caller, settings, tmp_path):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "CRL_FILE": str(tmp_path / "missing-crl.pem")}
    response = get(client, "/mtls/scoped", caller)
    assert (response.status_code, response.json()["error"]) == (503, "crl_unavailable")
    assert int(response["Retry-After"]) >= 1


def test_proxy_header_from_untrusted_peer_is_ignored(client, caller):
    # Not in TRUSTED_PROXIES: the header is no evidence at all, so no credential.
    response = get(client, "/mtls/scoped", REMOTE_ADDR="10.9.9.9", **nginx_header(caller))
    assert response.status_code == 401


def test_proxy_header_does_not_override_the_socket_from_untrusted_peer(client, pki, caller, db):
    stranger = pki.issue("stranger2").cert_path.read_text()
    response = get(client, "/mtls/scoped", stranger, REMOTE_ADDR="10.9.9.9", **nginx_header(caller))
    assert response.json()["error"] == "unknown_principal"


@pytest.mark.parametrize(
    ("flavour", "make_header"), [("nginx", nginx_header), ("envoy", xfcc_header)]
)
def test_proxy_header_from_trusted_proxy_is_used(client, pki, caller, flavour, make_header):
    conf = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": "fleamarket.local",
        "PKI_DIR": str(pki.directory),
        "TRUSTED_PROXIES": ["10.0.0.0/24"],
        "PROXY_CERT_HEADER": flavour,
    }
    with override_settings(S2S_AUTH=conf):
        response = get(client, "/mtls/scoped", REMOTE_ADDR="10.0.0.7", **make_header(caller))
    assert response.status_code == 200
    assert response.json()["name"] == "caller"


@pytest.mark.parametrize(
    ("flavour", "header"),
    [
        ("nginx", {"HTTP_X_SSL_CLIENT_CERT": "garbage%ZZ"}),
        (
            "nginx",
            {
                "HTTP_X_SSL_CLIENT_CERT": quote(
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
                )
            },
        ),
        ("envoy", {"HTTP_X_FORWARDED_CLIENT_CERT": 'Cert="unterminated'}),
        ("envoy", {"HTTP_X_FORWARDED_CLIENT_CERT": "Hash=abc;Subject=x"}),
        ("envoy", {"HTTP_X_FORWARDED_CLIENT_CERT": "noequals"}),
        ("envoy", {"HTTP_X_FORWARDED_CLIENT_CERT": "Cert=" + "A" * 40000}),
    ],
)
def test_malformed_proxy_header_is_a_clean_403(client, pki, db, flavour, header):
    conf = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": "fleamarket.local",
        "PKI_DIR": str(pki.directory),
        "TRUSTED_PROXIES": ["10.0.0.7"],
        "PROXY_CERT_HEADER": flavour,
    }
    with override_settings(S2S_AUTH=conf):
        response = get(client, "/mtls/scoped", REMOTE_ADDR="10.0.0.7", **header)
    assert response.status_code == 403
    assert response.json()["error"] in {"malformed_proxy_header", "malformed_certificate"}


def test_a_remembered_peer_is_not_parsed_again_for_its_principal(client, caller, parsed_ids):
    assert get(client, "/mtls/scoped", caller).status_code == 200  # verified once
    parsed_ids.clear()
    response = get(client, "/mtls/scoped", caller)
    assert response.status_code == 200
    assert response.json()["name"] == "caller"
    assert parsed_ids == []  # the verified peer named the service
