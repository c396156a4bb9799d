"""The one manage.py for both projects, and settings from the environment."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher

ROOT = Path(__file__).resolve().parents[2]


def run(args, **env):
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    clean.update(env)
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def test_without_settings_names_both_projects_and_exits_2():
    result = run(["manage.py", "check"])
    assert result.returncode == 2
    assert "--settings=users.settings" in result.stderr
    assert "--settings=ads.settings" in result.stderr
    assert "DJANGO_SETTINGS_MODULE" in result.stderr


@pytest.mark.parametrize(
    ("args", "env"),
    [
        (["manage.py", "check", "--settings=users.settings"], {}),
        (["manage.py", "check", "--settings", "ads.settings"], {}),
        (["manage.py", "check"], {"DJANGO_SETTINGS_MODULE": "ads.settings"}),
    ],
)
def test_settings_from_flag_or_environment(args, env, tmp_path, ca):
    result = run(args, VAR_DIR=str(tmp_path), S2S_PKI_DIR=str(ca.directory), **env)
    assert result.returncode == 0, result.stderr
    assert "System check identified no issues" in result.stdout


def _setting(name, tmp_path, **env):
    code = (
        f"import django; django.setup(); from django.conf import settings; print(settings.{name})"
    )
    result = run(
        ["-c", code], DJANGO_SETTINGS_MODULE="users.settings", VAR_DIR=str(tmp_path), **env
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_debug_is_off_unless_asked_for(tmp_path, monkeypatch):
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    monkeypatch.setattr(os, "environ", clean)
    assert _setting("DEBUG", tmp_path) == "False"
    assert _setting("DEBUG", tmp_path, DJANGO_DEBUG="1") == "True"
    from fleamarket.settings import debug_enabled

    assert debug_enabled(["manage.py", "runserver"])  # the development server may
    assert not debug_enabled(["manage.py", "migrate"])
    assert not debug_enabled(["gunicorn", "users.wsgi"])


def test_password_validators_are_on(settings):
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    assert len(settings.AUTH_PASSWORD_VALIDATORS) >= 4
    for weak in ("password", "12345678", "short"):
        with pytest.raises(ValidationError):
            validate_password(weak)


def test_the_replay_store_is_shared_by_default(settings, monkeypatch):
    from fleamarket.settings import cache

    monkeypatch.delenv("CACHE_URL", raising=False)
    assert cache()["BACKEND"] == "s2s_auth.credentials.dbcache.ReplayDatabaseCache"
    assert settings.S2S_AUTH.get("REPLAY_CACHE", "default") == "default"
    monkeypatch.setenv("CACHE_URL", "redis://127.0.0.1:1/0")
    assert cache()["BACKEND"] == "django.core.cache.backends.redis.RedisCache"


def test_local_state_is_private(tmp_path, ca):
    var = tmp_path / "var"
    result = run(
        ["manage.py", "migrate", "--settings=users.settings", "-v0"],
        VAR_DIR=str(var),
        S2S_PKI_DIR=str(ca.directory),
        DATABASE_URL="",  # the embedded SQLite files are what this test is about
        CACHE_URL="",
    )
    assert result.returncode == 0, result.stderr
    assert var.stat().st_mode & 0o777 == 0o700
    for name in ("users.sqlite3", "users.secret_key"):
        assert (var / name).stat().st_mode & 0o777 == 0o600, name
    from fleamarket.deployment import make_private

    loose = var / "logs" / "old.log"
    loose.parent.mkdir(mode=0o755)
    loose.write_text("x")
    loose.chmod(0o644)
    make_private(var)
    assert loose.stat().st_mode & 0o777 == 0o600
    assert loose.parent.stat().st_mode & 0o777 == 0o700


class CountingHasher(PBKDF2PasswordHasher):
    """The real PBKDF2 hasher, counting its runs."""

    runs = 0

    def encode(self, password, salt, iterations=None):
        CountingHasher.runs += 1
        return super().encode(password, salt, iterations)


@pytest.fixture
def hasher(settings):
    settings.PASSWORD_HASHERS = ["tests.users.test_manage_and_settings.CountingHasher"]
    CountingHasher.runs = 0
    return CountingHasher


@pytest.mark.parametrize("url", ["/admin/login/", "/api-auth/login/"])
def test_django_logins_are_throttled_before_the_hasher(client, db, hasher, url):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", password="root-password-1")
    # One address per login page: a shared store (Redis) outlives each test's transaction.
    attacker = {"REMOTE_ADDR": "198.51.100.7" if url == "/admin/login/" else "198.51.100.8"}
    for i in range(30):  # random usernames: each costs a password hash ...
        client.post(url, {"username": f"random{i}", "password": "x"}, **attacker)
    runs = hasher.runs
    assert runs >= 30
    for i in range(20):  # ... until the address is throttled: then none
        client.post(url, {"username": f"more{i}", "password": "x"}, **attacker)
    assert hasher.runs == runs
    client.post(url, {"username": "root", "password": "root-password-1"}, **attacker)
    assert "_auth_user_id" not in client.session
    legit = "10.0.0.2" if url == "/admin/login/" else "10.0.0.3"
    client.post(url, {"username": "root", "password": "root-password-1"}, REMOTE_ADDR=legit)
    assert "_auth_user_id" in client.session


def test_a_username_failing_everywhere_is_refused_before_the_hasher(client, db, hasher):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", password="root-password-1")
    for i in range(10):
        client.post(
            "/admin/login/", {"username": "root", "password": "bad"}, REMOTE_ADDR=f"10.1.0.{i}"
        )
    runs = hasher.runs
    good = {"username": "root", "password": "root-password-1"}
    client.post("/admin/login/", good, REMOTE_ADDR="10.2.0.1")
    assert "_auth_user_id" not in client.session
    assert hasher.runs == runs


def test_secret_key_required_when_debug_is_off(tmp_path):
    result = run(
        ["manage.py", "check", "--settings=users.settings"],
        DJANGO_DEBUG="0",
        SECRET_KEY="",
        SECRET_KEY_FILE="",
        VAR_DIR=str(tmp_path),
    )
    assert result.returncode != 0
    assert "SECRET_KEY (or SECRET_KEY_FILE) must be set when DJANGO_DEBUG is off" in result.stderr


def test_dev_secret_key_is_generated_once_and_private(tmp_path):
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    env = {"VAR_DIR": str(tmp_path), "SECRET_KEY": "", "DJANGO_DEBUG": "1"}
    script = f"import django; django.setup(); {code}"
    first = run(["-c", script], DJANGO_SETTINGS_MODULE="ads.settings", **env)
    second = run(["-c", script], DJANGO_SETTINGS_MODULE="ads.settings", **env)
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and len(first.stdout.strip()) >= 50
    assert (tmp_path / "ads.secret_key").stat().st_mode & 0o777 == 0o600


def test_database_url_selects_postgres_and_service_url_wins(monkeypatch):
    from fleamarket.settings import database

    monkeypatch.setenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/shared")
    monkeypatch.setenv("ADS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ads_only")
    assert database("users")["ENGINE"] == "django.db.backends.postgresql"
    assert database("users")["NAME"] == "shared"
    assert database("ads")["NAME"] == "ads_only"
    assert database("ads")["CONN_MAX_AGE"] == 60


def test_sqlite_by_default_in_var_dir_with_wal(monkeypatch, tmp_path):
    from fleamarket.settings import database

    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("USERS_DATABASE_URL", raising=False)
    monkeypatch.setenv("VAR_DIR", str(tmp_path))
    config = database("users")
    assert config["ENGINE"] == "django.db.backends.sqlite3"
    assert config["NAME"] == str(tmp_path / "users.sqlite3")
    assert "journal_mode=WAL" in config["OPTIONS"]["init_command"]


def test_migrations_are_complete(db):
    from django.core.management import call_command

    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
