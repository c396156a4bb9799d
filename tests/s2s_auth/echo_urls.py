"""URLconf of the runserver_tls tests: every path echoes the TLS part of the environ."""

from django.http import JsonResponse
from django.urls import re_path

from tests.s2s_auth.wsgi_echo import describe


def echo(request):
    response = JsonResponse(describe(request.META))
    # Without Content-Length the development server closes the connection.
    response["Content-Length"] = str(len(response.content))
    return response


urlpatterns = [re_path(r"^.*$", echo)]
