"""A credential accepted twice is an incident, not a broken log; an operator closes it
with a reason (``s2s_audit ack``) and nothing is deleted.

The test mechanism keeps no jti store, so sending one JWT twice is a real replay, as
with a per-process replay cache behind several workers.
"""

from __future__ import annotations

import io
import itertools

import pytest
from django.core.management import CommandError, call_command

from s2s_auth import audit
from s2s_auth.audit import chain
from s2s_auth.models import AuditAcknowledgement, AuditRecord
from tests.s2s_auth.audit.helpers import jwt_post, mint, verify_command


@pytest.fixture
def replayed(transactional_db, client, caller, monkeypatch):
    """One JWT accepted twice, each time by another writer; the replay's chain sorts
    first (a verifier walking chains in order meets the replay before the original)."""
    chain_ids = iter(["f" * 32, "0" * 32])
    monkeypatch.setattr(chain.secrets, "token_hex", lambda n: next(chain_ids))
    token = mint(caller)
    assert jwt_post(client, caller, token=token).status_code == 200
    audit.reset_writer_chains()
    assert jwt_post(client, caller, token=token).status_code == 200
    monkeypatch.undo()
    original, replay = AuditRecord.objects.order_by("time", "id")
    assert replay.chain_id < original.chain_id
    return original, replay


def _verify_error(*args) -> CommandError:
    with pytest.raises(CommandError) as excinfo:
        call_command("s2s_audit", "verify", "--no-anchors", *args, stdout=io.StringIO())
    return excinfo.value


def test_a_replay_is_an_incident_naming_original_and_replay(replayed):
    original, replay = replayed
    out = io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("s2s_audit", "verify", "--no-anchors", stdout=out)
    error = excinfo.value
    assert error.returncode == 2
    message = str(error)
    assert "broken" not in message and "The log is intact" in message
    assert f"record {replay.id} replays record {original.id}" in message
    listed = out.getvalue()
    assert f"INCIDENT replay: record {replay.id} " in listed
    assert f"already accepted in record {original.id} " in listed
    assert "NOT acknowledged" in listed
    assert "1 incidents (1 not acknowledged)" in listed.splitlines()[-1]


def test_an_acknowledged_incident_is_still_listed_and_nothing_is_deleted(replayed):
    original, replay = replayed
    out = io.StringIO()
    call_command(
        "s2s_audit",
        "ack",
        str(replay.id),
        "--reason",
        "two workers, per-process jti cache; fixed by CACHE_URL",
        "--by",
        "alice",
        stdout=out,
    )
    assert f"Acknowledged the replay by record {replay.id}" in out.getvalue()
    ack = AuditAcknowledgement.objects.get()
    assert (ack.record_hash, ack.original_hash) == (replay.hash, original.hash)

    listed = verify_command("--no-anchors")  # exit 0 now
    assert f"INCIDENT replay: record {replay.id} " in listed
    assert "acknowledged by alice" in listed and "per-process jti cache" in listed
    assert "1 incidents (0 not acknowledged)" in listed
    assert AuditRecord.objects.filter(id__in=[original.id, replay.id]).count() == 2
    event = AuditRecord.objects.get(reason="incident_acknowledged")
    assert (event.mechanism, event.claims["actor"]) == ("cli", "alice")
    assert event.claims["replay"] == {"id": replay.id, "hash": replay.hash}


@pytest.mark.parametrize(
    ("which", "args", "why"),
    [
        ("original", ["--reason", "seen"], "is the original of record"),
        ("replay", ["--reason", "  "], "needs a reason"),
        ("none", ["--reason", "seen"], "is not the replay of an incident"),
    ],
)
def test_ack_refuses_what_is_not_an_open_incident(replayed, which, args, why):
    original, replay = replayed
    record_id = {"original": original.id, "replay": replay.id, "none": replay.id + 1000}[which]
    with pytest.raises(CommandError, match=why):
        call_command("s2s_audit", "ack", str(record_id), *args, stdout=io.StringIO())
    assert not AuditAcknowledgement.objects.exists()


def test_an_incident_is_acknowledged_once(replayed):
    _, replay = replayed
    call_command("s2s_audit", "ack", str(replay.id), "--reason", "seen", stdout=io.StringIO())
    with pytest.raises(CommandError, match="already acknowledged"):
        call_command("s2s_audit", "ack", str(replay.id), "--reason", "again", stdout=io.StringIO())


def test_a_third_use_is_a_second_incident_against_the_same_original(replayed, client, caller):
    original, replay = replayed
    token = replay.credential
    assert jwt_post(client, caller, token=token).status_code == 200
    incidents = audit.verify_all()[1].incidents
    assert [i.original.id for i in incidents] == [original.id, original.id]
    assert [i.replay.id for i in incidents] == sorted(
        r.id for r in AuditRecord.objects.exclude(id=original.id)
    )
    assert all(
        a < b for a, b in itertools.pairwise([original.id, *(i.replay.id for i in incidents)])
    )
