"""core.access_tokens: access-token validation and its cache, without a request.

The JWKS is served over real HTTP on loopback by the fixture server of the mechanism
tests; the DRF statuses are tested there (tests/s2s_auth/mechanisms/test_access_token.py).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from s2s_auth.core.access_tokens import (
    AccessToken,
    VerifiedTokenCache,
    validate_access_token,
    verified_token_cache,
)
from s2s_auth.core.jose import TokenError
from s2s_auth.core.jwks import JWKSUnavailable
from tests.s2s_auth.mechanisms import test_access_token as mechanism_tests
from tests.s2s_auth.mechanisms.test_access_token import AUDIENCE, mint

# The mechanism tests' fixtures: a key set, its JWKS server, S2S_AUTH pointing at it.
keys = mechanism_tests.keys
jwks_server = mechanism_tests.jwks_server
conf = mechanism_tests.conf


def validate(raw, audiences=(AUDIENCE,)):
    return validate_access_token(raw, kind="service", audiences=list(audiences))


def test_a_good_token_is_returned_verified(conf, keys):
    raw = mint(keys, scope="a b", cnf={"x5t#S256": "abc"})
    token = validate(raw)
    assert isinstance(token, AccessToken)
    assert token.scopes == frozenset({"a", "b"})
    assert token.certificate_thumbprint == "abc"
    assert token.key_id == "k1"
    assert token.token == raw
    assert raw not in repr(token)


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"aud": "spiffe://elsewhere.test/service/x"}, "wrong_audience"),
        ({"iss": "https://evil.test"}, "wrong_issuer"),
        ({"scope": ["a", "b"]}, "invalid_claim"),
        ({"client_id": 7}, "invalid_claim"),
        ({"typ": "JWT"}, "wrong_type"),
        ({"drop": ("jti",)}, "missing_claim"),
        ({"kid": "nope"}, "unknown_key"),
    ],
)
def test_bad_tokens_raise_token_error(conf, keys, claims, code):
    with pytest.raises(TokenError) as excinfo:
        validate(mint(keys, **claims))
    assert excinfo.value.code == code


def test_issuer_down_raises_jwks_unavailable(conf, keys, jwks_server):
    jwks_server.stop()
    with pytest.raises(JWKSUnavailable):
        validate(mint(keys))


def test_cache_is_per_policy(conf, keys):
    raw = mint(keys, aud=[AUDIENCE, "other"])
    cache = verified_token_cache()
    validate(raw)
    validate(raw)
    assert (cache.hits, cache.misses) == (1, 1)
    validate(raw, audiences=("other",))  # another policy: verified again
    assert (cache.hits, cache.misses) == (1, 2)
    with pytest.raises(TokenError):
        validate(raw, audiences=("third",))


def test_cache_can_be_turned_off(conf, keys):
    conf(CACHE_VERIFIED_TOKENS=False)
    raw = mint(keys)
    validate(raw)
    validate(raw)
    assert len(verified_token_cache()) == 0


def test_cache_is_bounded():
    cache = VerifiedTokenCache(maxsize=3)
    for i in range(10):
        cache.put(("p", str(i)), AccessToken({}, {"exp": time.time() + 60}, None, "ES256", "", ""))
    assert len(cache) == 3
    assert cache.get(("p", "0")) is None
    assert cache.get(("p", "9")) is not None


def test_cache_drops_expired_tokens():
    now = [1000.0]
    cache = VerifiedTokenCache(clock=lambda: now[0])
    cache.put(("p", "t"), AccessToken({}, {"exp": 1010}, None, "ES256", "", ""))
    assert cache.get(("p", "t")) is not None
    now[0] = 1010.0
    assert cache.get(("p", "t")) is None
    assert len(cache) == 0


def test_imports_nothing_of_drf_http_or_the_orm():
    code = (
        "import sys; from django.conf import settings; settings.configure();"
        "import s2s_auth.core.access_tokens;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'rest_framework'"
        " or m.startswith(('django.http', 'django.db'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
