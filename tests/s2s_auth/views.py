"""Views of the minimal test project, one per way of protecting an endpoint."""

from rest_framework.authentication import BaseAuthentication
from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth.authentication import (
    HTTPSignatureAuthentication,
    MTLSAuthentication,
    ServiceJWTAuthentication,
)
from s2s_auth.identity import ServiceIdentity
from s2s_auth.permissions import HasRequiredScopes, HasScope, IsService
from s2s_auth.views import ServiceAPIView


def whoami(request):
    user = request.user
    return Response(
        {
            "name": user.name,
            "spiffe_id": user.spiffe_id,
            "mechanism": user.mechanism,
            "scopes": sorted(user.scopes),
        }
    )


class MTLSScopedView(APIView):
    authentication_classes = [MTLSAuthentication]
    permission_classes = [HasScope("test:read")]

    def get(self, request):
        return whoami(request)


class MTLSAnyServiceView(APIView):
    authentication_classes = [MTLSAuthentication]
    permission_classes = [IsService]

    def get(self, request):
        return whoami(request)


class MTLSNoScopeDeclaredView(APIView):
    authentication_classes = [MTLSAuthentication]
    permission_classes = [HasRequiredScopes]

    def get(self, request):
        return whoami(request)


class MTLSRequiredScopesView(MTLSNoScopeDeclaredView):
    required_scopes = ["test:read", "test:write"]


class JWTScopedView(APIView):
    authentication_classes = [ServiceJWTAuthentication]
    permission_classes = [HasScope("test:read")]

    def get(self, request):
        return whoami_with_user(request)

    def post(self, request):
        return whoami_with_user(request)


class SignatureScopedView(JWTScopedView):
    authentication_classes = [HTTPSignatureAuthentication]


class AnyServiceMechanismView(JWTScopedView):
    authentication_classes = [
        MTLSAuthentication,
        ServiceJWTAuthentication,
        HTTPSignatureAuthentication,
    ]


def whoami_with_user(request):
    response = whoami(request)
    end_user = request.user.end_user
    response.data["end_user"] = end_user.id if end_user else None
    return response


class FailingReadView(JWTScopedView):
    """A read-only view that fails when asked to (for the audit's read-only path)."""

    def get(self, request):
        if request.query_params.get("fail") == "raise":
            raise RuntimeError("the read failed")
        if request.query_params.get("fail") == "500":
            return Response({"error": "failed"}, status=500)
        return whoami_with_user(request)


class PartnerAuthentication(BaseAuthentication):
    """A third-party mechanism, named by dotted path in ``S2S_AUTH["MECHANISMS"]``:
    ``X-Partner: <name>`` is believed as is (a test double of a partner's gateway)."""

    def authenticate(self, request):
        name = request.META.get("HTTP_X_PARTNER")
        if not name:
            return None
        identity = ServiceIdentity(
            name=name,
            spiffe_id=f"spiffe://partner.test/service/{name}",
            scopes=frozenset({"test:read"}),
            mechanism="partner",
        )
        return identity, None

    def authenticate_header(self, request) -> str:
        return 'Partner realm="test"'


class NotAnAuthenticator:
    """Looks like nothing DRF can use: a mechanism path naming it is refused."""


class SettingsMechanismsView(ServiceAPIView):
    """Mechanisms from ``S2S_AUTH["MECHANISMS"]``, one scope required."""

    required_scopes = ["test:read"]

    def get(self, request):
        return whoami(request)
