"""Starting and stopping the deployment's processes on loopback.

Shared by ``python -m fleamarket up|demo|bench|attack`` and by the test suites, so
that the tests start services exactly the way the deployment does.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
#: s2s_auth's shipped gunicorn configuration (TLS_CERT, TLS_KEY, TLS_CA, GUNICORN_*).
GUNICORN_CONF = "python:s2s_auth.tls.gunicorn_conf"


class PortInUse(RuntimeError):
    pass


#: Where a free port is looked for: below the kernel's usual ephemeral range.
PORT_RANGE = (10000, 32768)


def _ephemeral_ports() -> range:
    """The ports the kernel gives outgoing connections (Linux; elsewhere the default)."""
    with contextlib.suppress(OSError, ValueError):
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    return range(32768, 61000)


def free_port() -> int:
    """A port free on 127.0.0.1 now, for a server started next.

    Not one of the kernel's ephemeral ports (``bind(("127.0.0.1", 0))``): every
    outgoing connection of every process takes its local port from that range, and
    under parallel load one took the port before the server bound it. A random port
    below the range is only taken by another ``free_port()`` caller, and rarely.
    """
    ephemeral = _ephemeral_ports()
    for _ in range(200):
        port = PORT_RANGE[0] + secrets.randbelow(PORT_RANGE[1] - PORT_RANGE[0])
        if port in ephemeral:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:  # everything below the range taken: any free port
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_port_free(port: int, what: str) -> None:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise PortInUse(
                f"127.0.0.1:{port} is already taken, so {what} cannot start there. "
                f"Stop whatever listens on it (e.g. `ss -ltnp 'sport = :{port}'`) and try again."
            ) from None


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


def wait_until_answering(
    url: str, ca_file: Path | None, process: subprocess.Popen, timeout: float = 60.0
) -> None:
    """Return once a gunicorn worker answers at ``url`` (any status will do): over
    HTTPS trusting ``ca_file``, or plain HTTP when it is None.

    A listening port only says the master is up: it binds before it forks the workers,
    whose boot (Django, the app, the warm-ups) takes a while on a loaded machine. A
    request sent meanwhile waits in the listen queue, and a client's own timeout may
    end first.
    """
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=str(ca_file)) if ca_file else None
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before answering")
        wait = max(0.1, min(5.0, deadline - time.monotonic()))
        if context is None:
            connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=wait)
        else:
            connection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=wait, context=context
            )
        try:
            connection.request("GET", "/", headers={"Accept": "application/json"})
            connection.getresponse().read()
            return
        except (OSError, http.client.HTTPException) as exc:
            last_error = exc
            time.sleep(0.1)
        finally:
            connection.close()
    raise TimeoutError(f"nothing answered at {url} within {timeout} s (last: {last_error!r})")


def manage(service: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    """Run ``manage.py`` for a service; raise with its output if it fails."""
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": f"{service}.settings"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"manage.py {' '.join(args)} for {service} failed:\n{result.stdout}{result.stderr}"
        )
    return result


def open_log(path: Path):
    """A log file for appending, created 0600: logs may name callers and addresses."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")


def gunicorn_workers() -> int:
    """``GUNICORN_WORKERS`` (default 2, as compose): the multi-process path by default."""
    return int(os.environ.get("GUNICORN_WORKERS") or 2)


def start_gunicorn(
    service: str, port: int, *, env: dict[str, str], log: Path, workers: int | None = None
) -> subprocess.Popen:
    """gunicorn with s2s_auth's shipped configuration (s2s_auth.tls.gunicorn_conf), with
    ``workers`` worker processes (default: :func:`gunicorn_workers`).

    TLS is on when ``env`` names TLS_CERT/TLS_KEY/TLS_CA (the s2s_auth TLS worker
    then asks for client certificates); otherwise plain HTTP.
    """
    workers = gunicorn_workers() if workers is None else workers
    env = {**env, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
    with open_log(log) as out:
        return subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF, f"{service}.wsgi"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


@contextlib.contextmanager
def signals_deferred():
    """Hold SIGINT/SIGTERM back while a child is started and recorded.

    A Ctrl-C between ``fork`` and remembering the child would leave it running,
    unknown to the cleanup; deferred, it is raised once the child is recorded. (Not
    a blocked signal mask: children would inherit it and ignore our SIGTERM.)
    """
    received: list[int] = []
    held = (signal.SIGINT, signal.SIGTERM)
    previous = {
        sig: signal.signal(sig, lambda signum, frame: received.append(signum)) for sig in held
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise KeyboardInterrupt


def stop(process: subprocess.Popen, timeout: float = 10.0) -> None:
    """SIGTERM the process group, then SIGKILL whatever is left."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
