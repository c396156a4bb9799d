"""gunicorn configuration shipped with s2s_auth: TLS that requests client certificates.

    TLS_CERT=pki/users.pem TLS_KEY=pki/users.key TLS_CA=pki/ca.pem \\
    gunicorn -c python:s2s_auth.tls.gunicorn_conf myproject.wsgi

Needs the ``gunicorn`` extra (``pip install "s2s-auth[gunicorn]"``). Configured from
the environment, every variable optional:

=========================  =====================================================

``GUNICORN_BIND``          listen address(es), comma-separated; default ``0.0.0.0:8000``
``GUNICORN_WORKERS``       worker processes; default 2
``GUNICORN_THREADS``       threads per worker; default 4
``GUNICORN_KEEPALIVE``     seconds a connection may stay idle between requests; default 5
``GUNICORN_HANDSHAKE_TIMEOUT``  seconds from the accept to a finished TLS handshake;
                           default 5
``GUNICORN_HEADER_TIMEOUT``  seconds a client has to send a complete request head (up to
                           its blank line), counted from the handshake for the first
                           request and from its first byte on a kept-alive connection;
                           default 10
``GUNICORN_BODY_TIMEOUT``  seconds a worker thread waits for the rest of a request (its
                           body), counted from when it takes the request, and for each
                           write of the response; default 10
``GUNICORN_WORKER_CONNECTIONS``  connections one worker holds open at most, idle ones
                           included; default 1000 (then it stops accepting until some end)
``TLS_CERT``               the server's certificate chain, PEM; set, it turns TLS on
``TLS_KEY``                its private key, PEM; unset: the key is in ``TLS_CERT``
``TLS_CA``                 CA bundle client certificates must chain to; required with TLS
``FORWARDED_ALLOW_IPS``    proxies trusted for ``X-Forwarded-Proto`` etc.; default none
``GUNICORN_CONTROL_SOCKET``  path of gunicorn's control socket; default: none. gunicorn
                           (>= 25.1) would otherwise open one at a per-user default path
                           that every instance on the host shares
``GUNICORN_LOGLEVEL``      default ``info``
``S2S_RENEWAL_AGENT``      ``0`` turns off the certificate renewal agent of the master
                           (below); default on
=========================  =====================================================


Certificate renewal: with TLS on and ``DJANGO_SETTINGS_MODULE`` set, the master runs
the renewal agent (:func:`s2s_auth.agent.start_for_gunicorn`, from ``when_ready``) in a
thread: one per service, not one per worker. It renews ``TLS_CERT``/``TLS_KEY`` at the
identity service at ``S2S_AUTH["RENEW_AT_FRACTION"]`` of their lifetime; the workers
load the new files on their next connection.

Without ``TLS_CERT`` the server speaks plain HTTP (and there is no client certificate
to check). The worker is :class:`s2s_auth.tls.gunicorn.TLSWorker` (threads, keep-alive)
with the :func:`s2s_auth.tls.gunicorn.ssl_context` hook; its ``worker_exit`` hook writes the
audit records still queued in a worker before it ends. The worker's event loop runs
the TLS handshake and reads the request head on non-blocking sockets
(:mod:`s2s_auth.tls.gunicorn_admission`), so a thread only gets a connection with a whole
request head to serve: idle or slow clients wait there, bounded by the timeouts above,
and cannot hold the threads. A client certificate is
requested, verified against ``TLS_CA`` if sent, and handed to Django as
``SSL_CLIENT_CERT``; a request without one reaches Django and gets its 401. The access
log goes to stdout without query strings (``%(U)s``, not ``%(r)s``), so a token passed
as a query parameter never reaches the log.

For settings this module does not cover, write your own configuration file that starts
with ``from s2s_auth.tls.gunicorn_conf import *`` and overrides what it needs.
"""

from __future__ import annotations

import os
import ssl
import sys
from collections.abc import Mapping

from s2s_auth.tls.gunicorn import ssl_context
from s2s_auth.tls.gunicorn_admission import Limits

WORKER_CLASS = "s2s_auth.tls.gunicorn.TLSWorker"
# The request target without its query string: no token or key in the log.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" %(M)sms'


def _int(environ: Mapping[str, str], name: str, default: int) -> int:
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise RuntimeError(f"{name}={value!r} is not a whole number") from None


def config_from_env(environ: Mapping[str, str]) -> dict:
    """The gunicorn settings for these environment variables (see the module docstring)."""
    Limits.from_env(environ)  # the worker reads them; a bad value fails here, at load
    binds = [b.strip() for b in environ.get("GUNICORN_BIND", "").split(",") if b.strip()]
    config: dict = {
        "bind": binds or ["0.0.0.0:8000"],
        "workers": _int(environ, "GUNICORN_WORKERS", 2),
        "threads": _int(environ, "GUNICORN_THREADS", 4),
        "keepalive": _int(environ, "GUNICORN_KEEPALIVE", 5),
        "worker_connections": _int(environ, "GUNICORN_WORKER_CONNECTIONS", 1000),
        "worker_class": WORKER_CLASS,
        "ssl_context": ssl_context,
        # Only the proxies named here may set the scheme or remote address by header.
        # The client certificate never comes from a header here (S2S_AUTH's
        # TRUSTED_PROXIES governs that).
        "forwarded_allow_ips": environ.get("FORWARDED_ALLOW_IPS", ""),
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "errorlog": "-",
        "loglevel": environ.get("GUNICORN_LOGLEVEL", "") or "info",
    }
    control_socket = environ.get("GUNICORN_CONTROL_SOCKET", "").strip()
    config["control_socket_disable"] = not control_socket
    if control_socket:
        config["control_socket"] = control_socket
    cert = environ.get("TLS_CERT", "").strip()
    if cert:
        ca = environ.get("TLS_CA", "").strip()
        if not ca:
            raise RuntimeError(
                "TLS_CERT is set but TLS_CA is not: client certificates need a CA bundle."
            )
        config.update(
            certfile=cert,
            keyfile=environ.get("TLS_KEY", "").strip() or None,
            ca_certs=ca,
            cert_reqs=ssl.CERT_OPTIONAL,
        )
    return config


def post_worker_init(worker) -> None:
    """Each worker fetches the issuer's keys as it starts (in the background), so its
    first tokens need no fetch and it does not depend on the issuer staying up."""
    try:
        from s2s_auth.core.jwks import warm_up

        warm_up()
    except Exception:  # a project without Django settings, or without an issuer
        worker.log.exception("s2s_auth: JWKS warm-up not started")
    try:  # the same for the CRLs of the CA host (S2S_AUTH["CRL_URL"])
        from s2s_auth.core.certs import warm_up_crls

        warm_up_crls()
    except Exception:  # a project without Django settings
        worker.log.exception("s2s_auth: CRL warm-up not started")


def when_ready(server) -> None:
    """The master listens: start the certificate renewal agent in it (a thread)."""
    from s2s_auth.agent import start_for_gunicorn

    start_for_gunicorn(server)


def worker_exit(server, worker) -> None:
    """A worker that ends (SIGTERM, max_requests, a reload) writes the audit records still
    queued for its writer thread first (:func:`s2s_auth.audit.writer.shutdown`; atexit
    does the same, this is the earlier and surer moment)."""
    writer = sys.modules.get("s2s_auth.audit.writer")
    if writer is None:  # no record was ever stored in this worker
        return
    try:
        writer.shutdown()
    except Exception:
        worker.log.exception("s2s_auth: audit records not written at exit")


# gunicorn reads the settings as this module's attributes.
globals().update(config_from_env(os.environ))
