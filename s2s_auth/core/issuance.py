"""What the CA signs: root, intermediate and service certificates, and CRLs.

Pure ``cryptography`` builders (P-256 keys, SHA-256 signatures): no files, no index,
no clock of their own. :class:`s2s_auth.core.ca.CertificateAuthority` decides names,
lifetimes and serials and writes the results.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "build_crl",
    "certs_pem",
    "crl_distribution_points",
    "crl_url_for",
    "intermediate_ca",
    "key_pem",
    "new_key",
    "root_ca",
    "service_certificate",
]


def new_key() -> ec.EllipticCurvePrivateKey:
    """A fresh P-256 key: every key of this PKI is one."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM (written with mode 0600 only)."""
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certs_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def _name(trust_domain: str, common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, trust_domain),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; a service signs (TLS, JWTs, requests)."""
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _ski(cert: x509.Certificate) -> x509.SubjectKeyIdentifier:
    return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value


def crl_url_for(base: str, issuer: x509.Certificate) -> str:
    """Where the CRL of CA ``issuer`` is published under ``base``:
    ``<base>/<key id>.crl``, the key id being the hex SHA-1 key identifier of the CA's
    public key (RFC 5280 §4.2.1.2, as in its SubjectKeyIdentifier): it names one CA key,
    so a re-initialised CA never shares a URL with the old one."""
    key_id = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key()).digest.hex()
    return f"{base.rstrip('/')}/{key_id}.crl"


def crl_distribution_points(url: str) -> x509.CRLDistributionPoints:
    """RFC 5280 §4.2.1.13: one distribution point, a full-name URI, every reason."""
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def root_ca(
    trust_domain: str,
    key: ec.EllipticCurvePrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """The self-signed root: the trust anchor (path length 1: one intermediate)."""
    name = _name(trust_domain, f"{trust_domain} Root CA")
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def intermediate_ca(
    trust_domain: str,
    key: ec.EllipticCurvePrivateKey,
    root: x509.Certificate,
    root_key: ec.EllipticCurvePrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    crl_url: str | None = None,
) -> x509.Certificate:
    """The intermediate that issues service certificates and the CRL (path length 0).

    ``crl_url``: base URL where the CA's CRLs are published; the certificate then names
    the root's CRL in a CRL Distribution Points extension."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(trust_domain, f"{trust_domain} Intermediate CA"))
        .issuer_name(root.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(root)),
            critical=False,
        )
    )
    if crl_url:
        builder = builder.add_extension(
            crl_distribution_points(crl_url_for(crl_url, root)), critical=False
        )
    return builder.sign(root_key, hashes.SHA256())


def service_certificate(
    trust_domain: str,
    name: str,
    spiffe_id: str,
    public_key: ec.EllipticCurvePublicKey,
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    sans: Iterable[x509.GeneralName],
    not_before: dt.datetime,
    not_after: dt.datetime,
    crl_url: str | None = None,
) -> x509.Certificate:
    """A service's leaf: its SPIFFE ID as the first URI SAN, EKU clientAuth + serverAuth,
    so the same certificate serves TLS servers and clients. ``crl_url`` (the base URL of
    the published CRLs) adds a CRL Distribution Points extension naming the issuer's."""
    all_sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(spiffe_id), *sans]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(trust_domain, name))
        .issuer_name(issuer.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(ca=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.SERVER_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName(all_sans), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(issuer)),
            critical=False,
        )
    )
    if crl_url:
        builder = builder.add_extension(
            crl_distribution_points(crl_url_for(crl_url, issuer)), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def build_crl(
    issuer: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    number: int,
    revoked: Iterable[tuple[int, dt.datetime]],
    last_update: dt.datetime,
    next_update: dt.datetime,
) -> x509.CertificateRevocationList:
    """A CRL of ``issuer`` listing ``revoked`` ``(serial, revocation date)`` pairs."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(last_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(_ski(issuer)),
            critical=False,
        )
    )
    for serial, revoked_at in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(serial)
            .revocation_date(revoked_at)
            .build()
        )
    return builder.sign(issuer_key, hashes.SHA256())
