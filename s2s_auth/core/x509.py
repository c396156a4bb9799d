"""Small certificate helpers, each written once: fingerprints, thumbprints, chains.

* :func:`fingerprint`: SHA-256 of the DER, lowercase hex. Our certificate id: the
  ``keyid`` of HTTP signatures, the ``kid`` of service JWTs, audit records, the CA index.
* :func:`x5t_s256`: the RFC 8705 ``x5t#S256`` thumbprint (base64url SHA-256 of the DER)
  that binds an access token to a client certificate.
* :func:`x5c_encode` / :func:`x5c_decode`: the RFC 7515 ``x5c`` header, a list of
  standard-base64 DER certificates, leaf first.
* :func:`parse_pem_chain`: a presented chain in any of its forms (PEM, DER, list).

No Django, no requests: usable by the client, the core and the issuer alike.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from s2s_auth.core.jose_encoding import TokenError, b64url_encode
from s2s_auth.errors import S2SError
from s2s_auth.identity import is_spiffe_id

__all__ = [
    "MAX_CHAIN_LENGTH",
    "CertificateRejected",
    "fingerprint",
    "parse_pem_chain",
    "spiffe_uris",
    "uri_sans",
    "x5c_decode",
    "x5c_encode",
    "x5t_s256",
]

#: Longest chain accepted from a peer (leaf + intermediates), in any form.
MAX_CHAIN_LENGTH = 8


class CertificateRejected(S2SError):
    """A presented certificate chain was refused; ``code`` says why.

    ``fingerprint`` is the leaf's (:func:`fingerprint`) once it could be parsed.
    """

    def __init__(self, code: str, detail: str, *, fingerprint: str | None = None):
        super().__init__(code, detail)
        self.fingerprint = fingerprint


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER, lowercase hex (no colons)."""
    return hashlib.sha256(_der(cert)).hexdigest()


def x5t_s256(cert: x509.Certificate) -> str:
    """RFC 8705 §3.1 ``x5t#S256``: base64url (no padding) of SHA-256 over the DER."""
    return b64url_encode(hashlib.sha256(_der(cert)).digest())


def x5c_encode(chain: Sequence[x509.Certificate]) -> list[str]:
    """RFC 7515 §4.1.6 ``x5c``: standard base64 (not base64url) of each DER, leaf first."""
    return [base64.b64encode(_der(cert)).decode("ascii") for cert in chain]


def x5c_decode(value: object) -> list[x509.Certificate]:
    """The certificates of an ``x5c`` header value, leaf first.

    Raises ``TokenError("malformed_token")`` when the value is not a list of 1 to
    :data:`MAX_CHAIN_LENGTH` non-empty, canonical standard-base64 strings, and
    ``CertificateRejected("malformed_certificate")`` when an entry is not a DER
    certificate. Nothing is verified here: that is the ``PeerVerifier``'s job.
    """
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_CHAIN_LENGTH:
        raise TokenError(
            "malformed_token", f"x5c must be a list of 1-{MAX_CHAIN_LENGTH} certificates"
        )
    ders = []
    for item in value:
        if not isinstance(item, str) or not item:
            raise TokenError("malformed_token", "x5c entries must be non-empty strings")
        try:
            decoded = base64.b64decode(item, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise TokenError("malformed_token", "x5c is not standard base64") from exc
        # One encoding per certificate: no stray padding, no non-zero trailing bits.
        if base64.b64encode(decoded).decode("ascii") != item:
            raise TokenError("malformed_token", "x5c is not canonical base64")
        ders.append(decoded)
    certs = []
    for der in ders:
        try:
            certs.append(x509.load_der_x509_certificate(der))
        except ValueError as exc:
            raise CertificateRejected(
                "malformed_certificate", f"x5c holds no DER certificate: {exc}"
            ) from None
    return certs


def parse_pem_chain(
    data: bytes | str | Sequence[bytes | x509.Certificate],
) -> list[x509.Certificate]:
    """Parse a chain, leaf first: PEM text/bytes, one DER blob, or a list of DER blobs.

    Raises ``CertificateRejected("malformed_certificate")`` when nothing parses, or
    when the chain is longer than :data:`MAX_CHAIN_LENGTH`.
    """
    try:
        if isinstance(data, str):
            data = data.encode("ascii")
        if isinstance(data, bytes | bytearray | memoryview):
            raw = bytes(data)
            if b"-----BEGIN" in raw:
                certs = x509.load_pem_x509_certificates(raw)
            elif raw:
                certs = [x509.load_der_x509_certificate(raw)]
            else:
                certs = []
        else:
            certs = []
            for item in data:
                if isinstance(item, x509.Certificate):
                    certs.append(item)
                elif b"-----BEGIN" in bytes(item):
                    certs.extend(x509.load_pem_x509_certificates(bytes(item)))
                else:
                    certs.append(x509.load_der_x509_certificate(bytes(item)))
    except (ValueError, TypeError, UnicodeError, x509.InvalidVersion) as exc:
        raise CertificateRejected(
            "malformed_certificate", f"Could not parse the certificate: {exc}"
        ) from None
    if not certs:
        raise CertificateRejected("malformed_certificate", "No certificate presented.")
    if len(certs) > MAX_CHAIN_LENGTH:
        raise CertificateRejected(
            "malformed_certificate",
            f"Chain of {len(certs)} certificates is longer than {MAX_CHAIN_LENGTH}.",
        )
    return certs


def uri_sans(cert: x509.Certificate) -> list[str]:
    """Every URI SAN of ``cert``, in order (an X509-SVID has exactly one).

    Raises ``ValueError`` for a malformed SAN extension.
    """
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return list(san.get_values_for_type(x509.UniformResourceIdentifier))


def spiffe_uris(cert: x509.Certificate) -> list[str]:
    """The URI SANs of ``cert`` that claim to be SPIFFE IDs (unvalidated), in order.

    Raises ``ValueError`` for a malformed SAN extension.
    """
    return [u for u in uri_sans(cert) if is_spiffe_id(u)]
