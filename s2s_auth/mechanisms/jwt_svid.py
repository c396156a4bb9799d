"""SPIFFE JWT-SVIDs as SPIFFE clients send them: ``Authorization: Bearer <JWT-SVID>``
(and under ``ServiceJWT``, which hands them over here).

A Bearer token is taken here only when it claims to be a JWT-SVID (``typ`` JWT, JOSE
or absent, ``sub`` a SPIFFE ID: :func:`s2s_auth.core.svid.is_jwt_svid`); anything else
is left to ``access_token``, whose behaviour is unchanged. List ``jwt_svid`` before
``access_token`` in ``MECHANISMS``.

The verifying key, in this order: the ``x5c`` chain in the header; the mTLS peer
certificate (when the ``kid`` is its fingerprint, or there is no ``kid``); the SPIFFE
JWT bundle of the ID's trust domain (``SPIFFE_JWT_BUNDLES``, by ``kid``); the peer
certificate anyway; a certificate registered for the principal. A certificate must
name the ``sub``; over mTLS the peer must be the service the ``sub`` names.

Replay: the lifetime is at most ``JWT_SVID_MAX_LIFETIME``; a ``jti`` is remembered
until ``exp`` (single use); a JWT-SVID without ``jti`` is accepted only over mTLS from
the identity it names (``jti_required`` otherwise), so a copy is useless to anyone
without that service's private key.
"""

from __future__ import annotations

import functools

from django.core.signals import setting_changed

from s2s_auth.conf import s2s_settings
from s2s_auth.core import jose
from s2s_auth.core.certs import VerifiedPeer, peer_verifier
from s2s_auth.core.jwks import JWKSUnavailable
from s2s_auth.core.svid import JWTBundles, is_jwt_svid, unverified_subject, verify_jwt_svid
from s2s_auth.core.x509 import CertificateRejected, x5c_decode
from s2s_auth.credentials.certificates import certificates_of
from s2s_auth.credentials.replay import remember_jti
from s2s_auth.errors import S2SError
from s2s_auth.identity import parse_spiffe_id, service_name
from s2s_auth.mechanisms.base import ServiceAuthentication, identity_for
from s2s_auth.mechanisms.user_context import end_user_from
from s2s_auth.tls.peer import verify_peer
from s2s_auth.tls.proxy_headers import ProxyHeaderError

__all__ = ["JWTSVIDAuthentication", "jwt_bundles"]


@functools.lru_cache(maxsize=1)
def jwt_bundles() -> JWTBundles:
    """The SPIFFE JWT bundles of the current settings (URLs cached like the JWKS)."""
    conf = s2s_settings()
    verify: str | bool = str(conf.trust_anchors_path) if conf.trust_anchors_path.exists() else True
    return JWTBundles(
        conf.SPIFFE_JWT_BUNDLES or {},
        url_options={
            "cache_seconds": float(conf.JWKS_CACHE_SECONDS),
            "min_refetch_seconds": float(conf.JWKS_MIN_REFETCH_SECONDS),
            "verify": verify,
            "timeout": tuple(conf.CLIENT_TIMEOUT),
        },
    )


def _reload(*, setting, **kwargs):
    if setting in ("S2S_AUTH", "BASE_DIR"):
        jwt_bundles.cache_clear()


setting_changed.connect(_reload)


class JWTSVIDAuthentication(ServiceAuthentication):
    mechanism = "jwt_svid"
    keyword = "Bearer"

    def __init__(self, keyword: str | None = None):
        if keyword:
            self.keyword = keyword  # ServiceJWT hands its JWT-SVIDs over with its scheme

    def authenticate(self, request):
        raw = self.get_authorization(request)
        if not raw or len(raw.split()) != 1 or not raw.isascii():
            return None  # access_token gives its reasons for these
        try:
            parsed = jose.parse(raw)  # once: the steps below read this
        except jose.TokenError:
            return None
        if not is_jwt_svid(parsed.header, parsed):
            return None
        return self.authenticate_svid(request, parsed, parsed.header)

    def authenticate_header(self, request) -> str:
        realm = s2s_settings().own_spiffe_id or "s2s"
        return f'{self.keyword} realm="{realm}"'

    def authenticate_svid(self, request, token: str | jose.ParsedJWS, header: dict):
        """``token`` as parsed by the caller (a ``ParsedJWS``), or its text."""
        conf = s2s_settings()
        token = jose.parse(token)
        sub = unverified_subject(token) or ""
        evidence = {"credential": token.token, "principal": sub}
        try:
            peer = verify_peer(request)
        except CertificateRejected as exc:
            self.reject(request, exc, fingerprint=exc.fingerprint or "", **evidence)
        except ProxyHeaderError as exc:
            self.reject(request, S2SError("malformed_proxy_header", exc.detail), **evidence)
        name = self.subject_name(request, sub, evidence)
        if peer is not None and peer.service_name != name:
            self.reject(
                request,
                S2SError(
                    "subject_mismatch",
                    "The JWT-SVID names another service than the TLS client certificate.",
                ),
                fingerprint=peer.fingerprint,
                **evidence,
            )
        try:
            key, signer = self.verification_key(token, header, sub, name, peer)
        except (jose.TokenError, CertificateRejected) as exc:
            self.reject(request, exc, **evidence)
        except JWKSUnavailable as exc:
            self.reject(request, exc, **evidence)
        if key is None:
            self.reject(
                request,
                S2SError(
                    "certificate_missing",
                    "No key to verify the JWT-SVID: use mTLS, send x5c, configure the "
                    "trust domain's JWT bundle, or register a certificate.",
                ),
                **evidence,
            )
        if signer is not None:
            evidence["fingerprint"] = signer.fingerprint
            evidence["certificate_pem"] = signer.leaf_pem
        try:
            verified = verify_jwt_svid(
                token,
                key,
                algorithms=conf.JWT_SVID_ALGORITHMS,
                audiences=self.audiences(),
                max_lifetime=float(conf.JWT_SVID_MAX_LIFETIME),
                leeway=float(conf.CLOCK_SKEW),
                subject=sub,
            )
            self.check_replay(verified, peer, name)
            end_user = self.end_user(verified, request)
            identity = identity_for(sub, self.mechanism, end_user=end_user)
        except (jose.TokenError, S2SError) as exc:
            self.reject(request, exc, **evidence)
        evidence.pop("principal")
        self.accept(request, identity, claims=verified.claims, **evidence)
        return identity, verified

    # -- steps, each overridable ----------------------------------------------------

    def audiences(self) -> list[str]:
        conf = s2s_settings()
        value = conf.JWT_SVID_AUDIENCE
        if value:
            return [value] if isinstance(value, str) else list(value)
        return conf.own_spiffe_ids

    def subject_name(self, request, sub: str, evidence: dict) -> str:
        """The principal name of ``sub`` in our trust domain, else a refusal."""
        trust_domain = s2s_settings().TRUST_DOMAIN
        try:
            domain, _ = parse_spiffe_id(sub)
        except S2SError as exc:
            self.reject(request, exc, **evidence)
        if domain != trust_domain:
            self.reject(
                request,
                S2SError("foreign_trust_domain", f"{sub[:100]} is not in {trust_domain}."),
                **evidence,
            )
        name = service_name(sub, trust_domain)
        if name is None:
            self.reject(
                request,
                S2SError("bad_spiffe_id", f"{sub[:100]} matches no SPIFFE_ID_PATHS template."),
                **evidence,
            )
        return name

    def verification_key(
        self,
        token: str | jose.ParsedJWS,
        header: dict,
        sub: str,
        name: str,
        peer: VerifiedPeer | None,
    ):
        """``(public key or JWK, certificate or None)``; ``(None, None)`` when there is
        no key at all."""
        if header.get("x5c") is not None:
            signer = peer_verifier().verify(x5c_decode(header["x5c"]))
            if signer.service_name != name:
                raise jose.TokenError("wrong_subject", "x5c certificate names another service")
            return signer.leaf.public_key(), signer
        kid = header.get("kid")
        if peer is not None and kid in (None, peer.fingerprint):
            return peer.leaf.public_key(), peer
        domain, _ = parse_spiffe_id(sub)
        bundles = jwt_bundles()
        if domain in bundles:
            return bundles.key_for(domain, kid), None
        if peer is not None:
            return peer.leaf.public_key(), peer
        for pem in certificates_of(sub):
            try:
                signer = peer_verifier().verify_pem(pem)
            except CertificateRejected:
                continue  # an expired or revoked registration; try the next
            if kid in (None, signer.fingerprint):
                return signer.leaf.public_key(), signer
        return None, None

    def check_replay(self, verified: jose.VerifiedToken, peer: VerifiedPeer | None, name: str):
        jti = verified.claims.get("jti")
        if jti is None:
            if peer is None or peer.service_name != name:
                raise S2SError(
                    "jti_required",
                    "A JWT-SVID without jti is accepted only over mTLS from the service it names.",
                )
            return
        if not remember_jti(verified.claims["sub"], jti, float(verified.claims["exp"])):
            raise S2SError("replayed_jti", "This token was already used.")

    def end_user(self, verified: jose.VerifiedToken, request=None):
        return end_user_from(verified.claims, request)
