from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth.authentication import AccessTokenAuthentication
from s2s_auth.permissions import HasScope


class TokenPreviewsView(APIView):
    authentication_classes = [AccessTokenAuthentication]
    permission_classes = [HasScope("users:read")]

    def get(self, request):
        token = request.auth  # AccessToken: claims, scopes, certificate_thumbprint
        return Response(
            {
                "caller": request.user.spiffe_id,
                "scopes": sorted(request.user.scopes),  # token scope ∩ current grants
                "bound": token.certificate_thumbprint is not None,
            }
        )
