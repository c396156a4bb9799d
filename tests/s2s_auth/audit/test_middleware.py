"""``AuditMiddleware``: the record of a request follows the request's transaction."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings

from s2s_auth.models import AuditRecord, ServicePrincipal
from tests.s2s_auth.audit.helpers import (
    WRITE_URL,
    cert_header,
    jwt_post,
    mint,
    verify_command,
)

# ------------------------------------------------------------------ transactions


@pytest.mark.parametrize("atomic_requests", [False, True], indirect=True)
@pytest.mark.parametrize("fail", ["raise", "500"])
def test_a_failing_view_leaves_no_accepted_record_and_no_writes(
    transactional_db, caller, atomic_requests, fail
):
    client = Client(raise_request_exception=False)
    response = jwt_post(client, caller, query=f"name=doomed&fail={fail}")
    assert response.status_code == 500
    assert not ServicePrincipal.objects.filter(name="doomed").exists()
    assert not AuditRecord.objects.filter(outcome="accepted").exists()

    # The writer's chain did not advance past the rolled-back row: no gap.
    assert jwt_post(client, caller, query="name=fine").status_code == 200
    assert ServicePrincipal.objects.filter(name="fine").exists()
    assert AuditRecord.objects.get().seq == 1
    verify_command("--no-anchors")


@pytest.mark.parametrize("atomic_requests", [False, True], indirect=True)
def test_a_successful_view_commits_its_writes_with_the_accepted_record(
    transactional_db, client, caller, atomic_requests
):
    assert jwt_post(client, caller, query="name=kept").status_code == 200
    assert ServicePrincipal.objects.filter(name="kept").exists()
    assert AuditRecord.objects.filter(outcome="accepted").count() == 1


@pytest.mark.parametrize("atomic_requests", [False, True], indirect=True)
def test_a_refused_request_leaves_a_refused_record(
    transactional_db, client, caller, atomic_requests
):
    token = mint(caller)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = jwt_post(client, caller, query="name=never", token=tampered)
    assert response.status_code == 403
    assert response.json()["error"] == "bad_signature"
    assert not ServicePrincipal.objects.filter(name="never").exists()
    record = AuditRecord.objects.get()
    assert (record.outcome, record.reason, record.mechanism) == (
        "refused",
        "bad_signature",
        "test_jwt",
    )
    assert record.credential == tampered  # what was presented, for the record
    assert record.principal == caller.spiffe_id
    verify_command("--no-anchors")  # a refused forgery does not break verification


@pytest.mark.parametrize("atomic_requests", [False, True], indirect=True)
def test_no_credential_at_all_is_recorded_as_not_authenticated(
    transactional_db, client, atomic_requests
):
    response = client.post(WRITE_URL, data=b"{}", content_type="application/json")
    assert response.status_code == 401
    record = AuditRecord.objects.get()
    assert (record.outcome, record.mechanism, record.reason) == (
        "refused",
        "none",
        "not_authenticated",
    )
    assert record.principal == ""


@pytest.mark.parametrize("atomic_requests", [False, True], indirect=True)
def test_authenticated_but_not_authorised_is_one_refused_record(
    transactional_db, client, caller, atomic_requests
):
    response = client.get(
        "/audit-test/scoped",
        headers={
            "Authorization": f"TestJWT {mint(caller)}",
            "X-Test-Cert": cert_header(caller.chain_pem),
        },
    )
    assert response.status_code == 403
    record = AuditRecord.objects.get()
    assert (record.outcome, record.mechanism, record.reason, record.principal) == (
        "refused",
        "test_jwt",
        "insufficient_scope",
        caller.spiffe_id,
    )


@override_settings(
    MIDDLEWARE=[
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
    ]
)
@pytest.mark.parametrize("atomic_requests", [True], indirect=True)
def test_without_the_middleware_atomic_requests_loses_refusals(
    transactional_db, client, caller, atomic_requests
):
    """Why AuditMiddleware exists: DRF rolls the refusal back with the request."""
    tampered = mint(caller)[:-4] + "AAAA"
    assert jwt_post(client, caller, token=tampered).status_code == 403
    assert not AuditRecord.objects.exists()


def test_non_s2s_views_are_left_alone(transactional_db, client):
    assert client.get("/audit-test/plain").status_code == 200
    assert not AuditRecord.objects.exists()


def test_the_url_is_resolved_once_per_request(transactional_db, client, caller, monkeypatch):
    """Django resolves the URL; the middleware takes the view from ``process_view``."""
    from django.urls import get_resolver

    root = get_resolver()
    calls = []
    resolve = type(root).resolve

    def counting(self, path):
        if self is root:
            calls.append(path)
        return resolve(self, path)

    monkeypatch.setattr(type(root), "resolve", counting)
    assert jwt_post(client, caller).status_code == 200
    assert calls == ["/audit-test/write"]
    assert AuditRecord.objects.filter(outcome="accepted").count() == 1
