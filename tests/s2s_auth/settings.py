"""Minimal Django project for s2s_auth's own tests: nothing of the deployment."""

import os
import tempfile
from pathlib import Path

import dj_database_url

BASE_DIR = Path(tempfile.mkdtemp(prefix="s2s_auth_tests_"))
SECRET_KEY = "s2s-auth-tests-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "tests.s2s_auth.urls"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "s2s_auth",
    "s2s_auth.issuer",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "s2s_auth.audit.middleware.AuditMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 's2s_auth.sqlite3'}"
    )
}
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["CACHE_URL"],
        "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", ""),
    }
    if os.environ.get("CACHE_URL")
    # Shared by every process of the test project (live servers too); the test
    # database gets its table from Django's test runner (createcachetable).
    else {"BACKEND": "s2s_auth.credentials.dbcache.ReplayDatabaseCache", "LOCATION": "s2s_cache"}
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
S2S_AUTH = {
    "SERVICE_NAME": "users",
    "TRUST_DOMAIN": "fleamarket.local",
    "PKI_DIR": str(BASE_DIR / "pki"),
    # The end-user token settings the issuer and token tests were written against;
    # tests/s2s_auth/test_conf.py checks the library's own defaults.
    "END_USER_AUDIENCE": "fleamarket",
    "USER_TOKEN_AUDIENCE": "fleamarket",
    "USER_TOKEN_SCOPE": "ads:read ads:write",
    # Django's test client: signed requests in the tests are addressed here.
    "HTTPSIG_ORIGIN": "http://testserver",
}
REST_FRAMEWORK = {"EXCEPTION_HANDLER": "s2s_auth.errors.exception_handler"}
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"s2s_auth": {"handlers": ["console"], "level": "DEBUG", "propagate": True}},
}
