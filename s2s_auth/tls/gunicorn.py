"""Serve TLS with client certificates from gunicorn, and hand the peer chain to WSGI.

Use the worker class and the ``ssl_context`` server hook together (see
``docker/gunicorn.conf.py``)::

    worker_class = "s2s_auth.tls.gunicorn.TLSWorker"
    certfile, keyfile, ca_certs = "users.pem", "users.key", "ca.pem"
    cert_reqs = ssl.CERT_OPTIONAL
    from s2s_auth.tls.gunicorn import ssl_context  # the server hook

``TLSWorker`` is gunicorn's ``gthread`` worker (a thread pool with keep-alive: sync
workers close every connection, so each request would pay a full TLS handshake).
For every request on a TLS connection it puts into the WSGI environ, read from the
request's own TLS socket once per connection and cached on the connection:

``SSL_CLIENT_CERT``
    the client's leaf certificate, PEM (``getpeercert(binary_form=True)``);
``SSL_CLIENT_CERT_CHAIN_0``, ``_1``, ...
    the other certificates the client sent, in its order, PEM (Apache mod_ssl's
    meaning). Only on a full handshake: OpenSSL does not keep the chain in a resumed
    session, so a resumed connection carries the leaf alone. Whoever verifies the
    leaf must hold the intermediate CA certificates itself;
``s2s_auth.peer_der``
    the leaf, DER bytes; ``s2s_auth.peer_chain_der`` the leaf and the chain, a tuple
    of DER bytes;
``SSL_SESSION_RESUMED``
    ``"Resumed"`` or ``"Initial"``;
``wsgi.url_scheme``
    ``"https"``.

Without a client certificate none of the certificate keys is present. The worker
removes every key of these names before setting them, so they come from the socket
only; a request header such as ``SSL-Client-Cert`` arrives as ``HTTP_SSL_CLIENT_CERT``,
a different key, which nothing here reads.

TLS policy (the :func:`ssl_context` hook): the client certificate is *requested*
but optional (``CERT_OPTIONAL``; ``CERT_REQUIRED`` is kept if configured), so a
request without one reaches the application, which answers 401 with its JSON body.
A certificate that *is* presented is verified by OpenSSL against ``ca_certs`` (chain,
validity period); one that does not verify fails the handshake (the client sees
``SSLError``, alert ``unknown ca`` / ``certificate verify failed``, and gunicorn logs
"Invalid request from ip=..."), it never reaches the application. That is how
OpenSSL implements "optional": it skips verification only when no certificate is
sent. Revocation, EKU, the SPIFFE ID and the principal are checked by the
application (``MTLSAuthentication``), not here. TLS 1.2 is the minimum, session
tickets (resumption) are on, renegotiation is off (the peer cannot change within a
connection, which makes the per-connection cache sound).

The hook builds one ``SSLContext`` per process and reuses it for every connection
(gunicorn asks for a context per connection), rebuilding it when the certificate,
key or CA file changes, so renewed short-lived certificates are picked up without a
restart. The worker builds it once in the master (``check_config``), which fails a
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

__all__ = [
    "CHAIN_PREFIX",
    "CLIENT_CERT",
    "PEER_CHAIN_DER",
    "PEER_DER",
    "SESSION_RESUMED",
    "TLSWorker",
    "configure_context",
    "peer_certificates",
    "peer_environ",
    "scrub_environ",
    "ssl_context",
]

CLIENT_CERT = "SSL_CLIENT_CERT"
CHAIN_PREFIX = "SSL_CLIENT_CERT_CHAIN_"
PEER_DER = "s2s_auth.peer_der"
PEER_CHAIN_DER = "s2s_auth.peer_chain_der"
SESSION_RESUMED = "SSL_SESSION_RESUMED"

# Environ keys this module owns: whatever else put them there is removed.
_OWNED_PREFIXES = (CLIENT_CERT, PEER_DER, PEER_CHAIN_DER, SESSION_RESUMED)


def _der(cert) -> bytes:
    # Python >= 3.13 returns DER bytes; 3.10-3.12 return _ssl.Certificate objects.
    if isinstance(cert, bytes):
        return cert
    return cert.public_bytes(ssl._ssl.ENCODING_DER)  # type: ignore[attr-defined]


def _sent_chain(sslsock: ssl.SSLSocket) -> list:
    """The certificates the peer sent (may include the leaf); [] if unavailable."""
    getter = getattr(sslsock, "get_unverified_chain", None)  # public from 3.13
    if getter is None:
        getter = getattr(getattr(sslsock, "_sslobj", None), "get_unverified_chain", None)
    if getter is None:
        return []
    try:
        return list(getter() or [])
    except (ssl.SSLError, ValueError, OSError):
        return []


def peer_certificates(sslsock) -> tuple[bytes, ...]:
    """DER of the peer's leaf certificate followed by the rest of the chain it sent.

    ``()`` when the socket is not TLS or the peer sent no certificate. After a
    resumed handshake only the leaf is known.
    """
    if not isinstance(sslsock, ssl.SSLSocket):
        return ()
    try:
        leaf = sslsock.getpeercert(binary_form=True)
    except (ValueError, OSError):  # not connected, or the handshake is not done
        return ()
    if not leaf:
        return ()
    chain = [leaf]
    for cert in _sent_chain(sslsock):
        der = _der(cert)
        if der not in chain:
            chain.append(der)
    return tuple(chain)


def peer_environ(sslsock) -> dict:
    """The environ entries for a TLS socket (see the module docstring)."""
    if not isinstance(sslsock, ssl.SSLSocket):
        return {}
    environ: dict = {
        "wsgi.url_scheme": "https",
        SESSION_RESUMED: "Resumed" if sslsock.session_reused else "Initial",
    }
    ders = peer_certificates(sslsock)
    if ders:
        environ[CLIENT_CERT] = ssl.DER_cert_to_PEM_cert(ders[0])
        environ[PEER_DER] = ders[0]
        environ[PEER_CHAIN_DER] = ders
        for i, der in enumerate(ders[1:]):
            environ[f"{CHAIN_PREFIX}{i}"] = ssl.DER_cert_to_PEM_cert(der)
    return environ


def scrub_environ(environ: dict) -> None:
    """Remove every key this module owns, whoever set it."""
    for key in [k for k in environ if k.startswith(_OWNED_PREFIXES)]:
        del environ[key]


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


def configure_context(context: ssl.SSLContext, *, cert_reqs: int) -> ssl.SSLContext:
    """Apply the client-certificate policy to a server context (in place)."""
    # Request a client certificate; verify it if one is sent. Never weaker than
    # CERT_OPTIONAL, but a configured CERT_REQUIRED stays.
    context.verify_mode = ssl.CERT_REQUIRED if cert_reqs == ssl.CERT_REQUIRED else ssl.CERT_OPTIONAL
    if context.minimum_version < ssl.TLSVersion.TLSv1_2:  # incl. MINIMUM_SUPPORTED (-2)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options &= ~ssl.OP_NO_TICKET  # session tickets: resumption on
    context.options |= ssl.OP_NO_RENEGOTIATION  # the peer is fixed for the connection
    return context


def ssl_context(config, default_ssl_context_factory):
    """gunicorn ``ssl_context`` server hook: request, don't require, client certs.

    Builds the context with gunicorn's factory (certfile, keyfile, ca_certs, ciphers,
    ALPN), applies :func:`configure_context`, and caches it per process until one of
    the files changes. ``ca_certs`` is required: without it Python would trust the
    system's public CAs for client certificates.
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
            context = configure_context(default_ssl_context_factory(), cert_reqs=config.cert_reqs)
            cached.update(key=key, context=context)
        return cached["context"]


# --- the worker -----------------------------------------------------------------------


class TLSWorker(ThreadWorker):
    """gthread worker that puts the TLS peer's certificates into the WSGI environ."""

    @classmethod
    def check_config(cls, cfg, log):
        super().check_config(cfg, log)
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
