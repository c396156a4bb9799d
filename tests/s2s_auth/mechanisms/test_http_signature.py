"""HTTPSignatureAuthentication through DRF: signed requests, tampering and replay."""

from __future__ import annotations

import time

import pytest
import requests

from s2s_auth.client.auth import ServiceCredentials, signature_auth
from s2s_auth.credentials.cache import invalidate
from s2s_auth.credentials.certificates import register_certificate
from s2s_auth.credentials.principals import ensure_principal
from s2s_auth.models import ServicePrincipal

PATH = "/sig/scoped"
TESTSERVER = "http://testserver"
#: Two services on one host, as `python -m fleamarket up` runs them.
USERS, ADS = "http://127.0.0.1:8001", "http://127.0.0.1:8002"


@pytest.fixture
def pki(ca, settings):
    settings.S2S_AUTH = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": "fleamarket.local",
        "PKI_DIR": str(ca.directory),
        "HTTPSIG_ORIGIN": "http://testserver",
    }
    return ca


@pytest.fixture
def creds(pki, db):
    issued = pki.issue("signer")
    principal, _ = ensure_principal("signer", ["test:read"])
    register_certificate(principal, issued.cert_path.read_text())
    return ServiceCredentials.from_files(issued.cert_path, issued.key_path)


def signed(creds, method="POST", query="?page=1", body=b'{"x": 1}', base=TESTSERVER, **options):
    prepared = requests.Request(
        method,
        f"{base}{PATH}{query}",
        data=body,
        headers={"Content-Type": "application/json"},
    ).prepare()
    auth = signature_auth(creds)
    for key, value in options.items():
        setattr(auth, key, value)
    return auth(prepared)


def send(client, prepared, *, method=None, path=None, body=None, drop=(), **override):
    headers = {k.lower(): v for k, v in prepared.headers.items()}
    for name in drop:
        headers.pop(name, None)
    headers.update({k.lower().replace("_", "-"): v for k, v in override.items()})
    extra = {
        "HTTP_" + name.upper().replace("-", "_"): value
        for name, value in headers.items()
        if name not in ("content-type", "content-length")
    }
    url = path or prepared.path_url
    return client.generic(
        method or prepared.method,
        url,
        data=(prepared.body or b"") if body is None else body,
        content_type="application/json",
        **extra,
    )


def test_signed_request_is_accepted(client, creds):
    response = send(client, signed(creds))
    assert response.status_code == 200, response.json()
    assert response.json()["name"] == "signer"
    assert response.json()["mechanism"] == "http_signature"


def test_signed_get_without_body(client, creds):
    assert send(client, signed(creds, method="GET", body=None)).status_code == 200


def test_over_mtls_the_peer_certificate_is_the_key(client, creds):
    ServicePrincipal.objects.get(name="signer").certificates.all().delete()
    prepared = signed(creds)
    assert send(client, prepared).status_code == 401  # no registered key, no mTLS
    prepared = signed(creds)
    response = client.generic(
        "POST",
        prepared.path_url,
        data=prepared.body,
        content_type="application/json",
        SSL_CLIENT_CERT=creds.cert_path.read_text(),
        **{
            "HTTP_" + k.upper().replace("-", "_"): v
            for k, v in prepared.headers.items()
            if k.lower() not in ("content-type", "content-length")
        },
    )
    assert response.status_code == 200


def test_replayed_nonce_is_refused(client, creds):
    prepared = signed(creds)
    assert send(client, prepared).status_code == 200
    response = send(client, prepared)
    assert response.status_code == 403
    assert response.json()["error"] == "replayed_nonce"


@pytest.mark.parametrize(
    ("tamper", "code"),
    [
        ({"body": b'{"x": 2}'}, "digest_mismatch"),
        ({"method": "PUT"}, "bad_signature"),
        ({"path": "/sig/scoped?page=2"}, "bad_signature"),
        ({"path": "/any/scoped?page=1"}, "bad_signature"),
        (
            {"content_digest": "sha-256=:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=:"},
            "bad_signature",
        ),
        ({"drop": ("content-digest",)}, "missing_digest"),
        ({"signature": "sig1=:AAAA:"}, "bad_signature"),
        ({"signature": "garbage((("}, "malformed_signature"),
        ({"signature_input": 'sig1=("@method");created=1;keyid="x"'}, "missing_component"),
    ],
)
def test_tampered_requests_are_403_with_reason(client, creds, tamper, code):
    response = send(client, signed(creds), **tamper)
    assert response.status_code == 403, response.json()
    assert response.json()["error"] == code


def test_created_outside_the_window_is_refused(client, creds):
    old = signed(creds, options={"created": int(time.time()) - 3600})
    response = send(client, old)
    assert response.status_code == 403
    assert response.json()["error"] == "signature_too_old"


def test_unknown_keyid_is_401(client, creds, pki):
    other = pki.issue("unregistered")
    other_creds = ServiceCredentials.from_files(other.cert_path, other.key_path)
    response = send(client, signed(other_creds))
    assert response.status_code == 401
    assert response.json()["error"] == "unknown_key"


def test_revoked_signer_is_refused(client, creds, pki):
    pki.revoke("signer")
    response = send(client, signed(creds))
    assert response.status_code == 403
    assert response.json()["error"] == "revoked"


def test_unscoped_signer_is_403(client, creds):
    ServicePrincipal.objects.filter(name="signer").update(scopes="")
    invalidate()  # an UPDATE sends no signal (principal cache)
    response = send(client, signed(creds))
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


def test_accepted_signed_request_is_audited_and_reverifiable(client, creds):
    from django.core.management import call_command

    from s2s_auth import audit
    from s2s_auth.models import AuditRecord

    audit.reset_writer_chains()
    assert send(client, signed(creds)).status_code == 200
    record = AuditRecord.objects.filter(outcome="accepted", mechanism="http_signature").get()
    assert record.signature_base.startswith('"@method": POST')
    assert (
        audit.verify_credential(record.credential, record.signature_base, record.certificate)
        is None
    )
    call_command("s2s_audit", "verify")  # raises CommandError if anything is off


# -- bound to this service's own origin(s) (issue 17, item 5) -------------------------


def origin(settings, value):
    conf = {k: v for k, v in settings.S2S_AUTH.items() if k != "HTTPSIG_ORIGIN"}
    settings.S2S_AUTH = conf if value is None else {**conf, "HTTPSIG_ORIGIN": value}


@pytest.mark.parametrize(
    ("users_origin", "code"),
    [
        (None, "httpsig_origin_unset"),  # was: @target-uri rebuilt from Host, accepted
        (USERS, "bad_signature"),
        ([USERS, TESTSERVER], "bad_signature"),
    ],
)
def test_a_request_signed_for_ads_is_refused_by_users(client, creds, settings, users_origin, code):
    """ALLOWED_HOSTS ignores ports: Host 127.0.0.1:8002 passes it at users (:8001)."""
    origin(settings, users_origin)
    for_ads = signed(creds, base=ADS)
    response = send(client, for_ads, host="127.0.0.1:8002")
    assert response.status_code == 403, response.json()
    assert response.json()["error"] == code


def test_signed_for_any_own_origin_is_accepted_whatever_the_host(client, creds, settings):
    internal = "https://users.internal:8443"
    origin(settings, [USERS, internal, "https://users.example:443"])
    for base in (USERS, internal, "https://USERS.internal:8443", "https://users.example"):
        response = send(client, signed(creds, base=base), host="localhost:9999")
        assert response.status_code == 200, (base, response.json())
    for other in ("https://users.internal:8444", "http://users.internal:8443", ADS):
        response = send(client, signed(creds, base=other), host="users.internal:8443")
        assert response.status_code == 403, other
        assert response.json()["error"] == "bad_signature"


def test_an_invalid_origin_refuses(client, creds, settings):
    origin(settings, "127.0.0.1:8001")  # no scheme: not an origin
    response = send(client, signed(creds))
    assert response.status_code == 403
    assert response.json()["error"] == "httpsig_origin_invalid"


# -- the profile other implementations use by default (issue 13, item 6) ----------------

PARTS = ("@method", "@authority", "@path", "@query")


def test_authority_path_query_without_nonce_accepted_once(client, creds):
    prepared = signed(creds, options={"components": (*PARTS, "content-digest"), "nonce": False})
    response = send(client, prepared)
    assert response.status_code == 200, response.json()
    response = send(client, prepared)
    assert response.status_code == 403
    assert response.json()["error"] == "replayed_signature"


def test_get_without_content_digest_and_nonce(client, creds):
    prepared = signed(creds, method="GET", body=None, options={"components": PARTS, "nonce": False})
    response = send(client, prepared, drop=("content-digest",))
    assert response.status_code == 200, response.json()
    response = send(client, prepared, drop=("content-digest",), body=b'{"x": 1}')
    assert response.status_code == 403
    assert response.json()["error"] == "missing_component"


def test_parts_signed_for_ads_are_refused_by_users(client, creds, settings):
    origin(settings, USERS)
    parts = {"components": (*PARTS, "content-digest"), "nonce": False}
    for_ads = signed(creds, base=ADS, options=parts)
    response = send(client, for_ads, host="127.0.0.1:8002")
    assert response.status_code == 403, response.json()
    assert response.json()["error"] == "bad_signature"


def test_nonce_can_still_be_required(client, creds, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "HTTPSIG_REQUIRE_NONCE": True}
    response = send(client, signed(creds, options={"nonce": False}))
    assert response.status_code == 403
    assert response.json()["error"] == "missing_nonce"
    assert send(client, signed(creds)).status_code == 200


def test_signature_auth_takes_the_signing_options(client, creds):
    auth = signature_auth(creds, components=PARTS, nonce=False)
    prepared = auth(requests.Request("GET", f"{TESTSERVER}{PATH}").prepare())
    assert "nonce" not in prepared.headers["Signature-Input"]
    assert '"@authority"' in prepared.headers["Signature-Input"]
    assert send(client, prepared, drop=("content-digest",)).status_code == 200
