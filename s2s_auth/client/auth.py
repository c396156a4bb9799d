"""``requests`` auth hooks a service uses to present credentials to another.

Each is a tiny ``AuthBase``: ``ServiceJWTAuth`` mints a fresh self-signed JWT per
request; ``HTTPSignatureAuth`` (from ``s2s_auth.core.httpsig``) signs the request;
``ChainAuth`` applies several in order. ``ServiceCredentials`` loads this service's
key and certificate once.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from s2s_auth.conf import s2s_settings, spiffe_id
from s2s_auth.core import jose as tokens
from s2s_auth.core.certs import fingerprint
from s2s_auth.core.httpsig import HTTPSignatureAuth
from s2s_auth.core.wire import END_USER_CLAIM, SERVICE_JWT_KEYWORD, SERVICE_JWT_TYPE

__all__ = [
    "ChainAuth",
    "HTTPSignatureAuth",
    "ServiceCredentials",
    "ServiceJWTAuth",
    "end_user_context",
    "signature_auth",
]

_end_user_token: ContextVar[str | None] = ContextVar("s2s_end_user_token", default=None)


@contextlib.contextmanager
def end_user_context(token: str | None) -> Iterator[None]:
    """Calls made inside forward ``token`` (the end user's access token) in service JWTs."""
    reset = _end_user_token.set(token)
    try:
        yield
    finally:
        _end_user_token.reset(reset)


@dataclass(frozen=True)
class ServiceCredentials:
    """This service's identity: SPIFFE ID, private key and certificate chain."""

    spiffe_id: str
    private_key: Any
    chain: tuple[x509.Certificate, ...]
    cert_path: Path
    key_path: Path

    @classmethod
    def from_files(cls, cert_path: str | Path, key_path: str | Path) -> ServiceCredentials:
        cert_path, key_path = Path(cert_path), Path(key_path)
        chain = tuple(x509.load_pem_x509_certificates(cert_path.read_bytes()))
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        san = chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ids = [
            u
            for u in san.get_values_for_type(x509.UniformResourceIdentifier)
            if u.startswith("spiffe://")
        ]
        if len(ids) != 1:
            raise ValueError(f"{cert_path} does not carry exactly one SPIFFE ID")
        return cls(ids[0], key, chain, cert_path, key_path)

    @classmethod
    def from_pki(cls, name: str | None = None) -> ServiceCredentials:
        """``<PKI_DIR>/<name>.pem`` and ``.key``; ``name`` defaults to SERVICE_NAME."""
        conf = s2s_settings()
        name = name or conf.SERVICE_NAME
        if not name:
            raise ValueError("name or S2S_AUTH['SERVICE_NAME'] is needed")
        return cls.from_files(conf.pki_dir / f"{name}.pem", conf.pki_dir / f"{name}.key")

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.chain[0])

    @property
    def x5c(self) -> list[str]:
        """The chain as RFC 7515 ``x5c``: standard base64 of each DER certificate."""
        return [
            base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
            for cert in self.chain
        ]


class ServiceJWTAuth(requests.auth.AuthBase):
    """Sets ``Authorization: ServiceJWT <jwt>``: a fresh, single-use JWT per request.

    ``audience`` is the target service's name or SPIFFE ID. With ``send_x5c`` the
    certificate chain travels in the header, so the receiver can verify the token
    without mTLS and without a registered certificate.
    """

    def __init__(
        self,
        credentials: ServiceCredentials,
        audience: str,
        *,
        lifetime: int = 30,
        send_x5c: bool = True,
    ):
        self.credentials = credentials
        self.audience = audience if audience.startswith("spiffe://") else spiffe_id(audience)
        self.lifetime = lifetime
        self._headers = {"x5c": credentials.x5c} if send_x5c else None
        self._kid = credentials.fingerprint

    def token(self) -> str:
        now = int(time.time())
        claims = {
            "iss": self.credentials.spiffe_id,
            "sub": self.credentials.spiffe_id,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": tokens.new_jti(),
        }
        end_user = _end_user_token.get()
        if end_user:
            claims[END_USER_CLAIM] = end_user
        return tokens.sign(
            claims,
            self.credentials.private_key,
            kid=self._kid,
            typ=SERVICE_JWT_TYPE,
            headers=self._headers,
        )

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"{SERVICE_JWT_KEYWORD} {self.token()}"
        return request


def signature_auth(credentials: ServiceCredentials) -> HTTPSignatureAuth:
    """RFC 9421 signing with this service's key; ``keyid`` = certificate fingerprint."""
    return HTTPSignatureAuth(credentials.fingerprint, credentials.private_key)


class ChainAuth(requests.auth.AuthBase):
    """Applies several auth hooks in order (e.g. a bearer token, then a signature)."""

    def __init__(self, *auths: requests.auth.AuthBase):
        self.auths = auths

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        for auth in self.auths:
            request = auth(request)
        return request
