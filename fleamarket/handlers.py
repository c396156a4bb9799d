"""JSON bodies for the errors Django answers itself (no view matched, a suspicious
request, an unhandled exception): the services speak JSON, ``{"error", "detail"}``,
as their OpenAPI contract says, also for a URL that matches nothing.

Set as ``handler400``/``handler403``/``handler404``/``handler500`` in each service's
root URLconf.
"""

from django.http import JsonResponse


def _error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse({"error": code, "detail": detail}, status=status)


def bad_request(request, exception=None):
    return _error(400, "bad_request", "The request could not be understood.")


def permission_denied(request, exception=None):
    return _error(403, "permission_denied", "Not allowed.")


def not_found(request, exception=None):
    return _error(404, "not_found", "No such resource here.")


def server_error(request):
    return _error(500, "server_error", "Something went wrong on our side; it is logged.")
