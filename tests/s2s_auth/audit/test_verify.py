"""``verify_all`` / ``s2s_audit verify``: any edited, inserted or deleted row is found and named.

Tampering goes through raw SQL, as an attacker with database access would (table and
column names are constants here).
"""
# ruff: noqa: S608

from __future__ import annotations

import datetime as dt
import io
import json
import types

import pytest
from django.core.management import call_command
from django.db import connection

from s2s_auth import audit
from s2s_auth.models import AuditCheckpoint, AuditRecord
from tests.s2s_auth.audit.helpers import (
    CALLER,
    TABLE,
    make_records,
    mint,
    verify_command,
    verify_fails,
)

# ------------------------------------------------------------------ tampering


def _changed(column: str, value):
    if column == "time":
        return value + dt.timedelta(seconds=1)
    if column == "seq":
        return value + 100
    if column == "claims":
        return json.dumps({**value, "tampered": True})
    if column == "outcome":
        return "refused" if value == "accepted" else "accepted"
    if column in ("hash", "prev_hash", "chain_id", "fingerprint", "credential_hash"):
        return ("f" if value[:1] != "f" else "e") + value[1:]
    return (value or "") + "X" if column != "method" else "PUT"


@pytest.mark.parametrize("column", [*audit.HASHED_FIELDS, "hash"])
def test_editing_any_column_of_any_row_is_detected_and_named(
    transactional_db, client, caller, column
):
    records = make_records(client, caller, 3)
    verify_command("--no-anchors")
    for target in records:
        original = getattr(target, column)
        stored = json.dumps(original) if column == "claims" else original
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {TABLE} SET {column} = %s WHERE id = %s",
                [_changed(column, original), target.id],
            )
        message = verify_fails("--no-anchors")
        assert f"record {target.id} " in message, message
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {TABLE} SET {column} = %s WHERE id = %s", [stored, target.id])
        verify_command("--no-anchors")


def test_deleting_a_middle_row_is_detected(transactional_db, client, caller):
    _, middle, last = make_records(client, caller, 3)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [middle.id])
    message = verify_fails("--no-anchors")
    assert f"record {last.id} " in message
    assert "sequence gap" in message


def test_deleting_the_first_row_is_detected(transactional_db, client, caller):
    first, *_ = make_records(client, caller, 3)
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {TABLE} WHERE id = %s", [first.id])
    assert "sequence gap" in verify_fails("--no-anchors")


def _insert(row: dict) -> int:
    record = AuditRecord(**{k: v for k, v in row.items() if k != "id"})
    record.save(force_insert=True)
    return record.id


def _forged_garbage_hash(records, caller, rogue_ca):
    row = audit.row_dict(records[1])
    row.update(chain_id="f" * 32, seq=1, prev_hash=audit.GENESIS, hash="ab" * 32)
    return row


def _forged_tail_replaying_a_credential(records, caller, rogue_ca):
    # Appended to a chain, perfectly linked and hashed, with another path: only the
    # replayed single-use credential gives it away.
    row = audit.row_dict(records[-1])
    row.update(seq=row["seq"] + 1, prev_hash=row["hash"], path="/api/v1/transfer-everything")
    row["hash"] = audit.compute_hash(row)
    return row


def _forged_chain_signed_by_a_rogue_ca(records, caller, rogue_ca):
    # A whole new chain, self-consistent, with a JWT that verifies with the stored
    # certificate: but that certificate comes from another CA.
    rogue = rogue_ca.issue(CALLER)
    key = rogue_ca.load_key(CALLER)
    token = mint(types.SimpleNamespace(spiffe_id=caller.spiffe_id, key=key))
    row = audit.row_dict(records[0])
    row.update(
        chain_id="e" * 32,
        seq=1,
        prev_hash=audit.GENESIS,
        credential=token,
        certificate=rogue.cert_path.read_text(),
        fingerprint=rogue.fingerprint,
    )
    row["hash"] = audit.compute_hash(row)
    return row


@pytest.mark.parametrize(
    "forge",
    [
        _forged_garbage_hash,
        _forged_tail_replaying_a_credential,
        _forged_chain_signed_by_a_rogue_ca,
    ],
)
def test_an_inserted_forged_row_is_detected(transactional_db, client, caller, ca, rogue_ca, forge):
    records = make_records(client, caller, 3)
    forged_id = _insert(forge(records, caller, rogue_ca))
    message = verify_fails("--anchors", str(ca.ca_path))
    assert f"record {forged_id} " in message, message


def test_a_deleted_tail_needs_anchored_heads(transactional_db, client, caller, tmp_path):
    make_records(client, caller, 3)
    heads = io.StringIO()
    call_command("s2s_audit", "heads", stdout=heads)
    heads_file = tmp_path / "heads.jsonl"
    heads_file.write_text(heads.getvalue())
    assert json.loads(heads.getvalue().splitlines()[0])["seq"] == 3
    verify_command("--no-anchors", "--heads", str(heads_file))

    AuditRecord.objects.filter(seq=3).delete()
    verify_command("--no-anchors")  # a hash chain alone cannot see a missing tail...
    message = verify_fails("--no-anchors", "--heads", str(heads_file))
    assert "tail was deleted" in message  # ...an anchored head can


# ------------------------------------------------------------------ anchored heads


def _anchor(tmp_path, *outputs: str):
    heads_file = tmp_path / "heads.jsonl"
    heads_file.write_text("".join(outputs))
    return str(heads_file)


def _heads() -> str:
    out = io.StringIO()
    call_command("s2s_audit", "heads", stdout=out)
    return out.getvalue()


def _forge_checkpoint(chain_id: str, seq: int, hash_: str) -> None:
    AuditCheckpoint.objects.create(
        chain_id=chain_id, seq=seq, hash=hash_, pruned=seq, updated_at=dt.datetime.now(dt.UTC)
    )


@pytest.mark.parametrize("past_the_head", [0, 5], ids=["at-the-head", "past-the-head"])
def test_a_forged_checkpoint_cannot_explain_away_a_deleted_chain(
    transactional_db, client, caller, tmp_path, past_the_head
):
    *_, last = make_records(client, caller, 3)
    heads_file = _anchor(tmp_path, _heads())
    AuditRecord.objects.all().delete()
    _forge_checkpoint(last.chain_id, last.seq + past_the_head, last.hash)
    verify_command("--no-anchors")  # the table alone is consistent...
    message = verify_fails("--no-anchors", "--heads", heads_file)
    assert "checkpoint" in message and "not anchored" in message, message  # ...the anchor is not


def test_a_prune_whose_checkpoints_are_anchored_passes(transactional_db, client, caller, tmp_path):
    make_records(client, caller, 3)
    before = _heads()
    out = io.StringIO()
    call_command("s2s_audit", "prune", "--older-than", "0", stdout=out)
    pruned = "".join(line + "\n" for line in out.getvalue().splitlines() if line.startswith("{"))
    assert json.loads(pruned)["checkpoint"] is True
    message = verify_fails("--no-anchors", "--heads", _anchor(tmp_path, before))
    assert "not anchored" in message
    verify_command("--no-anchors", "--heads", _anchor(tmp_path, before, pruned))


def test_every_anchored_line_counts_not_only_the_last_of_a_chain(
    transactional_db, client, caller, tmp_path
):
    first, *_ = make_records(client, caller, 3)
    older = json.dumps({"chain_id": first.chain_id, "seq": 1, "hash": "0" * 64}) + "\n"
    message = verify_fails("--no-anchors", "--heads", _anchor(tmp_path, older, _heads()))
    assert "the anchored head has hash" in message and "seq 1" in message
