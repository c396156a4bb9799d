"""``UnreadableBodyMiddleware`` live: gunicorn with the TLS worker and a Django project.

A client sends a request head and part of its body, then nothing: past
``GUNICORN_BODY_TIMEOUT`` the read raises, and the answer is a 408 with a reason code,
not a 500. Without the middleware it is Django's 500 (the check that this test can fail).
"""

from __future__ import annotations

import http.client
import json
import socket
import sys

import pytest
from django.http import UnreadablePostError
from django.test import RequestFactory

from s2s_auth.middleware import UnreadableBodyMiddleware
from tests.s2s_auth.tls.test_gunicorn import (
    GUNICORN_CONF,
    client_context,
    free_port,
    live_server,
    make_tls_material,
    tls_env,
)

APP = "tests.s2s_auth.body.wsgi:application"
TIMEOUT = 15.0  # seconds a socket waits for the answer: generous, not a speed


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_tls_material(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(pki, tmp_path):
    def start(**env):
        port = free_port()
        argv = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, APP]
        full_env = tls_env(
            pki,
            port,
            GUNICORN_WORKERS="1",
            GUNICORN_BODY_TIMEOUT="1",
            DJANGO_SETTINGS_MODULE="tests.s2s_auth.body.settings",
            **env,
        )
        return port, live_server(argv, port=port, log=tmp_path / "gunicorn.log", env=full_env)

    return start


def _partial_body(port, context, path: str) -> socket.socket:
    """A TLS connection that sent a head announcing 1000 bytes and only 10 of them."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
    tls.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 1000\r\n\r\n".encode()
        + b'{"x": "aaa'
    )
    return tls


def _answer(sock) -> tuple[int, dict | bytes]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    body = response.read()
    try:
        return response.status, json.loads(body)
    except ValueError:
        return response.status, body[:80]


@pytest.mark.live
def test_a_body_that_does_not_arrive_in_time_is_a_408(pki, server):
    port, running = server()
    context = client_context(pki)
    with running:
        sockets = [_partial_body(port, context, path) for path in ("/drf", "/plain")]
        try:
            answers = [_answer(sock) for sock in sockets]
        finally:
            for sock in sockets:
                sock.close()
    for status, body in answers:
        assert status == 408, body
        assert body["error"] == "body_timeout"


@pytest.mark.live
def test_without_the_middleware_django_answers_500(pki, server):
    port, running = server(S2S_TEST_BODY_MIDDLEWARE="0")
    with running:
        sock = _partial_body(port, client_context(pki), "/drf")
        try:
            status, _ = _answer(sock)
        finally:
            sock.close()
    assert status == 500


def test_other_exceptions_are_left_to_django():
    """A broken read that is not a timeout is a 400. (Live, gunicorn reads a reset
    connection as the end of the body, so this branch is checked here.)"""
    middleware = UnreadableBodyMiddleware(lambda request: None)
    request = RequestFactory().post("/x")
    assert middleware.process_exception(request, ValueError("x")) is None
    try:
        raise UnreadablePostError("reset") from ConnectionResetError()
    except UnreadablePostError as exc:
        response = middleware.process_exception(request, exc)
    assert response.status_code == 400
    assert json.loads(response.content)["error"] == "body_unreadable"
    assert response.exception is True
