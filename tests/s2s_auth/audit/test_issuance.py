"""The identity service audits every token it issues or refuses (and every
self-registration): claims and a hash of the token, never the token."""

from __future__ import annotations

import json

import pytest

from s2s_auth import audit
from s2s_auth.models import AuditRecord
from tests.s2s_auth.audit.helpers import verify_command
from tests.s2s_auth.issuer.conftest import ads, alice, issuer_conf  # noqa: F401 - fixtures
from tests.s2s_auth.issuer.support import (
    STRONG,
    login,
    post_token,
    register,
    service_token,
    spiffe,
)


@pytest.fixture
def issuer_db(transactional_db, issuer_conf):  # noqa: F811 - the fixture imported above
    return issuer_conf


def _new(before: int):
    """The records written since ``before`` (the fixtures' own CLI changes come first)."""
    return AuditRecord.objects.filter(id__gt=before).order_by("id")


def _last_id() -> int:
    last = AuditRecord.objects.order_by("-id").first()
    return last.id if last else 0


def _row_text(record: AuditRecord) -> str:
    return json.dumps(audit.row_dict(record), default=str)


def test_a_service_token_is_audited_by_its_claims_and_hash(client, issuer_db, ads):  # noqa: F811
    before = _last_id()
    name, secret = ads
    response = post_token(client, {"grant_type": "client_credentials"}, auth=(name, secret))
    assert response.status_code == 200, response.content
    token = response.json()["access_token"]
    (record,) = _new(before)
    assert (record.outcome, record.reason, record.mechanism) == (
        "accepted",
        "token_issued",
        "client_secret_basic",
    )
    assert record.principal == spiffe("ads")
    assert record.credential_hash == audit.credential_hash(token)
    assert record.claims["scope"] == "users:notify users:read" and record.claims["jti"]
    assert (record.method, record.path) == ("POST", "/oauth/token")
    text = _row_text(record)
    assert token not in text and token.split(".")[2] not in text and secret not in text
    assert "OK: " in verify_command("--no-anchors")


def test_a_refused_token_request_is_audited(client, issuer_db, ads):  # noqa: F811
    before = _last_id()
    wrong = "not-the-secret-of-ads-1234"
    response = service_token(client, {"serviceName": "ads", "password": wrong})
    assert response.status_code == 401
    (record,) = _new(before)
    assert (record.outcome, record.reason, record.mechanism) == (
        "refused",
        "invalid_client",
        "service_token_json",
    )
    assert record.principal == spiffe("ads") and record.claims == {"client_id": "ads"}
    assert wrong not in _row_text(record)


def test_a_user_token_and_a_failed_login_are_audited(client, issuer_db, alice):  # noqa: F811
    before = _last_id()
    assert login(client, {"username": "alice", "password": "wrong-password-9"}).status_code == 401
    response = login(client, {"username": "alice", "password": "alice-password-1"})
    assert response.status_code == 200, response.content
    refused, issued = _new(before)
    assert (refused.outcome, refused.reason, refused.mechanism) == (
        "refused",
        "invalid_grant",
        "login",
    )
    assert (issued.reason, issued.end_user, issued.principal) == (
        "user_token_issued",
        str(alice.pk),
        "",
    )
    assert issued.claims["username"] == "alice"
    assert issued.credential_hash == audit.credential_hash(response.json()["access_token"])
    assert "alice-password-1" not in _row_text(issued) + _row_text(refused)


def test_a_self_registration_is_audited(client, issuer_db):
    response = register(client, {"serviceName": "newsvc", "password": STRONG})
    assert response.status_code == 201, response.content
    record = AuditRecord.objects.get(reason="service_registered")
    assert (record.principal, record.claims["credentials"]) == (spiffe("newsvc"), ["password"])
    assert STRONG not in _row_text(record)
