"""Where a caller's public key comes from, when it is not on the TLS connection.

A principal's certificates are registered (``register_certificate``) so that
service JWTs without ``x5c`` and RFC 9421 signatures (``keyid`` = the certificate's
SHA-256 fingerprint) can be verified. A registered certificate is still checked by
the ``PeerVerifier`` on every use: chain, validity, revocation.
"""

from __future__ import annotations

from cryptography import x509

from s2s_auth.conf import s2s_settings
from s2s_auth.core.certs import VerifiedPeer, peer_verifier
from s2s_auth.core.x509 import parse_pem_chain
from s2s_auth.identity import service_name
from s2s_auth.models import ServiceCertificate, ServicePrincipal


def _pem(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM).decode()


def register_certificate(principal: ServicePrincipal, chain_pem: str | bytes) -> ServiceCertificate:
    """Register the leaf of ``chain_pem`` for ``principal`` after verifying it.

    The certificate's SPIFFE ID must be the principal's. Idempotent.
    """
    peer = peer_verifier().verify(parse_pem_chain(chain_pem))
    if peer.service_name != principal.name:
        raise ValueError(f"certificate is for {peer.spiffe_id}, not for {principal.spiffe_id}")
    registered, _ = ServiceCertificate.objects.update_or_create(
        fingerprint=peer.fingerprint,
        defaults={
            "principal": principal,
            "serial": format(peer.serial, "x"),
            "not_after": peer.not_after,
            "pem": _pem(peer.leaf),
        },
    )
    return registered


def certificate_by_fingerprint(value: str) -> VerifiedPeer | None:
    """The registered certificate with this fingerprint, verified now; None if unknown.

    Raises ``CertificateRejected`` when it is known but no longer acceptable.
    """
    pem = (
        ServiceCertificate.objects.filter(fingerprint=value.lower())
        .values_list("pem", flat=True)
        .first()
    )
    return peer_verifier().verify_pem(pem) if pem else None


def certificates_of(spiffe_id: str) -> list[str]:
    """PEMs of the certificates registered for the principal a SPIFFE ID names (in any
    SPIFFE_ID_PATHS layout), newest first."""
    name = service_name(spiffe_id, s2s_settings().TRUST_DOMAIN)
    if name is None:
        return []
    return list(
        ServiceCertificate.objects.filter(principal__name=name)
        .order_by("-not_after")
        .values_list("pem", flat=True)
    )


__all__ = ["certificate_by_fingerprint", "certificates_of", "register_certificate"]
