"""Signing keys: files, parse-once, rotation with overlap, pruning, s2s_keys."""

from __future__ import annotations

import datetime as dt
import os
import stat

import pytest
from django.core.management import call_command

from s2s_auth.core.jose import TokenError, unverified_header
from s2s_auth.issuer import keys as keys_module
from s2s_auth.issuer.keys import KeyStore, key_store, retention
from s2s_auth.issuer.models import SigningKey

from .support import check_token, jwks, post_token, spiffe


def get_token(client, ads_client) -> str:
    response = post_token(client, {"grant_type": "client_credentials"}, auth=ads_client)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def test_first_key_is_created_on_first_use_with_private_modes(issuer_conf):
    directory = key_store().directory
    assert not directory.exists()
    key = key_store().current()
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    files = [p for p in directory.iterdir() if p.suffix == ".pem"]
    assert files == [key.path]
    assert stat.S_IMODE(os.stat(key.path).st_mode) == 0o600
    assert key.kid in key.path.name


def test_keys_are_parsed_once_per_directory_change(client, ads, monkeypatch):
    get_token(client, ads)
    calls = []
    real = keys_module._load_key
    monkeypatch.setattr(keys_module, "_load_key", lambda *a: calls.append(a) or real(*a))
    for _ in range(5):
        get_token(client, ads)
    client.get("/.well-known/jwks.json")
    assert calls == []  # nothing re-read while the directory is unchanged
    key_store().rotate()
    get_token(client, ads)
    get_token(client, ads)
    assert len(calls) == 2  # both files re-parsed once after the change


def test_another_process_sees_a_rotation(issuer_conf):
    mine = key_store()
    old = mine.current()
    other = KeyStore(mine.directory)  # e.g. another gunicorn worker
    assert other.current().kid == old.kid
    new = mine.rotate()
    assert other.current().kid == new.kid != old.kid


def test_rotation_keeps_the_old_key_published_until_pruned(client, ads):
    old_token = get_token(client, ads)
    old_kid = unverified_header(old_token)["kid"]
    call_command("s2s_keys", "rotate")
    new_token = get_token(client, ads)
    new_kid = unverified_header(new_token)["kid"]
    assert new_kid != old_kid
    assert set(jwks(client).kids) == {old_kid, new_kid}
    # the old token still verifies from the JWKS
    check_token(client, old_token, spiffe("users"))
    check_token(client, new_token, spiffe("users"))
    # prune now: the old key may still have live tokens, so it stays
    assert key_store().prune() == []
    assert old_kid in jwks(client)
    # after max token lifetime + skew it is pruned and the old token no longer verifies
    later = dt.datetime.now(dt.UTC) + retention() + dt.timedelta(seconds=1)
    pruned = key_store().prune(now=later)
    assert [k.kid for k in pruned] == [old_kid]
    assert jwks(client).kids == [new_kid]
    with pytest.raises(TokenError) as exc:
        check_token(client, old_token, spiffe("users"))
    assert exc.value.code == "unknown_key"


def test_expired_retired_keys_leave_the_jwks_even_before_prune(issuer_conf):
    store = key_store()
    old = store.current()
    store.rotate()
    later = dt.datetime.now(dt.UTC) + retention() + dt.timedelta(seconds=1)
    kids = [k["kid"] for k in store.jwks(now=later)["keys"]]
    assert old.kid not in kids and len(kids) == 1


def test_retention_follows_the_longest_token_lifetime(issuer_conf, settings):
    settings.S2S_AUTH = {**issuer_conf, "USER_TOKEN_LIFETIME": 1800, "CLOCK_SKEW": 10}
    assert retention() == dt.timedelta(seconds=1810)


def test_s2s_keys_commands_and_registry(issuer_conf, db, capsys):
    call_command("s2s_keys", "list")
    assert "no keys" in capsys.readouterr().out
    call_command("s2s_keys", "rotate")
    first = key_store().current().kid
    call_command("s2s_keys", "rotate")
    second = key_store().current().kid
    out = capsys.readouterr().out
    assert f"current key: {second}" in out
    call_command("s2s_keys", "list")
    out = capsys.readouterr().out
    assert f"{second}" in out and "current" in out
    assert f"{first}" in out and "retired, published until" in out
    rows = {row.kid: row for row in SigningKey.objects.all()}
    assert rows[second].status == "current"
    assert rows[first].status == "retired (published)"
    assert rows[first].retired_at is not None
    call_command("s2s_keys", "prune")
    assert "nothing to prune" in capsys.readouterr().out


def test_a_corrupt_key_file_fails_closed(issuer_conf):
    from django.core.exceptions import ImproperlyConfigured

    store = key_store()
    key = store.current()
    marker = "PRIVATE" + " KEY-----"  # split: no key-shaped literal in the repo
    key.path.write_text(f"-----BEGIN {marker}\nAAAA\n-----END {marker}\n")
    os.utime(store.directory, ns=(1, 1))  # make sure the directory looks changed
    with pytest.raises(ImproperlyConfigured):
        store.ring()
