"""Where a request's client certificate comes from: the TLS socket, or a trusted proxy.

The TLS worker and ``runserver_tls`` put the peer's chain into the WSGI environ
(``SSL_CLIENT_CERT`` and ``SSL_CLIENT_CERT_CHAIN_<n>``); a TLS-terminating proxy passes
it in a header, believed only from an address in ``TRUSTED_PROXIES``. Every mechanism
and the issuer ask :func:`verify_peer`, so the chain is verified once per request.
"""

from __future__ import annotations

from s2s_auth.conf import s2s_settings
from s2s_auth.core.certs import VerifiedPeer, peer_verifier
from s2s_auth.tls.proxy_headers import is_trusted_proxy, pem_from_nginx, pem_from_xfcc

__all__ = ["peer_chain_pem", "verify_peer"]


def peer_chain_pem(request) -> str | None:
    """PEM of the client chain: from a trusted proxy's header, else from the socket.

    Raises ProxyHeaderError when a trusted proxy sent an unreadable header.
    """
    meta = request.META
    conf = s2s_settings()
    if is_trusted_proxy(meta.get("REMOTE_ADDR"), conf.TRUSTED_PROXIES):
        if conf.PROXY_CERT_HEADER == "envoy":
            header = meta.get("HTTP_X_FORWARDED_CLIENT_CERT")
            if header:
                return pem_from_xfcc(header)
        else:
            header = meta.get("HTTP_" + conf.NGINX_CERT_HEADER.upper().replace("-", "_"))
            if header:
                return pem_from_nginx(header)
    leaf = meta.get("SSL_CLIENT_CERT")
    if not leaf:
        return None
    chain = [leaf]
    index = 0
    while meta.get(f"SSL_CLIENT_CERT_CHAIN_{index}"):
        chain.append(meta[f"SSL_CLIENT_CERT_CHAIN_{index}"])
        index += 1
    return "\n".join(chain)


def verify_peer(request) -> VerifiedPeer | None:
    """The verified client certificate of this request, or None when there is none.

    Memoised on the request, so mechanisms that build on the TLS peer (certificate-
    bound tokens, service JWTs over mTLS) verify it once. Raises CertificateRejected
    or ProxyHeaderError.
    """
    # Kept on Django's request (a DRF request forwards each attribute read to it).
    request = getattr(request, "_request", request)
    cached = getattr(request, "_s2s_peer", None)
    if cached is not None:
        return cached or None
    pem = peer_chain_pem(request)
    peer = peer_verifier().verify_pem(pem) if pem else None
    request._s2s_peer = peer or False
    return peer
