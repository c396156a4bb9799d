"""Small reusable views."""

from rest_framework.response import Response
from rest_framework.views import APIView

from .authentication import MTLSAuthentication
from .permissions import IsService


class WhoAmIView(APIView):
    """Echo the calling service as this server sees it: handy to debug credentials.

    Needs no scope: it tells a caller only what it already presented.
    """

    authentication_classes = [MTLSAuthentication]
    permission_classes = [IsService]

    def get(self, request):
        user = request.user
        return Response(
            {
                "name": user.name,
                "spiffe_id": user.spiffe_id,
                "mechanism": user.mechanism,
                "scopes": sorted(user.scopes),
                "end_user": user.end_user.id if user.end_user else None,
            }
        )
