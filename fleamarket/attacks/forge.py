"""Crafting credentials, good and bad: JWTs, RFC 9421 signatures, certificates.

Pure functions over cryptography/PyJWT and ``s2s_auth.core.jose``/``s2s_auth.core.httpsig``
(neither needs Django settings), so the attack runner works from outside the services.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import http_sf
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from s2s_auth.core import httpsig
from s2s_auth.core import jose as tokens
from s2s_auth.core import x509 as x509_helpers
from s2s_auth.core.x509 import spiffe_uris
from s2s_auth.identity import spiffe_id

TRUST_DOMAIN = "fleamarket.local"
SERVICE_JWT_TYPE = "s2s+jwt"
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret


def spiffe(name: str) -> str:
    return spiffe_id(name, TRUST_DOMAIN)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


@dataclass(frozen=True)
class Identity:
    """A certificate chain and its key on disk: a service, real or forged."""

    name: str
    cert_path: Path
    key_path: Path

    @property
    def cert(self) -> tuple[str, str]:
        """For ``requests``' ``cert=``."""
        return (str(self.cert_path), str(self.key_path))

    @property
    def chain(self) -> list[x509.Certificate]:
        return x509.load_pem_x509_certificates(self.cert_path.read_bytes())

    @property
    def chain_pem(self) -> str:
        return self.cert_path.read_text()

    @property
    def private_key(self):
        return serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)

    @property
    def spiffe_id(self) -> str:
        return spiffe_uris(self.chain[0])[0]

    @property
    def fingerprint(self) -> str:
        return x509_helpers.fingerprint(self.chain[0])

    @property
    def x5c(self) -> list[str]:
        return x509_helpers.x5c_encode(self.chain)

    @property
    def x5t_s256(self) -> str:
        return x509_helpers.x5t_s256(self.chain[0])

    @property
    def public_pem(self) -> bytes:
        return (
            self.chain[0]
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )


# ------------------------------------------------------------------------------ JWTs


def service_claims(caller: str, audience: str = "users", **overrides) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": spiffe(caller),
        "sub": spiffe(caller),
        "aud": spiffe(audience),
        "iat": now,
        "exp": now + 30,
        "jti": tokens.new_jti(),
    }
    claims.update(overrides)
    return claims


def service_jwt(
    signer_key,
    claims: dict[str, Any],
    *,
    x5c: list[str] | None = None,
    kid: str | None = None,
    extra_headers: dict[str, Any] | None = None,
) -> str:
    headers = dict(extra_headers or {})
    if x5c is not None:
        headers["x5c"] = x5c
    return tokens.sign(claims, signer_key, kid=kid, typ=SERVICE_JWT_TYPE, headers=headers or None)


def raw_jwt(header: dict[str, Any], payload: dict[str, Any] | bytes, signature: bytes) -> str:
    """A compact JWS from parts, signed or not as the caller says."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return f"{b64url_json(header)}.{b64url(body)}.{b64url(signature)}"


def hmac_jwt(header: dict[str, Any], payload: dict[str, Any], key: bytes) -> str:
    header = {**header, "alg": "HS256"}
    signing_input = f"{b64url_json(header)}.{b64url_json(payload)}".encode()
    signature = hmac.new(key, signing_input, hashlib.sha256).digest()
    return f"{signing_input.decode()}.{b64url(signature)}"


def alg_none_jwt(header: dict[str, Any], payload: dict[str, Any]) -> str:
    """``alg: none`` with a (junk) signature part, so that a verifier must look at alg."""
    return raw_jwt({**header, "alg": "none"}, payload, b"none")


def zero_signature_jwt(header: dict[str, Any], payload: dict[str, Any]) -> str:
    """ES256 with r = s = 0 (CVE-2022-21449, "psychic signatures")."""
    return raw_jwt({**header, "alg": "ES256"}, payload, b"\x00" * 64)


def tamper_payload(token: str, **changes) -> str:
    """The same header and signature over changed claims."""
    head, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{head}.{b64url_json(claims)}.{signature}"


#: The order of P-256: an ECDSA signature (r, s) verifies as (r, n - s) too.
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def flip_s(raw: bytes) -> bytes:
    """The other valid encoding of a raw P-256 signature ``r || s``: ``r || n - s``."""
    half = len(raw) // 2
    s = int.from_bytes(raw[half:], "big")
    return raw[:half] + (P256_ORDER - s).to_bytes(half, "big")


def malleate_jwt(token: str) -> str:
    """An ES256 JWT with its signature re-encoded as (r, n - s): still valid."""
    head, body, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
    return f"{head}.{body}.{b64url(flip_s(raw))}"


def malleate_signature_value(value: str) -> str:
    """An RFC 9421 ``Signature`` value (``label=:b64:``) re-encoded as (r, n - s)."""
    label, _, encoded = value.partition("=")
    raw = base64.b64decode(encoded.strip(":"))
    return f"{label}=:{base64.b64encode(flip_s(raw)).decode('ascii')}:"


#: Deeper than Python's recursion limit (1000), small enough for an 8 KB header.
NESTING = 1500


def nested_payload(depth: int = NESTING) -> bytes:
    return b"[" * depth + b"]" * depth


def nested_header_jwt(header: dict[str, Any], depth: int = NESTING) -> str:
    """A token whose JOSE header holds JSON nested ``depth`` deep."""
    head = json.dumps({**header, "alg": "ES256"})[:-1] + ', "x": ' + "[" * depth + "]" * depth + "}"
    return f"{b64url(head.encode())}.{b64url(b'{}')}.{b64url(b'x' * 64)}"


def fresh_key():
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# ---------------------------------------------------------------- RFC 9421 signatures


def signed_request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    key_id: str,
    private_key,
    body: bytes | None = None,
) -> requests.PreparedRequest:
    prepared = session.prepare_request(requests.Request(method, url, data=body))
    return httpsig.sign_request(prepared, key_id=key_id, private_key=private_key)


def resend(
    session: requests.Session,
    prepared: requests.PreparedRequest,
    *,
    method: str | None = None,
    url: str | None = None,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 10,
) -> requests.Response:
    """Send ``prepared`` again, optionally changed (its signature headers kept)."""
    kept = {
        k: v for k, v in prepared.headers.items() if k.lower() not in ("content-length", "host")
    }
    kept.update(headers or {})
    request = requests.Request(
        method or prepared.method,
        url or prepared.url,
        data=prepared.body if body is None else body,
        headers=kept,
    )
    return session.send(session.prepare_request(request), timeout=timeout, allow_redirects=False)


def signature_base(
    method: str, url: str, digest: str, params: str
) -> str:  # RFC 9421 §2.5, for the three default components
    return (
        f'"@method": {method}\n'
        f'"@target-uri": {url}\n'
        f'"content-digest": {digest}\n'
        f'"@signature-params": {params}'
    )


def signature_headers(
    method: str, url: str, *, key_id: str, alg: str, signature: bytes | None = None, key=None
) -> dict[str, str]:
    """Hand-made ``Signature-Input``/``Signature`` headers with any ``alg`` parameter.

    With ``key`` (bytes) the signature is HMAC-SHA256 over the real signature base.
    """
    digest = httpsig.content_digest(b"")
    params = (
        f'("@method" "@target-uri" "content-digest");created={int(time.time())};'
        f'keyid="{key_id}";alg="{alg}";nonce="{secrets.token_urlsafe(16)}"'
    )
    if key is not None:
        base = signature_base(method, url, digest, params)
        signature = hmac.new(key, base.encode(), hashlib.sha256).digest()
    value = http_sf.ser({"sig1": (signature or b"\x00" * 64, {})})
    return {"Content-Digest": digest, "Signature-Input": f"sig1={params}", "Signature": value}
