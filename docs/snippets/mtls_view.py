from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth.authentication import MTLSAuthentication
from s2s_auth.permissions import HasScope, IsService


class NotifyView(APIView):
    authentication_classes = [MTLSAuthentication]
    permission_classes = [HasScope("users:notify")]

    def post(self, request):
        peer = request.auth  # the VerifiedPeer: spiffe_id, fingerprint, serial, not_after
        return Response({"from": request.user.name, "fingerprint": peer.fingerprint}, status=202)


class PingView(APIView):
    authentication_classes = [MTLSAuthentication]
    permission_classes = [IsService]  # any registered, enabled service, no scope needed

    def get(self, request):
        return Response({"pong": request.user.spiffe_id})
