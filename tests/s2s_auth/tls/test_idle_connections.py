"""Idle and slow clients cannot take a real gunicorn (the shipped config) offline.

One worker with four threads, as ``python -m fleamarket up`` ran it: before the TLS
handshake and the request head were read on the worker's loop, four idle TLS
connections held every thread. Timings are never asserted, only that calls succeed
within a generous timeout and that idle connections end.
"""

from __future__ import annotations

import http.client
import socket
import sys
import time
from types import SimpleNamespace

import pytest

from s2s_auth.tls.gunicorn_admission import Limits
from s2s_auth.tls.gunicorn_conf import config_from_env
from tests.s2s_auth.tls.flood import Flood, is_closed, timed_call
from tests.s2s_auth.tls.test_gunicorn import (
    GUNICORN_CONF,
    client_context,
    free_port,
    live_server,
    make_tls_material,
    tls_env,
)

pytestmark = pytest.mark.live

CALL_TIMEOUT = 10.0  # seconds a real call may take: generous, not a speed
APP = "tests.s2s_auth.tls.wsgi_body:application"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return make_tls_material(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server(pki, tmp_path):
    """Start gunicorn (1 worker x 4 threads) with extra environment; yields its port."""

    def start(**env):
        port = free_port()
        argv = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, APP]
        full_env = tls_env(pki, port, GUNICORN_WORKERS="1", **env)
        return port, live_server(argv, port=port, log=tmp_path / "gunicorn.log", env=full_env)

    return start


def _wait_closed(sockets, timeout=30.0) -> list:
    """The sockets the server has not closed within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    left = list(sockets)
    while left and time.monotonic() < deadline:
        left = [s for s in left if not is_closed(s)]
        time.sleep(0.2)
    return left


def test_real_callers_are_served_beside_hundreds_of_idle_connections(pki, server):
    # Long limits: the flood stays open all along, so what protects the callers is that
    # idle connections wait on the loop, not in a thread, not that they are closed early.
    port, running = server(GUNICORN_HANDSHAKE_TIMEOUT="300", GUNICORN_HEADER_TIMEOUT="300")
    mtls = client_context(pki, pki.ads)
    with running, Flood(port, pki.ca) as flood:
        opened = SimpleNamespace(
            tcp=flood.open_tcp(200),
            tls=flood.open_tls(50, timeout=CALL_TIMEOUT),
            slow=flood.start_slowloris(5, timeout=CALL_TIMEOUT),
        )
        failures = []
        for _ in range(10):
            try:
                _, body = timed_call(mtls, port, timeout=CALL_TIMEOUT)
                assert body["fingerprint"] == pki.ads.fingerprint
            except (OSError, http.client.HTTPException) as exc:
                failures.append(repr(exc))
        # Keep-alive beside the flood: one connection, three requests.
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=mtls, timeout=CALL_TIMEOUT)
        try:
            ports = set()
            for _ in range(3):
                conn.request("GET", "/")
                response = conn.getresponse()
                assert response.status == 200
                response.read()
                ports.add(conn.sock.getsockname()[1])  # a reconnect would change it
        finally:
            conn.close()
        still_open = flood.open_counts()
    assert failures == []
    assert len(ports) == 1
    # The flood was real: every idle handshake completed and all of it was held open.
    assert vars(opened) == {"tcp": 200, "tls": 50, "slow": 5}
    assert still_open == {"tcp": 200, "tls": 50, "slowloris": 5}


def test_idle_connections_are_closed_after_the_configured_timeouts(pki, server):
    port, running = server(
        GUNICORN_HANDSHAKE_TIMEOUT="1", GUNICORN_HEADER_TIMEOUT="2", GUNICORN_KEEPALIVE="1"
    )
    mtls = client_context(pki, pki.ads)
    with running, Flood(port, pki.ca) as flood:
        assert flood.open_tcp(5) == 5
        assert flood.open_tls(5, timeout=CALL_TIMEOUT) == 5
        assert flood.start_slowloris(2, interval=0.2, timeout=CALL_TIMEOUT) == 2
        kept = http.client.HTTPSConnection("127.0.0.1", port, context=mtls, timeout=CALL_TIMEOUT)
        kept.request("GET", "/")
        assert kept.getresponse().read()
        assert _wait_closed([*flood.tcp, *flood.tls, kept.sock]) == []
        deadline = time.monotonic() + 30
        while len(flood.slow_closed_after) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(flood.slow_closed_after) == 2  # closed although it never stopped sending
        kept.close()
        timed_call(mtls, port, timeout=CALL_TIMEOUT)  # and the server still serves


def _slow_body(port, context) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=CALL_TIMEOUT)
    tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
    tls.sendall(
        b"POST /body HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n" + b"[" * 10
    )
    return tls


def test_a_body_that_does_not_arrive_frees_the_thread(pki, server):
    port, running = server(GUNICORN_BODY_TIMEOUT="1")
    plain_tls = client_context(pki)
    mtls = client_context(pki, pki.ads)
    with running:
        slow = [_slow_body(port, plain_tls) for _ in range(8)]  # twice the threads
        try:
            for _ in range(3):
                timed_call(mtls, port, timeout=CALL_TIMEOUT)
            answers = []
            for sock in slow:
                response = http.client.HTTPResponse(sock)
                response.begin()
                answers.append((response.status, response.read()))
        finally:
            for sock in slow:
                sock.close()
    assert answers == [(408, b'{"error": "body_timeout"}')] * 8


def test_limits_from_the_environment():
    assert Limits.from_env({}) == Limits(handshake=5.0, header=10.0, body=10.0)
    assert Limits.from_env(
        {"GUNICORN_HANDSHAKE_TIMEOUT": "2", "GUNICORN_HEADER_TIMEOUT": "3.5",
         "GUNICORN_BODY_TIMEOUT": " 20 "}
    ) == Limits(handshake=2.0, header=3.5, body=20.0)  # fmt: skip
    for bad in ("soon", "0", "-1", "7200"):
        with pytest.raises(RuntimeError, match="GUNICORN_HEADER_TIMEOUT"):
            Limits.from_env({"GUNICORN_HEADER_TIMEOUT": bad})
    # The shipped config checks them when gunicorn loads it.
    with pytest.raises(RuntimeError, match="GUNICORN_HANDSHAKE_TIMEOUT"):
        config_from_env({"GUNICORN_HANDSHAKE_TIMEOUT": "x"})
    assert config_from_env({})["worker_connections"] == 1000
    assert config_from_env({"GUNICORN_WORKER_CONNECTIONS": "300"})["worker_connections"] == 300


def test_clients_that_stay_after_connection_close_do_not_stall_the_loop(pki, server):
    # gunicorn's graceful close drained each of these for up to 2 s on the event loop.
    port, running = server()
    mtls = client_context(pki, pki.ads)
    with running, Flood(port, pki.ca) as flood:
        assert flood.open_tls(30, timeout=CALL_TIMEOUT) == 30
        for sock in flood.tls:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        time.sleep(0.5)  # let the server answer them and start closing
        for _ in range(3):
            timed_call(mtls, port, timeout=CALL_TIMEOUT)


def test_more_idle_connections_than_worker_connections(pki, server):
    # At the limit gunicorn stops accepting; the worker closes the longest-waiting instead.
    port, running = server(
        GUNICORN_WORKER_CONNECTIONS="100",
        GUNICORN_HANDSHAKE_TIMEOUT="300",
        GUNICORN_HEADER_TIMEOUT="300",
    )
    mtls = client_context(pki, pki.ads)
    with running, Flood(port, pki.ca) as flood:
        assert flood.open_tcp(300) == 300
        assert flood.open_tls(20, timeout=CALL_TIMEOUT) == 20
        for _ in range(3):
            timed_call(mtls, port, timeout=CALL_TIMEOUT)
        assert _wait_closed(flood.tcp[:100]) == []  # the oldest went first
