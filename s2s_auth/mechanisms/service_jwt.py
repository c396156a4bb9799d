"""Self-signed service JWTs: one fresh token per request, signed with the caller's key.

``Authorization: ServiceJWT <jwt>``, header ``typ: s2s+jwt`` (explicit typing, RFC
8725 §3.11: neither an access token nor an ID token can pass for one), claims
``iss = sub =`` the caller's SPIFFE ID, ``aud`` = ours, ``iat``, ``exp`` (at most
``JWT_MAX_LIFETIME`` after ``iat``), ``jti`` (single use). The verifying key is the
caller's certificate, which must chain to our CA and not be revoked: the mTLS peer
certificate, else the token's ``x5c`` chain, else a certificate registered for the
principal. No certificate → 401; anything wrong with the token → 403.

A SPIFFE JWT-SVID sent under this scheme (``typ`` JWT, JOSE or absent, ``sub`` a
SPIFFE ID) is verified by :mod:`s2s_auth.mechanisms.jwt_svid` and audited as
``jwt_svid``. The audience is any of this service's SPIFFE IDs (one per
``SPIFFE_ID_PATHS`` template).

The end user's context, a token exchanged for this hop (RFC 8693), travels beside
the JWT (``S2S-End-User-Token``) and the JWT commits to it with ``ath`` (its SHA-256, as
in DPoP): the JWT stored in the audit log re-verifies and holds no usable bearer
token (:mod:`s2s_auth.mechanisms.user_context`). A token nested inside the
JWT (``end_user_token``, earlier releases) is refused: it would put the user's live
token into every copy of the JWT.
"""

from __future__ import annotations

from s2s_auth.conf import s2s_settings
from s2s_auth.core import jose as tokens
from s2s_auth.core.certs import VerifiedPeer, peer_verifier
from s2s_auth.core.svid import is_jwt_svid
from s2s_auth.core.wire import SERVICE_JWT_KEYWORD, SERVICE_JWT_TYPE
from s2s_auth.core.x509 import CertificateRejected, x5c_decode
from s2s_auth.credentials.certificates import certificates_of
from s2s_auth.credentials.replay import remember_jti
from s2s_auth.errors import S2SError
from s2s_auth.mechanisms.base import ServiceAuthentication, identity_for
from s2s_auth.mechanisms.jwt_svid import JWTSVIDAuthentication
from s2s_auth.mechanisms.user_context import end_user_from
from s2s_auth.tls.peer import verify_peer
from s2s_auth.tls.proxy_headers import ProxyHeaderError

KEYWORD = SERVICE_JWT_KEYWORD
TOKEN_TYPE = SERVICE_JWT_TYPE
REQUIRED_CLAIMS = ("iss", "sub", "aud", "iat", "exp", "jti")


class ServiceJWTAuthentication(ServiceAuthentication):
    mechanism = "service_jwt"
    keyword = KEYWORD

    def authenticate(self, request):
        token = self.get_raw_token(request)
        if token is None:
            return None
        try:
            parsed = tokens.parse(token)  # once: every step below reads this
            header = parsed.header
            if header.get("typ") != TOKEN_TYPE and is_jwt_svid(header, parsed):
                svid = JWTSVIDAuthentication(self.keyword)  # not the hot path: JWT-SVIDs
                return svid.authenticate_svid(request, parsed, header)
            peer = self.caller_certificate(request, parsed, header)
        except tokens.TokenError as exc:
            self.reject(request, exc, credential=token)
        except CertificateRejected as exc:
            self.reject(request, exc, credential=token, fingerprint=exc.fingerprint or "")
        except ProxyHeaderError as exc:
            self.reject(request, S2SError("malformed_proxy_header", exc.detail))
        if peer is None:
            self.reject(
                request,
                S2SError(
                    "certificate_missing",
                    "No certificate to verify the token: use mTLS, send x5c, or register one.",
                ),
                credential=token,
            )
        evidence = {
            "credential": token,
            "fingerprint": peer.fingerprint,
            "certificate_pem": peer.leaf_pem,
            "principal": peer.spiffe_id,
        }
        try:
            verified = self.verify_token(parsed, peer)
            end_user = self.end_user(verified, request)
            identity = identity_for(peer.spiffe_id, self.mechanism, end_user=end_user)
        except (tokens.TokenError, S2SError) as exc:
            self.reject(request, exc, **evidence)
        try:
            fresh = remember_jti(peer.spiffe_id, verified.claims["jti"], verified.claims["exp"])
        except S2SError as exc:
            self.reject(request, exc, **evidence)
        if not fresh:
            self.reject(
                request,
                S2SError("replayed_jti", "This token was already used."),
                **evidence,
            )
        evidence.pop("principal")
        self.accept(request, identity, claims=verified.claims, **evidence)
        return identity, verified

    def authenticate_header(self, request) -> str:
        realm = s2s_settings().own_spiffe_id or "s2s"
        return f'{self.keyword} realm="{realm}"'

    # -- steps, each overridable ----------------------------------------------------

    def get_raw_token(self, request) -> str | None:
        """The token of ``Authorization: ServiceJWT <jwt>``; None for another scheme."""
        return self.get_authorization(request)

    def caller_certificate(
        self, request, token: str | tokens.ParsedJWS, header: dict
    ) -> VerifiedPeer | None:
        """The certificate whose key must have signed the token (see module doc)."""
        peer = verify_peer(request)
        if peer is not None:
            return peer
        if header.get("x5c") is not None:
            return peer_verifier().verify(x5c_decode(header["x5c"]))
        claims = _unverified_issuer(token)
        for pem in certificates_of(claims) if claims else []:
            try:
                return peer_verifier().verify(pem)
            except CertificateRejected:
                continue  # an expired or revoked registration; try the next
        return None

    def verify_token(
        self, token: str | tokens.ParsedJWS, peer: VerifiedPeer
    ) -> tokens.VerifiedToken:
        conf = s2s_settings()
        return tokens.verify(
            token,
            peer.leaf.public_key(),
            algorithms=conf.JWT_ALGORITHMS,
            audience=conf.own_spiffe_ids,
            issuer=peer.spiffe_id,
            subject=peer.spiffe_id,
            typ=TOKEN_TYPE,
            leeway=conf.CLOCK_SKEW,
            max_lifetime=conf.JWT_MAX_LIFETIME,
            require=REQUIRED_CLAIMS,
        )

    def end_user(self, verified: tokens.VerifiedToken, request=None):
        """The forwarded end user: the token beside the JWT, matching its ``ath``,
        verified against the identity service's keys."""
        return end_user_from(verified.claims, request, caller=verified.claims["sub"])


def _unverified_issuer(token: str | tokens.ParsedJWS) -> str | None:
    """The ``iss`` of a token before verification: only to look up its key."""
    try:
        iss = tokens.parse(token).unverified_claims().get("iss")
    except tokens.TokenError:
        return None
    return iss if isinstance(iss, str) else None
