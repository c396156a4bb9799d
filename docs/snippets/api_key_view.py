from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth.authentication import APIKeyAuthentication
from s2s_auth.permissions import HasScope


class KeyedPreviewsView(APIView):
    authentication_classes = [APIKeyAuthentication]
    permission_classes = [HasScope("users:read")]

    def get(self, request):
        key = request.auth  # the APIKey row: key_id, expires_at, last_used_at
        return Response({"caller": request.user.name, "key_id": key.key_id})
