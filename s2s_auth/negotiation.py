"""Content negotiation without the work for the common case of a JSON API.

A service calls a JSON endpoint with no ``Accept`` header, ``Accept: */*`` (requests,
httpx) or ``Accept: application/json``. For those DRF's
:class:`~rest_framework.negotiation.DefaultContentNegotiation` builds the request's
header dictionary, parses every media type and ranks every renderer, only to pick the
first one: about as much CPU as a cached access-token check. :class:`JSONNegotiationMixin`
answers those three headers directly, with what DRF would have answered (the first
renderer, when it is a JSON renderer), and hands anything else to DRF: other ``Accept``
values (the browsable API's ``text/html``), ``?format=``, a format suffix, a view or
project with its own negotiation class.
"""

from __future__ import annotations

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import JSONRenderer
from rest_framework.settings import api_settings

__all__ = ["JSONNegotiationMixin"]

#: ``Accept`` values DRF answers with the first renderer's own media type.
_PLAIN_ACCEPT = frozenset({"*/*", "application/json"})


class JSONNegotiationMixin:
    """For an ``APIView``: the first renderer, without negotiating, when DRF would pick
    it anyway (see the module docstring)."""

    def perform_content_negotiation(self, request, force=False):
        fast = self._json_renderer(request)
        if fast is not None:
            return fast, fast.media_type
        return super().perform_content_negotiation(request, force)

    def _json_renderer(self, request):
        """The first renderer when the answer needs no negotiation, else None."""
        if self.content_negotiation_class is not DefaultContentNegotiation:
            return None  # the view's or the project's own rules decide
        if request.META.get("HTTP_ACCEPT", "*/*") not in _PLAIN_ACCEPT:
            return None
        if getattr(self, "format_kwarg", None):
            return None
        if request.META.get("QUERY_STRING") and request.query_params.get(
            api_settings.URL_FORMAT_OVERRIDE
        ):
            return None
        classes = self.renderer_classes
        if not classes or not issubclass(classes[0], JSONRenderer):
            return None
        renderer = classes[0]()
        return renderer if renderer.media_type == "application/json" else None
