"""``events.record``: the one call of the mechanisms; it logs without the evidence."""

from __future__ import annotations

import logging

import pytest
from django.test import RequestFactory

from s2s_auth.audit import Decision, events
from s2s_auth.models import AuditRecord
from tests.s2s_auth.audit.helpers import mint


def test_a_refusal_is_logged_with_its_reason_and_without_the_credential(
    transactional_db, caller, caplog
):
    token = mint(caller)
    decision = Decision(
        mechanism="test_jwt",
        outcome="refused",
        reason="bad_signature",
        detail="The signature does not verify.",
        principal=caller.spiffe_id,
        credential=token,
        certificate_pem=caller.chain_pem,
    )
    with caplog.at_level(logging.DEBUG, logger="s2s_auth"):
        events.record(RequestFactory().post("/api/x"), decision)
    (line,) = [r for r in caplog.records if r.name == "s2s_auth"]
    assert line.levelno == logging.WARNING
    message = line.getMessage()
    assert "reason=bad_signature" in message and caller.spiffe_id in message
    assert "POST /api/x" in message
    assert token not in caplog.text
    assert token.rsplit(".", 1)[1] not in caplog.text
    assert "BEGIN CERTIFICATE" not in caplog.text
    assert AuditRecord.objects.get().credential == token


def test_nothing_is_stored_with_the_audit_log_off(transactional_db, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "AUDIT_ENABLED": False}
    events.record(RequestFactory().get("/x"), Decision(mechanism="mtls", outcome="accepted"))
    assert not AuditRecord.objects.exists()


def test_the_decision_is_the_only_spelling():
    with pytest.raises(TypeError):
        events.record(RequestFactory().get("/x"), mechanism="mtls", outcome="accepted")
