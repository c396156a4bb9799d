from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth.authentication import EndUserTokenAuthentication
from s2s_auth.views import ServiceAPIView


class OnBehalfView(ServiceAPIView):
    """Called by a service, for one of our end users."""

    mechanisms = ["service_jwt"]
    required_scopes = ["users:read"]

    def get(self, request):
        end_user = request.user.end_user  # EndUser (verified) or None
        if end_user is None:
            return Response({"error": "end_user_required", "detail": "No user context."}, 400)
        return Response(
            {"service": request.user.name, "user": end_user.id, "username": end_user.username}
        )


class MeView(APIView):
    """Called by an end user with the token from /api/v1/auth/login."""

    authentication_classes = [EndUserTokenAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response({"id": request.user.id, "username": request.user.username})
