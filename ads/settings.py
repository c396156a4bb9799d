"""AdService settings: the shared base plus its own apps, URLs and UserService location."""

import os

from fleamarket.settings import base_settings

globals().update(base_settings("ads"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "s2s_auth",
    "ads.listings",
]
ROOT_URLCONF = "ads.urls"
WSGI_APPLICATION = "ads.wsgi.application"

# Where UserService answers, and how long ads waits for it before showing ads
# without seller previews: (connect, read) seconds.
USERS_SERVICE_URL = os.environ.get("USERS_SERVICE_URL", "https://127.0.0.1:8001")
# How ads proves who it is to UserService, over https: "mtls" (the certificate
# alone), "service_jwt" (a fresh self-signed JWT per call, over mTLS; the default:
# each call is signed, so the audit log can prove it), or "http_signature".
USERS_SERVICE_MECHANISM = os.environ.get("USERS_SERVICE_MECHANISM", "service_jwt")
USERS_SERVICE_TIMEOUT = (
    float(os.environ.get("USERS_SERVICE_CONNECT_TIMEOUT", "1.0")),
    float(os.environ.get("USERS_SERVICE_READ_TIMEOUT", "2.0")),
)
