"""Small reusable views."""

from rest_framework.response import Response

from .drf import ServiceAPIView
from .permissions import IsService


class WhoAmIView(ServiceAPIView):
    """Echo the calling service as this server sees it: handy to debug credentials.

    Needs no scope: it tells a caller only what it already presented.
    """

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
