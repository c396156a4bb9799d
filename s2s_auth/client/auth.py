"""``requests`` auth hooks a service uses to present credentials to another.

Each is a tiny ``AuthBase``: ``ServiceJWTAuth`` mints a fresh self-signed JWT per
request; ``HTTPSignatureAuth`` signs the request (RFC 9421, with
:func:`s2s_auth.core.httpsig.sign_request`); ``ChainAuth`` applies several in order.
``ServiceCredentials`` loads this service's key and certificate; the hooks ask it for
:meth:`~ServiceCredentials.current` on every request, so a certificate the renewal
agent replaced is used from the next request on (:mod:`s2s_auth.client.tls`).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from cryptography import x509

from s2s_auth.conf import s2s_settings
from s2s_auth.core import jose as tokens
from s2s_auth.core.files import read_pair
from s2s_auth.core.httpsig import algorithm_for_key, sign_request
from s2s_auth.core.wire import (
    END_USER_HASH_CLAIM,
    END_USER_TOKEN_HEADER,
    SERVICE_JWT_KEYWORD,
    SERVICE_JWT_TYPE,
    token_hash,
)
from s2s_auth.core.x509 import fingerprint, spiffe_uris, x5c_encode
from s2s_auth.identity import is_spiffe_id, spiffe_id

__all__ = [
    "ChainAuth",
    "HTTPSignatureAuth",
    "JWTSVIDAuth",
    "ServiceCredentials",
    "ServiceJWTAuth",
    "end_user_context",
    "jwt_bundle_of",
    "signature_auth",
]

_end_user_token: ContextVar[str | None] = ContextVar("s2s_end_user_token", default=None)


@contextlib.contextmanager
def end_user_context(token: str | None) -> Iterator[None]:
    """Calls made inside forward ``token`` (the end user's access token) with their
    service JWTs: in the ``S2S-End-User-Token`` header, committed to by the JWT's ``ath``
    claim (never inside the JWT, which the receiver's audit log keeps)."""
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
        # The chain, then the key, retried while they do not match (a renewal
        # replacing both between the two reads).
        _, _, chain, key = read_pair(cert_path, key_path)
        chain = tuple(chain)
        ids = spiffe_uris(chain[0])
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

    def current(self) -> ServiceCredentials:
        """The credentials in this one's files now: itself until they are renewed."""
        from s2s_auth.client.tls import current_credentials

        try:
            return current_credentials(self.cert_path, self.key_path)
        except OSError:  # the files are gone: keep signing with what was loaded
            return self

    # Computed once per loaded pair (a renewal loads a new object): every request's
    # JWT, signature and TLS adapter read them.
    @functools.cached_property
    def fingerprint(self) -> str:
        return fingerprint(self.chain[0])

    @functools.cached_property
    def _x5c(self) -> tuple[str, ...]:
        return tuple(x5c_encode(self.chain))

    @property
    def x5c(self) -> list[str]:
        """The chain as RFC 7515 ``x5c``: standard base64 of each DER certificate."""
        return list(self._x5c)


class ServiceJWTAuth(requests.auth.AuthBase):
    """Sets ``Authorization: ServiceJWT <jwt>``: a fresh, single-use JWT per request.

    Inside :func:`end_user_context` the user's token goes beside it, in
    ``S2S-End-User-Token``, and the JWT carries its hash (``ath``, as DPoP does).
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
        self.audience = audience if is_spiffe_id(audience) else spiffe_id(audience)
        self.lifetime = lifetime
        self.send_x5c = send_x5c

    #: JOSE ``typ`` of the tokens minted, and whether they name an issuer.
    token_type = SERVICE_JWT_TYPE
    with_issuer = True

    def token(self, end_user_token: str | None = None) -> str:
        """A fresh JWT; with ``end_user_token``, committing to it by its hash (``ath``)."""
        now = int(time.time())
        claims = {
            "sub": self.credentials.spiffe_id,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.lifetime,
            "jti": tokens.new_jti(),
        }
        if self.with_issuer:
            claims["iss"] = self.credentials.spiffe_id
        if end_user_token:
            claims[END_USER_HASH_CLAIM] = token_hash(end_user_token)
        current = self.credentials.current()  # a renewed key from the next request on
        return tokens.sign(
            claims,
            current.private_key,
            kid=current.fingerprint,
            typ=self.token_type,
            headers={"x5c": current.x5c} if self.send_x5c else None,
        )

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        end_user = _end_user_token.get()
        request.headers["Authorization"] = f"{SERVICE_JWT_KEYWORD} {self.token(end_user)}"
        if end_user:
            request.headers[END_USER_TOKEN_HEADER] = end_user
        else:
            request.headers.pop(END_USER_TOKEN_HEADER, None)
        return request


class JWTSVIDAuth(ServiceJWTAuth):
    """Sets ``Authorization: Bearer <JWT-SVID>`` for peers that expect SPIFFE JWT-SVIDs
    (py-spiffe, go-spiffe): ``typ`` JWT, ``sub`` this service's SPIFFE ID, ``aud``,
    ``iat``, ``exp``, a ``jti`` (single use here), no ``iss``; signed with this
    service's key, ``kid`` its certificate fingerprint (the kid of the JWT bundle
    :func:`jwt_bundle_of` exports). ``scheme="ServiceJWT"`` for our own services.
    """

    token_type = "JWT"  # noqa: S105 - a media type
    with_issuer = False

    def __init__(
        self,
        credentials: ServiceCredentials,
        audience: str,
        *,
        lifetime: int = 30,
        send_x5c: bool = False,
        scheme: str = "Bearer",
    ):
        super().__init__(credentials, audience, lifetime=lifetime, send_x5c=send_x5c)
        self.scheme = scheme

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request = super().__call__(request)
        value = request.headers["Authorization"].split(" ", 1)[1]
        request.headers["Authorization"] = f"{self.scheme} {value}"
        return request


def jwt_bundle_of(*credentials: ServiceCredentials) -> dict:
    """A SPIFFE JWT bundle (JWKS, ``use`` jwt-svid) of these services' keys, for a
    peer that verifies their :class:`JWTSVIDAuth` tokens (py-spiffe's
    ``JwtBundle.parse``)."""
    from s2s_auth.core.svid import jwt_bundle

    return jwt_bundle({c.fingerprint: c.private_key.public_key() for c in credentials})


class HTTPSignatureAuth(requests.auth.AuthBase):
    """Signs every request (RFC 9421) with :func:`~s2s_auth.core.httpsig.sign_request`.

    ``options`` are ``sign_request``'s keyword arguments (``components``, ``label``,
    ``nonce``, ...); ``created`` and the nonce are fresh for every request. Disable
    redirects on the session: ``requests`` keeps these headers on a redirect, and the
    signature (bound to the original URL) would only be refused there.
    """

    _OPTIONS = frozenset(
        {"components", "label", "nonce", "created", "expires", "tag", "include_alg"}
    )

    def __init__(self, key_id: str, private_key: Any, **options: Any):
        unknown = set(options) - self._OPTIONS
        if unknown:
            raise TypeError(f"unknown HTTPSignatureAuth option(s): {', '.join(sorted(unknown))}")
        algorithm_for_key(private_key)  # fail at configuration, not at the first request
        self.key_id = key_id
        self.private_key = private_key
        self.options = options

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return sign_request(
            request, key_id=self.key_id, private_key=self.private_key, **self.options
        )


def signature_auth(credentials: ServiceCredentials, **options: Any) -> HTTPSignatureAuth:
    """RFC 9421 signing with this service's key; ``keyid`` = certificate fingerprint.

    ``options`` as for :class:`HTTPSignatureAuth`; the defaults (``@method``,
    ``@target-uri``, ``content-digest``, a nonce) are accepted by s2s_auth and by the
    other implementations tried (docs/mechanisms/http-signatures.md)."""
    return _CredentialsSignatureAuth(credentials, **options)


class _CredentialsSignatureAuth(HTTPSignatureAuth):
    """:class:`HTTPSignatureAuth` with the credentials' current key (and its keyid)."""

    def __init__(self, credentials: ServiceCredentials, **options: Any):
        super().__init__(credentials.fingerprint, credentials.private_key, **options)
        self.credentials = credentials

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        current = self.credentials.current()
        return sign_request(
            request, key_id=current.fingerprint, private_key=current.private_key, **self.options
        )


class ChainAuth(requests.auth.AuthBase):
    """Applies several auth hooks in order (e.g. a bearer token, then a signature)."""

    def __init__(self, *auths: requests.auth.AuthBase):
        self.auths = auths

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        for auth in self.auths:
            request = auth(request)
        return request
