"""RFC 9421 HTTP Message Signatures over ``@method``, ``@target-uri`` (or ``@authority``
+ ``@path`` + ``@query``) and, when there is a body, ``content-digest`` (RFC 9530,
checked against the body), with ``created`` inside ``HTTPSIG_MAX_AGE``. Single use: by
its ``nonce``, or without one by its signature value (ECDSA low-S normalised), both in
the shared replay store. The target is rebuilt from this service's own origins
(``HTTPSIG_ORIGIN``, port included), never from ``Host``.

``keyid`` is the SHA-256 fingerprint (hex) of the signer's certificate: the mTLS
peer certificate when the request came over mTLS, else a certificate registered
for the principal. Either way it must chain to our CA and not be revoked.
"""

from __future__ import annotations

from s2s_auth.conf import s2s_settings
from s2s_auth.core import httpsig
from s2s_auth.core.certs import VerifiedPeer
from s2s_auth.core.x509 import CertificateRejected
from s2s_auth.credentials.certificates import certificate_by_fingerprint
from s2s_auth.credentials.replay import remember_once
from s2s_auth.errors import S2SError
from s2s_auth.mechanisms.base import ServiceAuthentication, identity_for
from s2s_auth.tls.peer import verify_peer
from s2s_auth.tls.proxy_headers import ProxyHeaderError


def remember_nonce(key_id: str, nonce: str, ttl: int) -> bool:
    """The shared replay store; raises ReplayStoreUnavailable (503) when it is down."""
    return remember_once("nonce", key_id, nonce, ttl=ttl)


def remember_signature(key_id: str, value: str, ttl: int) -> bool:
    """A nonce-less signature's canonical value, in the shared replay store (503 when down)."""
    return remember_once("httpsig-signature", key_id, value, ttl=ttl)


def own_origins() -> list[tuple[str, str]]:
    """``(scheme, authority)`` of each origin in ``HTTPSIG_ORIGIN`` (one, or a list).

    Never the request's ``Host``: ``ALLOWED_HOSTS`` ignores ports, so a request signed
    for another service on the same host would verify here. Unset or invalid is a
    refusal (``manage.py check`` reports it as s2s_auth.E009).
    """
    value = s2s_settings().HTTPSIG_ORIGIN
    values = [value] if isinstance(value, str) else list(value or ())
    if not values:
        raise S2SError(
            "httpsig_origin_unset",
            "S2S_AUTH['HTTPSIG_ORIGIN'] is not set: this service cannot tell which "
            "@target-uri a signature must name.",
        )
    try:
        return [httpsig.parse_origin(origin) for origin in values]
    except ValueError as exc:
        raise S2SError("httpsig_origin_invalid", f"S2S_AUTH['HTTPSIG_ORIGIN']: {exc}") from None


def request_target_uris(request) -> list[str]:
    """The ``@target-uri`` a client may have signed: one per origin of this service.

    The path is the raw one the client sent when the server gives it (gunicorn's
    ``RAW_URI``), so percent-escapes survive.
    """
    raw = request.META.get("RAW_URI") or request.META.get("REQUEST_URI")
    path = raw.split("?", 1)[0] if raw and raw.startswith("/") else request.path
    query = request.META.get("QUERY_STRING", "")
    return [httpsig.target_uri(scheme, host, path, query) for scheme, host in own_origins()]


class HTTPSignatureAuthentication(ServiceAuthentication):
    mechanism = "http_signature"

    def authenticate(self, request):
        if "HTTP_SIGNATURE" not in request.META and "HTTP_SIGNATURE_INPUT" not in request.META:
            return None
        evidence: dict = {"credential": request.META.get("HTTP_SIGNATURE", "")}
        signer: dict[str, VerifiedPeer] = {}

        def resolve_key(key_id: str):
            peer = self.signer_certificate(request, key_id)
            if peer is None:
                raise httpsig.SignatureError("unknown_key", f"no certificate {key_id[:16]}…")
            signer["peer"] = peer
            return peer.leaf.public_key(), None

        try:
            targets = request_target_uris(request)
        except S2SError as exc:
            self.reject(request, exc, **evidence)
        try:
            verified = self.verifier(resolve_key).verify(
                request.method,
                targets,
                request.headers,
                request.body,
            )
        except httpsig.SignatureError as exc:
            peer = signer.get("peer")
            if peer:
                evidence.update(self.certificate_evidence(peer))
            self.reject(request, exc, **evidence)
        except CertificateRejected as exc:
            self.reject(request, exc, fingerprint=exc.fingerprint or "", **evidence)
        except ProxyHeaderError as exc:
            self.reject(request, S2SError("malformed_proxy_header", exc.detail))
        except S2SError as exc:  # the replay store is down
            self.reject(request, exc, **evidence)
        peer = signer["peer"]
        evidence.update(self.certificate_evidence(peer))
        try:
            end_user = self.end_user(request, peer.spiffe_id)
            identity = identity_for(peer.spiffe_id, self.mechanism, end_user=end_user)
        except S2SError as exc:
            self.reject(request, exc, principal=peer.spiffe_id, **evidence)
        self.accept(request, identity, signature_base=verified.signature_base, **evidence)
        return identity, verified

    def authenticate_header(self, request) -> str:
        return 'Signature realm="{}"'.format(s2s_settings().own_spiffe_id or "s2s")

    def verifier(self, resolve_key) -> httpsig.SignatureVerifier:
        conf = s2s_settings()
        return httpsig.SignatureVerifier(
            resolve_key=resolve_key,
            required_components=tuple(conf.HTTPSIG_REQUIRED_COMPONENTS),
            max_age=conf.HTTPSIG_MAX_AGE,
            clock_skew=conf.CLOCK_SKEW,
            nonce_store=remember_nonce,
            signature_store=remember_signature,
            require_nonce=conf.HTTPSIG_REQUIRE_NONCE,
            algorithms=frozenset(conf.HTTPSIG_ALGORITHMS),
        )

    def signer_certificate(self, request, key_id: str) -> VerifiedPeer | None:
        peer = verify_peer(request)
        if peer is not None and peer.fingerprint == key_id.lower():
            return peer
        return certificate_by_fingerprint(key_id)

    @staticmethod
    def certificate_evidence(peer: VerifiedPeer) -> dict:
        return {
            "fingerprint": peer.fingerprint,
            "certificate_pem": peer.leaf_pem,
        }
