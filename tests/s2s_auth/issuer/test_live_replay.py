"""Replays across worker processes: gunicorn with two workers on the test project's
shared replay store (the embedded database cache, and a Redis the test starts itself).
One service JWT, one signed request and one private_key_jwt assertion, each sent a
dozen times at once: accepted exactly once, whichever worker gets which copy."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from s2s_auth.client.auth import ServiceCredentials, ServiceJWTAuth, signature_auth
from s2s_auth.core.jose import new_jti, sign
from tests.s2s_auth.credentials.redis_support import RedisServer

pytestmark = pytest.mark.live

ROOT = Path(__file__).resolve().parents[3]
SETTINGS = "tests.s2s_auth.issuer.live_settings"
BATCH = 6  # copies sent at once, each on its own connection
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def free_port() -> int:
    import socket

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
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


REGISTER = """
from s2s_auth.credentials.certificates import register_certificate
from s2s_auth.models import ServicePrincipal
register_certificate(ServicePrincipal.objects.get(name="replayer"), open({path!r}).read())
"""


@pytest.fixture(params=["database", "redis"])
def server(request, tmp_path, ca):
    env = {k: v for k, v in os.environ.items() if k not in ("CACHE_URL", "CACHE_KEY_PREFIX")}
    env.update(
        DJANGO_SETTINGS_MODULE=SETTINGS,
        DATABASE_URL=f"sqlite:///{tmp_path / 'replay.sqlite3'}",
        S2S_TEST_PKI_DIR=str(ca.directory),
    )
    if request.param == "redis":
        redis = RedisServer(tmp_path)
        request.addfinalizer(redis.stop)
        env["CACHE_URL"] = redis.url
    port = free_port()
    env["S2S_TEST_HTTPSIG_ORIGIN"] = f"http://127.0.0.1:{port}"
    manage(env, "migrate", "--noinput", "-v0")
    manage(env, "s2s_service", "add", "replayer", "--scope", "test:read", "--no-secret")
    issued = ca.issue("replayer")
    manage(env, "shell", "-c", REGISTER.format(path=str(issued.cert_path)))
    log_path = tmp_path / "gunicorn.log"
    log = open(log_path, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--workers=2",
            f"--bind=127.0.0.1:{port}",
            "--access-logfile=-",
            "--access-logformat=served-by %(p)s %(s)s %(U)s",
            "django.core.wsgi:get_wsgi_application()",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                requests.get(f"{base}/.well-known/jwks.json", timeout=10)
                break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(log_path.read_text())
                time.sleep(0.1)
        creds = ServiceCredentials.from_files(issued.cert_path, issued.key_path)
        yield base, creds, log_path
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def workers_that_served(log_path: Path, path: str) -> set[str]:
    return set(
        re.findall(rf"^served-by <?(\d+)>? \d+ {re.escape(path)}$", log_path.read_text(), re.M)
    )


def replayed(send, log_path: Path, path: str) -> list[requests.Response]:
    """Copies sent in concurrent batches until both workers have served some."""

    def one(_):
        with requests.Session() as session:
            session.trust_env = False
            return send(session)

    responses: list[requests.Response] = []
    with ThreadPoolExecutor(max_workers=BATCH) as pool:
        for _ in range(10):
            responses += pool.map(one, range(BATCH))
            time.sleep(0.2)  # the access log is written after the response
            if len(workers_that_served(log_path, path)) == 2:
                return responses
    pytest.fail(f"one worker served every copy of {path}: {log_path.read_text()[-2000:]}")


def assert_once(responses, refused_code: str) -> None:
    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 1, statuses
    for response in responses:
        if response.status_code in (200, 429):  # 429: the source failed too often
            continue
        assert response.status_code in (401, 403), response.text
        body = response.json()
        assert refused_code in f"{body.get('error')} {body.get('error_description')}", body


def test_a_service_jwt_is_accepted_once_across_workers(server):
    base, creds, log_path = server
    token = ServiceJWTAuth(creds, "users").token()
    header = {"Authorization": f"ServiceJWT {token}"}
    send = lambda s: s.get(f"{base}/jwt/scoped", headers=header, timeout=20)  # noqa: E731
    assert_once(replayed(send, log_path, "/jwt/scoped"), "replayed_jti")


def test_a_signed_request_is_accepted_once_across_workers(server):
    base, creds, log_path = server
    prepared = requests.Request(
        "POST", f"{base}/sig/scoped", data=b"{}", headers={"Content-Type": "application/json"}
    ).prepare()
    prepared = signature_auth(creds)(prepared)
    send = lambda s: s.send(prepared.copy(), timeout=20)  # noqa: E731
    assert_once(replayed(send, log_path, "/sig/scoped"), "replayed_nonce")


def test_a_client_assertion_is_exchanged_once_across_workers(server):
    base, creds, log_path = server
    now = int(time.time())
    claims = {"iss": "replayer", "sub": "replayer", "aud": f"{base}/oauth/token"}
    claims.update(iat=now, exp=now + 60, jti=new_jti())
    assertion = sign(claims, creds.private_key, headers={"x5c": creds.x5c})
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    send = lambda s: s.post(f"{base}/oauth/token", data=form, timeout=20)  # noqa: E731
    assert_once(replayed(send, log_path, "/oauth/token"), "Client assertion was already used")
