"""API keys: the service functions (real DB) and APIKeyAuthentication through DRF."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

# Registers APIKeyAdmin before the URLconf is first loaded (until s2s_auth.admin imports it).
from s2s_auth.admin import apikeys as admin_apikeys  # noqa: F401
from s2s_auth.credentials.apikeys import APIKeyError, check_key, create_key, parse_key, revoke_key
from s2s_auth.credentials.cache import invalidate
from s2s_auth.credentials.principals import ensure_principal
from s2s_auth.models import APIKey, ServicePrincipal

PATH = "/tokens-test/apikey/scoped"


@pytest.fixture
def principal(db, settings):
    settings.S2S_AUTH = {**settings.S2S_AUTH, "SERVICE_NAME": "users", "API_KEY_PREFIX": "s2s"}
    principal, _ = ensure_principal("batch", ["test:read"])
    return principal


@pytest.fixture
def key(principal):
    return create_key(principal)


def call(client, header, path=PATH):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    return client.get(path, **extra)


# ------------------------------------------------------------------- service functions


def test_create_returns_the_plaintext_once_in_the_documented_format(key):
    row, plaintext = key
    prefix, key_id, secret = plaintext.split("_", 2)
    assert prefix == "s2s"
    assert key_id == row.key_id and len(key_id) == 16
    assert len(secret) == 43  # 256 bits, base64url
    assert parse_key(plaintext) == (key_id, secret)
    assert check_key(plaintext).pk == row.pk
    fresh = APIKey.objects.get(pk=row.pk)
    assert not any(secret in str(getattr(fresh, f.attname)) for f in APIKey._meta.fields)


def test_only_a_hash_is_stored(key):
    row, plaintext = key
    secret = plaintext.split("_", 2)[2]
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {APIKey._meta.db_table}")  # noqa: S608 - our table
        rows = cursor.fetchall()
    dump = repr(rows)
    assert row.key_id in dump
    assert secret not in dump
    assert plaintext not in dump
    assert row.secret_hash in dump and len(row.secret_hash) == 64


def test_keys_are_unique(principal):
    plaintexts = {create_key(principal)[1] for _ in range(20)}
    assert len(plaintexts) == 20


def test_last_used_is_written_at_most_once_a_minute(key):
    row, plaintext = key
    check_key(plaintext)
    first = APIKey.objects.get(pk=row.pk).last_used_at
    assert first is not None
    check_key(plaintext)
    assert APIKey.objects.get(pk=row.pk).last_used_at == first
    APIKey.objects.filter(pk=row.pk).update(last_used_at=first - timedelta(minutes=2))
    invalidate()  # an UPDATE sends no signal (principal cache)
    check_key(plaintext)
    assert APIKey.objects.get(pk=row.pk).last_used_at > first


def test_revoke_by_id_prefix_or_plaintext(principal):
    for form in ("id", "prefixed", "plaintext"):
        row, plaintext = create_key(principal)
        value = {"id": row.key_id, "prefixed": f"s2s_{row.key_id}", "plaintext": plaintext}[form]
        assert revoke_key(value) == 1
        assert revoke_key(value) == 0  # already revoked
        with pytest.raises(APIKeyError) as info:
            check_key(plaintext)
        assert info.value.code == "api_key_revoked"
    assert revoke_key("not a key id") == 0


def test_expiry(principal):
    row, plaintext = create_key(principal, expires_days=30)
    assert row.expires_at > timezone.now() + timedelta(days=29)
    assert check_key(plaintext)
    APIKey.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    invalidate()  # an UPDATE sends no signal (principal cache)
    with pytest.raises(APIKeyError) as info:
        check_key(plaintext)
    assert info.value.code == "api_key_expired"


def test_state_not_revealed_without_the_secret(key, principal):
    row, plaintext = key
    revoke_key(row.key_id)
    wrong = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    with pytest.raises(APIKeyError) as info:
        check_key(wrong)
    assert info.value.code == "unknown_api_key"


# --------------------------------------------------------------------------- over DRF


def test_good_key_is_accepted(client, key):
    row, plaintext = key
    response = call(client, f"ApiKey {plaintext}")
    assert response.status_code == 200, response.content
    assert response.json() == {
        "name": "batch",
        "spiffe_id": "spiffe://fleamarket.local/service/batch",
        "mechanism": "api_key",
        "scopes": ["test:read"],
        "auth": "APIKey",
        "key_id": row.key_id,
    }


def test_scheme_is_case_insensitive(client, key):
    assert call(client, f"apikey {key[1]}").status_code == 200


def test_other_schemes_are_not_ours(client, key):
    for header in (None, f"Bearer {key[1]}", f"Token {key[1]}"):
        response = call(client, header)
        assert response.status_code == 401
        assert response.json()["error"] == "not_authenticated"
        assert (
            response["WWW-Authenticate"] == 'ApiKey realm="spiffe://fleamarket.local/service/users"'
        )


def _flip_last(text: str) -> str:
    return text[:-1] + ("A" if text[-1] != "A" else "B")


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("wrong_secret", 401, "unknown_api_key"),
        ("unknown_id", 401, "unknown_api_key"),
        ("expired", 403, "api_key_expired"),
        ("revoked", 403, "api_key_revoked"),
        ("disabled", 403, "principal_disabled"),
        ("bare_scheme", 401, "malformed_api_key"),
        ("short", 401, "malformed_api_key"),
        ("two_parts", 401, "malformed_api_key"),
        ("non_ascii", 401, "malformed_api_key"),
        ("huge", 401, "malformed_api_key"),
        ("other_prefix", 401, "malformed_api_key"),
        ("uppercase_id", 401, "malformed_api_key"),
    ],
)
def test_refusals(client, key, case, status, code, caplog):
    row, plaintext = key
    _prefix, key_id, secret = plaintext.split("_", 2)
    if case == "expired":
        APIKey.objects.filter(pk=row.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    elif case == "revoked":
        revoke_key(row.key_id)
    elif case == "disabled":
        ServicePrincipal.objects.filter(pk=row.principal_id).update(enabled=False)
    header = {
        "wrong_secret": f"ApiKey {_flip_last(plaintext)}",
        "unknown_id": f"ApiKey s2s_{'0' * 16}_{secret}",
        "bare_scheme": "ApiKey",
        "short": "ApiKey x",
        "two_parts": f"ApiKey {plaintext} {plaintext}",
        "non_ascii": f"ApiKey s2s_{key_id}_{secret[:-1]}\u00e9",
        "huge": "ApiKey " + "s2s_" + "a" * 10240,
        "other_prefix": f"ApiKey xyz_{key_id}_{secret}",
        "uppercase_id": f"ApiKey s2s_{key_id.upper()}_{secret}",
    }.get(case, f"ApiKey {plaintext}")
    caplog.set_level(logging.DEBUG)
    response = call(client, header)
    assert response.status_code == status
    assert response.json()["error"] == code
    if status == 401:
        assert response["WWW-Authenticate"].startswith("ApiKey realm=")
    assert secret not in caplog.text


def test_secret_never_logged_on_success(client, key, caplog):
    caplog.set_level(logging.DEBUG)
    _row, plaintext = key
    assert call(client, f"ApiKey {plaintext}").status_code == 200
    assert "mechanism=api_key" in caplog.text
    assert plaintext.split("_", 2)[2] not in caplog.text


def test_principal_scopes_are_read_per_request(client, key):
    row, plaintext = key
    ServicePrincipal.objects.filter(pk=row.principal_id).update(scopes="")
    response = call(client, f"ApiKey {plaintext}")
    assert (response.status_code, response.json()["error"]) == (403, "insufficient_scope")


# ------------------------------------------------------------------------------ admin


def test_admin_shows_the_new_key_once_and_never_the_secret(client, principal, django_user_model):
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    response = client.post(
        "/admin/s2s_auth/apikey/add/",
        {
            "principal": principal.pk,
            "description": "nightly",
            "expires_at_0": "",
            "expires_at_1": "",
        },
    )
    assert response.status_code == 200, response.content[:500]
    row = APIKey.objects.get(description="nightly")
    body = response.content.decode()
    plaintext = body.split("<pre>")[1].split("</pre>")[0]
    assert check_key(plaintext).pk == row.pk
    secret = plaintext.split("_", 2)[2]
    for url in ("/admin/s2s_auth/apikey/", f"/admin/s2s_auth/apikey/{row.pk}/change/"):
        page = client.get(url)
        assert page.status_code == 200
        assert row.key_id in page.content.decode()
        assert secret not in page.content.decode()
        assert row.secret_hash not in page.content.decode()
    response = client.post(
        "/admin/s2s_auth/apikey/",
        {"action": "revoke", "_selected_action": [row.pk]},
    )
    assert response.status_code == 302
    with pytest.raises(APIKeyError) as info:
        check_key(plaintext)
    assert info.value.code == "api_key_revoked"
