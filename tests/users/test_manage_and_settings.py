"""The one manage.py for both projects, and settings from the environment."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
