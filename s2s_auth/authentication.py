"""DRF authentication classes: thin adapters from a request to the core verifiers.

Each class returns ``None`` when the request does not use its scheme,
``(ServiceIdentity, credential)`` on success, and raises ``CredentialMissing``
(401) or ``CredentialRejected`` (403) with a reason code otherwise.
"""

from __future__ import annotations

from django.core.exceptions import ObjectDoesNotExist
from rest_framework.authentication import BaseAuthentication

from . import events
from .certs import CertificateRejected, VerifiedPeer, parse_pem_chain, peer_verifier
from .conf import s2s_settings
from .exceptions import CredentialRejected
from .models import ServicePrincipal
from .principal import ServiceIdentity
from .proxy_headers import ProxyHeaderError, is_trusted_proxy, pem_from_nginx, pem_from_xfcc

__all__ = ["MTLSAuthentication", "identity_for"]

PEER_CHAIN_KEYS = ("SSL_CLIENT_CERT",)  # then SSL_CLIENT_CERT_CHAIN_0, _1, ...


def identity_for(spiffe_id: str, mechanism: str, *, fingerprint: str = "") -> ServiceIdentity:
    """The enabled principal with this SPIFFE ID, or a 403 with the reason."""
    try:
        principal = ServicePrincipal.objects.only(
            "id", "name", "spiffe_id", "enabled", "scopes"
        ).get(spiffe_id=spiffe_id)
    except ObjectDoesNotExist:
        raise CredentialRejected(
            "unknown_principal", f"{spiffe_id} is not a registered service principal."
        ) from None
    if not principal.enabled:
        raise CredentialRejected("principal_disabled", f"{principal.name} is disabled.")
    return ServiceIdentity(
        name=principal.name,
        spiffe_id=principal.spiffe_id,
        scopes=principal.scope_set,
        mechanism=mechanism,
        principal_id=principal.pk,
    )


class MTLSAuthentication(BaseAuthentication):
    """Mutual TLS: the client certificate of the connection (or of a trusted proxy).

    The certificate must chain to the configured anchors, be valid now, carry the
    clientAuth EKU, not be revoked, name a SPIFFE ID in our trust domain, and map
    to an enabled ``ServicePrincipal``. ``request.auth`` is the ``VerifiedPeer``.
    """

    mechanism = "mtls"

    def authenticate(self, request):
        try:
            pem = self.get_peer_chain_pem(request)
        except ProxyHeaderError as exc:
            self.refuse(request, CredentialRejected("malformed_proxy_header", str(exc)))
        if not pem:
            return None
        try:
            peer = peer_verifier().verify(parse_pem_chain(pem))
        except CertificateRejected as exc:
            self.refuse(
                request,
                CredentialRejected(exc.code, exc.detail),
                fingerprint=getattr(exc, "fingerprint", "") or "",
            )
        try:
            identity = identity_for(peer.spiffe_id, self.mechanism, fingerprint=peer.fingerprint)
        except CredentialRejected as exc:
            self.refuse(request, exc, principal=peer.spiffe_id, fingerprint=peer.fingerprint)
        events.record(
            request,
            mechanism=self.mechanism,
            outcome="accepted",
            principal=identity.spiffe_id,
            fingerprint=peer.fingerprint,
        )
        return identity, peer

    def authenticate_header(self, request) -> str:
        realm = s2s_settings().own_spiffe_id or "s2s"
        return f'Mutual-TLS realm="{realm}"'

    def get_peer_chain_pem(self, request) -> str | None:
        """PEM of the client chain: from a trusted proxy's header, else from the socket."""
        meta = request.META
        conf = s2s_settings()
        if is_trusted_proxy(meta.get("REMOTE_ADDR"), conf.TRUSTED_PROXIES):
            if conf.PROXY_CERT_HEADER == "envoy":
                header = meta.get("HTTP_X_FORWARDED_CLIENT_CERT")
                if header:
                    return pem_from_xfcc(header)
            else:
                key = "HTTP_" + conf.NGINX_CERT_HEADER.upper().replace("-", "_")
                header = meta.get(key)
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

    def refuse(self, request, exc, *, principal: str = "", fingerprint: str = ""):
        events.record(
            request,
            mechanism=self.mechanism,
            outcome="refused",
            reason=exc.reason,
            detail=str(exc.detail.get("detail", "")),
            principal=principal,
            fingerprint=fingerprint,
        )
        raise exc


def verified_peer(request) -> VerifiedPeer | None:
    """The mTLS peer of this request, when MTLSAuthentication accepted it."""
    auth = getattr(request, "auth", None)
    return auth if isinstance(auth, VerifiedPeer) else None
