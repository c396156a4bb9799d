"""manage.py runserver_tls: the development server over HTTPS, a real process on loopback."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import requests

from tests.s2s_auth.tls.test_gunicorn import (
    REPO,
    STARTUP_TIMEOUT,
    _tls_material,  # noqa: F401  (fixture)
    client_context,
    free_port,
    https_get,
    live_server,
    requests_session,
)

pytestmark = pytest.mark.live

SETTINGS = "tests.s2s_auth.echo_settings"


def runserver_argv(port, *extra):
    return [sys.executable, "-m", "django", "runserver_tls", f"127.0.0.1:{port}",
            f"--settings={SETTINGS}", "--skip-checks", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def dev_server(_tls_material, tmp_path_factory):  # noqa: F811
    """runserver_tls with the autoreloader, certificates from S2S_AUTH defaults."""
    port = free_port()
    log = tmp_path_factory.mktemp("runserver") / "runserver.log"
    env = {"S2S_TEST_PKI_DIR": str(_tls_material.dir), "DJANGO_SETTINGS_MODULE": SETTINGS}
    with live_server(runserver_argv(port), port=port, log=log, env=env) as (proc, _):
        yield SimpleNamespace(port=port, url=f"https://127.0.0.1:{port}", log=log, proc=proc)


def test_client_certificate_reaches_the_environ(_tls_material, dev_server):  # noqa: F811
    with requests_session(_tls_material, _tls_material.ads) as session:
        body = session.get(dev_server.url + "/anything").json()
    assert body["client_cert"] is True
    assert body["fingerprint"] == _tls_material.ads.fingerprint
    assert body["der_fingerprint"] == _tls_material.ads.fingerprint
    assert body["chain"] == [_tls_material.inter_fingerprint]
    assert body["url_scheme"] == "https"
    assert body["session_resumed"] == "Initial"


def test_keep_alive_one_connection_every_request_sees_the_certificate(
    _tls_material,  # noqa: F811
    dev_server,
):
    context = client_context(_tls_material, _tls_material.ads)
    conn = http.client.HTTPSConnection("127.0.0.1", dev_server.port, context=context)
    try:
        bodies, sockets = [], []
        for i in range(3):
            conn.request("GET", f"/?n={i}")
            response = conn.getresponse()
            assert response.getheader("Connection", "").lower() != "close"
            bodies.append(json.loads(response.read()))
            sockets.append(conn.sock)
    finally:
        conn.close()
    assert sockets[0] is not None and all(s is sockets[0] for s in sockets)
    assert bodies[0]["remote_port"] and len({b["remote_port"] for b in bodies}) == 1
    assert [b["fingerprint"] for b in bodies] == [_tls_material.ads.fingerprint] * 3


def test_no_client_certificate_is_served(_tls_material, dev_server):  # noqa: F811
    with requests_session(_tls_material) as session:
        response = session.get(dev_server.url + "/")
    assert response.status_code == 200
    assert response.json()["client_cert"] is False
    assert response.json()["tls_keys"] == ["SSL_SESSION_RESUMED"]


def test_spoofed_header_never_becomes_ssl_client_cert(_tls_material, dev_server):  # noqa: F811
    with requests_session(_tls_material) as session:
        body = session.get(dev_server.url + "/", headers={"SSL-Client-Cert": "forged"}).json()
    assert body["client_cert"] is False
    assert body["http_ssl_client_cert"] == "forged"
    body, _, _ = https_get(
        client_context(_tls_material), dev_server.port, headers={"SSL_CLIENT_CERT": "forged"}
    )
    assert body["client_cert"] is False
    assert body["http_ssl_client_cert"] is None  # underscore headers are dropped


def test_client_certificate_from_another_ca_fails_the_handshake(
    _tls_material,  # noqa: F811
    dev_server,
):
    with pytest.raises(ssl.SSLError) as excinfo:
        https_get(client_context(_tls_material, _tls_material.rogue), dev_server.port)
    assert excinfo.value.reason == "TLSV1_ALERT_UNKNOWN_CA"
    deadline = time.monotonic() + 10  # the server logs it from its own thread
    while "TLS handshake with 127.0.0.1 failed" not in dev_server.log.read_text():
        assert time.monotonic() < deadline, dev_server.log.read_text()
        time.sleep(0.1)


def test_plain_http_to_the_tls_port_fails(dev_server):
    with socket.create_connection(("127.0.0.1", dev_server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = b""
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(4096):
                received += chunk
    assert received == b""


def test_autoreloader_restarts_on_a_renewed_certificate(_tls_material, dev_server):  # noqa: F811
    with requests_session(_tls_material) as session:
        before = session.get(dev_server.url + "/").json()["pid"]
    cert = _tls_material.users.cert
    deadline = time.monotonic() + STARTUP_TIMEOUT
    after = before
    while after == before and time.monotonic() < deadline:
        # Touch on every round: the reloader's first scan may come after the first
        # touch (under load), and then that touch is its baseline, not a change.
        stat = cert.stat()
        os.utime(cert, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        time.sleep(0.5)
        with contextlib.suppress(requests.ConnectionError), requests_session(_tls_material) as s:
            after = s.get(dev_server.url + "/", timeout=2).json()["pid"]
    assert after != before, dev_server.log.read_text()
    assert dev_server.proc.poll() is None  # the reloader parent lives on


def test_explicit_files_without_reloader(_tls_material, tmp_path):  # noqa: F811
    port = free_port()
    argv = runserver_argv(
        port,
        "--noreload",
        f"--cert={_tls_material.users.cert}",
        f"--key={_tls_material.users.key}",
        f"--ca={_tls_material.ca}",
    )
    env = {
        "S2S_TEST_PKI_DIR": str(tmp_path / "empty"),  # the defaults would not exist
        # wsgiref copies the process environment into every request's environ.
        "SSL_CLIENT_CERT": "from-the-process-env",
        "SSL_CLIENT_CERT_CHAIN_0": "from-the-process-env",
    }
    with (
        live_server(argv, port=port, log=tmp_path / "rs.log", env=env),
        requests_session(_tls_material, _tls_material.ads) as session,
        requests_session(_tls_material) as anonymous_session,
    ):
        body = session.get(f"https://127.0.0.1:{port}/").json()
        anonymous = anonymous_session.get(f"https://127.0.0.1:{port}/").json()
    log = (tmp_path / "rs.log").read_text()
    assert body["fingerprint"] == _tls_material.ads.fingerprint
    assert body["chain"] == [_tls_material.inter_fingerprint]
    assert anonymous["tls_keys"] == ["SSL_SESSION_RESUMED"]
    # Django 6 says "Starting WSGI development server at".
    started = re.search(r"Starting (WSGI )?development server at https://127\.0\.0\.1:", log)
    assert started, log


def test_missing_certificate_is_a_command_error(tmp_path):
    result = subprocess.run(
        runserver_argv(free_port(), "--noreload"),
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO), "S2S_TEST_PKI_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=STARTUP_TIMEOUT,
    )
    assert result.returncode == 1
    assert f"TLS certificate {tmp_path / 'users.pem'} does not exist" in result.stderr
