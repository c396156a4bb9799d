"""What a stored row holds: the evidence, the certificate chain, never a key or a bearer token.

Real database, real certificates from the session CA, real signatures; nothing mocked.
"""
# ruff: noqa: S608

from __future__ import annotations

import hashlib
import time

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from django.db import connection
from django.test import RequestFactory

from s2s_auth import audit
from s2s_auth.audit import Decision, events
from s2s_auth.core import httpsig
from s2s_auth.core import jose as tokens
from s2s_auth.models import AuditRecord
from tests.s2s_auth.audit.helpers import (
    TABLE,
    WRITE_URL,
    jwt_post,
    mint,
    verify_command,
)

# ------------------------------------------------------------------ accepted records


def test_signed_jwt_accepted_record_holds_the_evidence_and_verifies(
    transactional_db, client, caller, ca
):
    token = mint(caller)
    body = b'{"x": 1}'
    response = jwt_post(client, caller, body=body, token=token)
    assert response.status_code == 200, response.content

    record = AuditRecord.objects.get()
    assert record.outcome == "accepted"
    assert record.mechanism == "test_jwt"
    assert record.principal == caller.spiffe_id
    assert record.credential == token
    assert record.claims["jti"] == jwt.decode(token, options={"verify_signature": False})["jti"]
    assert (record.method, record.path) == ("POST", WRITE_URL)
    assert record.client_address == "127.0.0.1"
    assert record.body_digest == httpsig.content_digest(body)
    assert record.body_digest.startswith("sha-256=:")
    assert record.certificate == caller.chain_pem.replace("\r", "")
    leaf = x509.load_pem_x509_certificate(caller.chain_pem.encode())
    assert record.fingerprint == leaf.fingerprint(hashes.SHA256()).hex()
    assert (record.seq, record.prev_hash) == (1, audit.GENESIS)

    output = verify_command("--anchors", str(ca.ca_path))
    assert "OK: 1 records in 1 chains, 1 signatures verified" in output
    assert "certificate paths checked" in output


def test_a_leaf_alone_is_stored_with_its_intermediate(transactional_db, client, caller):
    assert jwt_post(client, caller, pem=caller.leaf_pem).status_code == 200
    stored = x509.load_pem_x509_certificates(AuditRecord.objects.get().certificate.encode())
    assert [c.subject for c in stored] == [
        c.subject for c in x509.load_pem_x509_certificates(caller.chain_pem.encode())
    ]


def test_the_chain_is_completed_again_when_the_intermediates_change(tmp_path, settings, ca, caller):
    """certificate_chain remembers its results, keyed by the intermediates files' state."""
    from s2s_auth.audit.rows import certificate_chain

    pem = serialization.Encoding.PEM
    anchors = x509.load_pem_x509_certificates(ca.ca_path.read_bytes())
    roots = [c for c in anchors if c.issuer == c.subject]
    (tmp_path / "ca.pem").write_bytes(b"".join(c.public_bytes(pem) for c in roots))
    settings.S2S_AUTH = {**settings.S2S_AUTH, "PKI_DIR": str(tmp_path), "TRUST_ANCHORS": None}
    alone = certificate_chain(caller.leaf_pem)
    assert alone[0].count("BEGIN CERTIFICATE") == 1
    assert certificate_chain(caller.leaf_pem) == alone
    intermediate, _ = ca.load_intermediate()
    (tmp_path / "intermediates.pem").write_bytes(intermediate.public_bytes(pem))
    completed = certificate_chain(caller.leaf_pem)
    assert completed[0].count("BEGIN CERTIFICATE") == 2
    assert completed[1] == alone[1]  # the leaf's fingerprint


def test_private_key_material_in_certificate_pem_is_never_stored(transactional_db, caller):
    key_pem = caller.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    request = RequestFactory().get("/x")
    events.record(
        request,
        Decision(
            mechanism="mtls",
            outcome="accepted",
            principal=caller.spiffe_id,
            certificate_pem=caller.chain_pem + key_pem,
        ),
    )
    record = AuditRecord.objects.get()
    assert "PRIVATE KEY" not in record.certificate
    assert record.certificate.count("BEGIN CERTIFICATE") == 2


# ------------------------------------------------------------------ access tokens


@pytest.mark.parametrize("misuse", [False, True])
def test_access_token_claims_are_stored_without_the_raw_token(
    transactional_db, client, caller, misuse
):
    now = int(time.time())
    claims = {"iss": "https://users.local", "sub": caller.spiffe_id, "scope": "users:read"}
    claims.update(iat=now, exp=now + 600, jti=tokens.new_jti())
    token = tokens.sign(claims, caller.key, typ="at+jwt")
    response = client.post(
        "/audit-test/access-token" + ("?misuse=1" if misuse else ""),
        data={"token": token, "claims": claims},
        content_type="application/json",
    )
    assert response.status_code == 200
    record = AuditRecord.objects.get()
    assert record.claims == claims
    assert record.credential == ""
    assert record.credential_hash == hashlib.sha256(token.encode()).hexdigest()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {TABLE}")
        stored = " ".join(str(value) for row in cursor.fetchall() for value in row)
    signature = token.rsplit(".", 1)[1]
    assert token not in stored
    assert signature not in stored
    verify_command("--no-anchors")


# ------------------------------------------------------------------ the body's digest


def _digest(request) -> str:
    from s2s_auth.audit.rows import build_row

    return build_row(request, Decision(mechanism="m", outcome="accepted"))["body_digest"]


def test_a_request_without_a_body_has_the_empty_bodys_digest_and_its_body_stays_readable():
    request = RequestFactory().get("/x")
    assert _digest(request) == httpsig.content_digest(b"")
    assert request.body == b""
    assert request.read() == b""


def test_a_body_is_digested_whether_read_already_or_not():
    body = b'{"a": 1}'
    fresh = RequestFactory().post("/x", body, content_type="application/json")
    assert _digest(fresh) == httpsig.content_digest(body)
    assert fresh.body == body  # still there for the view
    read = RequestFactory().post("/x", body, content_type="application/json")
    assert read.body == body
    assert _digest(read) == httpsig.content_digest(body)


def test_a_body_consumed_as_a_stream_has_no_digest_with_or_without_a_length():
    """As ``request.body`` says (RawPostDataException): the bytes are gone."""
    empty = RequestFactory().get("/x")
    empty.read()
    assert _digest(empty) == ""
    streamed = RequestFactory().post("/x", b"abc", content_type="text/plain")
    streamed.read()
    assert _digest(streamed) == ""


def test_a_drf_request_gives_the_row_of_its_django_request():
    from rest_framework.request import Request

    from s2s_auth.audit.rows import build_row

    django_request = RequestFactory().post(
        "/x?q=1", b"{}", content_type="application/json", REMOTE_ADDR="10.1.2.3"
    )
    decision = Decision(mechanism="m", outcome="refused", reason="r", principal="p")
    rows = [build_row(r, decision) for r in (Request(django_request), django_request)]
    for row in rows:
        row.pop("time")
    assert rows[0] == rows[1]
    assert rows[0]["client_address"] == "10.1.2.3"
    assert rows[0]["path"] == "/x"
    assert rows[0]["body_digest"] == httpsig.content_digest(b"{}")


def test_texts_are_cleaned_and_cut_to_their_columns_whatever_else_is_clean():
    """One value with a NUL, one too long or one not a string: that one is cleaned
    (NUL replaced, cut to its column, str()), every other is kept as it is."""
    from s2s_auth.audit.rows import build_row

    request = RequestFactory().get("/x")
    clean = Decision(mechanism="m", outcome="refused", reason="r", detail="d")
    base = build_row(request, clean)
    assert (base["mechanism"], base["reason"], base["detail"]) == ("m", "r", "d")
    nul = build_row(request, Decision(mechanism="m\x00x", outcome="refused", reason="r"))
    assert nul["mechanism"] == "m\ufffdx" and nul["reason"] == "r"
    long = build_row(request, Decision(mechanism="m", outcome="refused", reason="r" * 100))
    assert long["reason"] == "r" * 64 and long["mechanism"] == "m"
    huge = build_row(request, Decision(mechanism="m", outcome="refused", credential="c" * 9000))
    assert huge["credential"] == "c" * 9000  # no limit
    odd = build_row(request, Decision(mechanism="m", outcome="refused", principal=None))
    assert odd["principal"] == "" and odd["mechanism"] == "m"
