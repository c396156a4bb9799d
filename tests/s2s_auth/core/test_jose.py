"""Tests of s2s_auth.core.jose: every refusal reason with a real signed token."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s2s_auth.core import jose as tokens
from s2s_auth.core.jose import TokenError
from s2s_auth.core.jwk import (
    JWK,
    JWKSet,
    public_jwk,
)
from tests.s2s_auth.core.jose_support import (
    CALLER,
    NOW,
    TARGET,
    b64,
    b64json,
    check,
    claims,
    raw_es256,
    refused,
)

# ----------------------------------------------------------------- round trips


@pytest.mark.parametrize("keyname,alg", [("ec_key", "ES256"), ("ed_key", "EdDSA")])
def test_round_trip(request, keyname, alg):
    key = request.getfixturevalue(keyname)
    token = tokens.sign(claims(), key, kid="k1")
    result = check(
        token, key.public_key(), issuer=CALLER, subject=CALLER, typ="JWT", max_lifetime=60
    )
    assert result.algorithm == alg
    assert result.key_id == "k1"
    assert result.claims["sub"] == CALLER
    assert result.header == {"alg": alg, "kid": "k1", "typ": "JWT"}
    assert result.token == token
    # through a published JWK as well, and as bytes
    jwk = JWK(public_jwk(key.public_key(), "k1"))
    assert check(token.encode(), jwk).claims == result.claims
    with pytest.raises(AttributeError):
        result.algorithm = "none"  # frozen


@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_round_trip_rsa_when_allowed(rsa_key, alg):
    token = tokens.sign(claims(), rsa_key, algorithm=alg)
    refused("algorithm_not_allowed", token, rsa_key.public_key())  # not in the default list
    result = check(token, rsa_key.public_key(), algorithms=("ES256", "RS256", "PS256"))
    assert result.algorithm == alg


def test_sign_default_algorithm_follows_key(ec_key, ed_key, rsa_key):
    assert tokens.unverified_header(tokens.sign({}, ec_key))["alg"] == "ES256"
    assert tokens.unverified_header(tokens.sign({}, ed_key))["alg"] == "EdDSA"
    assert tokens.unverified_header(tokens.sign({}, rsa_key))["alg"] == "RS256"
    assert "typ" not in tokens.unverified_header(tokens.sign({}, ec_key, typ=None))
    header = tokens.unverified_header(tokens.sign({}, ec_key, typ="at+jwt", headers={"x5c": []}))
    assert header == {"alg": "ES256", "typ": "at+jwt", "x5c": []}


def test_now_accepts_aware_datetime(ec_key):
    token = tokens.sign(claims(), ec_key)
    when = datetime.fromtimestamp(NOW + 10, tz=UTC)
    assert check(token, ec_key.public_key(), now=when).claims["iat"] == NOW
    with pytest.raises(ValueError):
        check(token, ec_key.public_key(), now=datetime(2027, 1, 1))  # naive


def test_verify_jws_raw_payload(ec_key):
    token = raw_es256({"alg": "ES256"}, b"not json at all", ec_key)
    header, payload = tokens.verify_jws(token, ec_key.public_key(), algorithms=["ES256"])
    assert header == {"alg": "ES256"}
    assert payload == b"not json at all"
    # ... which is not a JWT
    refused("malformed_token", token, ec_key.public_key())


# ------------------------------------------------------------------ algorithms


def test_alg_none_refused(ec_key):
    payload = b64json(claims())
    unsigned = f"{b64json({'alg': 'none'})}.{payload}."
    refused("malformed_token", unsigned, ec_key.public_key())  # no signature at all
    with_garbage = f"{b64json({'alg': 'none'})}.{payload}.{b64(b'x' * 64)}"
    refused("algorithm_not_allowed", with_garbage, ec_key.public_key())
    for name in ("NONE", "None"):
        forged = f"{b64json({'alg': name})}.{payload}.{b64(b'x' * 64)}"
        refused("algorithm_not_allowed", forged, ec_key.public_key())


def test_hs256_with_public_key_bytes_refused(ec_key, rsa_key):
    """Algorithm confusion: HMAC keyed with the verifier's public key."""
    for private_key in (ec_key, rsa_key):
        public = private_key.public_key()
        pem = public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        signing_input = f"{b64json({'alg': 'HS256', 'typ': 'JWT'})}.{b64json(claims())}"
        mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        forged = f"{signing_input}.{b64(mac)}"
        err = refused(
            "algorithm_not_allowed", forged, public, algorithms=("ES256", "RS256", "PS256")
        )
        assert "HS256" in err.detail


def test_es256_header_on_ed25519_key(ec_key, ed_key):
    token = tokens.sign(claims(), ec_key)  # genuinely ES256-signed
    err = refused("algorithm_not_allowed", token, ed_key.public_key())
    assert "does not fit the key" in err.detail
    # and the other way round
    refused("algorithm_not_allowed", tokens.sign(claims(), ed_key), ec_key.public_key())


def test_rs256_header_on_ec_key_even_if_allowed(ec_key, rsa_key):
    token = tokens.sign(claims(), rsa_key)
    refused("algorithm_not_allowed", token, ec_key.public_key(), algorithms=("ES256", "RS256"))


def test_unsupported_key_objects(ec_key):
    token = tokens.sign(claims(), ec_key)
    p384 = ec.generate_private_key(ec.SECP384R1())
    refused("unsupported_key", token, p384.public_key())
    with pytest.raises(TypeError):
        check(token, ec_key)  # a private key is a programming error
    with pytest.raises(TypeError):
        check(token, b"-----BEGIN PUBLIC KEY-----")


# -------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "extra",
    [
        {"jku": "https://attacker.example/jwks.json"},
        {"x5u": "https://attacker.example/cert.pem"},
        {"jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}},
        {"crit": ["exp"]},
        {"crit": ["b64"], "b64": True},
        {"b64": True},
    ],
    ids=["jku", "x5u", "jwk", "crit", "crit-b64", "b64"],
)
def test_forbidden_headers(ec_key, extra):
    token = raw_es256({"alg": "ES256", **extra}, json.dumps(claims()).encode(), ec_key)
    refused("forbidden_header", token, ec_key.public_key())
    with pytest.raises(TokenError) as info:
        tokens.unverified_header(token)
    assert info.value.code == "forbidden_header"
    with pytest.raises(ValueError):
        tokens.sign(claims(), ec_key, headers=extra)


def test_embedded_jwk_of_attacker_not_used(ec_key, ec_key2):
    attacker_jwk = public_jwk(ec_key2.public_key(), None)
    token = raw_es256({"alg": "ES256", "jwk": attacker_jwk}, b"{}", ec_key2)
    refused("forbidden_header", token, ec_key.public_key())


@pytest.mark.parametrize(
    "header",
    [
        {"alg": 256},
        {"alg": ""},
        {"typ": "JWT"},
        {"alg": "ES256", "kid": 7},
        {"alg": "ES256", "typ": ["JWT"]},
    ],
)
def test_bad_header_members(ec_key, header):
    token = raw_es256(header, json.dumps(claims()).encode(), ec_key)
    refused("malformed_token", token, ec_key.public_key())


def test_duplicate_header_and_claim_names(ec_key):
    header = b'{"alg":"ES256","alg":"none"}'
    signing_input = f"{b64(header)}.{b64json(claims())}".encode()
    sig = jwt.algorithms.ECAlgorithm(jwt.algorithms.ECAlgorithm.SHA256).sign(signing_input, ec_key)
    refused("malformed_token", f"{signing_input.decode()}.{b64(sig)}", ec_key.public_key())
    payload = json.dumps(claims())[:-1] + f', "aud": "{CALLER}"}}'
    token = raw_es256({"alg": "ES256"}, payload.encode(), ec_key)
    refused("malformed_token", token, ec_key.public_key())


def test_nan_and_non_utf8_claims(ec_key):
    token = raw_es256({"alg": "ES256"}, b'{"exp": NaN, "iat": 1}', ec_key)
    refused("malformed_token", token, ec_key.public_key())
    token = raw_es256({"alg": "ES256"}, json.dumps(claims()).encode("utf-16"), ec_key)
    refused("malformed_token", token, ec_key.public_key())
    token = raw_es256({"alg": "ES256"}, b"[1, 2]", ec_key)
    refused("malformed_token", token, ec_key.public_key())


# ----------------------------------------------------------------- structure


def test_token_too_large_before_parsing(ec_key):
    big = "a" * 100 * 1024
    refused("token_too_large", big, ec_key.public_key())
    bomb = b64(b"[" * 100_000) + ".e30.AA"
    refused("token_too_large", bomb, ec_key.public_key())
    with pytest.raises(TokenError) as info:
        tokens.unverified_header(big.encode())
    assert info.value.code == "token_too_large"
    # a padded-out but otherwise valid token
    token = tokens.sign(claims(pad="x" * 100 * 1024), ec_key)
    refused("token_too_large", token, ec_key.public_key())
    assert check(token, ec_key.public_key(), max_length=200_000).claims["pad"]


def test_nesting_bomb_within_size_limit(ec_key):
    token = raw_es256({"alg": "ES256"}, b"[" * 6000, ec_key)
    refused("malformed_token", token, ec_key.public_key())
    # deep but maybe parseable (depends on the interpreter's stack): refused either way
    token = raw_es256({"alg": "ES256"}, b'{"a":' * 900 + b"1" + b"}" * 900, ec_key)
    with pytest.raises(TokenError) as info:
        check(token, ec_key.public_key())
    assert info.value.code in {"malformed_token", "missing_claim"}
    header_bomb = b64(b'{"alg":"ES256","x":' + b"[" * 5000 + b"]" * 5000 + b"}") + ".e30.AA"
    with pytest.raises(TokenError):
        tokens.unverified_header(header_bomb, max_length=100_000)


def _flip_unused_bits(segment: str) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet.index(segment[-1])
    return segment[:-1] + alphabet[last ^ 1]


def test_structural_garbage(ec_key):
    token = tokens.sign(claims(), ec_key)
    header, payload, signature = token.split(".")
    bad = {
        "truncated to 4n+1": token[:-1],
        "two parts": f"{header}.{payload}",
        "four parts": f"{token}.{signature}",
        "jwe": ".".join([header, "", "AAAA", payload, "AAAA"]),
        "json serialization": json.dumps({"payload": payload, "signature": signature}),
        "padding": f"{header}.{payload}.{signature}==",
        "padding in header": f"{header}=.{payload}.{signature}",
        "standard alphabet": f"{header}.{payload}.{signature.replace('-', '+').replace('_', '/')}",
        "space": f"{header}.{payload}. {signature}",
        "non-base64": f"{header}.{payload}.{signature[:10]}?{signature[10:]}",
        "empty": "",
        "dots": "..",
        "non-ascii": f"{header}.{payload}.{signature[:-1]}é",
        "header not json": f"{b64(b'alg')}.{payload}.{signature}",
        "header array": f"{b64json(['ES256'])}.{payload}.{signature}",
        "length 4n+1": f"{header}.{payload}.{signature}AAA",
    }
    if "-" not in signature and "_" not in signature:  # make the standard-alphabet case real
        bad["standard alphabet"] = f"{header}.{payload}.+{signature[1:]}"
    for name, candidate in bad.items():
        with pytest.raises(TokenError) as info:
            check(candidate, ec_key.public_key())
        assert info.value.code == "malformed_token", name
    # cut at a base64 quantum boundary, the rest is still well-formed: the signature fails
    refused("bad_signature", token[:-10], ec_key.public_key())


def test_non_canonical_base64_refused(ec_key):
    token = tokens.sign(claims(), ec_key)
    header, payload, signature = token.split(".")
    assert len(signature) % 4 != 0  # 64 bytes → 86 chars: 4 unused bits
    twisted = _flip_unused_bits(signature)
    assert base64.urlsafe_b64decode(twisted + "==") == base64.urlsafe_b64decode(signature + "==")
    refused("malformed_token", f"{header}.{payload}.{twisted}", ec_key.public_key())
    # same for header and payload when they have unused bits
    for i, part in enumerate((header, payload)):
        if len(part) % 4:
            parts = [header, payload, signature]
            parts[i] = _flip_unused_bits(part)
            refused("malformed_token", ".".join(parts), ec_key.public_key())


def test_bytes_inputs(ec_key):
    token = tokens.sign(claims(), ec_key)
    assert check(token.encode("ascii"), ec_key.public_key()).token == token
    refused("malformed_token", token.encode() + b"\xff", ec_key.public_key())
    refused("malformed_token", None, ec_key.public_key())
    refused("malformed_token", 12, ec_key.public_key())


# --------------------------------------------------------------- signatures


def test_bad_signature(ec_key, ec_key2, ed_key):
    refused("bad_signature", tokens.sign(claims(), ec_key2), ec_key.public_key())
    token = tokens.sign(claims(), ec_key)
    header, payload, signature = token.split(".")
    other_payload = b64json(claims(sub=TARGET))
    refused("bad_signature", f"{header}.{other_payload}.{signature}", ec_key.public_key())
    refused("bad_signature", f"{header}.{payload}.{b64(bytes(64))}", ec_key.public_key())
    refused("bad_signature", f"{header}.{payload}.{b64(bytes(63))}", ec_key.public_key())
    other_ed = ed25519.Ed25519PrivateKey.generate()
    refused("bad_signature", tokens.sign(claims(), other_ed), ed_key.public_key())


def test_unknown_key(ec_key, ec_key2):
    keys = JWKSet.from_dict({"keys": [public_jwk(ec_key.public_key(), "k1")]})
    token = tokens.sign(claims(), ec_key2, kid="k2")
    with pytest.raises(TokenError) as info:
        keys.get(tokens.unverified_header(token)["kid"])
    assert info.value.code == "unknown_key"
    # a JWK given directly must carry the token's kid
    refused("unknown_key", token, keys.get("k1"))


# ---------------------------------------------------------------------- claims


def test_wrong_audience_issuer_subject(ec_key):
    key = ec_key.public_key()
    token = tokens.sign(claims(), ec_key)
    refused("wrong_audience", token, key, audience="spiffe://fleamarket.local/service/ads")
    refused("wrong_audience", token, key, audience=None)  # aud present, verifier has none
    assert check(token, key, audience=["x", TARGET])
    refused("wrong_issuer", token, key, issuer="spiffe://evil.example/service/ads")
    refused("wrong_subject", token, key, subject="spiffe://fleamarket.local/service/worker")
    no_aud = tokens.sign(claims(aud=None), ec_key)
    refused("missing_claim", no_aud, key)
    no_sub = tokens.sign(claims(sub=None), ec_key)
    refused("missing_claim", no_sub, key, subject=CALLER)
    list_aud = tokens.sign(claims(aud=["a", TARGET]), ec_key)
    assert check(list_aud, key).claims["aud"] == ["a", TARGET]


def test_missing_required_claims(ec_key):
    key = ec_key.public_key()
    refused("missing_claim", tokens.sign(claims(exp=None), ec_key), key)
    refused("missing_claim", tokens.sign(claims(iat=None), ec_key), key)
    refused("missing_claim", tokens.sign(claims(jti=None), ec_key), key, require=["jti"])
    assert check(tokens.sign(claims(iat=None), ec_key), key, require=["exp"])


@pytest.mark.parametrize(
    "overrides",
    [{"exp": "1900000000"}, {"iat": True}, {"nbf": [1]}, {"sub": 5}, {"jti": 1}],
)
def test_invalid_claim_types(ec_key, overrides):
    refused("invalid_claim", tokens.sign(claims(**overrides), ec_key), ec_key.public_key())


def test_time_claims(ec_key):
    key = ec_key.public_key()
    token = tokens.sign(claims(iat=NOW, exp=NOW + 60), ec_key)
    assert check(token, key, now=NOW + 59)
    refused("expired", token, key, now=NOW + 60)
    assert check(token, key, now=NOW + 89, leeway=30)
    refused("expired", token, key, now=NOW + 90, leeway=timedelta(seconds=30))

    future_iat = tokens.sign(claims(iat=NOW + 100, exp=NOW + 120), ec_key)
    refused("issued_in_future", future_iat, key)
    assert check(future_iat, key, leeway=100)

    nbf = tokens.sign(claims(nbf=NOW + 10), ec_key)
    refused("not_yet_valid", nbf, key)
    assert check(nbf, key, now=NOW + 10)
    assert check(nbf, key, leeway=10)
    with pytest.raises(ValueError):
        check(token, key, leeway=-1)


def test_default_clock_is_system_time(ec_key):
    token = tokens.sign(claims(), ec_key)  # NOW is in 2027
    with pytest.raises(TokenError):
        tokens.verify(token, ec_key.public_key(), audience=TARGET)


def test_lifetime(ec_key):
    key = ec_key.public_key()
    token = tokens.sign(claims(iat=NOW, exp=NOW + 61), ec_key)
    refused("lifetime_too_long", token, key, max_lifetime=60)
    assert check(token, key, max_lifetime=61)
    assert check(token, key, max_lifetime=timedelta(minutes=2))
    no_iat = tokens.sign(claims(iat=None), ec_key)
    refused("missing_claim", no_iat, key, max_lifetime=60, require=["exp"])


def test_typ(ec_key):
    key = ec_key.public_key()
    at = tokens.sign(claims(), ec_key, typ="at+jwt")
    for expected in ("at+jwt", "application/at+jwt", "AT+JWT", "Application/At+JWT"):
        assert check(at, key, typ=expected)
    app = tokens.sign(claims(), ec_key, typ="application/at+jwt")
    assert check(app, key, typ="at+jwt")
    refused("wrong_type", at, key, typ="JWT")
    refused("wrong_type", tokens.sign(claims(), ec_key), key, typ="at+jwt")
    refused("wrong_type", tokens.sign(claims(), ec_key, typ=None), key, typ="JWT")


def test_typ_from_a_set_of_accepted_types(ec_key):
    """Client assertions accept their own type, the generic JWT, or none; nothing else."""
    key = ec_key.public_key()
    accepted = ("client-authentication+jwt", "JWT", None)
    for typ in ("client-authentication+jwt", "application/client-authentication+jwt", "jwt", None):
        assert check(tokens.sign(claims(), ec_key, typ=typ), key, typ=accepted)
    for typ in ("at+jwt", "s2s+jwt", "dpop+jwt", "JOSE"):
        refused("wrong_type", tokens.sign(claims(), ec_key, typ=typ), key, typ=accepted)
    refused("wrong_type", tokens.sign(claims(), ec_key, typ=None), key, typ=["JWT"])
    with pytest.raises(ValueError):
        check(tokens.sign(claims(), ec_key), key, typ=[])


def test_empty_jti_is_refused(ec_key):
    """An empty jti would make every such token share one replay key: refused outright."""
    key = ec_key.public_key()
    refused("invalid_claim", tokens.sign(claims(jti=""), ec_key), key)
    refused("invalid_claim", tokens.sign(claims(jti=""), ec_key), key, require=["jti"])
    assert check(tokens.sign(claims(jti="x"), ec_key), key, require=["jti"])


# ---------------------------------------------------------------------- minting


def test_sign_refusals(ec_key, ed_key):
    with pytest.raises(ValueError):
        tokens.sign(claims(), ec_key, algorithm="EdDSA")
    with pytest.raises(ValueError):
        tokens.sign(claims(), ec_key, algorithm="HS256")
    with pytest.raises(ValueError):
        tokens.sign(claims(), ec_key, algorithm="none")
    with pytest.raises(ValueError):
        tokens.sign(claims(), ec_key, headers={"alg": "none"})
    with pytest.raises(TypeError):
        tokens.sign(claims(), ec_key.public_key())
    with pytest.raises(TypeError):
        tokens.sign(claims(), b"secret")
    with pytest.raises(ValueError):
        tokens.sign(claims(), ec.generate_private_key(ec.SECP384R1()))


def test_new_jti():
    values = {tokens.new_jti() for _ in range(1000)}
    assert len(values) == 1000
    for value in values:
        assert len(base64.urlsafe_b64decode(value + "==")) == 16


def test_error_shape():
    err = TokenError("bad_signature", "nope")
    assert err.code == "bad_signature"
    assert err.detail == "nope"
    assert TokenError("wrong_type").detail == "wrong type"


def test_library_errors_are_chained(ec_key, ec_key2):
    with pytest.raises(TokenError) as info:
        check(tokens.sign(claims(), ec_key2), ec_key.public_key())
    assert isinstance(info.value.__cause__, jwt.InvalidSignatureError)


# ------------------------------------------------------------------- hypothesis

_KEY = ec.generate_private_key(ec.SECP256R1())
_ED_KEY = ed25519.Ed25519PrivateKey.generate()
_VALID = tokens.sign(claims(), _KEY, kid="k")
_ED_VALID = tokens.sign(claims(), _ED_KEY)
_B64_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/. "


def _only_token_error(candidate, key):
    try:
        tokens.verify(candidate, key, audience=TARGET, now=NOW)
    except TokenError:
        pass
    else:
        return True
    with contextlib.suppress(TokenError):
        tokens.unverified_header(candidate)
    with contextlib.suppress(TokenError):
        tokens.verify_jws(candidate, key)
    return False


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(st.text(), st.binary(), st.text(alphabet=_B64_CHARS)))
def test_random_input_only_token_error(candidate):
    assert not _only_token_error(candidate, _KEY.public_key())


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from([(_VALID, _KEY), (_ED_VALID, _ED_KEY)]),
    st.integers(min_value=0, max_value=2),
    st.data(),
)
def test_mutated_tokens_never_verify(pair, part_index, data):
    token, key = pair
    parts = token.split(".")
    part = parts[part_index]
    position = data.draw(st.integers(min_value=0, max_value=len(part) - 1))
    replacement = data.draw(st.sampled_from(_B64_CHARS).filter(lambda c: c != part[position]))
    parts[part_index] = part[:position] + replacement + part[position + 1 :]
    mutated = ".".join(parts)
    assert not _only_token_error(mutated, key.public_key())


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=5),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
            lambda children: (
                st.lists(children, max_size=3)
                | st.dictionaries(st.text(max_size=3), children, max_size=3)
            ),
            max_leaves=10,
        ),
        max_size=6,
    )
)
def test_random_signed_headers_only_token_error(header):
    """Arbitrary (validly signed) headers never crash the verifier."""
    header = {**header, "alg": header.get("alg", "ES256")}
    try:
        token = raw_es256(header, json.dumps(claims()).encode(), _KEY)
    except ValueError:  # NaN etc. in json.dumps is fine
        return
    with contextlib.suppress(TokenError):
        tokens.verify(token, _KEY.public_key(), audience=TARGET, now=NOW)
