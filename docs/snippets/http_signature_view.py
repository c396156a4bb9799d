from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth.authentication import HTTPSignatureAuthentication
from s2s_auth.permissions import HasScope


class SignedNotificationsView(APIView):
    authentication_classes = [HTTPSignatureAuthentication]
    permission_classes = [HasScope("users:notify")]

    def post(self, request):
        signature = request.auth  # VerifiedSignature: covered_components, signature_base
        return Response(
            {"from": request.user.name, "covered": list(signature.covered_components)},
            status=202,
        )
