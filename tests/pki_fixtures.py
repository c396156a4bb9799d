"""Throwaway CAs and hand-made certificates, shared by every suite via tests/conftest.py.

- ``ca``: a session-wide CertificateAuthority (trust domain ``fleamarket.local``), with
  ``init()`` done. Issue certificates under names unique to your test if you revoke them.
- ``rogue_ca``: an unrelated CA with the *same* trust domain (its certificates must be
  refused as ``untrusted_chain``, not as a foreign trust domain).
- ``make_leaf``: builds leaves that ``CertificateAuthority.issue`` would not (no
  clientAuth EKU, no/odd SPIFFE IDs, self-signed, custom validity).
- ``peer_verifier_for``: a PeerVerifier over a CA's ca.pem and crl.pem.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from s2s_auth.core.ca import CertificateAuthority
from s2s_auth.core.certs import PeerVerifier

TRUST_DOMAIN = "fleamarket.local"


@pytest.fixture(scope="session")
def ca(tmp_path_factory) -> CertificateAuthority:
    authority = CertificateAuthority(tmp_path_factory.mktemp("pki"), TRUST_DOMAIN)
    authority.init()
    return authority


@pytest.fixture(scope="session")
def rogue_ca(tmp_path_factory) -> CertificateAuthority:
    authority = CertificateAuthority(tmp_path_factory.mktemp("rogue-pki"), TRUST_DOMAIN)
    authority.init()
    return authority


@dataclass
class Leaf:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    chain: list[x509.Certificate]  # leaf first, as presented

    @property
    def chain_pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.chain)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


_DEFAULT = object()


def build_leaf(
    ca: CertificateAuthority | None,
    name: str = "custom",
    *,
    uris: Sequence[str] | object = _DEFAULT,
    dns_names: Sequence[str] = ("localhost",),
    eku: Sequence[x509.ObjectIdentifier] | None = (
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.SERVER_AUTH,
    ),
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
) -> Leaf:
    """A leaf signed by ``ca``'s intermediate, or self-signed when ``ca`` is None.

    ``uris`` defaults to the SPIFFE ID of ``name`` in ``ca``'s trust domain; ``eku=None``
    leaves the EKU extension out.
    """
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    if uris is _DEFAULT:
        domain = ca.trust_domain if ca else TRUST_DOMAIN
        uris = [f"spiffe://{domain}/service/{name}"]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    if ca is None:
        issuer_name, signing_key, issuer_key_id, extra = subject, key, key.public_key(), []
    else:
        inter_cert, signing_key = ca.load_intermediate()
        issuer_name, issuer_key_id, extra = (
            inter_cert.subject,
            signing_key.public_key(),
            [inter_cert],
        )
    sans = [x509.UniformResourceIdentifier(u) for u in uris] + [x509.DNSName(d) for d in dns_names]
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - dt.timedelta(minutes=1))
        .not_valid_after(not_after or now + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key_id), critical=False
        )
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    cert = builder.sign(signing_key, hashes.SHA256())
    return Leaf(cert=cert, key=key, chain=[cert, *extra])


@pytest.fixture(scope="session")
def make_leaf():
    """``make_leaf(ca_or_None, name, *, uris=..., dns_names=..., eku=..., not_before=...,
    not_after=...) -> Leaf`` (see :func:`build_leaf`)."""
    return build_leaf


@pytest.fixture
def peer_verifier_for():
    """``peer_verifier_for(ca, **kwargs) -> PeerVerifier`` over ca.pem and crl.pem."""

    def factory(authority: CertificateAuthority, **kwargs) -> PeerVerifier:
        return PeerVerifier(
            kwargs.pop("anchors_path", authority.ca_path),
            kwargs.pop("crl_path", authority.crl_path),
            kwargs.pop("trust_domain", authority.trust_domain),
            **kwargs,
        )

    return factory
