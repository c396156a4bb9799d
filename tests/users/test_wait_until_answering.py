"""Starting a service returns once a worker answers, not when the master listens
(fleamarket.processes.wait_until_answering; Deployment.start uses it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fleamarket.deployment import Deployment
from fleamarket.processes import free_port, wait_for_port, wait_until_answering

# Binds and listens at once, like gunicorn's master; answers only after a while, like
# its workers once booted; notes that it answered in the file named by argv[2].
LATE_SERVER = """
import http.server, pathlib, socket, sys, time
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen(16)
time.sleep(1.5)
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        pathlib.Path(sys.argv[2]).write_text("answered")
        self.send_response(404)
        self.end_headers()
server = http.server.HTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
server.socket = sock
server.serve_forever()
"""

# Listens and never accepts: a master whose workers never come.
MUTE_SERVER = """
import socket, sys, time
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen(16)
time.sleep(60)
"""


def _start(code: str, *args) -> tuple[subprocess.Popen, int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", code, str(port), *args])
    wait_for_port(port, process)
    return process, port


def _stop(process: subprocess.Popen) -> None:
    process.kill()
    process.wait()


def test_returns_only_once_the_server_answered(tmp_path):
    answered = tmp_path / "answered"
    process, port = _start(LATE_SERVER, str(answered))
    try:
        assert not answered.exists()  # listening, not answering yet
        wait_until_answering(f"http://127.0.0.1:{port}", None, process, timeout=30)
        assert answered.read_text() == "answered"
    finally:
        _stop(process)


def test_a_server_that_never_answers_times_out_with_the_url():
    process, port = _start(MUTE_SERVER)
    try:
        with pytest.raises(TimeoutError, match=f"127.0.0.1:{port}"):
            wait_until_answering(f"http://127.0.0.1:{port}", None, process, timeout=1)
    finally:
        _stop(process)


def test_a_server_that_exits_is_reported_at_once():
    process, port = _start(MUTE_SERVER)
    _stop(process)
    with pytest.raises(RuntimeError, match="exited"):
        wait_until_answering(f"http://127.0.0.1:{port}", None, process, timeout=30)


def test_a_failed_start_is_reported_before_its_processes_are_stopped(tmp_path):
    seen = []

    def report(deployment):
        seen.append({name: child.pid for name, child in deployment.children.items()})

    # No PKI under tmp_path: gunicorn cannot load TLS_CERT and exits before answering.
    deployment = Deployment(var=tmp_path, ports={"users": free_port()}, on_start_failure=report)
    with pytest.raises(RuntimeError, match="exited"):
        deployment.start()
    assert [list(pids) for pids in seen] == [["users"]]  # called once, the process known
    assert deployment.children == {}  # and stopped after
