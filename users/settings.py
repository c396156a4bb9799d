"""UserService settings: the shared base plus its own apps and URLs."""

import os

from fleamarket.openapi.settings import spectacular_settings
from fleamarket.settings import base_settings

globals().update(base_settings("users"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "s2s_auth",
    "s2s_auth.issuer",
    "users.people",
    "users.notifications",
]
ROOT_URLCONF = "users.urls"
WSGI_APPLICATION = "users.wsgi.application"

# UserService is also the identity service: the issuer URL is the `iss` of every
# token it signs (None: derived from each request's scheme and host).
S2S_AUTH["ISSUER"] = os.environ.get("S2S_ISSUER")  # noqa: F821 - from base_settings
# Access tokens (the batch jobs' client-credentials tokens) are verified like at any
# resource service: from the issuer's published JWKS, cached.
S2S_AUTH["ACCESS_TOKEN_ISSUER"] = S2S_AUTH["ISSUER"]  # noqa: F821

# The OpenAPI contract at /api/schema/ (fleamarket.openapi).
SPECTACULAR_SETTINGS = spectacular_settings(
    "users",
    "UserService: people, seller previews for services, notifications, and the identity "
    "service (tokens, JWKS, login, registration).",
    issuer=os.environ.get("S2S_ISSUER"),
)
