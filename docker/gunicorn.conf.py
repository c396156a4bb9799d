"""gunicorn configuration: TLS that requests client certificates, threads, keep-alive.

    gunicorn -c docker/gunicorn.conf.py users.wsgi

Environment (all optional):
  GUNICORN_BIND       listen address, default 0.0.0.0:8000
  GUNICORN_WORKERS    worker processes, default 2
  GUNICORN_THREADS    threads per worker, default 4
  GUNICORN_KEEPALIVE  seconds an idle connection stays open, default 5
  TLS_CERT, TLS_KEY   the service's certificate chain and key (PEM files); both set
                      turns TLS on, without them the server speaks plain HTTP
  TLS_CA              CA bundle that client certificates must chain to (required with TLS)
  FORWARDED_ALLOW_IPS proxies trusted for X-Forwarded-Proto etc.; default none
  GUNICORN_CONTROL_SOCKET  path of gunicorn's control socket (gunicornc); default off,
                      since every instance would otherwise share ~/.gunicorn/gunicorn.ctl
  GUNICORN_LOGLEVEL   default info

The worker (s2s_auth.tls.gunicorn.TLSWorker) puts the client's certificate into the WSGI
environ as SSL_CLIENT_CERT; the client certificate is requested but optional at the TLS
layer, so a request without one reaches Django and gets its 401. See s2s_auth/gunicorn.py.
"""

import os
import ssl

from s2s_auth.tls.gunicorn import ssl_context  # noqa: F401  (the gunicorn ssl_context server hook)


def _env_int(name, default):
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


bind = [os.environ.get("GUNICORN_BIND", "").strip() or "0.0.0.0:8000"]
workers = _env_int("GUNICORN_WORKERS", 2)
threads = _env_int("GUNICORN_THREADS", 4)
keepalive = _env_int("GUNICORN_KEEPALIVE", 5)
worker_class = "s2s_auth.tls.gunicorn.TLSWorker"

# Only proxies named here may set the scheme/remote address through headers. The client
# certificate never comes from a header here (s2s_auth's TRUSTED_PROXIES governs that).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "")

# gunicorn >= 25.1 opens a control socket at one per-user default path; several
# instances on one host (users, ads, tests) would take it from each other.
control_socket_disable = not os.environ.get("GUNICORN_CONTROL_SOCKET")
if not control_socket_disable:
    control_socket = os.environ["GUNICORN_CONTROL_SOCKET"]

_cert = os.environ.get("TLS_CERT") or None
_key = os.environ.get("TLS_KEY") or None
_ca = os.environ.get("TLS_CA") or None
if _cert:
    if not _ca:
        raise RuntimeError(
            "TLS_CERT is set but TLS_CA is not: client certificates need a CA bundle."
        )
    certfile = _cert
    keyfile = _key  # None: the key is in the certificate file
    ca_certs = _ca
    cert_reqs = ssl.CERT_OPTIONAL

# Access log on stdout. The request target is logged without its query string (%(U)s,
# not %(r)s), so tokens or keys passed as query parameters never reach the log.
accesslog = "-"
access_log_format = '%(h)s %(l)s %(u)s %(t)s "%(m)s %(U)s %(H)s" %(s)s %(b)s "%(a)s" %(M)sms'
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
