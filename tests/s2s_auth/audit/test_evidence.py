"""A stored credential re-verified with the stored certificate alone."""
# ruff: noqa: S608

from __future__ import annotations

from django.db import connection

from s2s_auth import audit
from s2s_auth.models import AuditRecord
from tests.s2s_auth.audit.helpers import (
    TABLE,
    signed_post,
    verify_command,
    verify_fails,
)


def test_rfc9421_signature_and_base_are_stored_and_reverified(transactional_db, client, caller, ca):
    response = signed_post(client, caller)
    assert response.status_code == 200, response.content
    record = AuditRecord.objects.get()
    assert record.mechanism == "test_signature"
    assert record.signature_base.splitlines()[0] == '"@method": POST'
    assert record.credential.startswith("sig1=:")
    verify_command("--anchors", str(ca.ca_path))

    # A consistent rewrite (hash recomputed) of the signed content is still caught:
    # the stored signature no longer verifies over the stored base.
    row = audit.row_dict(record)
    row["signature_base"] = row["signature_base"].replace("POST", "GET", 1)
    forged_hash = audit.compute_hash(row)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {TABLE} SET signature_base = %s, hash = %s WHERE id = %s",
            [row["signature_base"], forged_hash, record.id],
        )
    message = verify_fails("--no-anchors")
    assert f"record {record.id}" in message
    assert "does not verify" in message


def test_signature_params_alg_is_read_from_the_inner_list():
    """The ``@signature-params`` line is an inner list: its ``alg`` decides the verifier,
    not a guess from the key type (an RSA key could be PSS or v1.5)."""
    from s2s_auth.audit.evidence import _signature_params_alg

    base = (
        '"@method": GET\n"@signature-params": ("@method");created=1;keyid="k";alg="rsa-v1_5-sha256"'
    )
    assert _signature_params_alg(base) == "rsa-v1_5-sha256"
    assert _signature_params_alg('"@signature-params": ("@method");created=1') is None
    assert _signature_params_alg('"@signature-params": (unterminated') is None


def test_a_deeply_nested_jwt_payload_is_not_decoded():
    """A refused token is still recorded: its hostile payload must not crash the audit
    (a RecursionError here was a 500 at the token's endpoint)."""
    import base64

    from s2s_auth.audit.evidence import decode_jwt_unverified

    def segment(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    nested = b"[" * 100_000 + b"]" * 100_000
    token = ".".join([segment(b'{"alg":"ES256"}'), segment(nested), "sig"])
    assert decode_jwt_unverified(token) is None
