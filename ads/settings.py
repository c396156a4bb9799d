"""AdService settings: the shared base plus its own apps, URLs and UserService location."""

import os

from ads.jobs.schedule import beat_schedule
from fleamarket.openapi.settings import spectacular_settings
from fleamarket.settings import base_settings, celery_settings

globals().update(base_settings("ads"))
globals().update(celery_settings())

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
    "ads.listings",
    "ads.jobs",
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
# How ads carries an end user's context to UserService: "exchange" (the default: the
# user's token exchanged at the identity service, RFC 8693, for a token for users alone
# that names ads in `act`) or "forward" (the user's own token, for a UserService that
# cannot exchange; it must opt in with S2S_ACCEPT_FORWARDED_USER_TOKENS=1).
USERS_SERVICE_USER_CONTEXT = os.environ.get("USERS_SERVICE_USER_CONTEXT", "exchange")
# Where ads exchanges tokens: S2S_ISSUER's token endpoint; unset, UserService's (read at
# call time, so it follows USERS_SERVICE_URL).
USERS_TOKEN_URL = (
    os.environ["S2S_ISSUER"].rstrip("/") + "/oauth/token" if os.environ.get("S2S_ISSUER") else None
)
# The circuit breaker in front of UserService (ads.listings.breaker, per process):
# after this many consecutive failures, stop calling it for this many seconds (stored
# seller previews are shown, marked stale), then let one probe call through.
USERS_BREAKER_FAILURES = int(os.environ.get("USERS_BREAKER_FAILURES", "3"))
USERS_BREAKER_RESET_SECONDS = float(os.environ.get("USERS_BREAKER_RESET_SECONDS", "30"))

# --- Batch jobs (ads.jobs, Celery: fleamarket/celery.py) ------------------------------
# The jobs call UserService as their own service, "worker" (its certificate
# <PKI_DIR>/worker.pem and .key), with a certificate-bound client-credentials token
# from the identity service: there is no end user behind a nightly job.
JOBS_IDENTITY = os.environ.get("JOBS_IDENTITY", "worker")
JOBS_TOKEN_URL = os.environ.get("JOBS_TOKEN_URL") or (
    (os.environ.get("S2S_ISSUER") or USERS_SERVICE_URL).rstrip("/") + "/oauth/token"
)
# Jobs are not waited for by a person: longer read timeouts than the nearby view's.
JOBS_USERS_TIMEOUT = (
    float(os.environ.get("JOBS_CONNECT_TIMEOUT", "2.0")),
    float(os.environ.get("JOBS_READ_TIMEOUT", "10.0")),
)
JOBS_BATCH_SIZE = int(os.environ.get("JOBS_BATCH_SIZE", "100"))
JOBS_PAGE_SIZE = int(os.environ.get("JOBS_PAGE_SIZE", "100"))
# Retry policy on transient failures (ads.jobs.tasks.UsersServiceJob): at most
# JOBS_MAX_RETRIES retries, waiting up to JOBS_RETRY_BACKOFF * 2**n seconds (full
# jitter), never more than JOBS_RETRY_BACKOFF_MAX.
JOBS_RETRY_POLICY = {
    "max_retries": int(os.environ.get("JOBS_MAX_RETRIES", "6")),
    "retry_backoff": int(os.environ.get("JOBS_RETRY_BACKOFF", "2")),
    "retry_backoff_max": int(os.environ.get("JOBS_RETRY_BACKOFF_MAX", "300")),
}
CELERY_TASK_ANNOTATIONS = {
    "jobs.expire_stale_ads": JOBS_RETRY_POLICY,
    "jobs.refresh_seller_previews": JOBS_RETRY_POLICY,
}
CELERY_BEAT_SCHEDULE = beat_schedule()

# End users sign in at the identity service (UserService) and present its access
# token here; ads verifies it locally from the issuer's JWKS and, when it calls
# UserService on the user's behalf, exchanges it for one for users alone.
S2S_AUTH["ACCESS_TOKEN_ISSUER"] = os.environ.get("S2S_ISSUER")  # noqa: F821 - base_settings
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [  # noqa: F821 - base_settings
    "s2s_auth.mechanisms.access_token.EndUserTokenAuthentication",
    # The browsable API: an end user signed in at /api-auth/login/ (the token in the session).
    "ads.listings.session_auth.SessionTokenAuthentication",
    "rest_framework.authentication.SessionAuthentication",
]

# The OpenAPI contract at /api/schema/ (fleamarket.openapi).
SPECTACULAR_SETTINGS = spectacular_settings(
    "ads",
    "AdService: ads (sell, rent, swap), nearby search with seller previews from users, "
    "and deals between buyers and sellers.",
    issuer=os.environ.get("S2S_ISSUER"),
    enums={
        "AdStatusEnum": "ads.listings.models.Ad.Status",
        "DealStatusEnum": "ads.listings.models.Deal.Status",
        "AdKindEnum": "ads.listings.models.Ad.Kind",
        "DealKindEnum": "ads.listings.models.Deal.Kind",
    },
)
