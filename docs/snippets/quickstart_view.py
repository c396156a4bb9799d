from rest_framework.response import Response

from s2s_auth.views import ServiceAPIView


class PreviewsView(ServiceAPIView):
    """GET /api/v1/users/previews?ids=1,2 for services granted ``users:read``."""

    required_scopes = ["users:read"]  # no scope declared: nobody gets in

    def get(self, request):
        ids = [int(i) for i in request.query_params.get("ids", "").split(",") if i.isdigit()]
        return Response(
            {
                "caller": request.user.spiffe_id,  # a ServiceIdentity, not a Django user
                "mechanism": request.user.mechanism,
                "previews": [{"id": i, "name": f"seller {i}"} for i in ids],
            }
        )
