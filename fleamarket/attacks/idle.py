"""The idle-connections attack: hold hundreds of connections open, then make real calls.

Idle TCP connections (no ClientHello), TLS connections that finish the handshake and
send nothing, and connections that stop in the middle of a request head. While they are
held, the real caller must still be served; the attack is *accepted* if a call is not.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import socket
import ssl
from collections.abc import Callable

import requests

from .results import Probe

IDLE_TCP, IDLE_TLS, STALLED_HEADS = 200, 50, 5


def _handshake(context: ssl.SSLContext, port: int) -> ssl.SSLSocket | None:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname="127.0.0.1")
    except OSError:
        raw.close()
        return None


def flood_and_call(port: int, ca_file: str, call: Callable[[], Probe]) -> list[Probe]:
    """Hold the flood open on ``127.0.0.1:port`` while ``call`` runs three times."""
    context = ssl.create_default_context(cafile=ca_file)  # no client certificate
    held: list[socket.socket] = []
    try:
        held += [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(IDLE_TCP)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=25) as pool:
            opened = pool.map(lambda _: _handshake(context, port), range(IDLE_TLS + STALLED_HEADS))
            tls = [s for s in opened if s is not None]
        held += tls
        for sock in tls[:STALLED_HEADS]:
            sock.sendall(b"GET /api/v1/ping HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        label = (
            f"ads' call beside {IDLE_TCP} idle TCP, {len(held) - IDLE_TCP} idle TLS "
            f"connections ({STALLED_HEADS} stopped mid-head)"
        )
        probes = []
        for i in range(3):
            name = f"{label}, call {i + 1}"
            try:
                served = call()
            except requests.exceptions.RequestException as exc:  # a timeout: not served
                probes.append(Probe(name, True, "timeout", "caller_not_served", str(exc)[:160]))
                continue
            reason = "caller_served" if served.accepted else f"caller_not_served: {served.reason}"
            probes.append(Probe(name, not served.accepted, served.status, reason))
        return probes
    finally:
        for sock in held:
            with contextlib.suppress(OSError):
                sock.close()


__all__ = ["flood_and_call"]
