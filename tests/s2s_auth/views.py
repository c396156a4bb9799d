"""Views of the minimal test project, one per way of protecting an endpoint."""

from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth.authentication import MTLSAuthentication
from s2s_auth.permissions import HasRequiredScopes, HasScope, IsService


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
