from rest_framework.response import Response

from s2s_auth.views import ServiceAPIView


class SignedPreviewsView(ServiceAPIView):
    mechanisms = ["service_jwt"]  # instead of S2S_AUTH["MECHANISMS"]
    required_scopes = ["users:read"]

    def get(self, request):
        claims = request.auth.claims  # the verified token: iss, sub, aud, iat, exp, jti
        return Response({"caller": claims["sub"], "jti": claims["jti"]})
