"""``/api/schema/`` (OpenAPI 3.1, YAML or ``?format=json``), ``/api/schema/swagger-ui/``
and ``/api/schema/redoc/``: open to anyone, like any published API contract.

The UIs' JavaScript and CSS come from the drf-spectacular-sidecar package (no CDN); the
services run with DEBUG off under gunicorn, which serves no static files, so the
sidecar's read-only folder is served here (``django.views.static.serve``: fine for
these few files; a proxy in front may serve ``STATIC_ROOT`` instead).
"""

from pathlib import Path

import drf_spectacular_sidecar
from django.conf import settings
from django.urls import path, re_path
from django.views.static import serve
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path(
        "api/schema/swagger-ui/",
        SpectacularSwaggerView.as_view(url_name="schema"),
        name="swagger-ui",
    ),
    path("api/schema/redoc/", SpectacularRedocView.as_view(url_name="schema"), name="redoc"),
    re_path(
        rf"^{settings.STATIC_URL.strip('/')}/drf_spectacular_sidecar/(?P<path>.+)$",
        serve,
        {
            "document_root": Path(drf_spectacular_sidecar.__file__).parent
            / "static/drf_spectacular_sidecar"
        },
    ),
]
