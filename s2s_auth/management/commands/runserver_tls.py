"""``manage.py runserver_tls``: Django's development server over HTTPS with client certificates.

    python manage.py runserver_tls [addrport] [--cert FILE] [--key FILE] [--ca FILE]

Everything ``runserver`` does (autoreloader, threads, ``--noreload``, ``--nothreading``,
static files when ``django.contrib.staticfiles`` is installed), but the socket speaks
TLS and *requests* a client certificate: optional, verified against ``--ca`` when one
is sent (a certificate that does not chain to it fails the handshake). Per request the
environ gets, from the connection's TLS socket (never from headers):
``SSL_CLIENT_CERT`` (leaf, PEM), ``SSL_CLIENT_CERT_CHAIN_n`` (the rest of the chain the
client sent, PEM), ``s2s_auth.peer_der`` (leaf, DER), ``s2s_auth.peer_chain_der``,
``SSL_SESSION_RESUMED``, ``HTTPS=on`` and so ``wsgi.url_scheme=https``: the environ and
the TLS policy of :mod:`s2s_auth.tls.server`, the same as ``s2s_auth.tls.gunicorn.TLSWorker``.

Defaults come from ``S2S_AUTH``: ``<PKI_DIR>/<SERVICE_NAME>.pem``, ``<SERVICE_NAME>.key``
and ``ca.pem``. The autoreloader also watches these three files, so a renewed
certificate restarts the server.
"""

from __future__ import annotations

import socket
import ssl
import time
from pathlib import Path

from django.apps import apps
from django.core.management.base import CommandError
from django.core.servers.basehttp import (
    ServerHandler,
    WSGIRequestHandler,
    WSGIServer,
    logger,
)
from django.utils import autoreload

from s2s_auth.conf import s2s_settings
from s2s_auth.tls.server import is_owned, peer_environ, scrub_environ, server_context

if apps.is_installed("django.contrib.staticfiles"):
    from django.contrib.staticfiles.management.commands.runserver import (
        Command as RunserverCommand,
    )
else:
    from django.core.management.commands.runserver import Command as RunserverCommand

HANDSHAKE_TIMEOUT = 10.0  # seconds a client has to complete the TLS handshake


class TLSServerHandler(ServerHandler):
    """wsgiref starts every environ from a copy of the process environment; not our keys."""

    os_environ = {k: v for k, v in ServerHandler.os_environ.items() if not is_owned(k)}


class TLSRequestHandler(WSGIRequestHandler):
    """One instance per connection: the peer is read once and reused for keep-alive."""

    _peer_environ: dict | None = None

    def get_environ(self):
        environ = super().get_environ()
        scrub_environ(environ)
        if self._peer_environ is None:
            self._peer_environ = peer_environ(self.connection)
        environ.update(self._peer_environ)
        environ["REMOTE_PORT"] = str(self.client_address[1])  # as gunicorn; tells connections apart
        return environ

    def handle_one_request(self):
        """Django's, with TLSServerHandler."""
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536:
            self.requestline = ""
            self.request_version = ""
            self.command = ""
            self.send_error(414)
            return
        if not self.parse_request():
            return
        handler = TLSServerHandler(self.rfile, self.wfile, self.get_stderr(), self.get_environ())
        handler.request_handler = self
        handler.run(self.server.get_app())


class TLSWSGIServer(WSGIServer):
    """WSGIServer whose accepted sockets speak TLS; the handshake runs in the handler thread."""

    ssl_context: ssl.SSLContext  # set on the subclass the command builds

    def __init__(self, server_address, handler_class, *args, **kwargs):
        if handler_class is WSGIRequestHandler:
            handler_class = TLSRequestHandler
        super().__init__(server_address, handler_class, *args, **kwargs)

    def get_request(self):
        sock, address = super().get_request()
        tls = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return tls, address

    def finish_request(self, request, client_address):
        # Runs in the request's thread (ThreadingMixIn): a slow or failing handshake
        # does not block the accept loop.
        try:
            request.settimeout(HANDSHAKE_TIMEOUT)
            request.do_handshake()
            request.settimeout(None)
        except (ssl.SSLError, OSError) as exc:
            # A peer that connects and leaves (a port probe) is not worth a warning.
            quiet = isinstance(exc, (ssl.SSLEOFError, ConnectionResetError))
            log = logger.debug if quiet else logger.warning
            log("TLS handshake with %s failed: %s", client_address[0], exc)
            _linger(request)
            return
        super().finish_request(request, client_address)


def _linger(sock, timeout=1.0, max_drain=65536):
    """Half-close, then drain what the peer already sent, before the socket is closed.

    Closing with unread data makes the kernel send RST, and the peer may then see a
    reset instead of the TLS alert that says why its handshake failed.
    """
    try:
        sock.shutdown(socket.SHUT_WR)  # on an SSLSocket this also drops the TLS layer
        deadline = time.monotonic() + timeout
        drained = 0
        while drained < max_drain and (remaining := deadline - time.monotonic()) > 0:
            sock.settimeout(remaining)
            data = sock.recv(4096)
            if not data:
                break
            drained += len(data)
    except OSError:
        pass


class Command(RunserverCommand):
    help = (
        "Starts the development server over HTTPS, requesting (not requiring) a client "
        "certificate and passing it to the application as SSL_CLIENT_CERT."
    )
    protocol = "https"

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--cert", help="Certificate chain (PEM). Default: <PKI_DIR>/<SERVICE_NAME>.pem"
        )
        parser.add_argument(
            "--key", help="Private key (PEM). Default: <PKI_DIR>/<SERVICE_NAME>.key"
        )
        parser.add_argument(
            "--ca", help="CA bundle client certificates must chain to. Default: <PKI_DIR>/ca.pem"
        )

    def tls_files(self, options) -> tuple[Path, Path, Path]:
        conf = s2s_settings()
        name = conf.SERVICE_NAME
        if not (options.get("cert") and options.get("key")) and not name:
            raise CommandError(
                "Give --cert and --key, or set S2S_AUTH['SERVICE_NAME'] for the defaults."
            )
        pki = conf.pki_dir
        cert = Path(options.get("cert") or pki / f"{name}.pem")
        key = Path(options.get("key") or pki / f"{name}.key")
        ca = Path(options.get("ca") or pki / "ca.pem")
        for label, path in (("certificate", cert), ("key", key), ("CA bundle", ca)):
            if not path.is_file():
                raise CommandError(
                    f"TLS {label} {path} does not exist (python manage.py s2s_pki issue ...?)."
                )
        return cert, key, ca

    def handle(self, *args, **options):
        self.tls_paths = self.tls_files(options)
        try:
            server_context(*map(str, self.tls_paths))
        except (ssl.SSLError, OSError) as exc:
            raise CommandError(f"Cannot load the TLS files {self.tls_paths}: {exc}") from exc
        super().handle(*args, **options)

    def run(self, **options):
        if options["use_reloader"]:
            autoreload.autoreload_started.connect(self._watch_tls_files)
        super().run(**options)

    def _watch_tls_files(self, sender, **kwargs):
        sender.extra_files.update(path.resolve() for path in self.tls_paths)

    def inner_run(self, *args, **options):
        context = server_context(*map(str, self.tls_paths))
        self.server_cls = type("TLSWSGIServer", (TLSWSGIServer,), {"ssl_context": context})
        super().inner_run(*args, **options)
