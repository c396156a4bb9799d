"""Base settings shared by UserService and AdService, driven by the environment.

Each project's settings module calls ``base_settings(service)`` and adds its own apps
and URLs. Every value has an embedded default that works on a fresh machine (SQLite
under ``var/``, the database cache in it, an embedded Celery broker); the environment
selects production parts:

    DATABASE_URL / <SERVICE>_DATABASE_URL   postgres://... (psycopg 3) or sqlite:///...
    CACHE_URL                               redis://... (replay store and throttles);
                                            unset: s2s_auth's database cache, which every
                                            worker process shares too
    CELERY_BROKER_URL                       redis://... or amqp://...
    S2S_MECHANISMS                          e.g. "service_jwt,mtls" (see S2S_AUTH MECHANISMS)
    S2S_TRUSTED_PROXIES                     proxies whose client-certificate header counts
    S2S_HTTPSIG_ORIGIN                      origins callers sign (default: from GUNICORN_BIND)
    S2S_REGISTRATION_OPEN                   "1" opens service self-registration (default off)
    S2S_CERT_LIFETIME                       lifetime of service certificates: 90s, 1h, 24h
                                            (default 24h; `pki`, `up` and renewal use it)
    S2S_CRL_URL                             where the identity service publishes its CRLs,
                                            e.g. https://127.0.0.1:8001/pki/crl (`up` sets
                                            it): named in new certificates, fetched by the
                                            other services (docs/revocation.md)
    S2S_CRL_VALIDITY                        CRL nextUpdate - thisUpdate (`up`: 5m)
    S2S_CRL_REFRESH_SECONDS                 how often verifiers re-fetch the CRLs (30)
    S2S_SPIFFE_ID_PATHS                     SPIFFE ID layouts (comma separated), e.g.
                                            "/service/{name},/ns/default/sa/{name}"
    S2S_AUDIT_WRITE                         group_commit (default), background or sync;
                                            S2S_AUDIT_FLUSH_INTERVAL, S2S_AUDIT_BATCH_SIZE,
                                            S2S_AUDIT_QUEUE_SIZE tune the writer thread
    SECRET_KEY / SECRET_KEY_FILE            required when DJANGO_DEBUG=0 is set
    DJANGO_DEBUG                            "1" turns DEBUG on (development); off by default,
                                            except under `manage.py runserver`
    ALLOWED_HOSTS                           comma separated
    VAR_DIR                                 where local state lives (default ./var, mode
                                            0700; its files 0600)
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
TRUTHY = {"1", "true", "yes", "on"}


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    return default if value is None else value.strip().lower() in TRUTHY


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def var_dir() -> Path:
    return Path(os.environ.get("VAR_DIR") or BASE_DIR / "var")


def private_dir(path: Path) -> Path:
    """``path`` as a directory only its owner can enter (0700), created if missing
    (missing parents too, each 0700)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)
    if path.stat().st_mode & 0o077:
        path.chmod(0o700)
    return path


def private_file(path: Path) -> Path:
    """``path`` as a file only its owner can read (0600), created empty if missing."""
    private_dir(path.parent)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return path


def debug_enabled(argv: Sequence[str] | None = None) -> bool:
    """DEBUG: ``DJANGO_DEBUG`` when set; else on only for the development server."""
    if os.environ.get("DJANGO_DEBUG") is not None:
        return env_bool("DJANGO_DEBUG", False)
    argv = sys.argv if argv is None else argv
    return len(argv) > 1 and Path(argv[0]).name == "manage.py" and argv[1] == "runserver"


def secret_key(service: str, debug: bool) -> str:
    """SECRET_KEY from the environment or a file; else a generated one kept in var/.

    ``DJANGO_DEBUG=0`` says "this is a deployment" (compose, ``up``, the Dockerfile
    set it): then a missing key is an error, never a generated one. On a development
    machine the generated key (var/, mode 0600) lets sessions survive a restart.
    """
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    if os.environ.get("SECRET_KEY_FILE"):
        return Path(os.environ["SECRET_KEY_FILE"]).read_text().strip()
    if not debug and os.environ.get("DJANGO_DEBUG") is not None:
        raise ImproperlyConfigured(
            "SECRET_KEY (or SECRET_KEY_FILE) must be set when DJANGO_DEBUG is off. "
            'Generate one with: python -c "import secrets; print(secrets.token_urlsafe(50))"'
        )
    path = var_dir() / f"{service}.secret_key"
    if not path.exists():
        private_dir(path.parent)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


def database(service: str) -> dict:
    url = (
        os.environ.get(f"{service.upper()}_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or f"sqlite:///{var_dir() / f'{service}.sqlite3'}"
    )
    config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    if config["ENGINE"] == "django.db.backends.sqlite3" and config["NAME"] != ":memory:":
        # Created 0600 before SQLite opens it: its -wal and -shm files take its mode.
        private_file(Path(config["NAME"]))
        # WAL lets readers run beside the one writer; a busy timeout instead of
        # "database is locked" when two threads write at once.
        config["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    return config


#: The embedded replay store: a table in the service's own database.
CACHE_TABLE = "s2s_cache"


def cache() -> dict:
    """The replay store and throttles' cache: Redis with ``CACHE_URL``, else the
    database cache of s2s_auth (``migrate`` creates its table; ``add()`` is one
    statement). Both are shared by every worker process, which a single-use jti or
    nonce needs; LocMem would not be."""
    url = os.environ.get("CACHE_URL")
    if url:
        return {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": os.environ.get("CACHE_KEY_PREFIX", ""),
        }
    return {
        "BACKEND": "s2s_auth.credentials.dbcache.ReplayDatabaseCache",
        "LOCATION": CACHE_TABLE,
        # Live entries are never culled (expired ones are, every 1000 writes or 60 s):
        # past this many a sweep logs a warning, time for Redis.
        "OPTIONS": {"MAX_ENTRIES": 100_000},
    }


PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]

#: Every Django login (the API's, /admin/login/, /api-auth/login/) is throttled per
#: username and per address on the shared store before the password is hashed.
AUTHENTICATION_BACKENDS = [
    "s2s_auth.credentials.throttles.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]


def base_settings(service: str) -> dict:
    """The settings both services share, for ``service`` ("users" or "ads")."""
    debug = debug_enabled()
    return {
        "BASE_DIR": BASE_DIR,
        "SERVICE_NAME": service,
        "DEBUG": debug,
        "SECRET_KEY": secret_key(service, debug),
        "ALLOWED_HOSTS": env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]"),
        "DATABASES": {"default": database(service)},
        "CACHES": {"default": cache()},
        "AUTH_PASSWORD_VALIDATORS": PASSWORD_VALIDATORS,
        "AUTHENTICATION_BACKENDS": AUTHENTICATION_BACKENDS,
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "LANGUAGE_CODE": "en-us",
        "STATIC_URL": "static/",
        # Both services answer over TLS only: their cookies are never sent in clear.
        "SESSION_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "CSRF_COOKIE_SECURE": True,
        "STATIC_ROOT": var_dir() / "static" / service,
        "MIDDLEWARE": [
            "django.middleware.security.SecurityMiddleware",
            # The admin's CSS and JS under gunicorn (collectstatic into STATIC_ROOT).
            "whitenoise.middleware.WhiteNoiseMiddleware",
            "s2s_auth.middleware.UnreadableBodyMiddleware",  # a body not sent in time: 408
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            # Service views run in a transaction with their accepted audit record;
            # refusals are written after it, so they are never rolled back.
            "s2s_auth.audit.middleware.AuditMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "REST_FRAMEWORK": {
            "DEFAULT_AUTHENTICATION_CLASSES": [
                "rest_framework.authentication.SessionAuthentication",
            ],
            "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
            "EXCEPTION_HANDLER": "s2s_auth.errors.exception_handler",
            # The OpenAPI contract at /api/schema/ (fleamarket.openapi, drf-spectacular).
            "DEFAULT_SCHEMA_CLASS": "fleamarket.openapi.schema.ServiceAutoSchema",
            # DRF's parsers, JSON bounded (depth, size, encoding): bad bodies are 400s.
            "DEFAULT_PARSER_CLASSES": [
                "fleamarket.parsers.BoundedJSONParser",
                "rest_framework.parsers.FormParser",
                "rest_framework.parsers.MultiPartParser",
            ],
            "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
            "PAGE_SIZE": 20,
            "DEFAULT_FILTER_BACKENDS": [
                "django_filters.rest_framework.DjangoFilterBackend",
                "rest_framework.filters.OrderingFilter",
                "rest_framework.filters.SearchFilter",
            ],
        },
        "LOGGING": {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            },
            "handlers": {"stdout": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "root": {"handlers": ["stdout"], "level": os.environ.get("LOG_LEVEL", "INFO")},
            "loggers": {"django.db.backends": {"level": "WARNING"}},
        },
        "S2S_AUTH": {
            "SERVICE_NAME": service,
            "TRUST_DOMAIN": os.environ.get("S2S_TRUST_DOMAIN", "fleamarket.local"),
            # End users' tokens from the users service's login are for every
            # service of the marketplace, and carry the ads scopes.
            "END_USER_AUDIENCE": "fleamarket",
            "USER_TOKEN_AUDIENCE": "fleamarket",
            "USER_TOKEN_SCOPE": "ads:read ads:write",
            "PKI_DIR": os.environ.get("S2S_PKI_DIR") or str(var_dir() / "pki"),
            # Addresses of TLS-terminating proxies whose client-certificate header
            # is believed (comma separated IPs/CIDRs); nobody by default.
            "TRUSTED_PROXIES": env_list("S2S_TRUSTED_PROXIES", ""),
            # Certificates from SPIRE, Istio or another CA: its bundle and CRL.
            "TRUST_ANCHORS": os.environ.get("S2S_TRUST_ANCHORS") or None,
            "CRL_FILE": os.environ.get("S2S_CRL_FILE") or None,
            # The origins callers sign (RFC 9421 @target-uri), never the request's Host.
            "HTTPSIG_ORIGIN": httpsig_origins(service),
            **s2s_overrides(),
        },
    }


def httpsig_origins(service: str) -> list[str]:
    """``S2S_HTTPSIG_ORIGIN`` (comma separated), else ``https://`` + each GUNICORN_BIND
    address (a wildcard address is the service's compose name), else ``up``'s default."""
    if os.environ.get("S2S_HTTPSIG_ORIGIN"):
        return env_list("S2S_HTTPSIG_ORIGIN", "")
    binds = env_list("GUNICORN_BIND", {"users": "127.0.0.1:8001"}.get(service, "127.0.0.1:8002"))
    hosts = [bind.rpartition(":") for bind in binds]
    wildcard = {"0.0.0.0", "[::]", ""}  # noqa: S104 - compared with, not bound to
    return [f"https://{service if h in wildcard else h}:{port}" for h, _, port in hosts]


def s2s_overrides() -> dict:
    """S2S_AUTH keys a deployment (or a benchmark) may set from the environment."""
    overrides: dict = {}
    if os.environ.get("S2S_MECHANISMS"):
        overrides["MECHANISMS"] = env_list("S2S_MECHANISMS", "")
    if os.environ.get("S2S_TOKEN_RATE_LIMIT_PER_MINUTE"):
        limit = int(os.environ["S2S_TOKEN_RATE_LIMIT_PER_MINUTE"])
        overrides["TOKEN_RATE_LIMIT_PER_MINUTE"] = limit
    if os.environ.get("S2S_REGISTRATION_OPEN"):
        overrides["REGISTRATION_OPEN"] = env_bool("S2S_REGISTRATION_OPEN", False)
    if os.environ.get("S2S_CERT_LIFETIME"):
        overrides["CERT_LIFETIME"] = os.environ["S2S_CERT_LIFETIME"]
    if os.environ.get("S2S_CRL_URL"):
        overrides["CRL_URL"] = os.environ["S2S_CRL_URL"]
    if os.environ.get("S2S_CRL_VALIDITY"):
        overrides["CRL_VALIDITY"] = os.environ["S2S_CRL_VALIDITY"]
    if os.environ.get("S2S_CRL_REFRESH_SECONDS"):
        overrides["CRL_REFRESH_SECONDS"] = float(os.environ["S2S_CRL_REFRESH_SECONDS"])
    if os.environ.get("S2S_CRL_MIN_REFETCH_SECONDS"):
        overrides["CRL_MIN_REFETCH_SECONDS"] = float(os.environ["S2S_CRL_MIN_REFETCH_SECONDS"])
    if os.environ.get("S2S_SPIFFE_ID_PATHS"):
        overrides["SPIFFE_ID_PATHS"] = env_list("S2S_SPIFFE_ID_PATHS", "")
    if os.environ.get("S2S_ACCEPT_FORWARDED_USER_TOKENS"):
        overrides["ACCEPT_FORWARDED_USER_TOKENS"] = env_bool(
            "S2S_ACCEPT_FORWARDED_USER_TOKENS", False
        )
    if os.environ.get("S2S_AUDIT_WRITE"):  # group_commit (default), background or sync
        overrides["AUDIT_WRITE"] = os.environ["S2S_AUDIT_WRITE"]
    for name, kind in (
        ("AUDIT_FLUSH_INTERVAL", float),
        ("AUDIT_BATCH_SIZE", int),
        ("AUDIT_QUEUE_SIZE", int),
    ):
        if os.environ.get(f"S2S_{name}"):
            overrides[name] = kind(os.environ[f"S2S_{name}"])
    if os.environ.get("S2S_CACHE_VERIFIED_TOKENS"):
        overrides["CACHE_VERIFIED_TOKENS"] = env_bool("S2S_CACHE_VERIFIED_TOKENS", True)
    for name in ("PRINCIPAL_CACHE_SECONDS", "PRINCIPAL_CACHE_CHECK_SECONDS"):
        if os.environ.get(f"S2S_{name}"):
            overrides[name] = float(os.environ[f"S2S_{name}"])
    return overrides


# --- Celery -------------------------------------------------------------------------


def celery_settings(environ: Mapping[str, str] | None = None) -> dict:
    """The ``CELERY_*`` settings of a process that runs or sends batch jobs.

    The broker is ``CELERY_BROKER_URL`` (``redis://...`` or ``amqp://...`` in
    production); without it, kombu's filesystem transport under ``var/celery/``, which
    needs no server: enough for one machine (``python -m fleamarket up``, the tests),
    not for workers on several hosts. Results go to ``CELERY_RESULT_BACKEND``, else the
    Redis broker, else files under ``var/celery/results``.

    ``environ`` defaults to the process environment; the deployment passes a worker's
    environment to build a client that talks to the same broker.
    """
    environ = os.environ if environ is None else environ
    folder = Path(environ.get("VAR_DIR") or BASE_DIR / "var") / "celery"
    broker = environ.get("CELERY_BROKER_URL") or "filesystem://"
    backend = environ.get("CELERY_RESULT_BACKEND") or (
        broker if broker.startswith(("redis://", "rediss://")) else f"file://{folder / 'results'}"
    )
    conf = {
        "CELERY_BROKER_URL": broker,
        "CELERY_RESULT_BACKEND": backend,
        "CELERY_RESULT_EXPIRES": 7 * 24 * 3600,
        "CELERY_RESULT_EXTENDED": True,
        "CELERY_TASK_DEFAULT_QUEUE": environ.get("CELERY_TASK_DEFAULT_QUEUE") or "fleamarket",
        "CELERY_TASK_SERIALIZER": "json",
        "CELERY_RESULT_SERIALIZER": "json",
        "CELERY_ACCEPT_CONTENT": ["json"],
        "CELERY_TIMEZONE": "UTC",
        # A task is acknowledged after it ran, so a worker lost mid-batch means the
        # batch runs again elsewhere: the jobs are idempotent, so that is safe.
        "CELERY_TASK_ACKS_LATE": True,
        "CELERY_TASK_REJECT_ON_WORKER_LOST": True,
        "CELERY_WORKER_PREFETCH_MULTIPLIER": 1,
        "CELERY_TASK_TRACK_STARTED": True,
        "CELERY_TASK_SOFT_TIME_LIMIT": int(environ.get("CELERY_TASK_SOFT_TIME_LIMIT", "1800")),
        "CELERY_TASK_TIME_LIMIT": int(environ.get("CELERY_TASK_TIME_LIMIT", "1900")),
        "CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP": True,
        "CELERY_WORKER_HIJACK_ROOT_LOGGER": False,
        "CELERY_BEAT_SCHEDULE_FILENAME": str(folder / "beat-schedule"),
    }
    if broker.startswith("filesystem://"):
        queue, control = folder / "queue", folder / "control"
        for path in (queue, control, folder / "results"):
            private_dir(path)
        conf["CELERY_BROKER_TRANSPORT_OPTIONS"] = {
            # One folder for both directions: producers and the worker share it.
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "control_folder": str(control),
            "store_processed": False,
            # How often an idle worker looks for new files (a directory listing).
            "polling_interval": float(environ.get("CELERY_POLLING_INTERVAL", "0.2")),
        }
        # Remote control (broadcast to every worker) makes no sense for one folder.
        conf["CELERY_WORKER_ENABLE_REMOTE_CONTROL"] = False
    elif backend.startswith("file://"):
        private_dir(folder / "results")
    return conf
