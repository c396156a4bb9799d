"""Certificate renewal, the request-free part: when a certificate is due, the CSR a
service sends, and the checks the identity service makes of one.

A renewal proves two things: the caller holds its *current* certificate (its mTLS
connection, verified like any other, revocation included) and the *new* key (the
CSR's signature). What the new certificate says comes from the first alone: the
SPIFFE ID and the DNS/IP names are copied from the presenting certificate, never
taken from the CSR, so a CSR cannot ask for another identity. A CSR that names
another SPIFFE ID is refused outright (``spiffe_id_mismatch``), so the attempt is
visible in the audit log rather than silently corrected.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from s2s_auth.errors import S2SError

__all__ = ["MAX_CSR_BYTES", "CSRRejected", "build_csr", "check_csr", "renewal_due"]

#: A P-256 CSR with a SPIFFE ID is well under 1 KiB in PEM.
MAX_CSR_BYTES = 8192


class CSRRejected(S2SError):
    """A certificate signing request refused; ``code`` says why (``invalid_csr``,
    ``csr_signature_invalid``, ``spiffe_id_mismatch``, ``key_reused``,
    ``unsupported_key``)."""


def renewal_due(cert: x509.Certificate, fraction: float) -> dt.datetime:
    """When ``cert`` should be renewed: ``fraction`` of the way through its validity."""
    if not 0 < fraction < 1:
        raise ValueError("the renewal point is a fraction of the lifetime, 0 < f < 1")
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    return start + (end - start) * fraction


def build_csr(key: ec.EllipticCurvePrivateKey, spiffe_id: str) -> bytes:
    """A PEM CSR for ``key`` naming ``spiffe_id`` (the identity service takes the
    identity from the presenting certificate anyway; the SAN says what is asked)."""
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, spiffe_id[:64])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(spiffe_id)]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _spki(key) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def check_csr(data: bytes, *, spiffe_id: str, current: x509.Certificate):
    """The public key of a PEM or DER CSR for ``spiffe_id``, renewing ``current``.

    Refused (:class:`CSRRejected`): not a CSR, a signature that does not verify (no
    proof of the new key), a key other than P-256, the key of ``current`` (a
    renewal brings a fresh key pair), a SPIFFE ID other than ``spiffe_id``.
    """
    if len(data) > MAX_CSR_BYTES:
        raise CSRRejected("invalid_csr", f"The CSR is larger than {MAX_CSR_BYTES} bytes.")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            csr = x509.load_pem_x509_csr(data.strip())
        else:
            csr = x509.load_der_x509_csr(data)
        public_key = csr.public_key()
        signature_ok = csr.is_signature_valid
    except (ValueError, TypeError) as exc:
        raise CSRRejected("invalid_csr", f"Not a PKCS#10 certificate request: {exc}") from None
    if not signature_ok:
        raise CSRRejected(
            "csr_signature_invalid", "The CSR's signature does not verify with its key."
        )
    if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
        public_key.curve, ec.SECP256R1
    ):
        raise CSRRejected("unsupported_key", "Only P-256 (EC) keys are certified.")
    if _spki(public_key) == _spki(current.public_key()):
        raise CSRRejected("key_reused", "A renewal needs a new key pair, not the current one.")
    try:
        sans = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        asked = sans.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        asked = []
    except ValueError as exc:
        raise CSRRejected("invalid_csr", f"Unreadable CSR extensions: {exc}") from None
    other = [uri for uri in asked if uri != spiffe_id]
    if other:
        raise CSRRejected(
            "spiffe_id_mismatch",
            f"The CSR asks for {other[0][:200]!r}; a renewal keeps {spiffe_id}.",
        )
    return public_key
