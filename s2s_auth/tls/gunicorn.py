"""Serve TLS with client certificates from gunicorn, and hand the peer chain to WSGI.

The shipped configuration sets everything below::

    gunicorn -c python:s2s_auth.tls.gunicorn_conf myproject.wsgi

or, in a configuration of your own, use the worker class and the ``ssl_context``
server hook together::

    worker_class = "s2s_auth.tls.gunicorn.TLSWorker"
    certfile, keyfile, ca_certs = "users.pem", "users.key", "ca.pem"
    cert_reqs = ssl.CERT_OPTIONAL
    from s2s_auth.tls.gunicorn import ssl_context  # the server hook

``TLSWorker`` is gunicorn's ``gthread`` worker (a thread pool with keep-alive: sync
workers close every connection, so each request would pay a full TLS handshake)
whose event loop, not a thread, runs the TLS handshake and reads each request head,
within deadlines (:mod:`s2s_auth.tls.gunicorn_admission`): idle or slow clients hold no
thread. For every request on a TLS connection it puts into the WSGI environ the entries of
:func:`s2s_auth.tls.server.peer_environ` (``SSL_CLIENT_CERT``,
``SSL_CLIENT_CERT_CHAIN_n``, ``s2s_auth.peer_der``, ``s2s_auth.peer_chain_der``,
``SSL_SESSION_RESUMED``, ``HTTPS``, ``wsgi.url_scheme``), read from the request's own
TLS socket once per connection and cached on the connection; it first removes every
key of those names, so they come from the socket only.

The :func:`ssl_context` hook applies :func:`s2s_auth.tls.server.apply_policy`
(client certificate requested, verified if sent, TLS >= 1.2, tickets on,
renegotiation off). A certificate that does not verify fails the handshake (the
client sees ``SSLError``, alert ``unknown ca``, and gunicorn logs "Invalid request
from ip=..."); it never reaches the application.

The hook builds one ``SSLContext`` per process and reuses it for every connection
(gunicorn asks for a context per connection), rebuilding it when the certificate,
key or CA file changes, so renewed short-lived certificates are picked up without a
restart. A change it cannot load (a renewal caught between replacing the key and the
chain) keeps the previous context for that connection and is tried again on the next.
The worker builds it once in the master (``check_config``), which fails a
bad TLS configuration at start-up, and workers forked from the master share the
context and so its session-ticket keys: a ticket issued by one worker resumes on
another, until a file change makes a worker build its own context.
"""

from __future__ import annotations

import os
import ssl
import threading

from gunicorn import sock as gunicorn_sock
from gunicorn.workers.gthread import ThreadWorker

from s2s_auth.tls.gunicorn_admission import Admission, Limits, tls_buffered
from s2s_auth.tls.server import apply_policy, peer_environ, scrub_environ

__all__ = ["TLSWorker", "ssl_context"]


# --- the ssl_context server hook -----------------------------------------------------

_context_lock = threading.Lock()
_context_cache: dict = {}  # {"key": ..., "context": SSLContext}


def _file_stamp(path: str | None):
    if not path:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return (path, None)
    return (path, st.st_mtime_ns, st.st_size, st.st_ino)


def _cache_key(config) -> tuple:
    return (
        _file_stamp(config.certfile),
        _file_stamp(config.keyfile),
        _file_stamp(config.ca_certs),
        config.cert_reqs,
        config.ciphers,
        tuple(getattr(config, "http_protocols", None) or ()),
    )


def ssl_context(config, default_ssl_context_factory):
    """gunicorn ``ssl_context`` server hook: request, don't require, client certs.

    Builds the context with gunicorn's factory (certfile, keyfile, ca_certs, ciphers,
    ALPN), applies :func:`~s2s_auth.tls.server.apply_policy`, and caches it per
    process until one of the files changes. ``ca_certs`` is required: without it
    Python would trust the system's public CAs for client certificates.
    """
    if not config.ca_certs:
        raise ValueError(
            "s2s_auth.tls.gunicorn.ssl_context needs ca_certs (the CA bundle that client "
            "certificates must chain to); set --ca-certs / ca_certs (TLS_CA)."
        )
    key = _cache_key(config)
    cached = _context_cache
    if cached.get("key") == key:
        return cached["context"]
    with _context_lock:
        if cached.get("key") != key:
            try:
                context = apply_policy(default_ssl_context_factory(), cert_reqs=config.cert_reqs)
            except (ssl.SSLError, OSError, ValueError) as exc:
                if "context" not in cached:
                    raise  # nothing to fall back on: a broken configuration
                # Caught mid-renewal (the new key beside the old chain, or a file
                # being replaced): keep serving with the previous context, which is
                # still valid, and try again on the next connection.
                _log_kept(exc)
                return cached["context"]
            cached.update(key=key, context=context)
        return cached["context"]


def _log_kept(exc: Exception) -> None:
    import logging

    logging.getLogger("s2s_auth.tls").warning(
        "TLS certificate files changed but could not be loaded (%s); keeping the previous "
        "certificate until they can",
        exc,
    )


# --- the worker -----------------------------------------------------------------------


def _admits(cfg) -> bool:
    """Whether connections are admitted on the loop: HTTP/1.1 only (h2 holds a thread)."""
    return "h2" not in (getattr(cfg, "http_protocols", None) or ())


class TLSWorker(ThreadWorker):
    """gthread worker that admits connections on its loop and hands the TLS peer to WSGI."""

    @classmethod
    def check_config(cls, cfg, log):
        super().check_config(cfg, log)
        try:
            Limits.from_env(os.environ)
        except RuntimeError as exc:
            log.error("s2s_auth TLSWorker: %s", exc)
            raise SystemExit(1) from exc
        if not _admits(cfg):
            log.warning(
                "s2s_auth TLSWorker: http_protocols includes h2: connections are not "
                "admitted on the event loop, so slow or idle clients can hold worker threads."
            )
        if not cfg.is_ssl:
            log.info("s2s_auth TLSWorker: TLS is off (no certfile); no client certificates.")
            return
        if cfg.ssl_context is not ssl_context and cfg.cert_reqs == ssl.CERT_NONE:
            log.warning(
                "s2s_auth TLSWorker: cert_reqs is CERT_NONE and the ssl_context hook is not "
                "s2s_auth.tls.gunicorn.ssl_context: client certificates are never requested."
            )
        # Build the context in the master: a broken TLS configuration fails at start-up,
        # and forked workers inherit the hook's cached context (shared ticket keys).
        try:
            gunicorn_sock.ssl_context(cfg)
        except (OSError, ssl.SSLError, ValueError) as exc:
            log.error("s2s_auth TLSWorker: cannot build the TLS context: %s", exc)
            raise SystemExit(1) from exc

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._current = threading.local()
        self.limits = Limits.from_env(os.environ)
        self.admission = Admission(self, self.limits) if _admits(self.cfg) else None

    # --- admission: handshake and request head on the loop (s2s_auth.tls.gunicorn_admission) -----

    def accept(self, listener):
        if self.admission is None:
            return super().accept(listener)
        return self.admission.accept(listener)

    def on_client_socket_readable(self, conn, client):
        if self.admission is None:
            return super().on_client_socket_readable(conn, client)
        self.poller.unregister(client)
        self.keepalived_conns.remove(conn)
        return self.admission.resume(conn)

    def murder_pending(self):
        super().murder_pending()
        if self.admission is not None:
            self.admission.expire()

    def finish_request(self, conn, fs):
        super().finish_request(conn, fs)
        # A pipelined request already decrypted inside the TLS object never makes the
        # socket readable: take it now rather than waiting for the keep-alive to expire.
        if self.admission is not None and tls_buffered(conn.sock) and conn in self.keepalived_conns:
            self.on_client_socket_readable(conn, conn.sock)

    # --- the peer in the environ ----------------------------------------------------------

    def load_wsgi(self):
        super().load_wsgi()
        self.wsgi = self._with_peer(self.wsgi)

    def _with_peer(self, app):
        current = self._current

        def application(environ, start_response):
            scrub_environ(environ)
            conn = getattr(current, "conn", None)
            if conn is not None:
                environ.update(self.connection_environ(conn))
            return app(environ, start_response)

        application.__wrapped__ = app
        return application

    @staticmethod
    def connection_environ(conn) -> dict:
        """The TLS entries of a connection, read from its socket once and cached."""
        cached = getattr(conn, "s2s_peer_environ", None)
        if cached is None:
            cached = peer_environ(conn.sock)
            conn.s2s_peer_environ = cached
        return cached

    def handle_request(self, req, conn):
        self._current.conn = conn
        if self.admission is not None:
            conn.sock.settimeout(self.limits.body)  # each write of the response
        try:
            return super().handle_request(req, conn)
        finally:
            self._current.conn = None

    def handle_http2_request(self, req, conn, h2_conn):
        self._current.conn = conn
        try:
            return super().handle_http2_request(req, conn, h2_conn)
        finally:
            self._current.conn = None
