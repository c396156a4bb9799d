"""Views of the audit tests: small mechanisms that verify real signed credentials.

The JWT and RFC 9421 mechanisms of s2s_auth are written elsewhere; these stand-ins do
what they will do for the audit log: verify a credential with the caller's certificate
(sent base64-encoded in ``X-Test-Cert``) and call ``accept``/``refuse`` with the
evidence, so every record holds a real signature.
"""

from __future__ import annotations

import base64

from cryptography import x509
from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth import audit
from s2s_auth.audit import events
from s2s_auth.conf import s2s_settings
from s2s_auth.core import httpsig
from s2s_auth.core import jose as tokens
from s2s_auth.identity import ServiceIdentity
from s2s_auth.mechanisms.base import CredentialMissing, CredentialRejected, ServiceAuthentication
from s2s_auth.models import ServicePrincipal
from s2s_auth.permissions import HasScope, IsService

_nonces = httpsig.MemoryNonceStore()


def _spiffe_id(cert: x509.Certificate) -> str:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return san.get_values_for_type(x509.UniformResourceIdentifier)[0]


class _TestMechanism(ServiceAuthentication):
    def certificate(self, request) -> tuple[str, x509.Certificate]:
        header = request.headers.get("X-Test-Cert")
        if not header:
            raise CredentialMissing("certificate_missing", "X-Test-Cert is missing.")
        pem = base64.b64decode(header).decode("ascii")
        return pem, x509.load_pem_x509_certificates(pem.encode("ascii"))[0]

    def identity(self, spiffe_id: str) -> ServiceIdentity:
        return ServiceIdentity(
            name=spiffe_id.rsplit("/", 1)[-1],
            spiffe_id=spiffe_id,
            scopes=frozenset({"audit:write"}),
            mechanism=self.mechanism,
        )


class TestJWTAuthentication(_TestMechanism):
    """``Authorization: TestJWT <self-signed JWT>``; verifying key: X-Test-Cert."""

    mechanism = "test_jwt"

    def authenticate(self, request):
        header = request.headers.get("Authorization", "")
        if not header.startswith("TestJWT "):
            return None
        token = header.removeprefix("TestJWT ")
        try:
            pem, leaf = self.certificate(request)
        except CredentialMissing as exc:
            self.refuse(request, exc, credential=token)
        principal = _spiffe_id(leaf)
        try:
            verified = tokens.verify(
                token,
                leaf.public_key(),
                audience=s2s_settings().own_spiffe_id,
                issuer=principal,
                subject=principal,
                max_lifetime=60,
                require=("exp", "iat", "jti"),
            )
        except tokens.TokenError as exc:
            self.refuse(
                request,
                CredentialRejected(exc.code, exc.detail),
                principal=principal,
                credential=token,
                certificate_pem=pem,
            )
        identity = self.identity(principal)
        self.accept(
            request, identity, credential=token, certificate_pem=pem, claims=verified.claims
        )
        return identity, verified

    def authenticate_header(self, request) -> str:
        return 'TestJWT realm="audit"'


class TestSignatureAuthentication(_TestMechanism):
    """RFC 9421 signature; keyid is ignored, the key is X-Test-Cert's."""

    mechanism = "test_signature"

    def authenticate(self, request):
        if "Signature-Input" not in request.headers:
            return None
        pem, leaf = self.certificate(request)
        verifier = httpsig.SignatureVerifier(
            resolve_key=lambda key_id: (leaf.public_key(), None), nonce_store=_nonces
        )
        uri = httpsig.target_uri("http", "testserver", request.path, request.META["QUERY_STRING"])
        principal = _spiffe_id(leaf)
        try:
            verified = verifier.verify(request.method, uri, request.headers, request.body)
        except httpsig.SignatureError as exc:
            self.refuse(
                request,
                CredentialRejected(exc.code, exc.detail),
                principal=principal,
                credential=request.headers.get("Signature", ""),
                certificate_pem=pem,
            )
        identity = self.identity(principal)
        self.accept(
            request,
            identity,
            credential=request.headers["Signature"],
            signature_base=verified.signature_base,
            certificate_pem=pem,
        )
        return identity, verified


class WriteView(APIView):
    """Creates a principal (the view's own write), then fails if asked to."""

    authentication_classes = [TestJWTAuthentication, TestSignatureAuthentication]
    permission_classes = [IsService]

    def post(self, request):
        ServicePrincipal.objects.create(
            name=request.query_params.get("name", "written"),
            spiffe_id=f"spiffe://fleamarket.local/service/{request.query_params.get('name')}",
        )
        fail = request.query_params.get("fail")
        if fail == "raise":
            raise RuntimeError("the view failed after writing")
        if fail == "500":
            return Response({"error": "failed"}, status=500)
        return Response({"ok": True})


class ScopedView(APIView):
    authentication_classes = [TestJWTAuthentication]
    permission_classes = [HasScope("audit:admin")]

    def get(self, request):  # pragma: no cover - always refused
        return Response({"ok": True})


class AccessTokenView(APIView):
    """Records an access token the way the access-token mechanism must: claims and a
    hash. ``?misuse=1`` passes the raw token, which the audit log must drop."""

    authentication_classes = []
    permission_classes = []

    def post(self, request):
        token, claims = request.data["token"], request.data["claims"]
        events.record(
            request,
            events.Decision(
                mechanism="access_token",
                outcome="accepted",
                principal=claims["sub"],
                claims=claims,
                credential=token if request.query_params.get("misuse") else "",
                credential_hash=audit.credential_hash(token),
            ),
        )
        return Response({"ok": True})


class PlainView(APIView):
    """Not an s2s view: the audit middleware leaves it alone."""

    authentication_classes = []
    permission_classes = []

    def get(self, request):
        return Response({"ok": True})
