"""A CRL without ``nextUpdate``, which ``cryptography``'s builder refuses to make.

RFC 5280 makes nextUpdate mandatory for conforming CAs, but the ASN.1 keeps it optional
and other CAs omit it. The test builds a CRL with ``cryptography``, drops nextUpdate from
the DER of its TBSCertList and signs the result again with the CA's key (the signature
itself is ``cryptography``'s; only the DER framing is edited here).
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

_PEM_CRL = re.compile(rb"-----BEGIN X509 CRL-----.+?-----END X509 CRL-----", re.DOTALL)
_UTC_TIME, _GENERALIZED_TIME, _SEQUENCE, _BIT_STRING = 0x17, 0x18, 0x30, 0x03


def _elements(der: bytes) -> list[tuple[int, bytes]]:
    """The (tag, encoding) of each element inside the outer SEQUENCE of ``der``."""
    _, start, end = _header(der, 0)
    out, pos = [], start
    while pos < end:
        tag, _, value_end = _header(der, pos)
        out.append((tag, der[pos:value_end]))
        pos = value_end
    return out


def _header(der: bytes, pos: int) -> tuple[int, int, int]:
    tag, length = der[pos], der[pos + 1]
    pos += 2
    if length & 0x80:
        size = length & 0x7F
        length = int.from_bytes(der[pos : pos + size], "big")
        pos += size
    return tag, pos, pos + length


def _encode(tag: int, body: bytes) -> bytes:
    if len(body) < 0x80:
        return bytes([tag, len(body)]) + body
    size = len(body).to_bytes((len(body).bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + body


def without_next_update(
    crl: x509.CertificateRevocationList, key: ec.EllipticCurvePrivateKey
) -> x509.CertificateRevocationList:
    """``crl`` (signed ECDSA-SHA256 by ``key``) with its nextUpdate removed, re-signed."""
    fields = _elements(crl.tbs_certlist_bytes)
    times = [i for i, (tag, _) in enumerate(fields) if tag in (_UTC_TIME, _GENERALIZED_TIME)]
    assert len(times) == 2, "thisUpdate and nextUpdate"
    del fields[times[1]]
    tbs = _encode(_SEQUENCE, b"".join(raw for _, raw in fields))
    algorithm = _elements(crl.public_bytes(serialization.Encoding.DER))[1][1]
    signature = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    der = _encode(_SEQUENCE, tbs + algorithm + _encode(_BIT_STRING, b"\x00" + signature))
    result = x509.load_der_x509_crl(der)
    assert result.next_update_utc is None
    return result


def crls_in(path: Path) -> list[x509.CertificateRevocationList]:
    """Every CRL of a PEM file, in order (``s2s_pki``: the intermediate's, the root's)."""
    return [x509.load_pem_x509_crl(block) for block in _PEM_CRL.findall(path.read_bytes())]
