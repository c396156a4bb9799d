"""Mutual TLS: the client certificate of the connection (or of a trusted proxy)."""

from __future__ import annotations

from s2s_auth.conf import s2s_settings
from s2s_auth.core.x509 import CertificateRejected
from s2s_auth.errors import S2SError
from s2s_auth.mechanisms.base import ServiceAuthentication, identity_for_name
from s2s_auth.tls.peer import verify_peer
from s2s_auth.tls.proxy_headers import ProxyHeaderError


class MTLSAuthentication(ServiceAuthentication):
    """The certificate must chain to the configured anchors, be valid now, carry the
    clientAuth EKU, not be revoked, name a SPIFFE ID in our trust domain, and map to
    an enabled ``ServicePrincipal``. ``request.auth`` is the ``VerifiedPeer``."""

    mechanism = "mtls"

    def authenticate(self, request):
        try:
            peer = verify_peer(request)
        except ProxyHeaderError as exc:
            self.reject(request, S2SError("malformed_proxy_header", exc.detail))
        except CertificateRejected as exc:
            self.reject(request, exc, fingerprint=exc.fingerprint or "")
        if peer is None:
            return None
        try:
            end_user = self.end_user(request, peer.spiffe_id)
            # The verifier of these settings read the name out of the SPIFFE ID already
            # (this trust domain, a SPIFFE_ID_PATHS template): not parsed again.
            identity = identity_for_name(
                peer.service_name, peer.spiffe_id, self.mechanism, end_user=end_user
            )
        except S2SError as exc:
            self.reject(request, exc, principal=peer.spiffe_id, fingerprint=peer.fingerprint)
        self.accept(request, identity, fingerprint=peer.fingerprint)
        return identity, peer

    def authenticate_header(self, request) -> str:
        realm = s2s_settings().own_spiffe_id or "s2s"
        return f'Mutual-TLS realm="{realm}"'
