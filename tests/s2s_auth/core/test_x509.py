"""Certificate helpers written once (s2s_auth.core.x509): fingerprints, x5t#S256, x5c."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from s2s_auth.core.jose import TokenError
from s2s_auth.core.x509 import (
    MAX_CHAIN_LENGTH,
    CertificateRejected,
    fingerprint,
    parse_pem_chain,
    spiffe_uris,
    x5c_decode,
    x5c_encode,
    x5t_s256,
)
from s2s_auth.errors import S2SError


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def chain(ca) -> list[x509.Certificate]:
    return parse_pem_chain(ca.issue("x509-helpers").cert_path.read_bytes())


# -- fingerprint and x5t#S256 -----------------------------------------------------------


def test_fingerprint_is_sha256_hex_of_der(ca):
    cert = ca.root_certificate()
    assert fingerprint(cert) == hashlib.sha256(der(cert)).hexdigest()
    assert len(fingerprint(cert)) == 64
    assert fingerprint(cert) == fingerprint(cert).lower()


def test_x5t_s256_is_unpadded_base64url_of_the_same_digest(chain):
    leaf = chain[0]
    digest = bytes.fromhex(fingerprint(leaf))
    thumb = x5t_s256(leaf)
    assert len(thumb) == 43 and "=" not in thumb
    assert base64.urlsafe_b64decode(thumb + "=") == digest
    assert x5t_s256(chain[1]) != thumb


# -- x5c --------------------------------------------------------------------------------


def test_x5c_round_trip_is_standard_base64_of_der(chain):
    value = x5c_encode(chain)
    assert value == [base64.b64encode(der(c)).decode("ascii") for c in chain]
    assert x5c_decode(value) == chain


def test_x5c_accepts_up_to_the_chain_limit(chain):
    assert len(x5c_decode(x5c_encode(chain[:1] * MAX_CHAIN_LENGTH))) == MAX_CHAIN_LENGTH


def _url_safe(value: str) -> str:
    return value.replace("+", "-").replace("/", "_")


@pytest.mark.parametrize(
    "hostile",
    [
        pytest.param(lambda v: None, id="null"),
        pytest.param(lambda v: v[0], id="a string, not a list"),
        pytest.param(lambda v: {"0": v[0]}, id="an object"),
        pytest.param(lambda v: [], id="empty list"),
        pytest.param(lambda v: v[:1] * (MAX_CHAIN_LENGTH + 1), id="9 certificates"),
        pytest.param(lambda v: v[:1] * 1000, id="1000 certificates"),
        pytest.param(lambda v: [v[0], 42], id="a number"),
        pytest.param(lambda v: [v[0].encode()], id="bytes"),
        pytest.param(lambda v: [""], id="empty entry"),
        pytest.param(lambda v: [[v[0]]], id="nested list"),
        pytest.param(lambda v: [_url_safe(v[0])], id="base64url alphabet"),
        pytest.param(lambda v: [v[0] + "A"], id="bad padding"),
        pytest.param(lambda v: [v[0] + "="], id="stray padding"),
        pytest.param(lambda v: ["QUF="], id="non-zero trailing bits"),
        pytest.param(lambda v: [v[0][:64] + "\n" + v[0][64:]], id="line break"),
        pytest.param(lambda v: [v[0] + " "], id="trailing space"),
        pytest.param(lambda v: ["!!!!"], id="not base64"),
        pytest.param(lambda v: ["\u00e9" * 4], id="non-ascii"),
    ],
)
def test_x5c_decode_refuses_malformed_values_as_malformed_token(chain, hostile):
    value = hostile(x5c_encode(chain))
    with pytest.raises(TokenError) as info:
        x5c_decode(value)
    assert info.value.code == "malformed_token"


def test_the_url_safe_case_differs_from_the_valid_one(chain):
    encoded = x5c_encode(chain)
    assert any(_url_safe(v) != v for v in encoded)  # else the case above tests nothing


@pytest.mark.parametrize(
    "payload",
    [
        b"garbage",
        b"\x30\x03\x02\x01\x01",
        b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    ],
)
def test_x5c_decode_refuses_non_certificates_as_malformed_certificate(chain, payload):
    with pytest.raises(CertificateRejected) as info:
        x5c_decode([x5c_encode(chain)[0], base64.b64encode(payload).decode()])
    assert info.value.code == "malformed_certificate"
    assert info.value.fingerprint is None


def test_x5c_decode_refuses_a_pem_certificate_inside(chain):
    pem = chain[0].public_bytes(serialization.Encoding.PEM)
    with pytest.raises(CertificateRejected):
        x5c_decode([base64.b64encode(pem).decode()])


# -- parse_pem_chain --------------------------------------------------------------------


def test_parse_pem_chain_order_and_forms(ca):
    issued = ca.issue("peer-parse")
    pem = issued.cert_path.read_bytes()
    parsed = parse_pem_chain(pem)
    assert [c.subject for c in parsed] == [
        x509.load_pem_x509_certificates(pem)[0].subject,
        ca.intermediate_certificate().subject,
    ]
    assert parse_pem_chain(pem.decode()) == parsed
    assert parse_pem_chain([der(c) for c in parsed]) == parsed
    assert parse_pem_chain(der(parsed[0])) == parsed[:1]
    assert parse_pem_chain(parsed) == parsed


def test_overlong_chain_is_malformed(ca):
    inter = ca.intermediate_certificate()
    assert len(parse_pem_chain([inter] * MAX_CHAIN_LENGTH)) == MAX_CHAIN_LENGTH
    with pytest.raises(CertificateRejected) as info:
        parse_pem_chain([inter] * (MAX_CHAIN_LENGTH + 1))
    assert info.value.code == "malformed_certificate"


# -- SPIFFE URIs and the error shape ----------------------------------------------------


def test_spiffe_uris_picks_spiffe_sans_in_order(ca, make_leaf, chain):
    assert spiffe_uris(chain[0]) == ["spiffe://fleamarket.local/service/x509-helpers"]
    leaf = make_leaf(
        ca,
        "users",
        uris=["https://example.org/", "SPIFFE://a/b", "spiffe://fleamarket.local/service/x"],
    )
    assert spiffe_uris(leaf.cert) == ["SPIFFE://a/b", "spiffe://fleamarket.local/service/x"]
    assert spiffe_uris(make_leaf(ca, "users", uris=[]).cert) == []


def test_certificate_rejected_is_an_s2s_error():
    exc = CertificateRejected("revoked", "gone", fingerprint="ab")
    assert isinstance(exc, S2SError)
    assert (exc.code, exc.detail, exc.fingerprint, str(exc)) == (
        "revoked",
        "gone",
        "ab",
        "revoked: gone",
    )
