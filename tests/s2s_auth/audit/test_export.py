"""``s2s_audit export`` (checkable with the CA certificate alone) and ``prune``."""
# ruff: noqa: S608

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import time

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.verification import PolicyBuilder, Store
from django.core.management import CommandError, call_command
from django.db import connection

from s2s_auth.models import AuditCheckpoint, AuditRecord
from tests.s2s_auth.audit.helpers import (
    TABLE,
    jwt_post,
    make_records,
    mint,
    signed_post,
    verify_command,
    verify_fails,
)

# ------------------------------------------------------------------ prune


def test_prune_keeps_verify_passing(transactional_db, client, caller):
    old = make_records(client, caller, 4)
    time.sleep(0.05)
    cutoff = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    make_records(client, caller, 2)
    days = (dt.datetime.now(dt.UTC) - cutoff).total_seconds() / 86400

    out = io.StringIO()
    call_command("s2s_audit", "prune", "--older-than", repr(days), stdout=out)
    assert "Deleted 4 records" in out.getvalue()
    assert not AuditRecord.objects.filter(id__in=[r.id for r in old]).exists()
    checkpoint = AuditCheckpoint.objects.get()
    assert (checkpoint.seq, checkpoint.hash) == (4, old[-1].hash)
    verify_command("--no-anchors")

    # The checkpoint is enforced: losing the first kept row is still a gap.
    first_kept = AuditRecord.objects.order_by("seq").first()
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [first_kept.id])
    assert "sequence gap" in verify_fails("--no-anchors")


def test_prune_twice_and_everything(transactional_db, client, caller):
    make_records(client, caller, 2)
    call_command("s2s_audit", "prune", "--older-than", "0", stdout=io.StringIO())
    make_records(client, caller, 2)
    verify_command("--no-anchors")
    call_command("s2s_audit", "prune", "--older-than", "0", stdout=io.StringIO())
    assert not AuditRecord.objects.exists()
    assert AuditCheckpoint.objects.get().pruned == 4
    verify_command("--no-anchors")


# ------------------------------------------------------------------ export


def _export(*args) -> list[dict]:
    out = io.StringIO()
    call_command("s2s_audit", "export", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def _third_party_check(line: dict, ca_pem: bytes) -> None:
    """What an outsider does with one exported line and the CA certificate, nothing else."""
    assert hashlib.sha256(line["hash_input"].encode()).hexdigest() == line["hash"]
    hashed = json.loads(line["hash_input"])
    for name, value in hashed.items():
        if name != "v":
            assert line[name] == value, name

    root = x509.load_pem_x509_certificate(ca_pem)
    leaf, *intermediates = x509.load_pem_x509_certificates(line["certificate"].encode())
    when = dt.datetime.fromisoformat(line["time"])
    verifier = PolicyBuilder().store(Store([root])).time(when).build_client_verifier()
    verified = verifier.verify(leaf, intermediates)
    assert line["principal"] in [name.value for name in verified.subjects]

    if line["signature_base"]:
        (signature,) = [
            base64.b64decode(part.split("=:", 1)[1].rstrip(":"))
            for part in line["credential"].split(",")
        ]
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        leaf.public_key().verify(der, line["signature_base"].encode(), ec.ECDSA(hashes.SHA256()))
    else:
        claims = jwt.decode(
            line["credential"],
            leaf.public_key(),
            algorithms=["ES256", "EdDSA"],
            options={"verify_exp": False, "verify_aud": False},
        )
        assert claims["iss"] == claims["sub"] == line["principal"]


def test_an_exported_record_is_verifiable_with_only_the_ca_certificate(
    transactional_db, client, caller, ca
):
    assert jwt_post(client, caller).status_code == 200
    assert signed_post(client, caller).status_code == 200
    first, second = AuditRecord.objects.order_by("id")
    (line,) = _export(str(first.id))
    assert set(line) >= {
        "id",
        "time",
        "mechanism",
        "principal",
        "end_user",
        "outcome",
        "reason",
        "method",
        "path",
        "body_digest",
        "credential",
        "certificate",
        "chain_id",
        "seq",
        "prev_hash",
        "hash",
    }
    ca_pem = ca.ca_path.read_bytes()
    _third_party_check(line, ca_pem)
    lines = _export("--since", first.time.isoformat())
    assert [item["id"] for item in lines] == [first.id, second.id]
    _third_party_check(lines[1], ca_pem)
    assert lines[1]["prev_hash"] == lines[0]["hash"]  # consecutive in one chain

    # The check can fail: a forged credential in the line does not pass.
    forged = dict(line, credential=mint(caller)[:-4] + "AAAA")
    with pytest.raises(jwt.InvalidSignatureError):
        _third_party_check(
            dict(
                forged,
                hash_input=line["hash_input"].replace(
                    json.dumps(line["credential"]), json.dumps(forged["credential"])
                ),
                hash=hashlib.sha256(
                    line["hash_input"]
                    .replace(json.dumps(line["credential"]), json.dumps(forged["credential"]))
                    .encode()
                ).hexdigest(),
            ),
            ca_pem,
        )


def test_export_refuses_unknown_ids(transactional_db):
    with pytest.raises(CommandError, match="No audit record 999"):
        _export("999")
