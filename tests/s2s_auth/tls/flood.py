"""Hostile idle clients against a TLS server on loopback; real calls timed beside them.

:class:`Flood` opens idle TCP connections, TLS connections that finish the handshake
and send nothing, and slowloris connections that send request headers one byte at a
time; :func:`timed_call` is one legitimate mTLS request on a fresh connection. The tests
of ``test_idle_connections`` use both; run as a script, this module starts gunicorn with
the shipped configuration and prints how long real calls take with and without a flood::

    python -m tests.s2s_auth.tls.flood [--idle-tcp 200] [--idle-tls 50] [--slowloris 5]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import json
import select
import socket
import ssl
import statistics
import tempfile
import threading
import time
from pathlib import Path

SLOWLORIS_HEAD = b"GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "


def is_closed(sock) -> bool:
    """Whether the server has closed this connection (read side), without blocking."""
    poll = select.poll()  # select() stops at descriptor 1024
    poll.register(sock, select.POLLIN)
    if not poll.poll(0):
        return False
    try:
        if isinstance(sock, ssl.SSLSocket):
            sock.setblocking(False)
            return sock.recv(1) == b""  # a TLS 1.3 ticket alone raises SSLWantReadError
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
        return False
    except OSError:  # reset, EOF in violation of the protocol, close_notify
        return True


class Flood:
    """Idle and slow connections to ``127.0.0.1:port``, held until :meth:`close`."""

    def __init__(self, port: int, ca: Path):
        self.port = port
        self.context = ssl.create_default_context(cafile=str(ca))  # no client certificate
        self.tcp: list[socket.socket] = []
        self.tls: list[ssl.SSLSocket] = []
        self.slow: list[ssl.SSLSocket] = []
        self.slow_closed_after: list[float] = []  # seconds of dripping until the server closed
        self._stop = threading.Event()
        self._dripper: threading.Thread | None = None

    def _connect(self, timeout: float) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def open_tcp(self, count: int) -> int:
        """Connections that never send a byte (no ClientHello)."""
        for _ in range(count):
            self.tcp.append(self._connect(5))
        return len(self.tcp)

    def _handshake(self, timeout: float) -> ssl.SSLSocket | None:
        raw = self._connect(timeout)
        try:
            return self.context.wrap_socket(raw, server_hostname="127.0.0.1")
        except OSError:  # includes the timeout of a server that never answers
            raw.close()
            return None

    def open_tls(self, count: int, timeout: float = 5.0) -> int:
        """Connections that finish the TLS handshake and then send nothing; how many did."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=min(count, 50)) as pool:
            done = [s for s in pool.map(lambda _: self._handshake(timeout), range(count)) if s]
        self.tls.extend(done)
        return len(done)

    def start_slowloris(self, count: int, interval: float = 0.5, timeout: float = 5.0) -> int:
        """TLS connections that send one byte of an endless header every ``interval`` s."""
        for _ in range(count):
            sock = self._handshake(timeout)
            if sock is not None:
                self.slow.append(sock)
        self._dripper = threading.Thread(target=self._drip, args=(interval,), daemon=True)
        self._dripper.start()
        return len(self.slow)

    def _drip(self, interval: float) -> None:
        started = time.monotonic()
        live = {id(s): (s, iter(SLOWLORIS_HEAD + b"a" * 100_000)) for s in self.slow}
        while live and not self._stop.wait(interval):
            for key, (sock, data) in list(live.items()):
                try:
                    sock.sendall(bytes([next(data)]))
                except OSError:
                    del live[key]
                    self.slow_closed_after.append(time.monotonic() - started)

    def open_counts(self) -> dict[str, int]:
        """How many connections of each kind the server still holds open."""
        return {
            "tcp": sum(not is_closed(s) for s in self.tcp),
            "tls": sum(not is_closed(s) for s in self.tls),
            "slowloris": len(self.slow) - len(self.slow_closed_after),
        }

    def close(self) -> None:
        self._stop.set()
        if self._dripper is not None:
            self._dripper.join(timeout=5)
        for sock in self.tcp + self.tls + self.slow:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def timed_call(context: ssl.SSLContext, port: int, timeout: float = 10.0) -> tuple[float, dict]:
    """One GET on a fresh TLS connection: (seconds, JSON body); raises if it is not a 200."""
    started = time.monotonic()
    deadline = started + timeout
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.settimeout(max(deadline - time.monotonic(), 0.01))
        head = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
        tls.sendall(head.encode())
        response = http.client.HTTPResponse(tls)
        response.begin()
        body = json.loads(response.read())
        if response.status != 200:
            raise RuntimeError(f"status {response.status}: {body}")
    elapsed = time.monotonic() - started
    if elapsed > timeout:
        raise TimeoutError(f"the call took {elapsed:.1f} s")
    return elapsed, body


# --- the measurement ----------------------------------------------------------------------


def _calls(context, port, count) -> list[float | None]:
    times: list[float | None] = []
    for _ in range(count):
        try:
            times.append(timed_call(context, port)[0])
        except (OSError, RuntimeError, http.client.HTTPException):
            times.append(None)
    return times


def _summary(label, times) -> str:
    ok = [t for t in times if t is not None]
    if not ok:
        return f"{label}: 0/{len(times)} calls answered within 10 s"
    return (
        f"{label}: {len(ok)}/{len(times)} answered within 10 s; "
        f"median {statistics.median(ok) * 1000:.0f} ms, max {max(ok) * 1000:.0f} ms"
    )


def main(argv=None) -> None:
    from tests.s2s_auth.tls.test_gunicorn import (
        client_context,
        free_port,
        gunicorn_argv,
        live_server,
        make_tls_material,
        tls_env,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-tcp", type=int, default=200)
    parser.add_argument("--idle-tls", type=int, default=50)
    parser.add_argument("--slowloris", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--workers", default="1")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        material = make_tls_material(Path(tmp) / "pki")
        port = free_port()
        env = tls_env(material, port, GUNICORN_WORKERS=args.workers)
        with live_server(gunicorn_argv(), port=port, log=Path(tmp) / "gunicorn.log", env=env):
            context = client_context(material, material.ads)
            print(f"gunicorn, shipped config, {args.workers} worker(s) x 4 threads, port {port}")
            print(_summary("no flood", _calls(context, port, args.calls)))
            with Flood(port, material.ca) as flood:
                started = time.monotonic()
                tcp = flood.open_tcp(args.idle_tcp)
                tls = flood.open_tls(args.idle_tls)
                slow = flood.start_slowloris(args.slowloris)
                print(
                    f"flood: {tcp} idle TCP, {tls}/{args.idle_tls} idle TLS handshakes "
                    f"completed, {slow}/{args.slowloris} slowloris, "
                    f"opened in {time.monotonic() - started:.1f} s"
                )
                print(_summary("during the flood", _calls(context, port, args.calls)))
                for _ in range(30):
                    counts = flood.open_counts()
                    if not any(counts.values()):
                        break
                    time.sleep(1)
                print(
                    f"flood connections still open {time.monotonic() - started:.0f} s "
                    f"after opening: {counts}; slowloris closed after "
                    f"{[round(t, 1) for t in flood.slow_closed_after]} s of dripping"
                )


if __name__ == "__main__":
    main()
