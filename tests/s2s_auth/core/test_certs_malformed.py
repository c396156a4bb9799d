"""A certificate whose extensions do not parse is a refusal with a reason, never a 500.

cryptography parses extensions lazily, and a duplicate extension raises
``DuplicateExtension``, which is not a ``ValueError`` (found by the mechanism fuzzer).
"""

from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from s2s_auth.core.x509 import CertificateRejected

KEY_USAGE_OID = bytes.fromhex("0603551d0f")  # 2.5.29.15
EXTENDED_KEY_USAGE_OID = bytes.fromhex("0603551d25")  # 2.5.29.37


def with_duplicate_key_usage(cert: x509.Certificate) -> bytes:
    """The DER of ``cert`` with its EKU extension relabelled as a second KeyUsage."""
    der = cert.public_bytes(serialization.Encoding.DER)
    assert der.count(EXTENDED_KEY_USAGE_OID) == 1 and KEY_USAGE_OID in der
    return der.replace(EXTENDED_KEY_USAGE_OID, KEY_USAGE_OID)


def test_invalid_version_is_malformed_certificate(ca):
    """``InvalidVersion`` is not a ValueError either: a chain with an X.509 "v4" is refused."""
    from s2s_auth.core.x509 import parse_pem_chain

    issued = ca.issue("peer-bad-version")
    leaf = x509.load_pem_x509_certificates(issued.cert_path.read_bytes())[0]
    der = leaf.public_bytes(serialization.Encoding.DER)
    v3 = bytes.fromhex("a003020102")  # [0] EXPLICIT INTEGER 2 (v3)
    assert der.count(v3) == 1
    bad = der.replace(v3, bytes.fromhex("a003020103"))
    with pytest.raises(CertificateRejected) as info:
        parse_pem_chain([bad])
    assert info.value.code == "malformed_certificate"


def with_x400_address(cert: x509.Certificate) -> bytes:
    """The DER of ``cert`` with its SAN's URI retagged as an x400Address ([3]), a
    general name cryptography does not parse."""
    der = cert.public_bytes(serialization.Encoding.DER)
    uri = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    value = uri.get_values_for_type(x509.UniformResourceIdentifier)[0].encode()
    field = bytes([0x86, len(value)]) + value  # [6] IMPLICIT IA5String
    assert der.count(field) == 1
    return der.replace(field, bytes([0xA3, len(value)]) + value)


@pytest.mark.parametrize(
    ("breaking", "escaped"),
    [
        (with_duplicate_key_usage, x509.DuplicateExtension),
        # found by the XFCC fuzzer
        (with_x400_address, x509.UnsupportedGeneralNameType),
    ],
)
def test_unparsable_extensions_are_malformed_certificate(ca, peer_verifier_for, breaking, escaped):
    """Neither error is a ValueError: both used to escape as a 500."""
    issued = ca.issue(f"peer-{breaking.__name__.replace('_', '-')}")
    leaf = x509.load_pem_x509_certificates(issued.cert_path.read_bytes())[0]
    broken = x509.load_der_x509_certificate(breaking(leaf))
    with pytest.raises(escaped):
        _ = broken.extensions
    with pytest.raises(CertificateRejected) as info:
        peer_verifier_for(ca).verify([broken])
    assert info.value.code == "malformed_certificate"
