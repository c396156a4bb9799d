"""Views of the access-token and API-key tests: one per way of protecting an endpoint."""

from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth.mechanisms.access_token import AccessTokenAuthentication, EndUserTokenAuthentication
from s2s_auth.mechanisms.api_key import APIKeyAuthentication
from s2s_auth.permissions import HasScope, IsService


def whoami(request):
    user = request.user
    return Response(
        {
            "name": user.name,
            "spiffe_id": user.spiffe_id,
            "mechanism": user.mechanism,
            "scopes": sorted(user.scopes),
            "auth": type(request.auth).__name__,
        }
    )


class AccessTokenScopedView(APIView):
    authentication_classes = [AccessTokenAuthentication]
    permission_classes = [HasScope("test:read")]

    def get(self, request):
        return whoami(request)


class AccessTokenAnyServiceView(APIView):
    authentication_classes = [AccessTokenAuthentication]
    permission_classes = [IsService]

    def get(self, request):
        response = whoami(request)
        response.data["jti"] = request.auth.claims["jti"]
        end_user = request.user.end_user
        response.data["end_user"] = end_user.id if end_user else None
        return response


class EndUserView(APIView):
    authentication_classes = [EndUserTokenAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        user = request.user
        return Response({"id": user.id, "username": user.username, "scopes": sorted(user.scopes)})


class APIKeyScopedView(APIView):
    authentication_classes = [APIKeyAuthentication]
    permission_classes = [HasScope("test:read")]

    def get(self, request):
        response = whoami(request)
        response.data["key_id"] = request.auth.key_id
        return response
