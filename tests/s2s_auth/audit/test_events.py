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


def test_a_newline_in_the_path_cannot_forge_a_log_line(transactional_db, caplog):
    """``/x%0A...`` reaches Django decoded: the log line keeps it escaped, on one line."""
    forged = "s2s accepted mechanism=mtls principal=spiffe://x/admin"
    request = RequestFactory().get("/api/x%0D%0A" + forged.replace(" ", "%20") + "%E2%80%A8\\")
    decision = Decision(
        mechanism="test_jwt", outcome="refused", reason="bad_signature", detail="a\nb\x1b[31m"
    )
    with caplog.at_level(logging.DEBUG, logger="s2s_auth"):
        events.record(request, decision)
    (line,) = [r for r in caplog.records if r.name == "s2s_auth"]
    message = line.getMessage()
    assert "\n" not in message and "\r" not in message and "\u2028" not in message
    assert "\x1b" not in message
    assert "/api/x\\x0d\\x0a" + forged + "\\u2028\\\\" in message
    assert message.endswith(": a\\x0ab\\x1b[31m")


def test_log_safe_escapes_controls_and_keeps_the_rest():
    assert events.log_safe("ads\n") == "ads\\x0a"
    assert events.log_safe("\x00\x7f\x85") == "\\x00\\x7f\\x85"
    assert events.log_safe("caf\u00e9 \\n") == "caf\u00e9 \\\\n"
