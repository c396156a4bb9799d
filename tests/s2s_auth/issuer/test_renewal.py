"""POST /api/v1/pki/renew: a certificate renewed against the current one, never for
another identity; hostile input refused with a reason, every outcome audited."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

from s2s_auth.core import issuance
from s2s_auth.core.files import same_key
from s2s_auth.core.renewal import build_csr
from s2s_auth.core.x509 import spiffe_uris
from s2s_auth.credentials import principals
from s2s_auth.models import AuditRecord

from .support import JSON, spiffe

URL = "/api/v1/pki/renew"
PKCS10 = "application/pkcs10"

pytestmark = pytest.mark.urls("tests.s2s_auth.urls_issuer")


@pytest.fixture
def renew_conf(issuer_conf, settings):
    settings.S2S_AUTH = {**issuer_conf, "CERT_LIFETIME": "90s"}
    return settings.S2S_AUTH


@pytest.fixture
def service(ca, renew_conf):
    """A freshly issued service (unique name): (name, leaf, chain PEM)."""
    name = f"renew-{uuid.uuid4().hex[:8]}"
    issued = ca.issue(name, dns_names=[name, "localhost"], ip_addresses=["127.0.0.1"])
    return name, ca.load_certificate(name), issued.cert_path.read_text()


def post(client, body, *, chain_pem=None, content_type=PKCS10):
    extra = {"SSL_CLIENT_CERT": chain_pem} if chain_pem else {}
    return client.post(URL, data=body, content_type=content_type, **extra)


def audit_since(before: int):
    return list(AuditRecord.objects.filter(id__gt=before).order_by("id"))


def last_id() -> int:
    row = AuditRecord.objects.order_by("-id").first()
    return row.id if row else 0


def test_renewal_issues_the_same_identity_for_the_new_key(client, service, renew_conf):
    name, leaf, chain_pem = service
    key = issuance.new_key()
    before = last_id()

    response = post(client, build_csr(key, spiffe(name)), chain_pem=chain_pem)

    assert response.status_code == 200, response.content
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    chain = x509.load_pem_x509_certificates(body["certificate_chain"].encode())
    new = chain[0]
    assert same_key(new.public_key(), key.public_key())
    assert spiffe_uris(new) == [spiffe(name)] == [body["spiffe_id"]]
    assert new.serial_number != leaf.serial_number
    assert body["serial"] == format(new.serial_number, "x")
    sans = new.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [name, "localhost"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    # S2S_CERT_LIFETIME (90 s), back-dated a minute like every issuance.
    lifetime = new.not_valid_after_utc - new.not_valid_before_utc
    assert dt.timedelta(seconds=140) <= lifetime <= dt.timedelta(seconds=160)
    [row] = [r for r in audit_since(before) if r.reason == "certificate_renewed"]
    assert (row.outcome, row.principal, row.mechanism) == ("accepted", spiffe(name), "pki_renew")
    assert row.claims["previous_serial"] == format(leaf.serial_number, "x")
    assert row.claims["serial"] == body["serial"]


def test_a_renewed_certificate_renews_again_and_the_old_one_stays_valid(client, ca, service):
    name, _, chain_pem = service
    first = post(client, build_csr(issuance.new_key(), spiffe(name)), chain_pem=chain_pem)
    renewed_chain = first.json()["certificate_chain"]

    second = post(client, build_csr(issuance.new_key(), spiffe(name)), chain_pem=renewed_chain)
    again = post(client, build_csr(issuance.new_key(), spiffe(name)), chain_pem=chain_pem)

    assert (second.status_code, again.status_code) == (200, 200)


def test_json_body_with_a_pem_csr(client, service):
    name, _, chain_pem = service
    csr = build_csr(issuance.new_key(), spiffe(name)).decode()

    response = post(client, json.dumps({"csr": csr}), chain_pem=chain_pem, content_type=JSON)

    assert response.status_code == 200, response.content


def test_der_csr_body(client, service):
    name, _, chain_pem = service
    pem = build_csr(issuance.new_key(), spiffe(name))
    der = x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER)

    assert post(client, der, chain_pem=chain_pem).status_code == 200


def test_csr_for_another_spiffe_id_is_refused_and_audited(client, service):
    name, _, chain_pem = service
    before = last_id()

    response = post(client, build_csr(issuance.new_key(), spiffe("users")), chain_pem=chain_pem)

    assert response.status_code == 403
    assert response.json()["reason"] == "spiffe_id_mismatch"
    refused = [r for r in audit_since(before) if r.outcome == "refused"]
    assert [r.reason for r in refused] == ["spiffe_id_mismatch"]
    assert refused[0].principal == spiffe(name)


def test_dns_names_asked_for_in_the_csr_are_not_issued(client, service):
    name, _, chain_pem = service
    key = issuance.new_key()
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.UniformResourceIdentifier(spiffe(name)), x509.DNSName("evil.example")]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )

    response = post(client, csr, chain_pem=chain_pem)

    assert response.status_code == 200
    new = x509.load_pem_x509_certificates(response.json()["certificate_chain"].encode())[0]
    sans = new.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "evil.example" not in sans.get_values_for_type(x509.DNSName)


def test_without_a_client_certificate_401(client, renew_conf):
    response = post(client, build_csr(issuance.new_key(), spiffe("ads")))

    assert response.status_code == 401
    assert response.json()["reason"] == "certificate_required"
    assert "WWW-Authenticate" in response


def test_expired_certificate_is_refused(client, ca, renew_conf):
    name = f"expired-{uuid.uuid4().hex[:8]}"
    now = dt.datetime.now(dt.UTC)
    issued = ca.issue(
        name, not_before=now - dt.timedelta(hours=2), not_after=now - dt.timedelta(hours=1)
    )

    response = post(
        client, build_csr(issuance.new_key(), spiffe(name)), chain_pem=issued.cert_path.read_text()
    )

    assert response.status_code == 403
    assert response.json()["reason"] == "expired"


def test_revoked_certificate_is_refused(client, ca, service):
    name, leaf, chain_pem = service
    ca.revoke(leaf.serial_number)

    response = post(client, build_csr(issuance.new_key(), spiffe(name)), chain_pem=chain_pem)

    assert response.status_code == 403
    assert response.json()["reason"] == "revoked"


def test_certificate_of_another_ca_is_refused(client, rogue_ca, make_leaf, renew_conf):
    leaf = make_leaf(rogue_ca, "ads")

    response = post(
        client, build_csr(issuance.new_key(), spiffe("ads")), chain_pem=leaf.chain_pem.decode()
    )

    assert response.status_code == 403
    assert response.json()["reason"] == "untrusted_chain"


def test_certificate_the_ca_never_issued_is_refused(client, ca, make_leaf, renew_conf):
    leaf = make_leaf(ca, "handmade")  # signed with the intermediate's key, not recorded

    response = post(
        client,
        build_csr(issuance.new_key(), spiffe("handmade")),
        chain_pem=leaf.chain_pem.decode(),
    )

    assert response.status_code == 403
    assert response.json()["reason"] == "unknown_certificate"


def test_disabled_principal_is_refused(client, service):
    name, _, chain_pem = service
    principals.ensure_principal(name, [])
    principals.set_enabled(name, False)

    response = post(client, build_csr(issuance.new_key(), spiffe(name)), chain_pem=chain_pem)

    assert response.status_code == 403
    assert response.json()["reason"] == "principal_disabled"


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not a csr",
        b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
        b"\x30\x82\xff\xff" + b"\x00" * 20,
        b"A" * 9000,
    ],
    ids=["empty", "text", "bad-pem", "bad-der", "too-large"],
)
def test_malformed_csr_is_400_with_a_reason(client, service, body):
    _, _, chain_pem = service

    response = post(client, body, chain_pem=chain_pem)

    assert response.status_code == 400, response.content
    assert response.json()["error"] in ("invalid_csr", "invalid_request")
    assert response.json().get("reason", "invalid_csr") in ("invalid_csr", "")


@pytest.mark.parametrize(
    "body",
    ['{"csr": 5}', '{"csr": ""}', "[1, 2]", '{"csr": "\\ud800"}', "{" * 5000],
    ids=["number", "empty", "list", "surrogate", "deep"],
)
def test_malformed_json_is_400(client, service, body):
    _, _, chain_pem = service

    response = post(client, body, chain_pem=chain_pem, content_type=JSON)

    assert response.status_code == 400, response.content


def test_csr_whose_signature_does_not_verify_is_refused(client, service):
    name, _, chain_pem = service
    pem = build_csr(issuance.new_key(), spiffe(name))
    der = bytearray(x509.load_pem_x509_csr(pem).public_bytes(serialization.Encoding.DER))
    der[-3] ^= 0x01  # inside the signature's INTEGER s

    response = post(client, bytes(der), chain_pem=chain_pem)

    assert response.status_code == 400
    assert response.json()["reason"] in ("csr_signature_invalid", "invalid_csr")


def test_the_current_key_is_not_certified_again(client, ca, service):
    name, _, chain_pem = service
    current_key = ca.load_key(name)

    response = post(client, build_csr(current_key, spiffe(name)), chain_pem=chain_pem)

    assert response.status_code == 400
    assert response.json()["reason"] == "key_reused"


def test_other_media_types_are_refused(client, service):
    _, _, chain_pem = service

    response = post(client, "csr=x", chain_pem=chain_pem, content_type="text/plain")

    assert response.status_code == 400  # RFC 6749 bodies: an unsupported type is invalid_request


def test_renewals_are_rate_limited_per_identity(client, service, settings, throttle_clock):
    name, _, chain_pem = service
    settings.S2S_AUTH = {**settings.S2S_AUTH, "RENEWAL_RATE_LIMIT_PER_MINUTE": 2}

    codes = [
        post(client, build_csr(issuance.new_key(), spiffe(name)), chain_pem=chain_pem).status_code
        for _ in range(3)
    ]

    assert codes == [200, 200, 429]
