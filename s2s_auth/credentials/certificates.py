"""Where a caller's public key comes from, when it is not on the TLS connection.

A principal's certificates are registered (``register_certificate``) so that
service JWTs without ``x5c`` and RFC 9421 signatures (``keyid`` = the certificate's
SHA-256 fingerprint) can be verified. A registered certificate is still checked by
the ``PeerVerifier`` on every use: chain, validity, revocation.

A client's bare public keys are registered too (``register_key``: a PEM certificate, a
PEM public key, a JWK or a JWKS; or a ``jwks_uri``), so that its private_key_jwt
assertions verify without ``x5c`` or mTLS, as OAuth client libraries send them. The
operator who registers a key vouches for it: it is not checked against our CA.
"""

from __future__ import annotations

import json
import threading
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.db import transaction

from s2s_auth.conf import s2s_settings
from s2s_auth.core.certs import VerifiedPeer, peer_verifier
from s2s_auth.core.jose import TokenError
from s2s_auth.core.jwk import JWK, JWKSet, public_jwk
from s2s_auth.core.jwks import JWKSCache
from s2s_auth.core.x509 import parse_pem_chain
from s2s_auth.credentials.cache import principal_cache
from s2s_auth.identity import service_name
from s2s_auth.models import ClientKey, ServiceCertificate, ServicePrincipal

MAX_KEY_FILE = 65536


def _pem(cert: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return cert.public_bytes(Encoding.PEM).decode()


def register_certificate(principal: ServicePrincipal, chain_pem: str | bytes) -> ServiceCertificate:
    """Register the leaf of ``chain_pem`` for ``principal`` after verifying it.

    The certificate's SPIFFE ID must be the principal's. Idempotent.
    """
    peer = peer_verifier().verify(parse_pem_chain(chain_pem))
    if peer.service_name != principal.name:
        raise ValueError(f"certificate is for {peer.spiffe_id}, not for {principal.spiffe_id}")
    registered, _ = ServiceCertificate.objects.update_or_create(
        fingerprint=peer.fingerprint,
        defaults={
            "principal": principal,
            "serial": format(peer.serial, "x"),
            "not_after": peer.not_after,
            "pem": _pem(peer.leaf),
        },
    )
    return registered


def certificate_by_fingerprint(value: str) -> VerifiedPeer | None:
    """The registered certificate with this fingerprint, verified now; None if unknown.

    Raises ``CertificateRejected`` when it is known but no longer acceptable.
    """
    fingerprint = value.lower()
    pem = principal_cache.get(
        ("certificate", fingerprint),
        lambda: (
            ServiceCertificate.objects.filter(fingerprint=fingerprint)
            .values_list("pem", flat=True)
            .first()
        ),
        cache_none=False,  # the fingerprint is the caller's to choose
    )
    return peer_verifier().verify_pem(pem) if pem else None


def certificates_of(spiffe_id: str) -> list[str]:
    """PEMs of the certificates registered for the principal a SPIFFE ID names (in any
    SPIFFE_ID_PATHS layout), newest first."""
    name = service_name(spiffe_id, s2s_settings().TRUST_DOMAIN)
    if name is None:
        return []
    pems = principal_cache.get(
        ("certificates_of", name),
        lambda: (
            tuple(
                ServiceCertificate.objects.filter(principal__name=name)
                .order_by("-not_after")
                .values_list("pem", flat=True)
            )
            or None
        ),
        cache_none=False,  # the name comes from an unverified token
    )
    return list(pems or ())


# ------------------------------------------------------------------- client keys


def parse_public_keys(data: bytes) -> list[JWK]:
    """The public keys of a key file: a PEM certificate or public key, a JWK or a JWKS.

    ValueError (with a reason a person can act on) for anything else, for private key
    material and for unsupported key types.
    """
    if len(data) > MAX_KEY_FILE:
        raise ValueError(f"the key file is larger than {MAX_KEY_FILE} bytes")
    text = data.strip()
    try:
        if text.startswith(b"-----BEGIN CERTIFICATE-----"):
            keys = [x509.load_pem_x509_certificate(text).public_key()]
        elif text.startswith(b"-----BEGIN PUBLIC KEY-----"):
            keys = [load_pem_public_key(text)]
        elif text.startswith(b"{"):
            document = json.loads(text)
            if isinstance(document, dict) and "keys" in document:
                return list(JWKSet.from_dict(document))
            return [JWK(document)]
        elif b"PRIVATE KEY" in text[:100]:
            raise ValueError("this is a private key: register the public key only")
        else:
            raise ValueError("expected a PEM certificate, a PEM public key, a JWK or a JWKS")
    except TokenError as exc:
        raise ValueError(f"{exc.code}: {exc.detail}") from exc
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON: {exc}") from exc
    documents = [public_jwk(key, None) for key in keys]
    for document in documents:
        document.pop("alg")  # a PEM names no algorithm: the key type decides
    return [JWK(document) for document in documents]


@transaction.atomic
def register_key(principal: ServicePrincipal, data: bytes) -> list[ClientKey]:
    """Register the public key(s) of ``data`` for ``principal``. Idempotent per key."""
    rows = []
    for key in parse_public_keys(data):
        thumb = key.thumbprint()
        document = key.to_dict()
        document.setdefault("kid", thumb)
        row, _ = ClientKey.objects.update_or_create(
            thumbprint=thumb,
            defaults={"principal": principal, "kid": document["kid"], "jwk": json.dumps(document)},
        )
        rows.append(row)
    return rows


def register_jwks_uri(principal: ServicePrincipal, uri: str) -> ClientKey:
    """Register an https URL where ``principal`` publishes its keys (a JWKS)."""
    if urlsplit(uri).scheme != "https":
        raise ValueError("a jwks_uri must be an https URL")
    row, _ = ClientKey.objects.get_or_create(principal=principal, jwks_uri=uri)
    return row


_uri_caches: dict[str, JWKSCache] = {}
_uri_lock = threading.Lock()


def _uri_cache(uri: str) -> JWKSCache:
    with _uri_lock:
        cache = _uri_caches.get(uri)
        if cache is None:
            cache = _uri_caches[uri] = JWKSCache(uri)
        return cache


def client_keys_of(name: str, kid: str | None) -> list[JWK]:
    """The registered keys of the client ``name`` that may have signed a JWT with
    ``kid``: the key with that kid, or every registered key when the JWT names none.
    Keys behind a jwks_uri are fetched (cached; JWKSUnavailable when it is down)."""
    keys: list[JWK] = []
    rows = principal_cache.get(
        ("client_keys", name), lambda: _registered_keys(name), cache_none=False
    )
    for row_kid, key, uri in rows or ():
        if uri:
            cache = _uri_cache(uri)
            if kid is not None:
                try:
                    keys.append(cache.key_for(kid))
                except TokenError:
                    continue
            else:
                keys.extend(cache.keys())
        elif kid is None or kid == row_kid:
            keys.append(key)
    return keys


def _registered_keys(name: str) -> tuple[tuple[str, JWK | None, str], ...] | None:
    """``(kid, key, jwks_uri)`` of every key registered for ``name``, the JWKs built
    once (the principal cache keeps them); None when there is none (not cached: the
    name comes from an unverified assertion)."""
    rows = ClientKey.objects.filter(principal__name=name).values_list("kid", "jwk", "jwks_uri")
    return (
        tuple((kid, None if uri else JWK(json.loads(document)), uri) for kid, document, uri in rows)
        or None
    )


__all__ = [
    "certificate_by_fingerprint",
    "certificates_of",
    "client_keys_of",
    "parse_public_keys",
    "register_certificate",
    "register_jwks_uri",
    "register_key",
]
