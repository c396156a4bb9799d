"""``POST /api/v1/pki/renew``: a service renews its own certificate with the current one.

The request is a PKCS#10 CSR — the body itself (``application/pkcs10``, PEM or DER) or
JSON ``{"csr": "<PEM>"}`` — sent over mTLS with the caller's current certificate. That
certificate is the proof: it is verified like every client certificate
(:func:`s2s_auth.tls.peer.verify_peer`: chain, validity, EKU, revocation, trust
domain), must be one this CA issued, and its principal, if known here, must be
enabled. The CSR proves the new key (:func:`s2s_auth.core.renewal.check_csr`). The
new certificate carries the presenting certificate's SPIFFE ID and DNS/IP names, for
``S2S_AUTH["CERT_LIFETIME"]``, and is signed by the CA in ``PKI_DIR`` — whose key
never leaves the identity service. The old certificate is not revoked: it stays valid
until it expires, so connections and tokens in flight keep working.

Answer: ``{"certificate_chain": PEM (leaf + intermediate), "spiffe_id", "serial" (hex),
"fingerprint", "not_after"}``. Refusals are RFC 6749-shaped bodies with a ``reason``:
401 ``certificate_required`` (no client certificate), 403 with the certificate's
reason (``revoked``, ``untrusted_chain``...), ``unknown_certificate``,
``principal_disabled`` or ``spiffe_id_mismatch``, 400 ``invalid_csr``,
``csr_signature_invalid``, ``key_reused``, ``unsupported_key``, 429 ``slow_down``, 503
``ca_unavailable``. Every renewal and refusal is an audit record
(``certificate_renewed``; a refusal under its error code).

First issuance stays an operator's action (``s2s_pki issue``): without a certificate
there is nothing to renew.
"""

from __future__ import annotations

import logging

from rest_framework.parsers import BaseParser

from s2s_auth.audit.events import record_event
from s2s_auth.conf import s2s_settings
from s2s_auth.core.ca import PKIError
from s2s_auth.core.issuance import certs_pem
from s2s_auth.core.renewal import MAX_CSR_BYTES, CSRRejected, check_csr
from s2s_auth.core.x509 import CertificateRejected, fingerprint
from s2s_auth.errors import http_status
from s2s_auth.issuer.crl import local_ca
from s2s_auth.issuer.endpoint import IssuerAPIView, client_ip, token_response
from s2s_auth.issuer.oauth import OAuthError
from s2s_auth.issuer.parsers import BoundedJSONParser, read_bounded
from s2s_auth.issuer.throttling import RenewalRateThrottle
from s2s_auth.models import ServicePrincipal
from s2s_auth.tls.peer import verify_peer
from s2s_auth.tls.proxy_headers import ProxyHeaderError

__all__ = ["PKCS10Parser", "RenewView"]

logger = logging.getLogger("s2s_auth.issuer")

MECHANISM = "pki_renew"


class PKCS10Parser(BaseParser):
    """``application/pkcs10``: the CSR as the body (PEM or DER), bounded."""

    media_type = "application/pkcs10"

    def parse(self, stream, media_type=None, parser_context=None):
        return {"csr": read_bounded(stream, MAX_CSR_BYTES)}


class CSRJSONParser(BoundedJSONParser):
    max_bytes = MAX_CSR_BYTES + 1024


def _refuse(reason: str, description: str, *, status: int | None = None, principal=""):
    status = status or (403 if reason == "spiffe_id_mismatch" else 400)
    headers = {"WWW-Authenticate": 'Certificate realm="pki"'} if status == 401 else None
    return OAuthError(
        reason, description, status=status, headers=headers, principal=principal, reason=reason
    )


def _csr_bytes(data) -> bytes:
    csr = data.get("csr") if hasattr(data, "get") else None
    if isinstance(csr, str):
        csr = csr.encode("utf-8", "surrogatepass")
    if not isinstance(csr, bytes) or not csr:
        raise _refuse("invalid_csr", 'The body must be a CSR (application/pkcs10) or {"csr": PEM}.')
    return csr


class RenewView(IssuerAPIView):
    """A new certificate for the caller's own SPIFFE ID, against its current one."""

    http_method_names = ["post"]
    parser_classes = (PKCS10Parser, CSRJSONParser)
    mechanism = MECHANISM

    def post(self, request):
        csr = _csr_bytes(request.data)  # a malformed body is refused before the certificate
        peer = self._peer(request)
        principal = peer.service_name
        self.throttle(RenewalRateThrottle(peer.spiffe_id))
        conf = s2s_settings()
        ca = local_ca()  # renewed certificates name the CRL distribution point too
        if not ca.initialized:
            raise OAuthError(
                "temporarily_unavailable",
                "This identity service holds no CA to renew with.",
                status=503,
                headers={"Retry-After": "30"},
                reason="ca_unavailable",
            )
        if ca.issued(peer.serial) is None:
            raise _refuse(
                "unknown_certificate",
                "The presented certificate was not issued by this CA.",
                status=403,
                principal=principal,
            )
        if ServicePrincipal.objects.filter(name=principal, enabled=False).exists():
            raise _refuse(
                "principal_disabled", f"{principal} is disabled.", status=403, principal=principal
            )
        try:
            public_key = check_csr(csr, spiffe_id=peer.spiffe_id, current=peer.leaf)
        except CSRRejected as exc:
            raise _refuse(exc.code, exc.detail, principal=principal) from None
        try:
            chain = ca.certify(
                principal,
                public_key,
                spiffe_id=peer.spiffe_id,
                hours=conf.cert_lifetime.total_seconds() / 3600,
                **_names_of(peer.leaf),
            )
        except PKIError as exc:
            raise OAuthError(
                "temporarily_unavailable",
                str(exc),
                status=503,
                headers={"Retry-After": "30"},
                reason="ca_unavailable",
            ) from exc
        leaf = chain[0]
        body = {
            "certificate_chain": certs_pem(*chain).decode("ascii"),
            "spiffe_id": peer.spiffe_id,
            "serial": format(leaf.serial_number, "x"),
            "fingerprint": fingerprint(leaf),
            "not_after": leaf.not_valid_after_utc.isoformat(),
        }
        logger.info(
            "renewed %s from %s: serial %x -> %s, until %s",
            peer.spiffe_id,
            client_ip(request) or "-",
            peer.serial,
            body["serial"],
            body["not_after"],
        )
        record_event(
            "certificate_renewed",
            mechanism=MECHANISM,
            principal=peer.spiffe_id,
            detail=f"serial {peer.serial:x} -> {body['serial']}",
            claims={
                "previous_serial": format(peer.serial, "x"),
                "previous_fingerprint": peer.fingerprint,
                "serial": body["serial"],
                "fingerprint": body["fingerprint"],
                "not_after": body["not_after"],
            },
            request=request,
        )
        return token_response(body)

    def _peer(self, request):
        try:
            peer = verify_peer(request)
        except CertificateRejected as exc:
            raise _refuse(
                exc.code,
                f"TLS client certificate refused: {exc.detail}",
                status=http_status(exc.code) if http_status(exc.code) == 503 else 403,
            ) from exc
        except ProxyHeaderError as exc:
            raise _refuse("invalid_request", str(exc), status=400) from exc
        if peer is None:
            raise _refuse(
                "certificate_required",
                "Renewal needs the current certificate over mTLS.",
                status=401,
            )
        return peer


def _names_of(cert) -> dict:
    """The DNS and IP SANs of the presenting certificate: the new one keeps them."""
    from cryptography import x509

    try:
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {"dns_names": [], "ip_addresses": []}
    return {
        "dns_names": sans.get_values_for_type(x509.DNSName),
        "ip_addresses": [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)],
    }
