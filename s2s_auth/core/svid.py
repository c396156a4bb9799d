"""SPIFFE JWT-SVIDs (the SPIFFE JWT-SVID standard), verified without a request.

A JWT-SVID is a JWT whose ``sub`` is a SPIFFE ID, with ``aud`` and ``exp`` required,
``typ`` ``JWT``, ``JOSE`` or absent, and no ``iss``. :func:`is_jwt_svid` tells one
apart from the other tokens a service sees (access tokens are ``at+jwt``, our service
JWTs ``s2s+jwt``); :func:`verify_jwt_svid` checks it with a key the caller found;
:class:`JWTBundles` holds the SPIFFE JWT bundles (a JWKS per trust domain, from a
file or a URL: keys with ``use`` ``jwt-svid``, the trust domain's JWT authorities).

Replay: a JWT-SVID need not carry ``jti``. Its lifetime is bounded here
(``exp - iat`` and ``exp - now`` at most ``max_lifetime``); the mechanism accepts one
without ``jti`` only over mTLS from the identity it names, and remembers ``jti`` when
there is one.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from s2s_auth.core import jose
from s2s_auth.core.jose_encoding import TokenError
from s2s_auth.core.jwk import JWK, JWKSet, public_jwk
from s2s_auth.core.jwks import MAX_JWKS_BYTES, JWKSCache
from s2s_auth.identity import SpiffeIDError, is_spiffe_id, parse_spiffe_id

__all__ = [
    "JWT_BUNDLE_USE",
    "JWT_SVID_TYPES",
    "JWTBundles",
    "is_jwt_svid",
    "jwt_bundle",
    "parse_bundle",
    "unverified_subject",
    "verify_jwt_svid",
]

#: ``typ`` values a JWT-SVID may carry (None: no typ header).
JWT_SVID_TYPES = (None, "JWT", "JOSE")
#: ``use`` of the JWT authorities in a SPIFFE bundle.
JWT_BUNDLE_USE = "jwt-svid"


def unverified_subject(token: str | jose.ParsedJWS) -> str | None:
    """The ``sub`` before verification: only to choose a mechanism and a key (from the
    token as :func:`s2s_auth.core.jose.parse` parsed it, once)."""
    try:
        sub = jose.parse(token).unverified_claims().get("sub")
    except TokenError:
        return None
    return sub if isinstance(sub, str) else None


def is_jwt_svid(header: Mapping[str, Any], token: str | jose.ParsedJWS) -> bool:
    """Whether a structurally valid JWT claims to be a JWT-SVID: ``typ`` JWT/JOSE/absent
    and ``sub`` a SPIFFE ID. Says nothing of validity."""
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.upper() not in ("JWT", "JOSE")):
        return False
    return is_spiffe_id(unverified_subject(token))


def verify_jwt_svid(
    token: str | jose.ParsedJWS,
    key: Any,
    *,
    algorithms: Iterable[str],
    audiences: Sequence[str],
    max_lifetime: float,
    leeway: float = 0,
    subject: str | None = None,
    now: float | None = None,
) -> jose.VerifiedToken:
    """Signature, ``typ``, ``aud`` (one of ``audiences``), ``exp``, a well-formed SPIFFE
    ID in ``sub`` (equal to ``subject`` when given), and the lifetime bound."""
    now_ts = time.time() if now is None else float(now)
    verified = jose.verify(
        token,
        key,
        algorithms=algorithms,
        audience=list(audiences),
        subject=subject,
        typ=JWT_SVID_TYPES,
        leeway=leeway,
        require=("sub", "aud", "exp"),
        now=now_ts,
    )
    claims = verified.claims
    try:
        parse_spiffe_id(claims["sub"])
    except SpiffeIDError as exc:
        raise TokenError("invalid_claim", f"sub is not a SPIFFE ID: {exc.detail}") from None
    exp = float(claims["exp"])
    if exp - now_ts > max_lifetime + leeway:
        raise TokenError(
            "lifetime_too_long",
            f"JWT-SVID expires {exp - now_ts:.0f}s from now; at most {max_lifetime:g}s accepted",
        )
    iat = claims.get("iat")
    if isinstance(iat, int | float) and not isinstance(iat, bool) and exp - iat > max_lifetime:
        raise TokenError(
            "lifetime_too_long",
            f"lifetime {exp - iat:g}s exceeds the maximum of {max_lifetime:g}s",
        )
    return verified


# ------------------------------------------------------------------------- bundles


def parse_bundle(body: bytes | str) -> JWKSet:
    """The JWT authorities of a SPIFFE bundle or a plain JWKS: keys with ``use``
    ``jwt-svid`` (or ``sig``, or none); ``x509-svid`` entries and keys we cannot use
    are skipped. Raises TokenError for a document that is not a JWK Set."""
    if len(body) > MAX_JWKS_BYTES:
        raise TokenError("invalid_key", f"bundle larger than {MAX_JWKS_BYTES} bytes")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise TokenError("invalid_key", f"bundle is not JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise TokenError("invalid_key", "a bundle is an object with a 'keys' list")
    keys = []
    for entry in document["keys"]:
        if isinstance(entry, dict) and entry.get("use") == JWT_BUNDLE_USE:
            entry = {k: v for k, v in entry.items() if k != "use"}
        keys.append(entry)
    return JWKSet.from_dict({"keys": keys}, skip_unusable=True)


def jwt_bundle(public_keys: Mapping[str, Any]) -> dict[str, Any]:
    """A SPIFFE JWT bundle document of ``{kid: public key}``, for peers (py-spiffe's
    ``JwtBundle.parse``) that verify the JWT-SVIDs this deployment mints."""
    return {
        "keys": [
            {**public_jwk(key, kid), "use": JWT_BUNDLE_USE} for kid, key in public_keys.items()
        ]
    }


class _BundleURL(JWKSCache):
    def parse_keys(self, body: bytes) -> JWKSet:
        return parse_bundle(body)


class _BundleFile:
    """A bundle file, re-read when it changes (a rotation needs no restart)."""

    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._state: tuple[tuple[int, int, int], JWKSet] | None = None

    def key_for(self, kid: str | None) -> JWK:
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise TokenError("unknown_key", f"JWT bundle {self.path} unreadable: {exc}") from None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            if self._state is None or self._state[0] != key:
                self._state = (key, parse_bundle(self.path.read_bytes()))
            keys = self._state[1]
        return keys.get(kid)


class JWTBundles:
    """The JWT authorities per trust domain: ``{trust_domain: path or http(s) URL}``.

    ``key_for(domain, kid)`` raises TokenError ``unknown_key`` for a domain without a
    bundle or a kid the bundle lacks, and ``JWKSUnavailable`` (503) when a bundle URL
    was never fetched.
    """

    def __init__(
        self,
        sources: Mapping[str, str],
        *,
        url_options: Mapping[str, Any] | None = None,
        base_dir: Path | None = None,
        url_factory: Callable[..., JWKSCache] = _BundleURL,
    ):
        self._sources: dict[str, _BundleFile | JWKSCache] = {}
        for domain, source in dict(sources or {}).items():
            if urlsplit(str(source)).scheme in ("http", "https"):
                self._sources[domain] = url_factory(str(source), **dict(url_options or {}))
            else:
                path = Path(source)
                if base_dir is not None and not path.is_absolute():
                    path = base_dir / path
                self._sources[domain] = _BundleFile(path)

    def __contains__(self, trust_domain: object) -> bool:
        return trust_domain in self._sources

    def key_for(self, trust_domain: str, kid: str | None) -> JWK:
        source = self._sources.get(trust_domain)
        if source is None:
            raise TokenError("unknown_key", f"no JWT bundle for trust domain {trust_domain!r}")
        return source.key_for(kid)
