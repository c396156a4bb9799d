"""Replays are found by what identifies a credential, not by its bytes.

A forger with database access copies an accepted credential into a new record for
another request. Re-encoding it (an ECDSA signature (r, s) verifies as (r, n - s))
changes its bytes but not what it is.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from s2s_auth import audit
from s2s_auth.audit.evidence import signature_members
from s2s_auth.audit.replay import credential_keys, low_s
from s2s_auth.core.ecdsa import CURVE_ORDERS
from s2s_auth.models import AuditRecord
from tests.s2s_auth.audit.helpers import make_records, signed_post, verify_fails

P256 = CURVE_ORDERS["secp256r1"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _flip_s(raw: bytes) -> bytes:
    half = len(raw) // 2
    s = int.from_bytes(raw[half:], "big")
    return raw[:half] + (P256 - s).to_bytes(half, "big")


def malleate_jwt(token: str) -> str:
    head, body, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    return f"{head}.{body}.{_b64url(_flip_s(raw))}"


def malleate_signature_field(field: str) -> str:
    label, _, value = field.partition("=")
    raw = base64.b64decode(value.strip(":"))
    return f"{label}=:{base64.b64encode(_flip_s(raw)).decode('ascii')}:"


def assert_replay(replay: int, original: int) -> None:
    """``verify`` names the replay and the original, and says the log is intact."""
    message = verify_fails("--no-anchors")
    assert f"record {replay} replays record {original} (replay)" in message, message
    assert "The log is intact" in message


def _forge_after(record: AuditRecord, **changes) -> int:
    """A perfectly chained and hashed record appended after ``record``."""
    row = audit.row_dict(record)
    row.update(seq=row["seq"] + 1, prev_hash=row["hash"], **changes)
    row["hash"] = audit.compute_hash(row)
    forged = AuditRecord(**{k: v for k, v in row.items() if k != "id"})
    forged.save(force_insert=True)
    return forged.id


def test_a_malleated_copy_of_an_accepted_jwt_is_a_replay(transactional_db, client, caller):
    *_, last = make_records(client, caller, 2)
    copy = malleate_jwt(last.credential)
    assert copy != last.credential
    assert audit.verify_credential(copy, "", last.certificate) is None  # it does verify
    forged = _forge_after(last, credential=copy, method="DELETE", path="/audit-test/other")
    assert_replay(forged, last.id)


def test_a_malleated_copy_of_an_accepted_rfc9421_signature_is_a_replay(
    transactional_db, client, caller
):
    assert signed_post(client, caller).status_code == 200
    record = AuditRecord.objects.get()
    copy = malleate_signature_field(record.credential)
    assert audit.verify_credential(copy, record.signature_base, record.certificate) is None
    forged = _forge_after(record, credential=copy)
    assert_replay(forged, record.id)


def test_low_s_is_shared_by_a_signature_and_its_malleated_copy(caller):
    raw = b"\x01" * 32 + (P256 - 5).to_bytes(32, "big")
    assert decode_dss_signature(low_s(raw, "secp256r1")) == (int.from_bytes(b"\x01" * 32), 5)
    assert low_s(raw, "secp256r1") == low_s(_flip_s(raw), "secp256r1")
    assert low_s(raw, "no-such-curve") == raw


def test_credential_keys_name_the_single_use_values(caller):
    from tests.s2s_auth.audit.helpers import mint

    token = mint(caller, jti="the-jti")
    keys = credential_keys(token, "", caller.chain_pem)
    assert keys[0] == f"iss={caller.spiffe_id!r} jti='the-jti'"
    assert credential_keys(malleate_jwt(token), "", caller.chain_pem) == keys
    base = '"@method": GET\n"@signature-params": ("@method");created=1;keyid="k1";nonce="n1"'
    field = "sig1=:" + base64.b64encode(b"\x02" * 64).decode() + ":"
    keys = credential_keys(field, base, caller.chain_pem)
    assert keys[0] == "keyid='k1' nonce='n1'"
    assert len(signature_members(field)) == 1 and len(keys) == 2
