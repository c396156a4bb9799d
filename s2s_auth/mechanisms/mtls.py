"""Mutual TLS: the client certificate of the connection (or of a trusted proxy)."""

from __future__ import annotations

from s2s_auth.conf import s2s_settings
from s2s_auth.core.certs import CertificateRejected, VerifiedPeer, peer_verifier
from s2s_auth.errors import CredentialRejected
from s2s_auth.mechanisms.base import ServiceAuthentication, identity_for
from s2s_auth.tls.proxy_headers import (
    ProxyHeaderError,
    is_trusted_proxy,
    pem_from_nginx,
    pem_from_xfcc,
)


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
    cached = getattr(request, "_s2s_peer", None)
    if cached is not None:
        return cached or None
    pem = peer_chain_pem(request)
    peer = peer_verifier().verify_pem(pem) if pem else None
    request._s2s_peer = peer or False
    return peer


class MTLSAuthentication(ServiceAuthentication):
    """The certificate must chain to the configured anchors, be valid now, carry the
    clientAuth EKU, not be revoked, name a SPIFFE ID in our trust domain, and map to
    an enabled ``ServicePrincipal``. ``request.auth`` is the ``VerifiedPeer``."""

    mechanism = "mtls"

    def authenticate(self, request):
        try:
            peer = verify_peer(request)
        except ProxyHeaderError as exc:
            self.refuse(request, CredentialRejected("malformed_proxy_header", str(exc)))
        except CertificateRejected as exc:
            self.refuse(
                request,
                CredentialRejected(exc.code, exc.detail),
                fingerprint=exc.fingerprint or "",
            )
        if peer is None:
            return None
        try:
            identity = identity_for(peer.spiffe_id, self.mechanism)
        except CredentialRejected as exc:
            self.refuse(request, exc, principal=peer.spiffe_id, fingerprint=peer.fingerprint)
        self.accept(request, identity, fingerprint=peer.fingerprint)
        return identity, peer

    def authenticate_header(self, request) -> str:
        realm = s2s_settings().own_spiffe_id or "s2s"
        return f'Mutual-TLS realm="{realm}"'
