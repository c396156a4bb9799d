"""Choosing mechanisms by name, and a base view for service endpoints.

    class PreviewsView(ServiceAPIView):
        required_scopes = ["users:read"]

accepts the mechanisms named in ``S2S_AUTH["MECHANISMS"]`` (short names or dotted
paths of DRF authentication classes, see :mod:`s2s_auth.mechanisms`; read per request, so
``override_settings`` and a deployment's environment decide) and requires every
scope in ``required_scopes``: no scope declared, no access.
"""

from __future__ import annotations

from rest_framework.response import Response
from rest_framework.views import APIView

from s2s_auth.conf import s2s_settings
from s2s_auth.mechanisms import MECHANISM_CLASSES, mechanism_classes
from s2s_auth.mechanisms.base import challenge, forbidden_challenge
from s2s_auth.negotiation import JSONNegotiationMixin
from s2s_auth.permissions import HasRequiredScopes, IsService

__all__ = ["MECHANISM_CLASSES", "ServiceAPIView", "WhoAmIView", "authentication_classes"]


def authentication_classes(names) -> list[type]:
    """The DRF authentication classes for mechanism ``names`` (short names or dotted
    paths), in order; ImproperlyConfigured naming ``S2S_AUTH['MECHANISMS']`` otherwise."""
    return mechanism_classes(names)


class ServiceAPIView(JSONNegotiationMixin, APIView):
    """An endpoint for services: mechanisms from settings (or ``mechanisms``, short
    names or dotted paths), scopes from ``required_scopes``. A JSON answer for the
    ``Accept`` headers services send is picked without negotiating
    (:mod:`s2s_auth.negotiation`)."""

    mechanisms: list[str] | None = None
    permission_classes = [HasRequiredScopes]
    required_scopes: list[str] = []

    def initialize_request(self, request, *args, **kwargs):
        """DRF's request, with ``META`` read without DRF's attribute forwarding: every
        mechanism looks for its header in it on every request (the same dict)."""
        drf_request = super().initialize_request(request, *args, **kwargs)
        drf_request.META = request.META
        return drf_request

    def get_authenticators(self):
        names = self.mechanisms or s2s_settings().MECHANISMS
        return [cls() for cls in mechanism_classes(names)]

    def get_authenticate_header(self, request):
        """The refusing mechanism's challenge; without a credential, every accepted
        scheme (DRF alone names only the first mechanism's)."""
        return challenge(request, getattr(request, "authenticators", ()) or ())

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        if response is not None and response.status_code == 403:
            value = forbidden_challenge(self.request, list(self.required_scopes or []))
            if value and not response.has_header("WWW-Authenticate"):
                response["WWW-Authenticate"] = value
        return response


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
