"""Operators' changes to principals, scopes, keys and secrets are audit records: admin
bulk actions and forms, and ``s2s_service``. None of them holds a secret."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from s2s_auth import audit
from s2s_auth.credentials import principals
from s2s_auth.credentials.apikeys import create_key, parse_key
from s2s_auth.issuer.models import ClientSecret
from s2s_auth.models import APIKey, AuditRecord, ServicePrincipal
from tests.s2s_auth.audit.helpers import verify_command

SPIFFE = "spiffe://fleamarket.local/service/{}"


@pytest.fixture
def principal(transactional_db):
    principals.ensure_principal("billing", ["users:read"])
    return ServicePrincipal.objects.get(name="billing")


def _events(reason: str) -> list[AuditRecord]:
    return list(AuditRecord.objects.filter(reason=reason).order_by("id"))


def _action(admin_client, model: str, action: str, pks) -> None:
    response = admin_client.post(
        f"/admin/{model}/",
        {"action": action, "_selected_action": [str(pk) for pk in pks]},
    )
    assert response.status_code == 302, response.content


@pytest.mark.parametrize("action", ["disable", "enable"])
def test_admin_bulk_disable_and_enable_are_audited(admin_client, principal, action):
    _action(admin_client, "s2s_auth/serviceprincipal", action, [principal.pk])
    (record,) = _events(f"principal_{action}d")
    assert (record.mechanism, record.outcome, record.principal) == (
        "admin",
        "accepted",
        SPIFFE.format("billing"),
    )
    assert record.claims["actor"] == "admin"
    assert record.claims["object"]["enabled"] is (action == "enable")
    assert (record.method, record.path) == ("POST", "/admin/s2s_auth/serviceprincipal/")


def test_admin_bulk_revoke_of_api_keys_is_audited(admin_client, principal):
    key, plaintext = create_key(principal)
    _action(admin_client, "s2s_auth/apikey", "revoke", [key.pk])
    (record,) = _events("apikey_revoked")
    assert record.claims["object"]["key_id"] == key.key_id
    assert record.claims["object"]["revoked_at"]
    _, secret = parse_key(plaintext)  # the secret itself may hold "_" (base64url)
    assert secret not in json.dumps(audit.row_dict(record), default=str)


def test_admin_bulk_expiry_of_client_secrets_is_audited(admin_client, principal):
    secret = principals.create_client_secret("billing")
    row = ClientSecret.objects.get(principal=principal)
    _action(admin_client, "s2s_issuer/clientsecret", "expire_now", [row.pk])
    (record,) = _events("secret_expired")
    assert record.principal == SPIFFE.format("billing")
    assert record.claims["object"]["expires_at"]
    text = json.dumps(audit.row_dict(record), default=str)
    assert secret not in text and row.digest not in text


def test_admin_form_changes_and_deletions_are_audited(admin_client, principal):
    url = f"/admin/s2s_auth/serviceprincipal/{principal.pk}/change/"
    form = {
        "name": "billing",
        "spiffe_id": principal.spiffe_id,
        "enabled": "on",
        "scopes": "users:read users:notify",
        "description": "",
        "certificates-TOTAL_FORMS": "0",
        "certificates-INITIAL_FORMS": "0",
    }
    response = admin_client.post(url, form)
    assert response.status_code == 302, response.content
    (changed,) = _events("serviceprincipal_changed")
    assert set(changed.claims["object"]["scopes"].split()) == {"users:read", "users:notify"}
    assert "Scopes" in json.dumps(changed.claims["changes"]["admin_message"])

    response = admin_client.post(
        "/admin/s2s_auth/serviceprincipal/",
        {"action": "delete_selected", "_selected_action": [principal.pk], "post": "yes"},
    )
    assert response.status_code == 302
    (deleted,) = _events("serviceprincipal_deleted")
    assert deleted.principal == SPIFFE.format("billing")


def test_s2s_service_changes_are_audited(transactional_db):
    out = io.StringIO()
    for args in (
        ["add", "ledger", "--scope", "users:read"],
        ["grant", "ledger", "users:notify"],
        ["revoke", "ledger", "users:read"],
        ["disable", "ledger"],
        ["enable", "ledger"],
        ["rotate-secret", "ledger", "--grace-hours", "0"],
        ["add-key", "ledger"],
    ):
        call_command("s2s_service", *args, stdout=out)
    key_id = APIKey.objects.get().key_id
    call_command("s2s_service", "revoke-key", key_id, stdout=out)
    records = AuditRecord.objects.filter(principal=SPIFFE.format("ledger")).order_by("id")
    assert [r.reason for r in records] == [
        "principal_added",
        "secret_created",
        "scopes_changed",
        "scopes_changed",
        "principal_disabled",
        "principal_enabled",
        "secret_rotated",
        "apikey_created",
        "apikey_revoked",
    ]
    assert {r.mechanism for r in records} == {"cli"}
    assert records[2].claims["changes"] == {"grant": ["users:notify"], "revoke": []}
    assert records[3].claims["object"]["scopes"] == "users:notify"
    printed = out.getvalue()
    for record in records:
        text = json.dumps(audit.row_dict(record), default=str)
        for line in printed.splitlines():
            if line.startswith(("client_secret: ", "api key for ")):
                assert line.split(": ", 1)[1] not in text
    assert "OK: " in verify_command("--no-anchors")


def test_audited_events_are_listed_in_the_admin(admin_client, principal):
    _action(admin_client, "s2s_auth/serviceprincipal", "disable", [principal.pk])
    page = admin_client.get("/admin/s2s_auth/auditrecord/?reason=principal_disabled")
    assert page.status_code == 200
    html = page.content.decode()
    assert "principal_disabled" in html and "By reason" in html
