"""The issuer under a real server: gunicorn (two pre-forked workers) on a loopback
port, its own SQLite database, a cache the workers share, the principal created with
the real management command; JWKS, metadata and tokens fetched over HTTP, and the
token rate limit holding across both workers."""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from s2s_auth.core.jose import unverified_header, verify
from s2s_auth.core.jwk import JWKSet

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[3]
SETTINGS = "tests.s2s_auth.issuer.live_settings"
TOKEN_LIMIT = 12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env, *args) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args, f"--settings={SETTINGS}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def live_env(tmp_path):
    """The environment of the live issuer and of its management commands."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'issuer.sqlite3'}",
        "S2S_TEST_CACHE_DIR": str(tmp_path / "cache"),
        "S2S_TEST_TOKEN_LIMIT": str(TOKEN_LIMIT),
        # With CACHE_URL (Redis) the store outlives this test: its own key space, so no
        # other test's token requests count against this one's limit.
        "CACHE_KEY_PREFIX": f"{os.environ.get('CACHE_KEY_PREFIX', '')}-{secrets.token_hex(8)}",
    }


@pytest.fixture
def live_issuer(live_env, tmp_path):
    env = live_env
    manage(env, "migrate", "--noinput")
    out = manage(env, "s2s_service", "add", "live", "--scope", "users:read")
    secret = re.search(r"^client_secret: (\S+)$", out, re.M).group(1)
    port = free_port()
    log = open(tmp_path / "gunicorn.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers=2",
            "--preload",
            f"--bind=127.0.0.1:{port}",
            "django.core.wsgi:get_wsgi_application()",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    session = requests.Session()
    session.trust_env = False
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                session.get(f"{base}/.well-known/jwks.json", timeout=5)
                break
            except (requests.ConnectionError, requests.Timeout):  # booting, or slow at first
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail((tmp_path / "gunicorn.log").read_text())
                time.sleep(0.1)
        yield base, session, secret
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def test_tokens_over_http_verify_against_the_served_jwks(live_issuer):
    base, session, secret = live_issuer
    meta = session.get(f"{base}/.well-known/oauth-authorization-server", timeout=5).json()
    assert meta["issuer"] == base
    assert meta["token_endpoint"] == f"{base}/oauth/token"
    tokens = []
    for _ in range(10):  # spread over both workers
        response = session.post(
            meta["token_endpoint"],
            data={"grant_type": "client_credentials"},
            auth=("live", secret),
            timeout=5,
        )
        assert response.status_code == 200, response.text
        assert response.headers["Cache-Control"] == "no-store"
        tokens.append(response.json()["access_token"])
    response = session.get(meta["jwks_uri"], timeout=5)
    assert "max-age" in response.headers["Cache-Control"]
    key_set = JWKSet.from_dict(response.json())
    assert len(key_set) == 1  # the workers share one key file
    for token in tokens:
        key = key_set.get(unverified_header(token)["kid"])
        claims = verify(
            token,
            key,
            audience="spiffe://fleamarket.local/service/users",
            issuer=base,
            typ="at+jwt",
        ).claims
        assert claims["client_id"] == "live"
        assert claims["scope"] == "users:read"
    wrong = session.post(
        meta["token_endpoint"],
        data={"grant_type": "client_credentials"},
        auth=("live", secret + "x"),
        timeout=5,
    )
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "invalid_client"
    assert wrong.headers["WWW-Authenticate"].startswith("Basic")


def test_the_token_limit_holds_across_worker_processes(live_issuer):
    """Each new connection may land on either worker; together they admit the limit."""
    base, _, secret = live_issuer
    statuses = []
    for _ in range(3 * TOKEN_LIMIT):
        with requests.Session() as fresh:  # a new connection each time
            fresh.trust_env = False
            response = fresh.post(
                f"{base}/oauth/token",
                data={"grant_type": "client_credentials"},
                auth=("live", secret),
                timeout=5,
            )
        statuses.append(response.status_code)
        if response.status_code == 429:
            assert response.json()["error"] == "slow_down"
            assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert statuses.count(200) == TOKEN_LIMIT, statuses
    assert set(statuses[TOKEN_LIMIT:]) == {429}


def _token_status(base: str, client_id: str, secret: str) -> int:
    with requests.Session() as fresh:  # a new connection: either worker may answer
        fresh.trust_env = False
        response = fresh.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
            timeout=5,
        )
    return response.status_code


def test_the_lockout_holds_across_worker_processes(live_issuer):
    """The failure counters live in the shared store: what one worker counted, the
    other refuses (TOKEN_FAILURE_LIMIT_PER_MINUTE, default 10), even the right secret."""
    base, _, secret = live_issuer
    assert [_token_status(base, "live", secret + "x") for _ in range(10)] == [401] * 10
    assert [_token_status(base, "live", secret) for _ in range(6)] == [429] * 6


def test_a_change_in_another_process_reaches_both_workers_within_the_bound(live_issuer, live_env):
    """Secrets are cached per worker (the principal cache): disabling the client and
    rotating its secret from another process are seen by every worker within
    PRINCIPAL_CACHE_SECONDS (2 s)."""
    base, _, secret = live_issuer
    env = live_env
    assert [_token_status(base, "live", secret) for _ in range(4)] == [200] * 4  # cached
    manage(env, "s2s_service", "disable", "live")
    time.sleep(2.1)
    assert [_token_status(base, "live", secret) for _ in range(4)] == [400] * 4
    manage(env, "s2s_service", "enable", "live")
    out = manage(env, "s2s_service", "rotate-secret", "live", "--grace-hours", "0")
    new = re.search(r"^client_secret: (\S+)$", out, re.M).group(1)
    time.sleep(2.1)
    assert [_token_status(base, "live", secret) for _ in range(4)] == [401] * 4
    assert [_token_status(base, "live", new) for _ in range(2)] == [200] * 2
