"""s2s_auth.core.jose against the Wycheproof vectors (C2SP/wycheproof, see SOURCE_COMMIT.txt).

Policy of these tests:

* ``valid`` must verify, unless this project refuses the case *by policy*: HMAC keys
  and algorithms (shared secrets; ``ALGORITHMS_NEVER``), and algorithms outside
  the widest allow-list s2s_auth supports (ES256, EdDSA, RS256, PS256) such as
  RS384/PS512/ES512. Those are expected to be refused and carry ``policy-…`` ids.
* ``invalid`` must raise TokenError (from JWK parsing or verification).
* ``acceptable``: we choose to **refuse** (strict). The vector files of this commit
  contain no acceptable case; the summary test records the count.
* JWE (five-part) cases would be skipped: s2s_auth verifies JWS only.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from functools import cache
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from jwt.algorithms import ECAlgorithm, OKPAlgorithm

from s2s_auth.core import jose as tokens
from s2s_auth.core.jose import TokenError
from s2s_auth.core.jwk import ALGORITHMS_NEVER, JWK, JWKSet, key_algorithms

VECTORS = Path(__file__).resolve().parents[2] / "fixtures" / "vectors" / "wycheproof"
ALLOW = ("ES256", "EdDSA", "RS256", "PS256")

# Vendored in tests/fixtures/vectors (see its README): a missing file is an error, not a skip.
assert VECTORS.is_dir(), f"Wycheproof vectors not found at {VECTORS}"


@cache
def load(name: str) -> dict:
    return json.loads((VECTORS / name).read_text())


def cases(name: str):
    for group in load(name)["testGroups"]:
        for test in group["tests"]:
            yield group, test


def header_alg(token: str) -> str | None:
    try:
        segment = token.split(".")[0]
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))["alg"]
    except Exception:
        return None


def policy_reason(jwk: dict, token) -> str | None:
    """Why s2s_auth refuses a case regardless of its cryptographic validity."""
    if jwk.get("kty") == "oct":
        return "hmac-key"
    alg = header_alg(token) if isinstance(token, str) else None
    if alg in ALGORITHMS_NEVER:
        return f"alg-{alg}"
    if alg not in ALLOW:
        return f"alg-{alg}-not-supported"
    if jwk.get("alg") not in (None, *ALLOW):
        return f"key-alg-{jwk['alg']}-not-supported"
    if jwk.get("crv") not in (None, "P-256", "Ed25519"):
        return f"curve-{jwk['crv']}-not-supported"
    return None


# ----------------------------------------------------------------- JWS vectors


def verify_case(jwk_data: dict, token: str) -> bytes:
    """Verify like an s2s_auth verifier: parse the JWK strictly, then the JWS."""
    key = JWK(jwk_data)
    _, payload = tokens.verify_jws(token, key, algorithms=ALLOW)
    return payload


def jws_params():
    params = []
    for group, test in cases("json_web_signature_test.json"):
        jwk = group.get("public") or group["private"]
        token = test["jws"]
        reason = policy_reason(jwk, token) if test["result"] == "valid" else None
        marks = []
        if isinstance(token, str) and token.count(".") == 4:
            marks.append(pytest.mark.skip(reason="JWE: s2s_auth verifies JWS only"))
        test_id = f"tc{test['tcId']}-{test['result']}-{test['comment']}"
        if reason:
            test_id += f"-policy-{reason}"
        params.append(pytest.param(jwk, test, reason, id=test_id, marks=marks))
    return params


@pytest.mark.parametrize("jwk,test,policy", jws_params())
def test_json_web_signature(jwk, test, policy):
    token = test["jws"]
    if test["result"] == "valid" and policy is None:
        assert verify_case(jwk, token) is not None
    else:
        # invalid, acceptable (our choice: refuse) and valid-but-refused-by-policy
        with pytest.raises(TokenError):
            verify_case(jwk, token)


def base64_group_params():
    group = next(
        g for g in load("json_web_signature_test.json")["testGroups"] if g["comment"] == "base64"
    )
    valid = {t["jws"]: t["tcId"] for t in group["tests"] if t["result"] == "valid"}
    for t in group["tests"]:
        if t["result"] != "invalid":
            continue
        marks = []
        if t["jws"] in valid:
            marks.append(
                pytest.mark.skip(
                    reason=f"token is byte-identical to valid tc{valid[t['jws']]} in this copy "
                    "of the vectors (its padding is not present); refused only by the HMAC policy"
                )
            )
        yield pytest.param(t, id=f"tc{t['tcId']}-{t['comment']}", marks=marks)


@pytest.mark.parametrize("test", list(base64_group_params()))
def test_bad_encodings_refused_before_any_key(test):
    """The HMAC 'base64' group is refused by policy at the key; its bad encodings are
    also refused by the structural layer alone, whatever the key."""
    with pytest.raises(TokenError) as info:
        tokens.unverified_header(test["jws"])
    assert info.value.code == "malformed_token"


def jwk_set_params():
    for group, test in cases("json_web_key_test.json"):
        keyset = group.get("public") or group["private"]
        keys = keyset["keys"] if isinstance(keyset, dict) and "keys" in keyset else [keyset]
        reason = None
        if test["result"] == "valid":
            kid = tokens.unverified_header(test["jws"]).get("kid")
            jwk = next((k for k in keys if k.get("kid") == kid), keys[0])
            reason = policy_reason(jwk, test["jws"])
        marks = []
        if test["comment"] == "rejectsKeyWithRocaVulnerability":
            marks.append(
                pytest.mark.xfail(
                    strict=True,
                    reason="ROCA-weak RSA moduli are not detected (no fingerprint check)",
                )
            )
        test_id = f"tc{test['tcId']}-{test['result']}-{test['comment']}"
        if reason:
            test_id += f"-policy-{reason}"
        yield pytest.param(keyset, test, reason, id=test_id, marks=marks)


def verify_with_set(keyset: dict, token: str) -> bytes:
    keys = JWKSet.from_dict(keyset if "keys" in keyset else {"keys": [keyset]})
    key = keys.get(tokens.unverified_header(token).get("kid"))
    return tokens.verify_jws(token, key, algorithms=ALLOW)[1]


@pytest.mark.parametrize("keyset,test,policy", list(jwk_set_params()))
def test_json_web_key_sets(keyset, test, policy):
    if test["result"] == "valid" and policy is None:
        assert verify_with_set(keyset, test["jws"]) is not None
    else:
        with pytest.raises(TokenError):
            verify_with_set(keyset, test["jws"])


# -------------------------------------------------------------- ES256 (P1363)

_ES256 = ECAlgorithm(ECAlgorithm.SHA256)


def es256_verify(group: dict, test: dict) -> bool:
    """The ES256 verification path of verify_jws: r‖s signature, P-256 key."""
    key = serialization.load_der_public_key(bytes.fromhex(group["publicKeyDer"]))
    assert key_algorithms(key) == {"ES256"}  # the key type selects ES256
    if "publicKeyJwk" in group:  # the same key through the JWK parser
        assert JWK(group["publicKeyJwk"]).public_key.public_numbers() == key.public_numbers()
    return _ES256.verify(bytes.fromhex(test["msg"]), key, bytes.fromhex(test["sig"]))


def _zero_r_or_s(test: dict) -> bool:
    sig = bytes.fromhex(test["sig"])
    return len(sig) == 64 and (not any(sig[:32]) or not any(sig[32:]))


@pytest.mark.parametrize(
    "group,test",
    [
        pytest.param(g, t, id=f"tc{t['tcId']}-{t['result']}-{t['comment']}")
        for g, t in cases("ecdsa_secp256r1_sha256_p1363_test.json")
    ],
)
def test_ecdsa_p256_p1363(group, test):
    ok = es256_verify(group, test)
    if _zero_r_or_s(test):
        assert not ok, "r = 0 or s = 0 must never verify"
    assert ok is (test["result"] == "valid")  # no acceptable cases; would be refused


def test_es256_zero_signature_through_verify_jws():
    """r = s = 0 as a JWS signature: refused by the full verifier too."""
    group, _ = next(iter(cases("ecdsa_secp256r1_sha256_p1363_test.json")))
    key = JWK(group["publicKeyJwk"])
    header = base64.urlsafe_b64encode(b'{"alg":"ES256"}').rstrip(b"=").decode()
    zero = base64.urlsafe_b64encode(bytes(64)).rstrip(b"=").decode()
    with pytest.raises(TokenError) as info:
        tokens.verify_jws(f"{header}.e30.{zero}", key)
    assert info.value.code == "bad_signature"


# -------------------------------------------------------------------- Ed25519

_EDDSA = OKPAlgorithm()


def eddsa_verify(group: dict, test: dict) -> bool:
    try:
        key = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(group["publicKey"]["pk"]))
    except ValueError:
        return False
    assert key_algorithms(key) == {"EdDSA", "Ed25519"}
    if "publicKeyJwk" in group:
        assert JWK(group["publicKeyJwk"]).public_key.public_bytes_raw() == key.public_bytes_raw()
    return _EDDSA.verify(bytes.fromhex(test["msg"]), key, bytes.fromhex(test["sig"]))


@pytest.mark.parametrize(
    "group,test",
    [
        pytest.param(g, t, id=f"tc{t['tcId']}-{t['result']}-{t['comment'] or 'plain'}")
        for g, t in cases("ed25519_test.json")
    ],
)
def test_ed25519(group, test):
    assert eddsa_verify(group, test) is (test["result"] == "valid")


# -------------------------------------------------------------------- summary


def test_summary_counts():
    """Outcome counts per file and result; every valid case verifies or is refused by
    policy, every invalid one is refused."""
    jws = Counter()
    for group, test in cases("json_web_signature_test.json"):
        jwk = group.get("public") or group["private"]
        try:
            verify_case(jwk, test["jws"])
            outcome = "verified"
        except TokenError:
            outcome = "refused"
        policy = test["result"] == "valid" and policy_reason(jwk, test["jws"])
        jws[(test["result"], outcome, "policy" if policy else "")] += 1
    assert jws[("valid", "verified", "")] > 0
    assert jws[("invalid", "verified", "")] == 0
    assert jws[("valid", "refused", "")] == 0
    assert jws[("valid", "verified", "policy")] == 0
    assert sum(n for (result, *_), n in jws.items() if result == "acceptable") == 0
    assert sum(jws.values()) == load("json_web_signature_test.json")["numberOfTests"]
    assert dict(jws) == {
        ("valid", "verified", ""): 16,
        ("valid", "refused", "policy"): 30,
        ("invalid", "refused", ""): 355,
    }

    ecdsa = Counter(
        (t["result"], es256_verify(g, t))
        for g, t in cases("ecdsa_secp256r1_sha256_p1363_test.json")
    )
    assert ecdsa == {("valid", True): 173, ("invalid", False): 89}

    eddsa = Counter((t["result"], eddsa_verify(g, t)) for g, t in cases("ed25519_test.json"))
    assert eddsa == {("valid", True): 88, ("invalid", False): 63}
