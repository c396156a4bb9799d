"""The TLS server policy and the WSGI environ of a TLS peer, written once.

Both servers that ship with s2s_auth use this module: the gunicorn worker
(:mod:`s2s_auth.tls.gunicorn`, configured by :mod:`s2s_auth.tls.gunicorn_conf`) and
``manage.py runserver_tls``. So a request sees the same keys, taken from the same
place, whichever server runs it.

Policy (:func:`apply_policy`, :func:`server_context`): the client certificate is
*requested* but optional (``CERT_OPTIONAL``; a configured ``CERT_REQUIRED`` stays),
so a request without one reaches the application, which answers 401 with its JSON
body. A certificate that *is* presented is verified by OpenSSL against the CA bundle
(chain, validity period); one that does not verify fails the handshake and never
reaches the application. Revocation, EKU, the SPIFFE ID and the principal are the
application's to check (``MTLSAuthentication``). TLS 1.2 is the minimum, session
tickets (resumption) are on, renegotiation is off: the peer cannot change within a
connection, which makes caching the environ per connection sound.

Environ (:func:`peer_environ`), read from the connection's own TLS socket:

``SSL_CLIENT_CERT``
    the client's leaf certificate, PEM;
``SSL_CLIENT_CERT_CHAIN_0``, ``_1``, ...
    the other certificates the client sent, in its order, PEM (Apache mod_ssl's
    meaning). Only on a full handshake: OpenSSL keeps no peer chain in a resumed
    session, so a resumed connection carries the leaf alone;
``s2s_auth.peer_der``, ``s2s_auth.peer_chain_der``
    the leaf, DER; the leaf and the chain, a tuple of DER;
``SSL_SESSION_RESUMED``
    ``"Resumed"`` or ``"Initial"``;
``HTTPS`` and ``wsgi.url_scheme``
    ``"on"`` and ``"https"`` (wsgiref derives the scheme from ``HTTPS``).

Without a client certificate none of the certificate keys is present. A server
removes every key of these names (:func:`scrub_environ`) before it sets them, so
they come from the socket only; a request header ``SSL-Client-Cert`` arrives as
``HTTP_SSL_CLIENT_CERT``, a different key that nothing here reads.
"""

from __future__ import annotations

import ssl

__all__ = [
    "CHAIN_PREFIX",
    "CLIENT_CERT",
    "OWNED_PREFIXES",
    "PEER_CHAIN_DER",
    "PEER_DER",
    "SESSION_RESUMED",
    "apply_policy",
    "is_owned",
    "peer_certificates",
    "peer_environ",
    "scrub_environ",
    "server_context",
]

CLIENT_CERT = "SSL_CLIENT_CERT"
CHAIN_PREFIX = "SSL_CLIENT_CERT_CHAIN_"
PEER_DER = "s2s_auth.peer_der"
PEER_CHAIN_DER = "s2s_auth.peer_chain_der"
SESSION_RESUMED = "SSL_SESSION_RESUMED"

#: Environ keys only the server sets: whatever else put them there is removed.
OWNED_PREFIXES = (CLIENT_CERT, PEER_DER, PEER_CHAIN_DER, SESSION_RESUMED)


# --- policy -------------------------------------------------------------------------------


def apply_policy(context: ssl.SSLContext, *, cert_reqs: int = ssl.CERT_OPTIONAL) -> ssl.SSLContext:
    """Apply the client-certificate and protocol policy to a server context (in place)."""
    # Never weaker than CERT_OPTIONAL, but a configured CERT_REQUIRED stays.
    context.verify_mode = ssl.CERT_REQUIRED if cert_reqs == ssl.CERT_REQUIRED else ssl.CERT_OPTIONAL
    if context.minimum_version < ssl.TLSVersion.TLSv1_2:  # incl. MINIMUM_SUPPORTED (-2)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options &= ~ssl.OP_NO_TICKET  # session tickets: resumption on
    context.options |= ssl.OP_NO_RENEGOTIATION  # the peer is fixed for the connection
    return context


def server_context(
    certfile: str, keyfile: str | None, ca_certs: str, *, cert_reqs: int = ssl.CERT_OPTIONAL
) -> ssl.SSLContext:
    """A server context from PEM files with :func:`apply_policy` applied.

    ``ca_certs`` is required: without it Python would trust the system's public CAs
    for client certificates.
    """
    if not ca_certs:
        raise ValueError("a TLS server needs the CA bundle that client certificates chain to")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca_certs)
    context.load_cert_chain(certfile=certfile, keyfile=keyfile)
    return apply_policy(context, cert_reqs=cert_reqs)


# --- environ ------------------------------------------------------------------------------


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
    """The environ entries of a TLS connection (see the module docstring); ``{}`` if not TLS."""
    if not isinstance(sslsock, ssl.SSLSocket):
        return {}
    environ: dict = {
        "HTTPS": "on",
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


def is_owned(key: str) -> bool:
    """Whether only the TLS server may set this environ key."""
    return key.startswith(OWNED_PREFIXES)


def scrub_environ(environ: dict) -> None:
    """Remove every key the TLS server owns, whoever set it (:func:`is_owned`, inlined:
    every request of the TLS worker runs this over its whole environ)."""
    for key in [k for k in environ if k.startswith(OWNED_PREFIXES)]:
        del environ[key]
