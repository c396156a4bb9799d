"""``/metrics``: the Prometheus exposition, for principals with scope ``metrics:read``.

Authenticated like any service endpoint (``S2S_AUTH["MECHANISMS"]``; Prometheus
scrapes with its client certificate), never anonymous: reason codes, client names
and certificate expiry tell an attacker what to try.
"""

from __future__ import annotations

from django.http import HttpResponse
from rest_framework.exceptions import APIException
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.renderers import JSONRenderer

from s2s_auth import metrics
from s2s_auth.views import ServiceAPIView

__all__ = ["METRICS_SCOPE", "MetricsView"]

METRICS_SCOPE = "metrics:read"


class MetricsUnavailable(APIException):
    status_code = 503
    default_code = "metrics_unavailable"

    def __init__(self):
        super().__init__(
            {
                "error": "metrics_unavailable",
                "detail": "prometheus_client is not installed (pip install 's2s-auth[metrics]').",
            }
        )


class _ScraperNegotiation(BaseContentNegotiation):
    """The body is chosen by ``choose_encoder``; DRF's renderer (JSON) serves only the
    errors, whatever ``Accept`` says (``text/plain`` alone must not be a 406)."""

    def select_parser(self, request, parsers):
        return parsers[0] if parsers else None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


class MetricsView(ServiceAPIView):
    """GET: every s2s_auth metric (all worker processes with PROMETHEUS_MULTIPROC_DIR),
    in the format the scraper asks for (Prometheus text or OpenMetrics)."""

    required_scopes = [METRICS_SCOPE]
    content_negotiation_class = _ScraperNegotiation
    renderer_classes = [JSONRenderer]

    def get(self, request):
        if not metrics.AVAILABLE:
            raise MetricsUnavailable()
        from prometheus_client.exposition import choose_encoder

        encoder, content_type = choose_encoder(request.META.get("HTTP_ACCEPT", ""))
        return HttpResponse(encoder(_registry()), content_type=content_type)


def _registry():
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess

    from s2s_auth.metrics.collectors import TrustMaterialCollector

    registry = CollectorRegistry()
    if metrics.multiprocess_dir():
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward(REGISTRY))
    registry.register(TrustMaterialCollector())
    return registry


class _Forward:
    """The process's default registry, collected inside another registry."""

    def __init__(self, source):
        self.source = source

    def collect(self):
        return self.source.collect()
