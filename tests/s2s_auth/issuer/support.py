"""Helpers of the issuer tests: requests to each endpoint and what a good answer is."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import quote_plus, urlencode

from cryptography.hazmat.primitives.serialization import Encoding

from s2s_auth.core.jose import new_jti, sign, unverified_header, verify
from s2s_auth.core.jwk import JWKSet

ISSUER = "https://issuer.test"
TOKEN_URL = f"{ISSUER}/oauth/token"
TD = "fleamarket.local"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
STRONG = "correct-horse-battery-staple-42"


def spiffe(name: str) -> str:
    return f"spiffe://{TD}/service/{name}"


def basic(client_id: str, secret: str) -> str:
    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")


def post_token(client, data, *, auth=None, content_type=FORM, query="", **extra):
    if auth is not None:
        extra["HTTP_AUTHORIZATION"] = basic(*auth)
    body = urlencode(data, doseq=True) if content_type == FORM else data
    return client.post("/oauth/token" + query, data=body, content_type=content_type, **extra)


def service_token(client, data, **extra):
    return client.post("/api/v1/account/service-token", data=data, content_type=JSON, **extra)


def register(client, data, **extra):
    return client.post("/api/v1/account/register/service", data=data, content_type=JSON, **extra)


def login(client, data, **extra):
    return client.post("/api/v1/auth/login", data=data, content_type=JSON, **extra)


def jwks(client) -> JWKSet:
    response = client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    return JWKSet.from_dict(response.json())


def check_token(client, token: str, audience, **kwargs):
    """The token verifies with s2s_auth.core.jose.verify against the published JWKS."""
    header = unverified_header(token)
    assert header["typ"] == "at+jwt"
    assert header["alg"] == "ES256"
    key = jwks(client).get(header["kid"])
    return verify(token, key, audience=audience, issuer=ISSUER, typ="at+jwt", **kwargs).claims


def assert_error(response, status: int, error: str):
    """An RFC 6749 §5.2 error body, not cacheable; returns the body."""
    assert response.status_code == status, response.content
    body = response.json()
    assert body["error"] == error
    assert set(body) == {"error", "error_description"}
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"
    return body


def x5c(chain) -> list[str]:
    return [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in chain]


def assertion(leaf, client_id: str, *, aud=TOKEN_URL, lifetime=60, key=None, chain=None, **extra):
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": aud,
        "iat": now,
        "exp": now + lifetime,
        "jti": new_jti(),
        **extra,
    }
    return sign(claims, key or leaf.key, headers={"x5c": x5c(chain or leaf.chain)})


def pem(leaf) -> str:
    return leaf.chain_pem.decode("ascii")


def x5t(leaf) -> str:
    digest = hashlib.sha256(leaf.cert.public_bytes(Encoding.DER)).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
