"""``POST /drf``: a DRF view that parses JSON; ``POST /plain``: a Django view reading
``request.body``. Both answer 200 with what they read."""

from django.http import JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class Parsed(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)

    def post(self, request):
        return Response({"read": len(request.data)})


@csrf_exempt
def plain(request):
    return JsonResponse({"read": len(request.body)})


urlpatterns = [path("drf", Parsed.as_view()), path("plain", plain)]
