"""A WSGI app for the serving tests: echoes what the server put into the environ as JSON."""

import hashlib
import json
import os
import ssl

TLS_PREFIXES = ("SSL_CLIENT", "SSL_SESSION", "s2s_auth.")


def _fingerprint_pem(pem: str) -> str:
    return hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).hexdigest()


def describe(environ) -> dict:
    """The TLS-related part of a WSGI environ, JSON-serialisable."""
    pem = environ.get("SSL_CLIENT_CERT")
    der = environ.get("s2s_auth.peer_der")
    chain = []
    while f"SSL_CLIENT_CERT_CHAIN_{len(chain)}" in environ:
        chain.append(_fingerprint_pem(environ[f"SSL_CLIENT_CERT_CHAIN_{len(chain)}"]))
    return {
        "client_cert": pem is not None,
        "fingerprint": _fingerprint_pem(pem) if pem else None,
        "der_fingerprint": hashlib.sha256(der).hexdigest() if der else None,
        "chain": chain,
        "chain_der": [
            hashlib.sha256(d).hexdigest() for d in environ.get("s2s_auth.peer_chain_der", ())
        ],
        "url_scheme": environ.get("wsgi.url_scheme"),
        "session_resumed": environ.get("SSL_SESSION_RESUMED"),
        "http_ssl_client_cert": environ.get("HTTP_SSL_CLIENT_CERT"),
        "tls_keys": sorted(
            k for k in environ if k.startswith(("SSL_CLIENT", "SSL_SESSION", "s2s_auth."))
        ),
        "remote_port": environ.get("REMOTE_PORT"),
        "pid": os.getpid(),
    }


def application(environ, start_response):
    body = json.dumps(describe(environ)).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
