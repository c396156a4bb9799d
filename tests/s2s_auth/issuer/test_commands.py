"""s2s_service: client secrets (add, rotate-secret, list), API keys; the admin pages."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from s2s_auth.credentials import principals
from s2s_auth.credentials.cache import invalidate
from s2s_auth.issuer.models import ClientSecret
from s2s_auth.models import ServicePrincipal

from .support import assert_error, post_token


def run(*args) -> str:
    from io import StringIO

    out = StringIO()
    call_command("s2s_service", *args, stdout=out)
    return out.getvalue()


def secret_of(output: str) -> str:
    match = re.search(r"^client_secret: (\S+)$", output, re.M)
    assert match, output
    return match.group(1)


def token_status(client, name, secret) -> int:
    return post_token(client, {"grant_type": "client_credentials"}, auth=(name, secret)).status_code


def test_add_prints_client_id_and_secret_once(client, issuer_conf, db):
    out = run("add", "billing", "--scope", "users:read")
    assert "client_id: billing" in out
    secret = secret_of(out)
    assert len(secret) == 43
    assert token_status(client, "billing", secret) == 200
    again = run("add", "billing", "--scope", "users:notify")
    assert "client_secret" not in again and secret not in again
    assert ServicePrincipal.objects.get(name="billing").scopes == "users:notify users:read"
    assert ClientSecret.objects.filter(principal__name="billing").count() == 1


def test_add_without_secret(issuer_conf, db):
    out = run("add", "certonly", "--no-secret")
    assert "client_secret" not in out
    assert not ClientSecret.objects.exists()


def test_rotate_secret_keeps_the_old_one_for_the_grace_period(client, issuer_conf, db):
    old = secret_of(run("add", "svc", "--scope", "users:read"))
    new = secret_of(run("rotate-secret", "svc", "--grace-hours", "2"))
    assert new != old
    assert token_status(client, "svc", old) == 200
    assert token_status(client, "svc", new) == 200
    row = ClientSecret.objects.filter(principal__name="svc").exclude(expires_at=None).get()
    assert timezone.now() + dt.timedelta(hours=1.9) < row.expires_at
    assert row.expires_at < timezone.now() + dt.timedelta(hours=2.1)
    ClientSecret.objects.filter(pk=row.pk).update(expires_at=timezone.now())  # grace over
    invalidate()  # an UPDATE sends no signal (tests/s2s_auth/issuer/test_secret_cache.py)
    assert token_status(client, "svc", old) == 401
    assert token_status(client, "svc", new) == 200
    assert "secrets=1" in run("list")


def test_rotate_secret_with_zero_grace_invalidates_at_once(client, issuer_conf, db):
    old = secret_of(run("add", "svc", "--scope", "users:read"))
    new = secret_of(run("rotate-secret", "svc", "--grace-hours", "0"))
    assert token_status(client, "svc", old) == 401
    assert token_status(client, "svc", new) == 200


def test_rotate_secret_grace_is_a_short_setting_by_default(client, issuer_conf, db, settings):
    run("add", "svc", "--scope", "users:read")
    out = run("rotate-secret", "svc")
    assert "at most 300 s" in out
    row = ClientSecret.objects.filter(principal__name="svc").exclude(expires_at=None).get()
    assert row.expires_at <= timezone.now() + dt.timedelta(minutes=5)
    settings.S2S_AUTH = {**settings.S2S_AUTH, "SECRET_ROTATION_GRACE": 60}
    run("rotate-secret", "svc")
    latest = ClientSecret.objects.filter(principal__name="svc").exclude(expires_at=None)
    assert max(r.expires_at for r in latest) <= timezone.now() + dt.timedelta(seconds=60)


def _squat(client, name="ads"):
    from .support import STRONG, register

    assert register(client, {"serviceName": name, "password": STRONG}).status_code == 201


def test_add_and_grant_refuse_scopes_to_a_self_registered_service(client, issuer_conf, db):
    _squat(client)
    with pytest.raises(CommandError, match="--approve-self-registered"):
        run("add", "ads", "--scope", "users:read")
    with pytest.raises(CommandError, match="--approve-self-registered"):
        run("grant", "ads", "users:read")
    assert ServicePrincipal.objects.get(name="ads").scopes == ""
    listing = run("list")
    assert "SELF-REGISTERED, not approved" in listing
    out = run("grant", "ads", "users:read", "--approve-self-registered")
    assert "users:read" in out
    principal = ServicePrincipal.objects.get(name="ads")
    assert principal.approved_at is not None and principal.scopes == "users:read"
    assert "self-registered, approved" in run("list")
    run("grant", "ads", "users:notify")  # approved once: later grants need no flag


def test_add_with_approval_flag(client, issuer_conf, db):
    _squat(client, "billing")
    out = run("add", "billing", "--scope", "users:read", "--approve-self-registered")
    assert "self-registered, approved" in out
    assert ServicePrincipal.objects.get(name="billing").scopes == "users:read"


def test_operator_added_services_need_no_flag(issuer_conf, db):
    run("add", "svc", "--scope", "users:read")
    run("grant", "svc", "users:notify")
    assert "SELF-REGISTERED" not in run("list")


def test_rotate_secret_of_unknown_service(issuer_conf, db):
    with pytest.raises(CommandError):
        run("rotate-secret", "ghost")


@pytest.fixture
def no_secret_backend():
    """A project without the issuer: no app has registered a secret backend."""
    previous = principals.register_secret_backend(None)
    yield
    principals.register_secret_backend(previous)


def test_without_a_secret_backend_secrets_are_a_clear_error(issuer_conf, db, no_secret_backend):
    out = run("add", "svc", "--scope", "users:read")
    assert "client_secret" not in out
    assert "no secret backend" in out
    assert not ClientSecret.objects.exists()
    with pytest.raises(CommandError, match="INSTALLED_APPS"):
        run("rotate-secret", "svc")
    listing = run("list")
    assert "svc" in listing and "secrets=" not in listing
    with pytest.raises(principals.PrincipalError, match="secret backend"):
        principals.create_client_secret("svc")


def test_grant_revoke_disable_enable(client, issuer_conf, db):
    secret = secret_of(run("add", "svc", "--scope", "users:read"))
    run("disable", "svc")
    response = post_token(client, {"grant_type": "client_credentials"}, auth=("svc", secret))
    assert_error(response, 400, "unauthorized_client")
    run("enable", "svc")
    run("revoke", "svc", "users:read")
    assert token_status(client, "svc", secret) == 400  # invalid_scope: none left
    run("grant", "svc", "users:read")
    assert token_status(client, "svc", secret) == 200


def _apikeys_ready():
    pytest.importorskip("s2s_auth.credentials.apikeys")
    from s2s_auth.models import APIKey

    if APIKey._meta.db_table not in connection.introspection.table_names():
        pytest.skip("APIKey has no migration yet")


def test_add_key_and_revoke_key(issuer_conf, db):
    _apikeys_ready()
    from s2s_auth.credentials.apikeys import check_key

    run("add", "keyed", "--no-secret")
    out = run("add-key", "keyed", "--expires", "30")
    raw = re.search(r"api key for keyed: (\S+)", out).group(1)
    key = check_key(raw, touch=False)
    assert key.principal.name == "keyed"
    out = run("revoke-key", key.key_id)
    assert "revoked 1" in out
    with pytest.raises(Exception):  # noqa: B017 - APIKeyError
        check_key(raw, touch=False)
    with pytest.raises(CommandError):
        run("revoke-key", key.key_id)


def test_admin_shows_hash_prefix_never_the_secret(client, issuer_conf, db, admin_user):
    secret = secret_of(run("add", "svc", "--scope", "users:read"))
    client.force_login(admin_user)
    response = client.get("/admin/s2s_issuer/clientsecret/")
    assert response.status_code == 200
    page = response.content.decode()
    row = ClientSecret.objects.get()
    assert row.hash_prefix in page
    assert secret not in page and row.digest not in page
    response = client.get("/admin/s2s_issuer/signingkey/")
    assert response.status_code == 200


def test_admin_marks_self_registered_services_and_keeps_their_scopes(
    client, issuer_conf, db, admin_user
):
    _squat(client)
    principal = ServicePrincipal.objects.get(name="ads")
    client.force_login(admin_user)
    page = client.get("/admin/s2s_auth/serviceprincipal/").content.decode()
    assert "SELF-REGISTERED, not approved" in page
    url = f"/admin/s2s_auth/serviceprincipal/{principal.pk}/change/"
    form = {"name": "ads", "spiffe_id": principal.spiffe_id, "enabled": "on"}
    form.update({"scopes": "users:read", "description": "", "certificates-TOTAL_FORMS": "0"})
    form.update({"certificates-INITIAL_FORMS": "0"})
    client.post(url, form)
    assert ServicePrincipal.objects.get(name="ads").scopes == ""  # read-only until approved
    changelist = "/admin/s2s_auth/serviceprincipal/"
    client.post(changelist, {"action": "approve", "_selected_action": [principal.pk]})
    assert ServicePrincipal.objects.get(name="ads").approved_at is not None
    response = client.post(url, form)
    assert response.status_code == 302, response.content[:2000]
    assert ServicePrincipal.objects.get(name="ads").scopes == "users:read"
