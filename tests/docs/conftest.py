"""A live identity service + resource server for the docs tests.

Set up the way docs/quickstart.md says: ``s2s_pki init`` and ``issue``, ``migrate``,
``s2s_service add``/``add-key`` through ``manage.py``, then gunicorn with
``python:s2s_auth.tls.gunicorn_conf`` (the TLS worker) on a free loopback port, serving every
view snippet of the docs (tests/docs/urls.py) and the issuer endpoints.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.test import override_settings

from fleamarket.processes import wait_until_answering
from tests.s2s_auth.tls.test_gunicorn import GUNICORN_CONF, free_port, live_server

ROOT = Path(__file__).resolve().parents[2]
SERVER_SETTINGS = "tests.docs.server_settings"
USER_PASSWORD = "docs-test-password-1234"


def manage(env: dict, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result.stdout


@pytest.fixture(scope="session")
def live(tmp_path_factory):
    """The running server: ``url`` (= issuer), ``pki`` dir, ``secret`` and ``api_key``
    of ``ads``, and ``manage(*args)`` against the server's database."""
    work = tmp_path_factory.mktemp("docs-live")
    pki = work / "pki"
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    s2s = {
        "SERVICE_NAME": "users",
        "TRUST_DOMAIN": "fleamarket.local",
        "PKI_DIR": str(pki),
        "ISSUER": url,
        "ACCESS_TOKEN_ISSUER": url,
        "HTTPSIG_ORIGIN": url,
        "REGISTRATION_OPEN": True,  # docs/identity-service.md opens it to show it
    }
    env = {
        **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
        "DJANGO_SETTINGS_MODULE": SERVER_SETTINGS,
        "DATABASE_URL": f"sqlite:///{work / 'users.sqlite3'}",
        "DOCS_S2S_AUTH": json.dumps(s2s),
        "PYTHONPATH": str(ROOT),
    }

    def run(*args: str) -> str:
        return manage(env, *args)

    # docs/quickstart.md, step by step.
    run("s2s_pki", "init")
    run("s2s_pki", "issue", "users", "--dns", "localhost", "--ip", "127.0.0.1")
    for name in ("ads", "worker", "stranger"):
        run("s2s_pki", "issue", name)
    run("migrate", "--noinput")
    out = run("s2s_service", "add", "ads", "--scope", "users:read")
    secret = re.search(r"^client_secret: (\S+)$", out, re.M).group(1)
    run("s2s_service", "add", "worker", "--scope", "users:read", "--scope", "users:notify")
    run("s2s_service", "add", "stranger", "--no-secret")
    out = run("s2s_service", "add-key", "ads", "--expires", "90")
    api_key = re.search(r"^api key for ads: (\S+)$", out, re.M).group(1)
    manage(
        {**env, "DJANGO_SUPERUSER_PASSWORD": USER_PASSWORD},
        "createsuperuser", "--noinput", "--username", "alice", "--email", "alice@example.com",
    )  # fmt: skip
    server_env = {
        **env,
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",  # the test settings' replay cache is per process
        "TLS_CERT": str(pki / "users.pem"),
        "TLS_KEY": str(pki / "users.key"),
        "TLS_CA": str(pki / "ca.pem"),
    }
    argv = [
        sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF,
        "django.core.wsgi:get_wsgi_application()",
    ]  # fmt: skip
    with live_server(argv, port=port, log=work / "gunicorn.log", env=server_env) as (proc, _):
        wait_until_answering(url, pki / "ca.pem", proc)  # a worker, not just the master
        yield SimpleNamespace(
            url=url,
            pki=pki,
            ca=pki / "ca.pem",
            secret=secret,
            api_key=api_key,
            manage=run,
            log=work / "gunicorn.log",
            pid=proc.pid,  # a failed test reports its stacks (tests/server_evidence.py)
        )


@pytest.fixture
def as_service(settings, live):
    """Make this test process the service ``name`` of the live PKI (its S2S_AUTH)."""

    def become(name: str) -> None:
        settings.S2S_AUTH = {**settings.S2S_AUTH, "SERVICE_NAME": name, "PKI_DIR": str(live.pki)}

    return become


@pytest.fixture
def docs_urls():
    """In-process requests go to the docs' URLconf."""
    with override_settings(ROOT_URLCONF="tests.docs.urls"):
        yield


@pytest.fixture
def pki(ca, settings, docs_urls):
    """In-process: this service is ``users`` with the throwaway session CA."""
    settings.S2S_AUTH = {**settings.S2S_AUTH, "SERVICE_NAME": "users", "PKI_DIR": str(ca.directory)}
    return ca
