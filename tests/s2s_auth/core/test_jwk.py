"""JWKs, JWK Sets and the algorithm policy (s2s_auth.core.jwk)."""

from __future__ import annotations

import base64
import json

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from s2s_auth.core import jose as tokens
from s2s_auth.core.jose import TokenError
from s2s_auth.core.jwk import (
    ALGORITHMS_NEVER,
    JWK,
    JWKSet,
    check_algorithms,
    public_jwk,
    thumbprint,
)
from tests.s2s_auth.core.jose_support import (
    NOW,
    b64,
    check,
    claims,
    refused,
)


@pytest.mark.parametrize(
    "allow_list",
    [("ES256", "HS256"), ("none",), ("HS512",), ("RS384",), ("ES512",), (), "ES256", ("hs256",)],
)
def test_bad_allow_lists_are_configuration_errors(ec_key, allow_list):
    token = tokens.sign(claims(), ec_key)
    with pytest.raises(ValueError):
        tokens.verify(token, ec_key.public_key(), algorithms=allow_list, now=NOW)
    with pytest.raises(ValueError):
        check_algorithms(allow_list)


def test_algorithms_never():
    assert {"none", "HS256", "HS384", "HS512"} == ALGORITHMS_NEVER
    assert check_algorithms(["ES256", "EdDSA", "RS256", "PS256"])


# ------------------------------------------------------------------------- JWK


def test_jwk_parse_and_publish(ec_key, ed_key, rsa_key):
    for private_key, alg in ((ec_key, "ES256"), (ed_key, "EdDSA"), (rsa_key, "RS256")):
        published = public_jwk(private_key.public_key(), "k")
        assert published["use"] == "sig"
        assert published["alg"] == alg
        assert published["kid"] == "k"
        assert "d" not in published
        jwk = JWK(published)
        assert jwk.kid == "k"
        assert jwk.alg == alg
        # RFC 9864: an EdDSA key also verifies under the name Ed25519.
        assert jwk.algorithms == ({"EdDSA", "Ed25519"} if alg == "EdDSA" else {alg})
        assert jwk.thumbprint() == thumbprint(private_key.public_key())
    ec_jwk = public_jwk(ec_key.public_key(), "k")
    assert set(ec_jwk) == {"kty", "crv", "x", "y", "kid", "use", "alg"}
    with pytest.raises(TypeError):
        public_jwk(ec_key, "k")


def test_rsa_jwk_alg_narrows_algorithms(rsa_key):
    jwk = JWK(public_jwk(rsa_key.public_key(), "r", alg="PS256"))
    token = tokens.sign(claims(), rsa_key, algorithm="RS256")
    refused("algorithm_not_allowed", token, jwk, algorithms=("RS256", "PS256"))
    no_alg = {k: v for k, v in jwk.to_dict().items() if k != "alg"}
    assert check(token, JWK(no_alg), algorithms=("RS256", "PS256"))


def test_thumbprint_rfc7638_example():
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1"
        "L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4"
        "QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbO"
        "pbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csF"
        "Cur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert JWK(jwk).thumbprint() == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.fixture()
def ec_jwk(ec_key):
    return public_jwk(ec_key.public_key(), "kid-1")


@pytest.mark.parametrize(
    "change,code",
    [
        ({"use": "enc"}, "key_not_for_signing"),
        ({"key_ops": ["encrypt"]}, "key_not_for_signing"),
        ({"key_ops": ["sign"]}, "key_not_for_signing"),
        ({"key_ops": "verify"}, "invalid_key"),
        ({"d": "yy49oPcINGK2ps0LmtxpB6UTEOiITghHBif6wDqmJ3c"}, "private_key_material"),
        ({"kty": "oct", "k": "c2VjcmV0"}, "private_key_material"),
        ({"kty": "oct"}, "unsupported_key"),
        ({"crv": "P-384"}, "unsupported_key"),
        ({"crv": "secp256k1"}, "unsupported_key"),
        ({"kty": "OKP", "crv": "X25519"}, "unsupported_key"),
        ({"kty": None}, "invalid_key"),
        ({"alg": "HS256"}, "algorithm_not_allowed"),
        ({"alg": "ES512"}, "algorithm_not_allowed"),
        ({"alg": "EdDSA"}, "algorithm_not_allowed"),
        ({"kid": 1}, "invalid_key"),
        ({"x": None}, "invalid_key"),
        ({"x": "AAAA"}, "invalid_key"),  # wrong length
        ({"y": "UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw="}, "invalid_key"),  # padding
    ],
)
def test_jwk_refusals(ec_jwk, change, code):
    data = {**ec_jwk, **change}
    data = {k: v for k, v in data.items() if v is not None}
    with pytest.raises(TokenError) as info:
        JWK(data)
    assert info.value.code == code, info.value


def test_jwk_point_not_on_curve(ec_jwk):
    x = base64.urlsafe_b64decode(ec_jwk["x"] + "=")
    y = bytearray(base64.urlsafe_b64decode(ec_jwk["y"] + "="))
    y[-1] ^= 1
    with pytest.raises(TokenError) as info:
        JWK({**ec_jwk, "x": b64(x), "y": b64(bytes(y))})
    assert info.value.code == "invalid_key"
    assert info.value.__cause__ is not None


def test_jwk_small_rsa_refused():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()  # noqa: S505 - on purpose
    data = jwt.algorithms.RSAAlgorithm.to_jwk(small, as_dict=True)
    with pytest.raises(TokenError) as info:
        JWK(data)
    assert info.value.code == "weak_key"
    with pytest.raises(TokenError):
        tokens.verify("a.b.c", small)


def test_jwk_set(ec_key, ec_key2, ed_key):
    jwks = {
        "keys": [
            public_jwk(ec_key.public_key(), "a"),
            public_jwk(ec_key2.public_key(), "b"),
            public_jwk(ed_key.public_key(), "c"),
        ]
    }
    keys = JWKSet.from_dict(jwks)
    assert len(keys) == 3
    assert [k.kid for k in keys] == ["a", "b", "c"]
    assert "b" in keys
    token = tokens.sign(claims(), ec_key2, kid="b")
    assert check(token, keys.get(tokens.unverified_header(token)["kid"])).key_id == "b"
    with pytest.raises(TokenError) as info:
        keys.get(None)
    assert info.value.code == "unknown_key"
    assert JWKSet.from_json(json.dumps(keys.to_dict())).kids == ["a", "b", "c"]

    dup = {"keys": [*jwks["keys"], public_jwk(ed_key.public_key(), "a")]}
    with pytest.raises(TokenError) as info:
        JWKSet.from_dict(dup)
    assert info.value.code == "duplicate_key_id"

    enc = {**public_jwk(ec_key.public_key(), "enc"), "use": "enc"}
    with pytest.raises(TokenError) as info:
        JWKSet.from_dict({"keys": [*jwks["keys"], enc]})
    assert info.value.code == "key_not_for_signing"
    assert len(JWKSet.from_dict({"keys": [*jwks["keys"], enc]}, skip_unusable=True)) == 3

    private = {**public_jwk(ec_key.public_key(), "p"), "d": "AAAA"}
    with pytest.raises(TokenError) as info:
        JWKSet.from_dict({"keys": [*jwks["keys"], private]}, skip_unusable=True)
    assert info.value.code == "private_key_material"

    single = JWKSet.from_dict({"keys": jwks["keys"][:1]})
    assert single.get(None).kid == "a"
    for bad in ({}, {"keys": {}}, [], {"keys": "x"}):
        with pytest.raises(TokenError):
            JWKSet.from_dict(bad)
    with pytest.raises(TokenError):
        JWKSet.from_json("{" * 100)
    with pytest.raises(TokenError):
        JWKSet.from_json(" " * 70_000)


def test_rfc9864_ed25519_name_signs_and_verifies_beside_eddsa(ed_key):
    from s2s_auth.core.jose import sign, verify

    token = sign({"iat": 1, "exp": 2**40}, ed_key, algorithm="Ed25519")
    assert verify(token, ed_key.public_key(), algorithms=["Ed25519"]).algorithm == "Ed25519"
    assert verify(token, JWK(public_jwk(ed_key.public_key(), "k"))).algorithm == "Ed25519"
    with pytest.raises(TokenError) as refused:  # the allow-list still decides
        verify(token, ed_key.public_key(), algorithms=["EdDSA"])
    assert refused.value.code == "algorithm_not_allowed"
