"""``GET /pki/crl/<ca>.crl``: the CRL of each CA of the identity service, published.

``<ca>`` is the CA's key id (hex SHA-1 key identifier of its public key, as in its
SubjectKeyIdentifier: what :func:`s2s_auth.core.issuance.crl_url_for` puts in the CRL
Distribution Points of the certificates it issued), or ``intermediate`` / ``root`` for
an operator. The body is the DER CRL, ``application/pkix-crl`` (RFC 5280 §4.2.1.13,
RFC 2585). No authentication: a CRL is signed by its CA and public; a verifier checks
that signature, never the channel alone.

The CA host re-signs the CRLs here when less than half of ``CRL_VALIDITY`` is left
(:meth:`~s2s_auth.core.ca.CertificateAuthority.refresh_crl`), so verifiers that fetch
every ``CRL_REFRESH_SECONDS`` always find one current; a revocation (``s2s_pki revoke``)
re-signs at once. Responses may be cached for ``CRL_REFRESH_SECONDS`` (never past the
CRL's nextUpdate).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re

from cryptography.hazmat.primitives.serialization import Encoding
from django.http import HttpResponse, JsonResponse
from django.utils.http import http_date
from django.views import View

from s2s_auth.conf import s2s_settings
from s2s_auth.core.ca import CertificateAuthority, PKIError
from s2s_auth.core.issuance import crl_url_for

__all__ = ["CRLView", "local_ca"]

logger = logging.getLogger("s2s_auth.issuer.crl")

CONTENT_TYPE = "application/pkix-crl"
_ALIASES = ("intermediate", "root")  # the order of CertificateAuthority.ca_certificates()
CA_ID_RE = re.compile(r"[0-9a-f]{40}|intermediate|root")


def local_ca() -> CertificateAuthority:
    """The CA of ``PKI_DIR`` as the settings configure it: certificates it issues name
    ``CRL_URL``, its CRLs are valid for ``CRL_VALIDITY``. (Issue and renew through
    this, so that every certificate carries the distribution point.)"""
    conf = s2s_settings()
    return CertificateAuthority(
        conf.pki_dir,
        conf.TRUST_DOMAIN,
        crl_url=conf.CRL_URL,
        crl_validity=conf.crl_validity,
    )


def _error(status: int, code: str, detail: str) -> JsonResponse:
    response = JsonResponse({"error": code, "detail": detail}, status=status)
    response["Cache-Control"] = "no-store"
    return response


class CRLView(View):
    http_method_names = ["get", "head"]

    def get(self, request, ca_id: str):
        ca_id = ca_id.lower()
        if not CA_ID_RE.fullmatch(ca_id):
            return _error(404, "unknown_ca", "Name a CA by its key id (40 hex digits).")
        ca = local_ca()
        if not ca.initialized:
            return _error(404, "unknown_ca", "This service holds no CA.")
        try:
            ca.refresh_crl()
            authorities = ca.ca_certificates()
            crls = ca.crls()
        except (PKIError, OSError, ValueError) as exc:
            logger.error("CRLs of %s unavailable: %s", ca.directory, exc)
            return _error(503, "crl_unavailable", "The CRLs cannot be read or signed now.")
        for alias, authority in zip(_ALIASES, authorities, strict=True):
            key_id = crl_url_for("", authority).removeprefix("/").removesuffix(".crl")
            if ca_id in (alias, key_id):
                break
        else:
            return _error(404, "unknown_ca", f"No CA with key id {ca_id}.")
        for crl in crls:
            if crl.issuer == authority.subject and crl.is_signature_valid(authority.public_key()):
                return self._response(crl)
        return _error(503, "crl_unavailable", "No CRL of that CA is signed yet.")

    @staticmethod
    def _response(crl) -> HttpResponse:
        der = crl.public_bytes(Encoding.DER)
        response = HttpResponse(der, content_type=CONTENT_TYPE)
        now = dt.datetime.now(dt.UTC)
        left = (crl.next_update_utc - now).total_seconds() if crl.next_update_utc else 0
        max_age = int(max(0, min(float(s2s_settings().CRL_REFRESH_SECONDS), left)))
        response["Cache-Control"] = f"public, max-age={max_age}"
        response["Last-Modified"] = http_date(crl.last_update_utc.timestamp())
        if crl.next_update_utc is not None:
            response["Expires"] = http_date(crl.next_update_utc.timestamp())
        response["ETag"] = '"' + hashlib.sha256(der).hexdigest()[:32] + '"'
        return response
