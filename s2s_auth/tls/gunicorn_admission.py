"""Admit gunicorn connections on the worker's event loop, so a slow client holds no thread.

gunicorn's ``gthread`` worker hands a new connection to a worker thread, which runs the
TLS handshake and then waits for the request with a blocking socket and no timeout: a
few clients that connect and send nothing (or drip a header byte by byte) occupy every
thread. Here the worker's main loop, which already polls the listening sockets and the
kept-alive connections, also drives every connection through two stages on
non-blocking sockets:

1. the TLS handshake, within ``handshake`` seconds of the accept;
2. the request headers, complete (up to the blank line) within ``header`` seconds of the
   handshake, or, on a kept-alive connection, of the first byte of the next request
   (how long it may stay idle before that is gunicorn's ``keepalive``).

Only then does a thread get the connection, with the bytes read so far handed to
gunicorn's parser. What it reads after that (the body) must arrive within ``body``
seconds of the hand-over (:class:`BoundedReader`), and each write of the response is
bounded by the same number. A connection past a deadline is closed; a handshake that
fails is closed after a short linger, so the client reads the TLS alert that says why.
When the worker holds ``worker_connections`` connections, the one waiting longest in
admission is closed for each new one, so the worker never stops accepting because of
idle clients.

The limits come from the environment (:meth:`Limits.from_env`), documented with the
other variables in :mod:`s2s_auth.tls.gunicorn_conf`.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import selectors
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial

from gunicorn import http, util
from gunicorn import sock as gunicorn_sock
from gunicorn.workers.gthread import TConn

__all__ = ["Admission", "AdmittedConn", "BoundedReader", "Limits", "tls_buffered"]

#: Read at most this much before a thread takes over: enough for any ordinary request
#: head. A bigger one came in fast, and the thread reads the rest under the body deadline.
PREFETCH_LIMIT = 64 * 1024
#: How long a closing socket is drained (a failed handshake, a closed keep-alive).
LINGER = 2.0

#: At most one warning this often (seconds) while idle connections are being evicted.
EVICTION_WARNING_INTERVAL = 60.0

HANDSHAKE, HEADERS, CLOSING = "handshake", "headers", "closing"


@dataclass(frozen=True)
class Limits:
    """Seconds a client has for each stage of a request (see the module docstring)."""

    handshake: float = 5.0
    header: float = 10.0
    body: float = 10.0

    ENV = {
        "handshake": "GUNICORN_HANDSHAKE_TIMEOUT",
        "header": "GUNICORN_HEADER_TIMEOUT",
        "body": "GUNICORN_BODY_TIMEOUT",
    }

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Limits:
        values = {}
        for field, name in cls.ENV.items():
            raw = environ.get(name, "").strip()
            if not raw:
                continue
            try:
                values[field] = float(raw)
            except ValueError:
                raise RuntimeError(f"{name}={raw!r} is not a number of seconds") from None
            if not 0 < values[field] <= 3600:
                raise RuntimeError(f"{name}={raw!r} must be more than 0 and at most 3600 s")
        return cls(**values)


class BoundedReader:
    """What gunicorn's request parser reads from: the socket, against a deadline.

    Every ``recv`` waits at most until the deadline set by :meth:`arm` (and at most the
    timeout the parser asked for), so a client that drips its body cannot hold the
    thread longer than that.
    """

    def __init__(self, sock):
        self.sock = sock
        self.deadline: float | None = None
        self._timeout: float | None = None

    def arm(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def recv(self, size: int) -> bytes:
        timeout = self._timeout
        if self.deadline is not None:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("the client did not send its request in time")
            timeout = remaining if timeout is None else min(timeout, remaining)
        prior = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(size)
        finally:
            self.sock.settimeout(prior)

    def gettimeout(self) -> float | None:
        return self._timeout

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout


class AdmittedConn(TConn):
    """A gthread connection whose handshake is done and whose request head is read."""

    def __init__(self, cfg, sock, client, server, limits: Limits):
        super().__init__(cfg, sock, client, server)  # sets the socket non-blocking
        self.limits = limits
        self.reader: BoundedReader | None = None
        self.prefetched = b""
        self.stage = HANDSHAKE
        self.deadline = 0.0
        self.registered = False
        self.counted = True  # in the worker's nr_conns
        self.admission: Admission | None = None

    def close(self, graceful=False):
        """gunicorn's graceful close blocks; the admission's lingers on the loop."""
        if graceful and self.admission is not None:
            self.admission.linger(self, counted=False)  # the worker has uncounted it
        else:
            super().close(graceful)

    def init(self):
        """Runs in the thread before every request on this connection."""
        if not self.initialized:
            self.initialized = True
            self.reader = BoundedReader(self.sock)
            self.parser = http.get_parser(self.cfg, self.reader, self.client)
        if self.prefetched:
            self.parser.unreader.unread(self.prefetched)
            self.prefetched = b""
        self.reader.arm(self.limits.body)


def _header_end(buf: bytearray, start: int) -> bool:
    """Whether the request head (up to its blank line) is in ``buf``, searching from ``start``."""
    return buf.find(b"\r\n\r\n", start) != -1 or buf.find(b"\n\n", start) != -1


def tls_buffered(sock) -> int:
    """Bytes decrypted and waiting inside the TLS object, which the poller cannot see."""
    try:
        return sock.pending() if isinstance(sock, ssl.SSLSocket) else 0
    except (OSError, ValueError):
        return 0


class Admission:
    """The connections one gthread worker is admitting; used from its main thread only."""

    def __init__(self, worker, limits: Limits):
        self.worker = worker
        self.limits = limits
        #: In the order they entered admission: the first is the one waiting longest.
        self.conns: dict[AdmittedConn, None] = {}
        self._warned_full = -EVICTION_WARNING_INTERVAL
        self._deadlines: list = []  # heap of (deadline, seq, conn); stale entries skipped
        self._seq = itertools.count()
        self._buffers: dict[AdmittedConn, bytearray] = {}

    # --- entry points (the worker's loop calls these) -----------------------------------

    def accept(self, listener) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        worker = self.worker
        worker.nr_conns += 1
        conn = AdmittedConn(worker.cfg, client_sock, client_addr, listener.getsockname(),
                            self.limits)  # fmt: skip
        conn.admission = self
        self.conns[conn] = None
        if worker.nr_conns >= worker.worker_connections:
            self._evict(conn)
        if worker.cfg.is_ssl:
            try:
                conn.sock = gunicorn_sock.ssl_context(worker.cfg).wrap_socket(
                    client_sock, server_side=True, do_handshake_on_connect=False,
                    suppress_ragged_eofs=worker.cfg.suppress_ragged_eofs,
                )  # fmt: skip
            except (OSError, ValueError) as exc:
                self._fail(conn, exc)
                return
            self._set_stage(conn, HANDSHAKE, self.limits.handshake)
        else:
            self._set_stage(conn, HEADERS, self.limits.header)
        self._step(conn)

    def resume(self, conn: AdmittedConn) -> None:
        """A kept-alive connection turned readable: read its next request head here."""
        self.conns[conn] = None
        self._set_stage(conn, HEADERS, self.limits.header)
        self._step(conn)

    def _evict(self, newest: AdmittedConn) -> None:
        """At ``worker_connections``: close the connection waiting longest, keep accepting.

        Otherwise the worker would stop accepting and idle clients would keep real ones
        in the listen queue until their timeouts. A real client is in admission for the
        few milliseconds of its handshake; an idle one, for seconds.
        """
        now = time.monotonic()
        if now - self._warned_full >= EVICTION_WARNING_INTERVAL:
            self._warned_full = now
            self.worker.log.warning(
                "s2s_auth TLSWorker: %d connections open (worker_connections); closing "
                "the ones idle longest before their handshake or request head",
                self.worker.nr_conns,
            )
        worker = self.worker
        while worker.nr_conns >= worker.worker_connections:
            oldest = next(iter(self.conns))
            if oldest is newest:  # all the others are kept-alive or in a thread
                return
            self._close(oldest)

    def expire(self) -> None:
        """Close the connections past their deadline (and, when stopping, the idle ones)."""
        now = time.monotonic()
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, _, conn = heapq.heappop(heap)
            if conn in self.conns and conn.deadline == deadline:
                self._expired(conn)
        if not self.worker.alive:
            for conn in [c for c in self.conns if not self._buffers.get(c)]:
                self._close(conn)

    # --- the stages -------------------------------------------------------------------------

    def _set_stage(self, conn, stage, seconds) -> None:
        conn.stage = stage
        conn.deadline = time.monotonic() + seconds
        heapq.heappush(self._deadlines, (conn.deadline, next(self._seq), conn))

    def _on_event(self, conn, _fileobj) -> None:
        if conn in self.conns:
            self._step(conn)

    def _step(self, conn: AdmittedConn) -> None:
        """Advance as far as the socket allows without blocking."""
        try:
            if conn.stage == CLOSING:
                self._drain(conn)
                return
            if conn.stage == HANDSHAKE:
                conn.sock.do_handshake()
                self._set_stage(conn, HEADERS, self.limits.header)
            self._read_head(conn)
        except ssl.SSLWantWriteError:
            self._wait(conn, selectors.EVENT_WRITE)
        except (ssl.SSLWantReadError, BlockingIOError, InterruptedError):
            self._wait(conn, selectors.EVENT_READ)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self._fail(conn, exc)

    def _read_head(self, conn: AdmittedConn) -> None:
        buf = self._buffers.setdefault(conn, bytearray())
        while True:
            data = conn.sock.recv(16384)
            if not data:  # the client closed
                self._close(conn)
                return
            start = max(len(buf) - 3, 0)
            buf += data
            if _header_end(buf, start) or len(buf) >= PREFETCH_LIMIT:
                self._hand_over(conn, bytes(buf))
                return

    def _hand_over(self, conn: AdmittedConn, head: bytes) -> None:
        self._forget(conn)
        conn.prefetched = head
        conn.data_ready = True
        self.worker.enqueue_req(conn)

    def _wait(self, conn: AdmittedConn, events: int) -> None:
        poller = self.worker.poller
        callback = partial(self._on_event, conn)
        if conn.registered:
            poller.modify(conn.sock, events, callback)
        else:
            poller.register(conn.sock, events, callback)
            conn.registered = True

    # --- endings ----------------------------------------------------------------------------

    def _expired(self, conn: AdmittedConn) -> None:
        if conn.stage != CLOSING:
            self.worker.log.debug(
                "Closing the connection from %s: no %s within the time allowed",
                conn.client[0] if conn.client else "?",
                "TLS handshake" if conn.stage == HANDSHAKE else "request head",
            )
        self._close(conn)

    def _fail(self, conn: AdmittedConn, exc: BaseException) -> None:
        """A failed handshake (or a broken socket): linger so the client reads the alert."""
        peer = conn.client[0] if conn.client else "?"
        quiet = isinstance(exc, (ssl.SSLEOFError, ConnectionError, ssl.SSLZeroReturnError))
        log = self.worker.log.debug if quiet else self.worker.log.warning
        log("TLS handshake or request head from %s failed: %s", peer, exc)
        if conn.stage != HANDSHAKE or quiet:
            self._close(conn)
        else:
            self._forget(conn)
            self.linger(conn)

    def linger(self, conn: AdmittedConn, *, counted: bool = True) -> None:
        """Close gracefully without blocking the loop: FIN, drain what the client sends, close.

        gunicorn's own graceful close drains with a blocking socket for up to 2 s, on the
        loop: each client that keeps its socket open after the server's last response
        would stall every other connection. Closing with unread data would send RST, and
        the client could lose the last response or the TLS alert.
        ``counted``: the connection is still in the worker's ``nr_conns``.
        """
        conn.counted = counted
        try:
            conn.sock.setblocking(False)
            conn.sock.shutdown(socket.SHUT_WR)  # on a TLS socket, drops the TLS layer too
        except OSError:
            self._close(conn)
            return
        self.conns[conn] = None
        self._set_stage(conn, CLOSING, LINGER)
        self._drain(conn)

    def _drain(self, conn: AdmittedConn) -> None:
        drained = 0
        while drained < PREFETCH_LIMIT:
            try:
                data = conn.sock.recv(16384)
            except (BlockingIOError, InterruptedError):
                self._wait(conn, selectors.EVENT_READ)
                return
            except OSError:
                break
            if not data:
                break
            drained += len(data)
        self._close(conn)

    def _forget(self, conn: AdmittedConn) -> None:
        self.conns.pop(conn, None)
        self._buffers.pop(conn, None)
        if conn.registered:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self.worker.poller.unregister(conn.sock)
            conn.registered = False

    def _close(self, conn: AdmittedConn) -> None:
        self._forget(conn)
        if conn.counted:
            self.worker.nr_conns -= 1
        util.close(conn.sock)
